//! The audit report: every container with its launch class and every finding, each tied to the
//! object and the file and document it came from (docs/design.md section 7, `--format json`).

use crate::cli::input::Source;
use crate::engine::Evaluation;
use crate::engine::config::Action;
use crate::engine::launch::LaunchClass;
use crate::engine::rules::RuleId;
use crate::engine::workload::{ObjectRef, Section};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ContainerRow {
    pub object: ObjectRef,
    pub source: Source,
    pub container: String,
    pub section: Section,
    pub launch: LaunchClass,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingRow {
    pub object: ObjectRef,
    pub source: Source,
    pub container: String,
    pub rule: RuleId,
    pub action: Action,
    pub message: String,
    pub fix: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub containers: Vec<ContainerRow>,
    pub findings: Vec<FindingRow>,
}

impl Report {
    pub fn add(&mut self, source: &Source, eval: &Evaluation) {
        for c in &eval.containers {
            self.containers.push(ContainerRow {
                object: eval.object.clone(),
                source: source.clone(),
                container: c.container.clone(),
                section: c.section,
                launch: c.launch,
            });
        }
        for f in &eval.findings {
            let message = match &f.fallback {
                Some(why) => format!(
                    "{} (pidone cannot fix this automatically: {why})",
                    f.message
                ),
                None => f.message.clone(),
            };
            self.findings.push(FindingRow {
                object: eval.object.clone(),
                source: source.clone(),
                container: f.container.clone(),
                rule: f.rule,
                action: f.action,
                message,
                fix: f.fix.clone(),
            });
        }
    }

    pub fn max_action(&self) -> Option<Action> {
        self.findings.iter().map(|f| f.action).max()
    }
}
