//! The findings of a review as one field of its log line: a JSON array of
//! `{"rule","container","action","message"}`, written straight into the line (no string is
//! built for it).

use crate::engine::evaluate::Finding;
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};
use std::fmt;
use std::io;

/// The findings a review reports, for `findings = %Findings(..)`.
pub struct Findings<'a, I>(pub I)
where
    I: Iterator<Item = &'a Finding> + Clone;

#[derive(Serialize)]
struct Logged<'a> {
    rule: &'static str,
    container: &'a str,
    action: &'static str,
    message: &'a str,
}

impl<'a, I> fmt::Display for Findings<'a, I>
where
    I: Iterator<Item = &'a Finding> + Clone,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ser = serde_json::Serializer::new(FmtWriter(f));
        let mut write = || -> Result<(), serde_json::Error> {
            let mut seq = (&mut ser).serialize_seq(None)?;
            for finding in self.0.clone() {
                seq.serialize_element(&Logged {
                    rule: finding.rule.as_str(),
                    container: &finding.container,
                    action: finding.action.as_str(),
                    message: &finding.message,
                })?;
            }
            seq.end()
        };
        write().map_err(|_| fmt::Error)
    }
}

/// serde_json writes valid UTF-8 in every call (it splits strings only at ASCII escapes).
struct FmtWriter<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl io::Write for FmtWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = std::str::from_utf8(buf).map_err(io::Error::other)?;
        self.0.write_str(text).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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
        let text = Findings(all.iter()).to_string();
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
        assert_eq!(Findings(all[..0].iter()).to_string(), "[]");
    }
}
