//! The findings of a review as one field of its log line: a JSON array of
//! `{"rule","container","action","message"}`.
//!
//! Rendered once into a string and logged as one (`findings = text.as_str()`): tracing's
//! formatters turn a `Display` field into a string of their own anyway, so writing the array
//! through `Display` cost a UTF-8 check per chunk serde_json wrote and a second copy.

use crate::engine::evaluate::Finding;
use crate::json_text::push_json_str;

/// The JSON array of `findings`; `[]` when there are none. The text serde_json writes for
/// them (tested against it), written by hand as the log line is.
pub fn findings_json<'a>(findings: impl Iterator<Item = &'a Finding>) -> String {
    let mut out = String::with_capacity(256);
    out.push('[');
    for (i, finding) in findings.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"rule\":");
        push_json_str(&mut out, finding.rule.as_str());
        out.push_str(",\"container\":");
        push_json_str(&mut out, &finding.container);
        out.push_str(",\"action\":");
        push_json_str(&mut out, finding.action.as_str());
        out.push_str(",\"message\":");
        push_json_str(&mut out, &finding.message);
        out.push('}');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::Action;
    use crate::engine::rules::RuleId;

    fn finding(container: &str, rule: RuleId, action: Action, message: &str) -> Finding {
        Finding::for_test(container, "", rule, action, message)
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
        let logged: Vec<_> = all
            .iter()
            .map(|f| {
                serde_json::json!({"rule": f.rule.as_str(), "container": f.container,
                    "action": f.action.as_str(), "message": f.message})
            })
            .collect();
        // serde_json's text, members in the order written.
        let expected = logged
            .iter()
            .map(|v| {
                format!(
                    r#"{{"rule":{},"container":{},"action":{},"message":{}}}"#,
                    v["rule"], v["container"], v["action"], v["message"]
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(text, format!("[{expected}]"));
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
