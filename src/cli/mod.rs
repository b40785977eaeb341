//! Subcommands of the `pidone` binary, one module each; `src/main.rs` only dispatches.
//! Thin shells around the engine, the mutations and the server.

pub mod audit;
pub mod cluster;
pub mod config_maps;
pub mod explain_cmd;
pub mod fix;
pub mod input;
pub mod logging;
pub mod report;
pub mod sarif;
pub mod serve;
pub mod serve_reports;
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

/// What `--resolve-images` found: image configs, and the files their launches run.
#[derive(Debug, Default)]
pub struct OfflineImages {
    pub configs: std::collections::HashMap<String, crate::engine::evaluate::ImageConfig>,
    pub files: crate::engine::image_files::ImageFiles,
}

/// `--resolve-images`: looks up the ENTRYPOINT and CMD of every container without a command,
/// then reads the scripts the launches run from the images' layers (`images.scripts`), with
/// the manifests' ConfigMaps in view (a ConfigMap mounted over a path hides the image's
/// file). The cache is kept on disk between runs; warnings go to stderr. `None` (after saying
/// why on stderr) when look-ups cannot start.
pub fn offline_images(
    command: &str,
    engine: &crate::engine::Engine,
    manifests: &[input::Manifest],
    config_maps: Option<&crate::engine::mounted_scripts::ConfigMaps>,
) -> Option<OfflineImages> {
    let cache = crate::images::offline::default_cache_path();
    let offline =
        match crate::images::offline::Offline::new(&engine.config().images, cache.as_deref()) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("pidone {command}: {e}");
                return None;
            }
        };
    let (configs, mut warnings) = offline.resolve_objects(manifests.iter().map(|m| &m.object));
    let files = offline.gather_files(|files| {
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
                engine.image_files_wanted(&m.object, &ctx)
            })
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        wanted
    });
    warnings.extend(offline.save());
    for w in &warnings {
        eprintln!("pidone {command}: warning: {w}");
    }
    Some(OfflineImages { configs, files })
}
