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

use crate::engine::config::ParserConfig;
use crate::engine::script::ScriptAnalyzer;
use crate::sandbox::{CacheLimits, PrescreenedAnalyzer};
use std::sync::Arc;

/// The script analyzer the offline commands use: the pre-screen and a verdict cache in front
/// of an in-process parse (on a large stack, see `audit::on_big_stack`). Manifests in a CI
/// pipeline are the team's own, so the worker processes that contain the parser in the
/// webhook are not needed here.
pub fn analyzer(limits: &ParserConfig) -> Arc<dyn ScriptAnalyzer> {
    Arc::new(PrescreenedAnalyzer::new(limits, CacheLimits::default()))
}
