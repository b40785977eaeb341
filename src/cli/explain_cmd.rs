//! `pidone explain RULE`.

use crate::engine::explain::{explain, summary};
use crate::engine::rules::RuleId;

/// The text for `pidone explain`; with no rule, the list of rules.
pub fn run(rule: Option<&str>) -> Result<String, crate::engine::rules::UnknownRule> {
    match rule {
        None => {
            let mut out = String::from("Rules (pidone explain <rule> for details):\n");
            for r in RuleId::ALL {
                out.push_str(&format!("  {:<18} {}\n", r.as_str(), summary(r)));
            }
            out.push('\n');
            out.push_str(crate::engine::explain::WHERE);
            out.push('\n');
            Ok(out)
        }
        Some(name) => Ok(explain(name.parse::<RuleId>()?)),
    }
}
