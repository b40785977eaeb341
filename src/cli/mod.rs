//! The offline commands: `audit`, `fix`, `explain`. Thin shells around the engine.

pub mod audit;
pub mod cluster;
pub mod explain_cmd;
pub mod fix;
pub mod input;
pub mod report;
pub mod sarif;
pub mod table;

use crate::engine::script::{InProcessAnalyzer, ScriptAnalyzer};
use std::sync::Arc;

/// The script analyzer the offline commands use.
pub fn analyzer() -> Arc<dyn ScriptAnalyzer> {
    Arc::new(InProcessAnalyzer)
}
