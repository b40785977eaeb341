//! `pidone fix`: the manifests as enforce mode would admit them.

use crate::cli::audit::{EXIT_FINDINGS, EXIT_USAGE, on_big_stack, read_all};
use crate::engine::Engine;
use crate::engine::config::Action;
use crate::engine::evaluate::{EvalContext, ImageConfig};
use crate::mutate;
use clap::Args;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct FixArgs {
    /// Manifest files or directories (recursive: *.yaml, *.yml, *.json); `-` for stdin.
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// pidone configuration file.
    #[arg(long, env = "PIDONE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print a unified diff per changed object instead of the fixed manifests.
    #[arg(long)]
    pub diff: bool,
    /// Look up ENTRYPOINT and CMD in the registries for containers without a `command`
    /// (`images` settings of the config; cache in $XDG_CACHE_HOME/pidone/images.json).
    #[arg(long)]
    pub resolve_images: bool,
}

/// One object fixed: the new object, what changed, and what enforce mode would still deny.
pub struct Fixed {
    pub object: Value,
    pub plan: mutate::MutationPlan,
    pub denials: Vec<String>,
}

/// Applies enforce mode's mutations to one object.
pub fn fix_object(
    engine: &Engine,
    object: &Value,
    images: Option<&HashMap<String, ImageConfig>>,
) -> Result<Fixed, String> {
    fix_object_with(engine, object, images, None)
}

/// [`fix_object`] with the input's ConfigMaps, so scripts run from ConfigMap volumes are read.
pub fn fix_object_with(
    engine: &Engine,
    object: &Value,
    images: Option<&HashMap<String, ImageConfig>>,
    config_maps: Option<&crate::engine::mounted_scripts::ConfigMaps>,
) -> Result<Fixed, String> {
    let ctx = EvalContext {
        images,
        config_maps,
        // Offline there is no cluster to ask: `auto` counts as supported.
        native_sidecars: crate::cluster::offline(engine.config().native_sidecars),
        ..Default::default()
    };
    let Some(eval) = engine.evaluate(object, &ctx).map_err(|e| e.to_string())? else {
        return Ok(Fixed {
            object: object.clone(),
            plan: mutate::MutationPlan::default(),
            denials: Vec::new(),
        });
    };
    let plan = mutate::plan(engine, object, &ctx, &eval);
    let mut fixed = object.clone();
    if !plan.is_empty() {
        let patch = plan.json_patch().map_err(|e| e.to_string())?;
        json_patch::patch(&mut fixed, &patch).map_err(|e| e.to_string())?;
    }
    // What is still denied after the fixes (mutating webhooks run before validating ones).
    let denials = match engine.evaluate(&fixed, &ctx).map_err(|e| e.to_string())? {
        Some(after) => after
            .findings
            .iter()
            .filter(|f| f.action == Action::Deny)
            .map(|f| format!("{}: {}", f.rule, f.message))
            .collect(),
        None => Vec::new(),
    };
    Ok(Fixed {
        object: fixed,
        plan,
        denials,
    })
}

fn to_yaml(v: &Value) -> String {
    serde_saphyr::to_string(v).unwrap_or_else(|e| format!("# cannot render as YAML: {e}\n"))
}

pub fn run(args: FixArgs) -> ExitCode {
    let Some(engine) = crate::cli::offline_engine("fix", args.config.as_ref()) else {
        return ExitCode::from(EXIT_USAGE);
    };
    let (manifests, input_errors) = read_all(&args.paths);
    let images = if args.resolve_images {
        match crate::cli::offline_images("fix", &engine, &manifests) {
            Some(images) => Some(images),
            None => return ExitCode::from(EXIT_USAGE),
        }
    } else {
        None
    };
    let diff = args.diff;
    let Some((text, errors, denied)) = on_big_stack(move || {
        let mut out = String::new();
        let mut errors: Vec<String> = input_errors.iter().map(ToString::to_string).collect();
        let mut denied = false;
        let config_maps = crate::cli::config_maps::gather(&manifests);
        for m in &manifests {
            let name = format!("{}#{}", m.source.file, m.source.document);
            match fix_object_with(&engine, &m.object, images.as_ref(), Some(&config_maps)) {
                Ok(fixed) => {
                    for w in &fixed.plan.warnings {
                        eprintln!("pidone fix: {name}: {w}");
                    }
                    for d in &fixed.denials {
                        denied = true;
                        eprintln!("pidone fix: {name}: enforce mode would still deny: {d}");
                    }
                    if diff {
                        if !fixed.plan.is_empty() {
                            let before = to_yaml(&m.object);
                            let after = to_yaml(&fixed.object);
                            let udiff = similar::TextDiff::from_lines(&before, &after);
                            out.push_str(
                                &udiff
                                    .unified_diff()
                                    .header(&format!("a/{name}"), &format!("b/{name}"))
                                    .to_string(),
                            );
                        }
                    } else {
                        out.push_str("---\n");
                        out.push_str(&to_yaml(&fixed.object));
                    }
                }
                Err(e) => errors.push(format!("{name}: {e}")),
            }
        }
        (out, errors, denied)
    }) else {
        eprintln!("pidone fix: the analysis thread failed");
        return ExitCode::from(EXIT_USAGE);
    };
    for e in &errors {
        eprintln!("pidone fix: {e}");
    }
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        .is_err()
    {
        return ExitCode::from(EXIT_USAGE);
    }
    if !errors.is_empty() {
        ExitCode::from(EXIT_USAGE)
    } else if denied {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}
