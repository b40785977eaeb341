//! The findings of a review as one field of its log line: a JSON array of
//! `{"rule","container","action","message"}`.
//!
//! Rendered once into a string and logged as one (`findings = text.as_str()`): tracing's
//! formatters turn a `Display` field into a string of their own anyway, so writing the array
//! through `Display` cost a UTF-8 check per chunk serde_json wrote and a second copy.

use crate::engine::evaluate::Finding;
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

#[derive(Serialize)]
struct Logged<'a> {
    rule: &'static str,
    container: &'a str,
    action: &'static str,
    message: &'a str,
}

/// The JSON array of `findings`; `[]` when there are none.
pub fn findings_json<'a>(findings: impl Iterator<Item = &'a Finding>) -> String {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::new(&mut out);
    let written = (|| -> Result<(), serde_json::Error> {
        let mut seq = (&mut ser).serialize_seq(None)?;
        for finding in findings {
            seq.serialize_element(&Logged {
                rule: finding.rule.as_str(),
                container: &finding.container,
                action: finding.action.as_str(),
                message: &finding.message,
            })?;
        }
        seq.end()
    })();
    // Writing into memory fails only on a serializer bug; the line still says so.
    match written.map(|()| String::from_utf8(out)) {
        Ok(Ok(text)) => text,
        _ => "[\"the findings could not be written\"]".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::Action;
    use crate::engine::rules::RuleId;
    use crate::engine::workload::Section;

    fn finding(container: &str, rule: RuleId, action: Action, message: &str) -> Finding {
        Finding {
            container: container.into(),
            section: Section::Containers,
            pointer: String::new(),
            rule,
            action,
            message: message.into(),
            fix: String::new(),
            fallback: None,
            confidence: None,
            evidence: Vec::new(),
        }
    }

    #[test]
    fn findings_are_a_json_array_with_escapes() {
        let all = [
            finding(
                "app",
                RuleId::ShellNoExec,
                Action::Mutate,
                "sh -c \"a; b\"\nends\twith ü",
            ),
            finding("log", RuleId::SideAgent, Action::Warn, "x"),
        ];
        let text = findings_json(all.iter());
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back,
            serde_json::json!([
                {"rule": RuleId::ShellNoExec.as_str(), "container": "app", "action": "mutate",
                 "message": "sh -c \"a; b\"\nends\twith ü"},
                {"rule": RuleId::SideAgent.as_str(), "container": "log", "action": "warn",
                 "message": "x"}
            ])
        );
        assert_eq!(findings_json(all[..0].iter()), "[]");
    }
}
