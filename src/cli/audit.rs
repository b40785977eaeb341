//! `pidone audit`: the offline check for CI pipelines.

use crate::cli::input::{self, InputError, Manifest};
use crate::cli::report::Report;
use crate::cli::{sarif, table};
use crate::engine::config::Action;
use crate::engine::evaluate::{EvalContext, ImageConfig};
use crate::engine::{Config, Engine};
use clap::{Args, ValueEnum};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
    /// `wgpolicyk8s.io/v1alpha2` PolicyReports (one per namespace) and a ClusterPolicyReport.
    #[value(name = "policyreport")]
    PolicyReport,
    /// `openreports.io/v1alpha1` Reports (one per namespace) and a ClusterReport.
    #[value(name = "openreport")]
    OpenReport,
}

impl Format {
    /// The report API of the report formats.
    pub fn reports_api(self) -> Option<crate::engine::config::ReportsApi> {
        match self {
            Format::PolicyReport => Some(crate::engine::config::ReportsApi::PolicyReport),
            Format::OpenReport => Some(crate::engine::config::ReportsApi::OpenReport),
            Format::Table | Format::Json | Format::Sarif => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Deny,
    Warn,
    Never,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Manifest files or directories (recursive: *.yaml, *.yml, *.json); `-` for stdin.
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// pidone configuration file (rules, side agents, exemptions).
    #[arg(long, env = "PIDONE_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Exit 1 when a finding's enforce-mode action is at or above this.
    #[arg(long, value_enum, default_value_t = FailOn::Deny)]
    pub fail_on: FailOn,
    /// Audit the live objects of the cluster (kubeconfig or in-cluster config) instead of files.
    #[arg(long, conflicts_with = "paths")]
    pub cluster: bool,
    /// With --cluster: only this namespace.
    #[arg(long, short = 'n', requires = "cluster")]
    pub namespace: Option<String>,
    /// Table output: list every container, not only those with findings.
    #[arg(long, short)]
    pub verbose: bool,
    /// Look up ENTRYPOINT and CMD in the registries for containers without a `command`
    /// (`images` settings of the config; cache in $XDG_CACHE_HOME/pidone/images.json).
    #[arg(long)]
    pub resolve_images: bool,
}

/// Exit codes of `audit` (docs/design.md section 7).
pub const EXIT_CLEAN: u8 = 0;
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Loads a configuration file, or the defaults when none is given.
pub fn load_config(path: Option<&PathBuf>) -> Result<Config, String> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    Config::from_yaml(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads every path; input errors are collected, not fatal, so one bad file does not hide
/// findings in the others.
pub fn read_all(paths: &[String]) -> (Vec<Manifest>, Vec<InputError>) {
    let mut manifests = Vec::new();
    let mut errors = Vec::new();
    let paths: Vec<String> = if paths.is_empty() {
        vec!["-".into()]
    } else {
        paths.to_vec()
    };
    for path in &paths {
        match input::expand(path) {
            Ok(files) => {
                for file in files {
                    match input::read_file(&file) {
                        Ok(mut m) => manifests.append(&mut m),
                        Err(e) => errors.push(e),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    (manifests, errors)
}

/// Evaluates manifests into a report; objects that fail extraction are reported as errors.
pub fn evaluate_all(engine: &Engine, manifests: &[Manifest], errors: &mut Vec<String>) -> Report {
    evaluate_all_with(engine, manifests, errors, None)
}

/// [`evaluate_all`] with images' ENTRYPOINT and CMD looked up beforehand.
pub fn evaluate_all_with(
    engine: &Engine,
    manifests: &[Manifest],
    errors: &mut Vec<String>,
    images: Option<&HashMap<String, ImageConfig>>,
) -> Report {
    let mut report = Report::default();
    let ctx = EvalContext {
        images,
        ..EvalContext::default()
    };
    for m in manifests {
        match engine.evaluate(&m.object, &ctx) {
            Ok(Some(eval)) => report.add(&m.source, &eval),
            Ok(None) => {}
            Err(e) => errors.push(format!(
                "{}: document {}: {e}",
                m.source.file, m.source.document
            )),
        }
    }
    report
}

/// Runs a closure on a thread with a large stack: shell syntax trees of untrusted scripts can
/// be deep, and a stack overflow aborts the whole process.
pub fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    std::thread::Builder::new()
        .name("pidone-analysis".into())
        .stack_size(512 * 1024 * 1024)
        .spawn(f)
        .ok()?
        .join()
        .ok()
}

pub fn run(args: AuditArgs) -> ExitCode {
    let Some(engine) = crate::cli::offline_engine("audit", args.config.as_ref()) else {
        return ExitCode::from(EXIT_USAGE);
    };
    let (manifests, mut errors) = if args.cluster {
        match crate::cli::cluster::read_cluster(
            args.namespace.as_deref(),
            args.format.reports_api().is_some(),
        ) {
            Ok(m) => (m, Vec::new()),
            Err(e) => {
                eprintln!("pidone audit: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    } else {
        let (m, input_errors) = read_all(&args.paths);
        (
            m,
            input_errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
        )
    };
    let images = if args.resolve_images {
        match crate::cli::offline_images("audit", &engine, &manifests) {
            Some(images) => Some(images),
            None => return ExitCode::from(EXIT_USAGE),
        }
    } else {
        None
    };
    let reports_api = args.format.reports_api();
    let Some((report, errors, reports)) = on_big_stack(move || {
        let report = evaluate_all_with(&engine, &manifests, &mut errors, images.as_ref());
        let reports = reports_api.map(|api| {
            crate::cli::cluster::reports_yaml(api, &engine, &manifests, images.as_ref())
        });
        (report, errors, reports)
    }) else {
        eprintln!("pidone audit: the analysis thread failed");
        return ExitCode::from(EXIT_USAGE);
    };
    for e in &errors {
        eprintln!("pidone audit: {e}");
    }
    let text = match args.format {
        Format::Table => table::render(&report, args.verbose),
        Format::Json => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
        Format::Sarif => {
            serde_json::to_string_pretty(&sarif::render(&report)).unwrap_or_default() + "\n"
        }
        Format::PolicyReport | Format::OpenReport => reports.unwrap_or_default(),
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        .is_err()
    {
        return ExitCode::from(EXIT_USAGE);
    }
    if !errors.is_empty() {
        return ExitCode::from(EXIT_USAGE);
    }
    let threshold = match args.fail_on {
        FailOn::Deny => Some(Action::Deny),
        FailOn::Warn => Some(Action::Warn),
        FailOn::Never => None,
    };
    match (threshold, report.max_action()) {
        (Some(t), Some(max)) if max >= t => ExitCode::from(EXIT_FINDINGS),
        _ => ExitCode::from(EXIT_CLEAN),
    }
}
