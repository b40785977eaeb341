//! The audit report: every container with its launch class and every finding, each tied to the
//! object and the file and document it came from (docs/design.md section 7, `--format json`).

use crate::cli::input::Source;
use crate::engine::Evaluation;
use crate::engine::config::Action;
use crate::engine::launch::LaunchClass;
use crate::engine::rules::RuleId;
use crate::engine::side_agents::Confidence;
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
    /// Where the container's `command` (or `args`, or the container) is written, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// `certain` or `likely` (`side-agent` findings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
    /// What a `side-agent` finding rests on, strongest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

/// A 1-based line and column in the source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Region {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub containers: Vec<ContainerRow>,
    pub findings: Vec<FindingRow>,
    /// Findings switched off by `pidone.io/ignore`: never acted on, listed so that a
    /// suppression stays visible.
    pub ignored: Vec<FindingRow>,
}

impl Report {
    pub fn add(&mut self, source: &Source, eval: &Evaluation) {
        self.add_located(source, eval, &|_| None);
    }

    /// [`Report::add`] with the region of each container (by its JSON Pointer in the object).
    pub fn add_located(
        &mut self,
        source: &Source,
        eval: &Evaluation,
        region: &dyn Fn(&str) -> Option<Region>,
    ) {
        for c in &eval.containers {
            self.containers.push(ContainerRow {
                object: eval.object.clone(),
                source: source.clone(),
                container: c.container.clone(),
                section: c.section,
                launch: c.launch,
            });
        }
        let row = |f: &crate::engine::evaluate::Finding| {
            let message = match &f.fallback {
                Some(why) => format!(
                    "{} (pidone cannot fix this automatically: {why})",
                    f.message
                ),
                None => f.message.clone(),
            };
            FindingRow {
                object: eval.object.clone(),
                source: source.clone(),
                container: f.container.clone(),
                rule: f.rule,
                action: f.action,
                message,
                fix: f.fix.clone(),
                region: region(&f.pointer),
                confidence: f.confidence,
                evidence: f.evidence.clone(),
            }
        };
        self.findings.extend(eval.findings.iter().map(row));
        self.ignored.extend(eval.suppressed.iter().map(row));
    }

    pub fn max_action(&self) -> Option<Action> {
        self.findings.iter().map(|f| f.action).max()
    }
}
