//! Subcommands of the `pidone` binary, one module each; `src/main.rs` only dispatches.
//! Thin shells around the engine, the mutations and the server.

pub mod audit;
pub mod cluster;
pub mod config_maps;
pub mod diff;
pub mod explain_cmd;
pub mod fix;
pub mod input;
pub mod json_log;
pub mod logging;
pub mod report;
pub mod sarif;
pub mod serve;
pub mod serve_reports;
pub mod spool;
pub mod stream;
pub mod table;

use crate::engine::config::ParserConfig;
use crate::resolve::ScriptAnalyzer;
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
) -> Option<crate::resolve::Evaluator> {
    let config = match audit::load_config(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pidone {command}: {e}");
            return None;
        }
    };
    let analyzer = analyzer(&config.parser);
    match crate::resolve::Evaluator::new(Arc::new(config), analyzer) {
        Ok(e) => Some(e),
        Err(e) => {
            eprintln!("pidone {command}: {e}");
            None
        }
    }
}

/// What `--resolve-images` found for some manifests: image configs, and the files their
/// launches run.
#[derive(Debug, Default)]
pub struct Resolved {
    pub configs: std::collections::HashMap<String, crate::engine::evaluate::ImageConfig>,
    pub files: crate::engine::image_files::ImageFiles,
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
    pub fn start(command: &'static str, engine: &crate::resolve::Evaluator) -> Option<Self> {
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

    /// The images of these manifests that could be looked up, then the scripts their launches
    /// run from the images' layers (`images.scripts`), with the manifests' ConfigMaps in view
    /// (a ConfigMap mounted over a path hides the image's file). Which files a launch runs is
    /// an analysis of its scripts: call this where evaluation runs (a large stack).
    pub fn resolve(
        &mut self,
        engine: &crate::resolve::Evaluator,
        manifests: &[input::Manifest],
        config_maps: Option<&crate::engine::mounted_scripts::ConfigMaps>,
    ) -> Resolved {
        let (configs, warnings) = self.session.resolve(manifests.iter().map(|m| &m.object));
        for w in warnings {
            if self.warned.insert(w.message.clone()) {
                eprintln!("pidone {}: warning: {w}", self.command);
            }
        }
        let files = self.session.gather_files(|files| {
            let mut wanted: Vec<_> = manifests
                .iter()
                .flat_map(|m| {
                    let ctx = crate::engine::evaluate::EvalContext {
                        namespace: m
                            .object
                            .pointer("/metadata/namespace")
                            .and_then(|v| v.as_str()),
                        images: Some(&configs),
                        config_maps,
                        image_files: Some(files),
                        ..Default::default()
                    };
                    engine.needs(&m.object, &ctx).image_files
                })
                .collect();
            wanted.sort_unstable();
            wanted.dedup();
            wanted
        });
        Resolved { configs, files }
    }

    /// Saves the cache.
    pub fn finish(self) {
        if let Some(w) = self.session.finish() {
            eprintln!("pidone {}: warning: {w}", self.command);
        }
    }
}
