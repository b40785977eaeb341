//! `pidone fix`: the manifests as enforce mode would admit them, edited where they are written.
//!
//! The engine's JSON Patch says what changes; `crate::edit` makes that change in the source
//! text and nothing else, so comments, key order, quoting, flow style, anchors and YAML 1.1
//! scalars (`defaultMode: 0755`) survive, and the result can be committed. Files are read one
//! document at a time.
//!
//! Exit codes: 0 nothing left to fix; 1 something enforce mode would still deny, or a fix
//! that could not be made; 2 usage or input errors.

use crate::cli::audit::{EXIT_FINDINGS, EXIT_USAGE, on_big_stack};
use crate::cli::diff::FileDiff;
use crate::cli::input::{self, Document};
use crate::edit;
use crate::engine::config::Action;
use crate::engine::evaluate::{EvalContext, ImageConfig};
use crate::engine::mounted_scripts::ConfigMaps;
use crate::mutate;
use crate::resolve::Evaluator;
use clap::Args;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct FixArgs {
    /// Manifest files or directories (recursive: *.yaml, *.yml, *.json); `-` for stdin.
    /// Without a path stdin is read, unless it is a terminal.
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// pidone configuration file.
    #[arg(long, env = "PIDONE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print a unified diff of the files (`git apply` and `patch -p1` take it) instead of the
    /// fixed manifests; it changes exactly what --write would.
    #[arg(long, conflicts_with = "write")]
    pub diff: bool,
    /// Edit the files in place, each replaced atomically; files with nothing to fix are not
    /// touched.
    #[arg(long)]
    pub write: bool,
    /// Look up ENTRYPOINT and CMD in the registries for containers without a `command`
    /// (`images` settings of the config; cache in $XDG_CACHE_HOME/pidone/images.json).
    #[arg(long)]
    pub resolve_images: bool,
}

/// One object fixed: the new object, what changed, what enforce mode would still deny, and
/// the fixes it would still make but could not.
pub struct Fixed {
    pub object: Value,
    pub plan: mutate::MutationPlan,
    pub denials: Vec<String>,
    pub unfixed: Vec<String>,
}

/// Applies enforce mode's mutations to one object.
pub fn fix_object(
    engine: &Evaluator,
    object: &Value,
    images: Option<&HashMap<String, ImageConfig>>,
) -> Result<Fixed, String> {
    fix_object_with(engine, object, images, None, None)
}

/// [`fix_object`] with the input's ConfigMaps, so scripts run from ConfigMap volumes are read.
pub fn fix_object_with(
    engine: &Evaluator,
    object: &Value,
    images: Option<&HashMap<String, ImageConfig>>,
    image_files: Option<&crate::engine::image_files::ImageFiles>,
    config_maps: Option<&ConfigMaps>,
) -> Result<Fixed, String> {
    let ctx = EvalContext {
        images,
        config_maps,
        image_files,
        // Offline there is no cluster to ask: `auto` counts as supported.
        native_sidecars: crate::cluster::offline(engine.config().native_sidecars),
        ..Default::default()
    };
    let read = |e: crate::engine::workload::WorkloadError| crate::cli::audit::workload_error(&e).1;
    let Some(eval) = engine.evaluate(object, &ctx).map_err(read)? else {
        return Ok(Fixed {
            object: object.clone(),
            plan: mutate::MutationPlan::default(),
            denials: Vec::new(),
            unfixed: Vec::new(),
        });
    };
    let plan = crate::mutate::plan(engine.engine(), engine.analyzer(), object, &ctx, &eval);
    let mut fixed = object.clone();
    if !plan.is_empty() {
        json_patch::patch(&mut fixed, &plan.patch).map_err(|e| e.to_string())?;
    }
    // What is still denied after the fixes (mutating webhooks run before validating ones).
    let (denials, unfixed) = match engine.evaluate(&fixed, &ctx).map_err(read)? {
        Some(after) => {
            let list = |action: Action| {
                after
                    .findings
                    .iter()
                    .filter(|f| f.action == action)
                    .map(|f| format!("{}: {}", f.rule, f.message))
                    .collect::<Vec<_>>()
            };
            (list(Action::Deny), list(Action::Mutate))
        }
        None => (Vec::new(), Vec::new()),
    };
    Ok(Fixed {
        object: fixed,
        plan,
        denials,
        unfixed,
    })
}

/// What became of one document.
struct DocFix {
    /// The new text, when something changed.
    text: Option<String>,
    /// Input errors (exit 2).
    errors: Vec<String>,
    /// What enforce mode would still deny or fix but pidone could not (exit 1).
    left: Vec<String>,
}

fn where_(doc: &Document, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}: document {}, line {l}", doc.file, doc.index),
        None => format!("{}: document {}", doc.file, doc.index),
    }
}

fn fix_document(
    engine: &Evaluator,
    doc: &Document,
    images: Option<&mut crate::cli::OfflineImages>,
    config_maps: &ConfigMaps,
) -> DocFix {
    let mut out = DocFix {
        text: None,
        errors: Vec::new(),
        left: Vec::new(),
    };
    let manifests = match input::manifests(doc) {
        Ok(m) => m,
        Err(e) => {
            out.errors.push(e.to_string());
            return out;
        }
    };
    if manifests.is_empty() {
        return out;
    }
    let images = images.map(|i| i.resolve(engine, &manifests, Some(config_maps)));
    let at = where_(doc, Some(input::content_line(doc)));
    let mut changed: Vec<(String, Value, Vec<String>)> = Vec::new();
    for m in manifests {
        let name = crate::cli::audit::object_name(&m.object);
        match fix_object_with(
            engine,
            &m.object,
            images.as_ref().map(|i| &i.configs),
            images.as_ref().map(|i| &i.files),
            Some(config_maps),
        ) {
            Ok(fixed) => {
                for w in &fixed.plan.warnings {
                    out.left.push(format!("{at}: {name}: {w}"));
                }
                for d in &fixed.denials {
                    out.left
                        .push(format!("{at}: {name}: enforce mode would still deny: {d}"));
                }
                for u in &fixed.unfixed {
                    out.left
                        .push(format!("{at}: {name}: pidone could not fix: {u}"));
                }
                if !fixed.plan.is_empty() {
                    let paths = fixed
                        .plan
                        .patch
                        .iter()
                        .map(|op| format!("{}{}", m.pointer, op.path()))
                        .collect();
                    changed.push((m.pointer, fixed.object, paths));
                }
            }
            Err(e) => out.errors.push(format!("{at}: {name}: {e}")),
        }
    }
    if changed.is_empty() {
        return out;
    }
    // The whole document as it should read: the fixed objects in their places.
    let Ok(mut target) = input::read_value(&doc.text) else {
        return out;
    };
    let mut pointers = Vec::new();
    for (pointer, object, paths) in changed {
        match target.pointer_mut(&pointer) {
            Some(slot) => *slot = object,
            None => continue,
        }
        pointers.extend(paths);
    }
    let read = |text: &str| input::read_value(text).map_err(|(_, message)| message);
    match edit::edit_document(&doc.text, &target, &pointers, read) {
        Ok(text) => out.text = Some(text),
        Err(e) => out.left.push(format!(
            "{at}: pidone could not make its fixes in the text ({e}); the document is left unchanged"
        )),
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Print,
    Write,
    Diff,
}

/// Totals over every file.
#[derive(Default)]
struct Totals {
    errors: usize,
    left: usize,
    files_changed: usize,
}

/// A file replaced atomically: written beside the original, then renamed over it.
struct Replacement {
    temp: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
}

impl Replacement {
    fn create(path: &Path) -> std::io::Result<Self> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("manifest");
        let temp = dir.join(format!(".{base}.pidone-{}.tmp", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        Ok(Replacement {
            temp,
            file: std::io::BufWriter::new(file),
        })
    }

    fn commit(self, path: &Path) -> std::io::Result<()> {
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temp, path)
    }

    fn discard(self) {
        let temp = self.temp.clone();
        drop(self);
        let _ = std::fs::remove_file(temp);
    }
}

fn fix_file(
    engine: &Evaluator,
    path: &Path,
    mode: Mode,
    mut images: Option<&mut crate::cli::OfflineImages>,
    first: bool,
    config_maps: &ConfigMaps,
    totals: &mut Totals,
) {
    let name = path.display().to_string();
    let report = |e: String, totals: &mut Totals, fatal: bool| {
        eprintln!("pidone fix: {e}");
        if fatal {
            totals.errors += 1;
        } else {
            totals.left += 1;
        }
    };
    if mode != Mode::Print && name == "-" {
        report(
            "--write and --diff need files, not stdin".into(),
            totals,
            true,
        );
        return;
    }
    let docs = match input::open(path) {
        Ok(d) => d,
        Err(e) => return report(e.to_string(), totals, true),
    };
    let mut replacement = None;
    if mode == Mode::Write {
        match Replacement::create(path) {
            Ok(r) => replacement = Some(r),
            Err(e) => return report(format!("{name}: cannot write beside it: {e}"), totals, true),
        }
    }
    // --diff: hunks as each document is fixed, printed once the whole file was read.
    let mut diff = (mode == Mode::Diff).then(|| FileDiff::new(&name));
    let mut changed = false;
    let mut failed = false;
    let mut stdout = std::io::stdout().lock();
    let mut first_doc = true;
    for doc in docs {
        let doc = match doc {
            Ok(d) => d,
            Err(e) => {
                failed = true;
                report(e.to_string(), totals, true);
                break;
            }
        };
        let fix = fix_document(engine, &doc, images.as_deref_mut(), config_maps);
        for e in fix.errors {
            report(e, totals, true);
        }
        for l in fix.left {
            report(l, totals, false);
        }
        let text = match &fix.text {
            Some(t) => {
                changed = true;
                t.as_str()
            }
            None => doc.text.as_str(),
        };
        let written = match mode {
            Mode::Print => {
                let mut ok = true;
                if first_doc && !first && !input::starts_with_marker(text) {
                    ok = stdout.write_all(b"---\n").is_ok();
                }
                ok && stdout.write_all(text.as_bytes()).is_ok()
            }
            Mode::Write => replacement
                .as_mut()
                .is_some_and(|r| r.file.write_all(text.as_bytes()).is_ok()),
            Mode::Diff => diff
                .as_mut()
                .is_some_and(|d| d.document(&doc.text, text).is_ok()),
        };
        first_doc = false;
        if !written {
            failed = true;
            report(format!("{name}: cannot write the output"), totals, true);
            break;
        }
    }
    if mode == Mode::Print && !first_doc {
        let _ = stdout.flush();
    }
    drop(stdout);
    match mode {
        Mode::Print => {}
        Mode::Write => {
            let Some(r) = replacement else { return };
            if changed && !failed {
                match r.commit(path) {
                    Ok(()) => totals.files_changed += 1,
                    Err(e) => report(
                        format!("{name}: cannot replace the file: {e}"),
                        totals,
                        true,
                    ),
                }
            } else {
                r.discard();
            }
        }
        Mode::Diff => {
            let Some(diff) = diff else { return };
            if changed && !failed {
                totals.files_changed += 1;
                let mut stdout = std::io::stdout().lock();
                if diff
                    .finish(&mut stdout)
                    .and_then(|_| stdout.flush())
                    .is_err()
                {
                    report("cannot write the diff".into(), totals, true);
                }
            }
        }
    }
}

pub fn run(args: FixArgs) -> ExitCode {
    let paths = match input::paths_or_stdin(&args.paths) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pidone fix: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let Some(engine) = crate::cli::offline_engine("fix", args.config.as_ref()) else {
        return ExitCode::from(EXIT_USAGE);
    };
    let mode = if args.write {
        Mode::Write
    } else if args.diff {
        Mode::Diff
    } else {
        Mode::Print
    };
    let resolve = args.resolve_images;
    let Some(totals) = on_big_stack(move || {
        let mut totals = Totals::default();
        let mut images = None;
        if resolve {
            match crate::cli::OfflineImages::start("fix", &engine) {
                Some(i) => images = Some(i),
                None => {
                    totals.errors += 1;
                    return totals;
                }
            }
        }
        let mut first = true;
        // A first, cheap pass: the ConfigMaps whose scripts containers may run.
        let config_maps = crate::cli::config_maps::gather_from(&paths);
        for path in &paths {
            let files = match input::expand(path) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("pidone fix: {e}");
                    totals.errors += 1;
                    continue;
                }
            };
            for file in files {
                fix_file(
                    &engine,
                    &file,
                    mode,
                    images.as_mut(),
                    first,
                    &config_maps,
                    &mut totals,
                );
                first = false;
            }
        }
        if let Some(images) = images {
            images.finish();
        }
        totals
    }) else {
        eprintln!("pidone fix: the analysis thread failed");
        return ExitCode::from(EXIT_USAGE);
    };
    if mode == Mode::Write {
        eprintln!("pidone fix: {} file(s) changed", totals.files_changed);
    }
    if totals.errors > 0 {
        ExitCode::from(EXIT_USAGE)
    } else if totals.left > 0 {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}
