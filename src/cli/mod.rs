//! Subcommands of the `pidone` binary, one module each; `src/main.rs` only dispatches.
//! Thin shells around the engine, the mutations and the server.

pub mod audit;
pub mod cluster;
pub mod explain_cmd;
pub mod fix;
pub mod input;
pub mod logging;
pub mod report;
pub mod sarif;
pub mod serve;
pub mod table;

use crate::engine::script::{InProcessAnalyzer, ScriptAnalyzer};
use std::sync::Arc;

/// The script analyzer the offline commands use.
pub fn analyzer() -> Arc<dyn ScriptAnalyzer> {
    Arc::new(InProcessAnalyzer)
}
