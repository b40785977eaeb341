//! `pidone audit`: the offline check for CI pipelines.

use crate::cli::input::{self, Document, InputError, Manifest};
use crate::cli::report::{Region, Report};
use crate::cli::stream::{Output, Streamed};
use crate::cli::{sarif, table};
use crate::edit::tree;
use crate::engine::Config;
use crate::engine::config::Action;
use crate::engine::evaluate::{ANNOTATION_IGNORE, EvalContext, Evaluation};
use crate::engine::mounted_scripts::ConfigMaps;
use crate::engine::rules::RuleId;
use crate::engine::workload::WorkloadError;
use crate::resolve::Evaluator;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::ops::ControlFlow;
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
    /// How the format is written as objects come, if it can be (reports are whole documents
    /// per namespace).
    pub fn streamed(self, verbose: bool) -> Option<Streamed> {
        match self {
            Format::Table => Some(Streamed::Table { verbose }),
            Format::Json => Some(Streamed::Json),
            Format::Sarif => Some(Streamed::Sarif),
            Format::PolicyReport | Format::OpenReport => None,
        }
    }

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
    /// Without a path stdin is read, unless it is a terminal.
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
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Table output: list every container, not only those with findings, and the findings
    /// switched off by `pidone.io/ignore`.
    #[arg(long, short)]
    pub verbose: bool,
    /// Input without any workload (Pods, Deployments, Jobs...) is not an error.
    #[arg(long)]
    pub allow_empty: bool,
    /// Look up ENTRYPOINT and CMD in the registries for containers without a `command`
    /// (`images` settings of the config; cache in $XDG_CACHE_HOME/pidone/images.json).
    #[arg(long)]
    pub resolve_images: bool,
}

/// Exit codes of `audit` and `fix` (docs/design.md section 7).
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

/// Calls `f` with every document of every path, in order, until it says to stop; errors
/// reading a file are passed on and the next file is read.
pub fn for_each_document(
    paths: &[String],
    f: &mut dyn FnMut(Result<Document, InputError>) -> ControlFlow<()>,
) {
    for path in paths {
        let files = match input::expand(path) {
            Ok(files) => files,
            Err(e) => {
                if f(Err(e)).is_break() {
                    return;
                }
                continue;
            }
        };
        for file in files {
            let flow = match input::open(&file) {
                Ok(mut docs) => docs.try_for_each(&mut *f),
                Err(e) => f(Err(e)),
            };
            if flow.is_break() {
                return;
            }
        }
    }
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

/// The audit of a stream of objects: the report, the errors, the warnings, and how many
/// workloads were evaluated.
#[derive(Default)]
pub struct Audit {
    pub report: Report,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub workloads: usize,
}

impl Audit {
    /// Evaluates one object; `document` (its text) places findings at their lines.
    pub fn object(
        &mut self,
        engine: &Evaluator,
        m: &Manifest,
        document: Option<&Located<'_>>,
        images: Option<&crate::cli::Resolved>,
        config_maps: Option<&ConfigMaps>,
    ) {
        let ctx = EvalContext {
            images: images.map(|i| &i.configs),
            config_maps,
            image_files: images.map(|i| &i.files),
            // As `fix` and the webhook would: `nativeSidecars: never` changes what is fixed.
            native_sidecars: crate::cluster::offline(engine.config().native_sidecars),
            ..EvalContext::default()
        };
        let at = |pointer: &str| -> Option<Region> {
            let located = document?;
            let doc = located.doc;
            let root = located.root()?;
            let full = format!("{}{pointer}", m.pointer);
            // The key (`command:`) when there is one: that is where a reader looks.
            let node = root.key_of(&full).or_else(|| root.pointer(&full))?;
            let (line, column) = tree::line_column(&doc.text, node.start);
            Some(Region {
                line: doc.line + line - 1,
                column,
            })
        };
        match engine.evaluate(&m.object, &ctx) {
            Ok(Some(eval)) => {
                self.workloads += 1;
                self.unknown_ignores(m, &eval);
                self.report
                    .add_located(&m.source, &eval, &|container_pointer| {
                        at(&format!("{container_pointer}/command"))
                            .or_else(|| at(&format!("{container_pointer}/args")))
                            .or_else(|| at(container_pointer))
                    });
            }
            Ok(None) => {}
            Err(e) => {
                let (pointer, message) = workload_error(&e);
                let line = at(&pointer).map(|r| r.line);
                self.errors.push(format!(
                    "{}: document {}{}: {}: {message}",
                    m.source.file,
                    m.source.document,
                    line.map(|l| format!(", line {l}")).unwrap_or_default(),
                    object_name(&m.object),
                ));
            }
        }
    }

    /// Warns about rule ids in `pidone.io/ignore` that pidone does not know: a typo there
    /// silently ignores nothing.
    fn unknown_ignores(&mut self, m: &Manifest, eval: &Evaluation) {
        let pointer = format!(
            "{}/metadata/annotations/{}",
            eval.template_pointer,
            crate::mutate::escape_token(ANNOTATION_IGNORE)
        );
        let Some(value) = m.object.pointer(&pointer).and_then(|v| v.as_str()) else {
            return;
        };
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part != "all" && part.parse::<RuleId>().is_err() {
                self.warnings.push(format!(
                    "{}: document {}: {} {}: {ANNOTATION_IGNORE} names {part:?}, which is not a rule; known rules: all, {}",
                    m.source.file,
                    m.source.document,
                    eval.object.kind,
                    eval.object.name,
                    RuleId::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
}

/// A document and, once something needs a position, its tree of positions.
pub struct Located<'d> {
    pub doc: &'d Document,
    root: std::cell::OnceCell<Option<tree::Node>>,
}

impl<'d> Located<'d> {
    pub fn new(doc: &'d Document) -> Self {
        Located {
            doc,
            root: std::cell::OnceCell::new(),
        }
    }

    pub fn root(&self) -> Option<&tree::Node> {
        self.root
            .get_or_init(|| tree::parse(&self.doc.text).ok().flatten())
            .as_ref()
    }
}

/// `Deployment api`: how messages name an object.
pub fn object_name(object: &serde_json::Value) -> String {
    format!(
        "{} {}",
        object
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or("object"),
        object
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap_or("(unnamed)")
    )
}

/// An object pidone cannot read as a workload, in words: where (a JSON Pointer) and what is
/// wrong there.
pub fn workload_error(e: &WorkloadError) -> (String, String) {
    match e {
        WorkloadError::NotAnObject => (String::new(), "the object is not a mapping".into()),
        WorkloadError::WrongType {
            pointer,
            expected,
            found,
        } => (
            pointer.clone(),
            format!(
                "{pointer} must be {}, but it is {found}",
                expected.replace("an array", "a list")
            ),
        ),
        WorkloadError::Missing { pointer } => (
            pointer.clone(),
            format!("{pointer} is missing, and a workload needs it"),
        ),
    }
}

/// What a streamed audit counted: its rows are already written.
struct Counted {
    workloads: usize,
    errors: usize,
    max: Option<Action>,
}

/// Prints the warnings and errors of the objects audited so far, and forgets them; how many
/// errors there were.
fn say(audit: &mut Audit) -> usize {
    for w in audit.warnings.drain(..) {
        eprintln!("pidone audit: warning: {w}");
    }
    let errors = audit.errors.len();
    for e in audit.errors.drain(..) {
        eprintln!("pidone audit: {e}");
    }
    errors
}

/// Audits every document of the paths, one at a time, writing each object's rows as soon as
/// it is evaluated: memory follows the largest document, not the input.
fn audit_stream<W: Write>(
    engine: &Evaluator,
    paths: &[String],
    mut images: Option<&mut crate::cli::OfflineImages>,
    output: &mut Output<W>,
) -> std::io::Result<Counted> {
    let mut audit = Audit::default();
    let mut errors = 0;
    let mut failed = None;
    // A first, cheap pass: the ConfigMaps whose scripts containers may run.
    let config_maps = crate::cli::config_maps::gather_from(paths);
    for_each_document(paths, &mut |doc| {
        let (doc, manifests) = match doc.and_then(|d| input::manifests(&d).map(|m| (d, m))) {
            Ok(read) => read,
            Err(e) => {
                audit.errors.push(e.to_string());
                errors += say(&mut audit);
                return ControlFlow::Continue(());
            }
        };
        if manifests.is_empty() {
            return ControlFlow::Continue(());
        }
        let resolved = images
            .as_deref_mut()
            .map(|i| i.resolve(engine, &manifests, Some(&config_maps)));
        let located = Located::new(&doc);
        for m in &manifests {
            audit.object(
                engine,
                m,
                Some(&located),
                resolved.as_ref(),
                Some(&config_maps),
            );
            let rows = std::mem::take(&mut audit.report);
            if let Err(e) = output.object(&rows) {
                failed = Some(e);
                return ControlFlow::Break(());
            }
        }
        errors += say(&mut audit);
        ControlFlow::Continue(())
    });
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(Counted {
        workloads: audit.workloads,
        errors,
        max: output.max_action(),
    })
}

/// The exit code of an audit: input errors first, then the most severe finding against
/// `--fail-on`.
fn exit_code(errors: bool, fail_on: FailOn, max: Option<Action>) -> ExitCode {
    if errors {
        return ExitCode::from(EXIT_USAGE);
    }
    let threshold = match fail_on {
        FailOn::Deny => Some(Action::Deny),
        FailOn::Warn => Some(Action::Warn),
        FailOn::Never => None,
    };
    match (threshold, max) {
        (Some(t), Some(max)) if max >= t => ExitCode::from(EXIT_FINDINGS),
        _ => ExitCode::from(EXIT_CLEAN),
    }
}

const NO_WORKLOADS: &str = "pidone audit: the input holds no workloads (Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs); pass --allow-empty if that is expected";

pub fn run(args: AuditArgs) -> ExitCode {
    if args.namespace.is_some() && !args.cluster {
        eprintln!("pidone audit: --namespace (-n) only applies with --cluster");
        return ExitCode::from(EXIT_USAGE);
    }
    let paths = if args.cluster {
        Vec::new()
    } else {
        match input::paths_or_stdin(&args.paths) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("pidone audit: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    };
    let Some(engine) = crate::cli::offline_engine("audit", args.config.as_ref()) else {
        return ExitCode::from(EXIT_USAGE);
    };
    match args.format.streamed(args.verbose) {
        Some(format) if !args.cluster => run_streamed(&args, engine, paths, format),
        _ => run_whole(&args, engine, paths),
    }
}

/// Files and stdin in the table, JSON and SARIF: written object by object.
fn run_streamed(
    args: &AuditArgs,
    engine: Evaluator,
    paths: Vec<String>,
    format: Streamed,
) -> ExitCode {
    let resolve = args.resolve_images;
    let result = on_big_stack(move || {
        let mut images = None;
        if resolve {
            images = Some(crate::cli::OfflineImages::start("audit", &engine)?);
        }
        let mut output = Output::new(format, std::io::stdout());
        let counted = audit_stream(&engine, &paths, images.as_mut(), &mut output)
            .and_then(|counted| output.finish().map(|()| counted));
        if let Some(images) = images {
            images.finish();
        }
        Some(counted)
    });
    let counted = match result {
        Some(Some(Ok(counted))) => counted,
        // Look-ups that could not start (said on stderr), or stdout closed.
        Some(Some(Err(_)) | None) => return ExitCode::from(EXIT_USAGE),
        None => {
            eprintln!("pidone audit: the analysis thread failed");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let empty = counted.workloads == 0 && counted.errors == 0 && !args.allow_empty;
    if empty {
        eprintln!("{NO_WORKLOADS}");
    }
    exit_code(counted.errors > 0 || empty, args.fail_on, counted.max)
}

/// The cluster, and the report formats (whole documents per namespace): every object is read
/// first.
fn run_whole(args: &AuditArgs, engine: Evaluator, paths: Vec<String>) -> ExitCode {
    let reports_api = args.format.reports_api();
    let mut read_errors = Vec::new();
    let mut read_warnings = Vec::new();
    let manifests = if args.cluster {
        match crate::cli::cluster::read_cluster(args.namespace.as_deref(), reports_api.is_some()) {
            Ok(read) => {
                read_warnings = read.warnings;
                read.manifests
            }
            Err(e) => {
                eprintln!("pidone audit: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    } else {
        let mut all = Vec::new();
        for_each_document(&paths, &mut |doc| {
            match doc.and_then(|d| input::manifests(&d)) {
                Ok(mut m) => all.append(&mut m),
                Err(e) => read_errors.push(e.to_string()),
            }
            ControlFlow::Continue(())
        });
        all
    };
    let session = if args.resolve_images {
        let Some(session) = crate::cli::OfflineImages::start("audit", &engine) else {
            return ExitCode::from(EXIT_USAGE);
        };
        Some(session)
    } else {
        None
    };
    let result = on_big_stack(move || {
        let mut audit = Audit {
            errors: read_errors,
            warnings: read_warnings,
            ..Audit::default()
        };
        let config_maps = crate::cli::config_maps::gather(&manifests);
        // On this thread: which files the launches run is an analysis of their scripts.
        let images = session.map(|mut session| {
            let images = session.resolve(&engine, &manifests, Some(&config_maps));
            session.finish();
            images
        });
        for m in &manifests {
            audit.object(&engine, m, None, images.as_ref(), Some(&config_maps));
        }
        let reports = reports_api.map(|api| {
            crate::cli::cluster::reports_yaml(
                api,
                &engine,
                &manifests,
                images.as_ref().map(|i| &i.configs),
                images.as_ref().map(|i| &i.files),
                Some(&config_maps),
            )
        });
        (audit, reports)
    });
    let Some((audit, reports)) = result else {
        eprintln!("pidone audit: the analysis thread failed");
        return ExitCode::from(EXIT_USAGE);
    };
    for w in &audit.warnings {
        eprintln!("pidone audit: warning: {w}");
    }
    for e in &audit.errors {
        eprintln!("pidone audit: {e}");
    }
    let empty =
        !args.cluster && audit.workloads == 0 && audit.errors.is_empty() && !args.allow_empty;
    if empty {
        eprintln!("{NO_WORKLOADS}");
    }
    let report = &audit.report;
    let text = match args.format {
        Format::Table => table::render(report, args.verbose),
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Format::Sarif => {
            serde_json::to_string_pretty(&sarif::render(report)).unwrap_or_default() + "\n"
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
    exit_code(
        !audit.errors.is_empty() || empty,
        args.fail_on,
        report.max_action(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_formats_are_not_streamed() {
        assert_eq!(Format::PolicyReport.streamed(false), None);
        assert_eq!(Format::OpenReport.streamed(true), None);
        assert_eq!(
            Format::Table.streamed(true),
            Some(Streamed::Table { verbose: true })
        );
    }
}
