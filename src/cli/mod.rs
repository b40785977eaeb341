//! Subcommands of the `pidone` binary, one module each; `src/main.rs` only dispatches.
//! Thin shells around the engine, the mutations and the server.

pub mod audit;
pub mod cluster;
pub mod config_maps;
pub mod diff;
pub mod explain_cmd;
pub mod fix;
pub mod input;
pub mod logging;
pub mod report;
pub mod sarif;
pub mod serve;
pub mod serve_reports;
pub mod spool;
pub mod stream;
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

/// The engine for an offline command: the configuration file (or the defaults) and the
/// offline analyzer. Errors are printed with the command's name.
pub fn offline_engine(
    command: &str,
    config: Option<&std::path::PathBuf>,
) -> Option<crate::engine::Engine> {
    let config = match audit::load_config(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pidone {command}: {e}");
            return None;
        }
    };
    let analyzer = analyzer(&config.parser);
    match crate::engine::Engine::new(Arc::new(config), analyzer) {
        Ok(e) => Some(e),
        Err(e) => {
            eprintln!("pidone {command}: {e}");
            None
        }
    }
}

/// `--resolve-images`: looks up the ENTRYPOINT and CMD of every container without a command,
/// one document (or one whole input) at a time, with one cache for the run (on disk between
/// runs). Warnings go to stderr, each once.
pub struct OfflineImages {
    command: &'static str,
    session: crate::images::offline::Session,
    /// Warnings already printed: an image that cannot be looked up is named once, not once per
    /// document that runs it.
    warned: std::collections::HashSet<String>,
}

impl OfflineImages {
    /// `None` (after saying why on stderr) when look-ups cannot start.
    pub fn start(command: &'static str, engine: &crate::engine::Engine) -> Option<Self> {
        let cache = crate::images::offline::default_cache_path();
        match crate::images::offline::Session::start(&engine.config().images, cache.as_deref()) {
            Ok(session) => Some(OfflineImages {
                command,
                session,
                warned: std::collections::HashSet::new(),
            }),
            Err(e) => {
                eprintln!("pidone {command}: {e}");
                None
            }
        }
    }

    /// The images of these manifests that could be looked up.
    pub fn resolve(
        &mut self,
        manifests: &[input::Manifest],
    ) -> std::collections::HashMap<String, crate::engine::evaluate::ImageConfig> {
        let (found, warnings) = self.session.resolve(manifests.iter().map(|m| &m.object));
        for w in warnings {
            if self.warned.insert(w.message.clone()) {
                eprintln!("pidone {}: warning: {w}", self.command);
            }
        }
        found
    }

    /// Saves the cache.
    pub fn finish(self) {
        if let Some(w) = self.session.finish() {
            eprintln!("pidone {}: warning: {w}", self.command);
        }
    }
}
