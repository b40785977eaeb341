//! JSON log lines written field by field into the line buffer, as tracing-subscriber's JSON
//! format writes them (`flatten_event`, no current span): `timestamp`, `level`, the event's
//! fields in order (`message` among them), `target`.
//!
//! The stock format serialises each field through serde_json into an `io::Write` adaptor over
//! the line's `fmt::Write`, piece by piece: on the webhook's path that was about 6% of a
//! review's instructions, for one line. Events it shapes differently are handed to it: events
//! inside spans (it lists them) and records bridged from the `log` crate (it takes their
//! target and level from `log.*` fields and leaves those out).

use crate::json_text::push_json_str;
use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter of `--log-format json`.
pub struct JsonLines {
    /// The stock format, for the events written differently (see the module).
    stock: Format<Json>,
}

impl Default for JsonLines {
    fn default() -> Self {
        JsonLines {
            stock: tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(false),
        }
    }
}

/// The field formatter to pair with [`JsonLines`]: spans' fields as the stock format reads
/// them back.
pub fn fields() -> JsonFields {
    JsonFields::new()
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let from_log = event.fields().any(|field| field.name().starts_with("log."));
        if from_log || ctx.event_scope().is_some() {
            return self.stock.format_event(ctx, writer, event);
        }
        // Built apart and written at once: each write to `writer` is a dynamic call.
        let metadata = event.metadata();
        let mut line = String::with_capacity(1024);
        line.push_str("{\"timestamp\":\"");
        write!(
            line,
            "{}",
            humantime::format_rfc3339_micros(std::time::SystemTime::now())
        )?;
        line.push_str("\",\"level\":\"");
        line.push_str(metadata.level().as_str());
        line.push('"');
        event.record(&mut FieldWriter { out: &mut line });
        line.push_str(",\"target\":");
        push_json_str(&mut line, metadata.target());
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

/// Writes each field as `,"name":value`.
struct FieldWriter<'l> {
    out: &'l mut String,
}

impl FieldWriter<'_> {
    fn field(&mut self, field: &Field) -> &mut String {
        // `r#type` is written `type`, as the stock format writes it.
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.out.push(',');
        push_json_str(self.out, name);
        self.out.push(':');
        self.out
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        push_json_str(self.field(field), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field)
            .push_str(if value { "true" } else { "false" });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let out = self.field(field);
        let _ = write!(out, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let out = self.field(field);
        let _ = write!(out, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // As serde_json writes a float: shortest round trip, `null` when not finite.
        let out = self.field(field);
        let _ = match serde_json::Number::from_f64(value) {
            Some(n) => write!(out, "{n}"),
            None => out.write_str("null"),
        };
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        push_json_str(self.field(field), &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        push_json_str(self.field(field), &format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::io;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[derive(Debug)]
    struct Failure;

    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("it \"failed\"\n")
        }
    }

    impl std::error::Error for Failure {}

    /// Events of every field type, with text that needs escapes, inside a span and outside.
    fn events() {
        let tricky = "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} é 😀 \u{7f}";
        tracing::info!(
            uid = "u-1",
            endpoint = "validate",
            dry_run = false,
            duration_us = 706_u64,
            delta = -3_i64,
            ratio = 0.25,
            nan = f64::NAN,
            findings = "[{\"rule\":\"side-agent\"}]",
            tricky,
            "admission review"
        );
        tracing::warn!(error = %Failure, debug = ?Some("x\"y"), "formatted {} and {:?}", 1, "two");
        let failure = Failure;
        tracing::error!(
            error = &failure as &(dyn std::error::Error + 'static),
            r#type = "raw name"
        );
        tracing::info!(target: "custom::target", "only a message");
        let span = tracing::info_span!("request", id = 7, path = "/validate");
        span.in_scope(|| tracing::info!(inside = true, "in a span"));
    }

    fn lines(subscriber: impl Subscriber + Send + Sync, captured: &Captured) -> Vec<Value> {
        tracing::subscriber::with_default(subscriber, events);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    #[test]
    fn lines_are_the_stock_json_format_s() {
        let ours = Captured::default();
        let stock = Captured::default();
        let mut got = lines(
            tracing_subscriber::fmt()
                .with_writer(ours.clone())
                .fmt_fields(fields())
                .event_format(JsonLines::default())
                .finish(),
            &ours,
        );
        let mut expected = lines(
            tracing_subscriber::fmt()
                .with_writer(stock.clone())
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .finish(),
            &stock,
        );
        assert_eq!(got.len(), 5);
        for line in got.iter_mut().chain(expected.iter_mut()) {
            let stamp = line.as_object_mut().unwrap().remove("timestamp").unwrap();
            let stamp = stamp.as_str().unwrap();
            // RFC 3339, UTC, microseconds: 2026-12-06T01:28:28.892499Z.
            assert_eq!(stamp.len(), 27, "{stamp}");
            assert!(humantime::parse_rfc3339(stamp).is_ok(), "{stamp}");
        }
        assert_eq!(got, expected);
        // The same members in the same order (serde_json's map keeps them sorted, so the
        // order is compared on the text).
        let text = String::from_utf8(ours.0.lock().unwrap().clone()).unwrap();
        let first = text.lines().next().unwrap();
        let order: Vec<usize> = [
            "\"timestamp\"",
            "\"level\"",
            "\"message\"",
            "\"uid\"",
            "\"target\"",
        ]
        .iter()
        .map(|k| first.find(k).unwrap())
        .collect();
        assert!(order.is_sorted(), "{first}");
    }
}
