//! Which fixes apply to an evaluated object, and the patch that makes them.

use super::{INIT_NAME, INIT_PATH, diff, exec_rewrite, init_inject, sidecar};
use crate::engine::Engine;
use crate::engine::argv::ArgvField;
use crate::engine::config::{Action, Config, InitStrategy, SidecarPosition};
use crate::engine::evaluate::{
    ANNOTATION_MUTATIONS, ContainerReport, EvalContext, Evaluation, Finding, Words,
};
use crate::engine::json_pointer;
use crate::engine::rules::RuleId;
use crate::engine::script::Dialect;
use crate::engine::script_verdicts::ScriptKey;
use crate::engine::workload::{Section, Workload};
use crate::resolve::ScriptAnalyzer;
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use serde::Serialize;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MutationKind {
    /// `exec` inserted before the final command.
    Exec,
    /// Moved to `initContainers` with `restartPolicy: Always`.
    Sidecar,
    /// Runs under pidone-init (or the pod shares its process namespace).
    Init,
}

impl MutationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MutationKind::Exec => "exec",
            MutationKind::Sidecar => "sidecar",
            MutationKind::Init => "init",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Mutation {
    pub kind: MutationKind,
    pub container: String,
}

/// The fixes for one object: patch operations (RFC 6902), what they change, and warnings for
/// fixes that could not apply.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MutationPlan {
    pub patch: Vec<PatchOperation>,
    pub mutations: Vec<Mutation>,
    pub warnings: Vec<String>,
    /// A re-check of the edited object read a container's `env` (`Evaluation::env_read`):
    /// planned on an object without its env lists, the plan may not be the real one's.
    pub env_read: bool,
    /// Planned on the workload alone (script slots rewritten): the plan reads of the object
    /// only its template's annotations and the containers' `command` and `args`.
    #[serde(skip)]
    pub on_workload: bool,
}

impl MutationPlan {
    pub fn is_empty(&self) -> bool {
        self.patch.is_empty()
    }

    /// Never hands out a patch that does not apply: applies it to `object` (the object it was
    /// planned on, or a copy; not read again) and, when it fails, drops the patch and its
    /// mutations with a warning.
    pub fn check_on(&mut self, object: &mut Value) {
        if !keep_if_applies(object, &mut self.patch, &mut self.warnings) {
            self.mutations.clear();
        }
    }

    /// `exec:app,sidecar:log-agent,init:app`, the value of `pidone.io/mutations`.
    pub fn summary(&self) -> String {
        let mut out = String::with_capacity(
            self.mutations
                .iter()
                .map(|m| m.kind.as_str().len() + m.container.len() + 2)
                .sum(),
        );
        for (i, m) in self.mutations.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(m.kind.as_str());
            out.push(':');
            out.push_str(&m.container);
        }
        out
    }
}

/// Checks that `patch` applies to `object` ([`super::patch_check::applies`]), on an object
/// no caller reads again (the object the plan was made on, or a copy), which may be left
/// patched or partly patched. A patch that does not apply is dropped with a warning. Whether
/// it applied.
pub fn keep_if_applies(
    object: &mut Value,
    patch: &mut Vec<PatchOperation>,
    warnings: &mut Vec<String>,
) -> bool {
    if patch.is_empty() || super::patch_check::applies(object, patch) {
        return true;
    }
    patch.clear();
    warnings
        .push("pidone computed a patch that does not apply; the object was left unchanged".into());
    false
}

/// Rules whose fix is running the container under an init.
pub(super) const INIT_FIXES: [RuleId; 5] = [
    RuleId::MultiProcess,
    RuleId::ShellResident,
    RuleId::ScriptEntrypoint,
    RuleId::ShellUnparsed,
    RuleId::SignalDeafPid1,
];

/// Whether the plan for `first` may reshape the pod rather than rewrite its scripts: move a
/// side agent to the init containers, or run a container under the init, whose installer and
/// volume it adds (sharing the process namespace sets one field). The first findings only:
/// the edits' re-checks may find more.
pub fn may_reshape(config: &Config, first: &Evaluation) -> bool {
    let mutates = |f: &&Finding| f.action == Action::Mutate;
    let moves_agent = first
        .findings
        .iter()
        .filter(mutates)
        .any(|f| f.rule == RuleId::SideAgent);
    let wraps = first.inject_init
        && config.init_injection.strategy != InitStrategy::ShareProcessNamespace
        && first.findings.iter().any(|f| {
            INIT_FIXES.contains(&f.rule) || (f.rule == RuleId::ShellNoExec && f.fallback.is_some())
        });
    moves_agent || wraps
}

pub(super) fn index_of(report: &ContainerReport) -> Option<usize> {
    report.pointer.rsplit('/').next()?.parse().ok()
}

/// The `exec` insertion a container's `shell-no-exec` finding asks for, when its script can
/// take one.
pub(super) struct ExecInsertion {
    /// The field that holds the script: `command` or `args`.
    pub(super) key: &'static str,
    /// The script's index in it.
    pub(super) slot: usize,
    pub(super) dialect: Dialect,
    /// The script with `exec` inserted.
    pub(super) script: String,
}

pub(super) fn exec_insertion(
    report: &ContainerReport,
    finding: Option<&Finding>,
) -> Option<ExecInsertion> {
    if finding?.action != Action::Mutate {
        return None;
    }
    let shell = report.analysis.shell.as_ref()?;
    Some(ExecInsertion {
        key: slot_key(shell.script_slot.field)?,
        slot: shell.script_slot.index,
        dialect: shell.dialect,
        script: exec_rewrite::insert_exec(&shell.script, &report.analysis.exec_insertions)?,
    })
}

fn slot_key(field: ArgvField) -> Option<&'static str> {
    match field {
        ArgvField::Command => Some("command"),
        ArgvField::Args => Some("args"),
        ArgvField::ImageEntrypoint
        | ArgvField::ImageCmd
        | ArgvField::EnvSplit
        | ArgvField::Handoff => None,
    }
}

/// Plans the mutations enforce mode makes to `object`, starting from its evaluation `first`.
///
/// Fixes can reveal further findings (an exec'd `sleep` is signal-deaf; a moved agent is a
/// long-running sidecar now), so edits repeat on the edited object until nothing changes; the
/// patch is the difference between the original and the final edit. This is what makes a
/// reinvocation on the patched object find nothing to do.
///
/// The patch is checked on a copy of `object` (see [`MutationPlan::check_on`]); a caller that
/// owns the object checks it there with [`plan_unchecked`] instead and saves the copy.
pub fn plan(
    engine: &Engine,
    analyzer: &dyn ScriptAnalyzer,
    object: &Value,
    ctx: &EvalContext<'_>,
    first: &Evaluation,
) -> MutationPlan {
    let mut out = plan_unchecked(engine, analyzer, object, ctx, first);
    if !out.is_empty() {
        out.check_on(&mut object.clone());
    }
    out
}

/// [`plan`] without the check that the patch applies: the caller must run
/// [`MutationPlan::check_on`] before handing the patch out.
///
/// Plans that only insert `exec` into scripts (most) are made on the object's extracted
/// workload (see [`super::script_slots`]); any other edit is planned on a copy of the object.
pub fn plan_unchecked(
    engine: &Engine,
    analyzer: &dyn ScriptAnalyzer,
    object: &Value,
    ctx: &EvalContext<'_>,
    first: &Evaluation,
) -> MutationPlan {
    plan_unchecked_with(engine, analyzer, object, None, ctx, first)
}

/// [`plan_unchecked`] with the workload `workload::extract` gave for `object`, when the caller
/// has it (the object is not extracted again).
pub fn plan_unchecked_with(
    engine: &Engine,
    analyzer: &dyn ScriptAnalyzer,
    object: &Value,
    workload: Option<&Workload<'_>>,
    ctx: &EvalContext<'_>,
    first: &Evaluation,
) -> MutationPlan {
    let Some(start) = Start::unless_exempt(engine, analyzer, ctx, first) else {
        return MutationPlan::default();
    };
    let spec_path = start.spec_path();
    if !may_reshape(engine.config(), first) {
        let extracted;
        let workload = match workload {
            Some(w) => Some(w),
            None => {
                extracted = crate::engine::workload::extract(object).ok().flatten();
                extracted.as_ref()
            }
        };
        if let Some(out) =
            workload.and_then(|w| super::script_slots::plan(start, object, w, &spec_path))
        {
            return out;
        }
    }
    plan_on_copy_at(start, object, &spec_path)
}

/// What a plan starts from.
#[derive(Clone, Copy)]
pub(super) struct Start<'a> {
    pub(super) engine: &'a Engine,
    /// Resolves the scripts the re-checks of the edited object run.
    pub(super) analyzer: &'a dyn ScriptAnalyzer,
    pub(super) ctx: &'a EvalContext<'a>,
    /// The object's evaluation, which the first round of edits starts from.
    pub(super) first: &'a Evaluation,
}

impl<'a> Start<'a> {
    /// `None` for an exempt object: nothing is planned for it.
    fn unless_exempt(
        engine: &'a Engine,
        analyzer: &'a dyn ScriptAnalyzer,
        ctx: &'a EvalContext<'a>,
        first: &'a Evaluation,
    ) -> Option<Start<'a>> {
        (!first.exempt).then_some(Start {
            engine,
            analyzer,
            ctx,
            first,
        })
    }

    /// JSON Pointer of the pod spec the plan edits.
    fn spec_path(&self) -> String {
        format!("{}/spec", self.first.template_pointer)
    }
}

/// Edits `object` round after round, each re-checked, until a round changes nothing (or the
/// edited object cannot be evaluated; at most [`MAX_ROUNDS`] rounds).
fn edit_until_done(
    Start {
        engine,
        analyzer,
        ctx,
        first,
    }: Start<'_>,
    object: &mut Value,
    spec_path: &str,
    out: &mut MutationPlan,
) {
    // The first round edits on the caller's evaluation; later ones on their re-checks, whose
    // findings steer the edits and are never shown: not worded.
    let recheck_ctx = EvalContext {
        words: Words::None,
        ..ctx.clone()
    };
    let mut eval = Cow::Borrowed(first);
    for _ in 0..MAX_ROUNDS {
        let Some(spec) = json_pointer::get_mut(object, spec_path) else {
            break;
        };
        let mut written = Vec::new();
        if edit_round(spec, &eval, engine.config(), out, &mut written) == Round::Unchanged {
            break;
        }
        match crate::resolve::evaluate_expecting(engine, object, &recheck_ctx, analyzer, written) {
            Ok(Some(next)) => {
                out.env_read |= next.env_read;
                eval = Cow::Owned(next);
            }
            _ => break,
        }
    }
}

/// [`plan_unchecked`] made on a copy of `object` whatever it edits: the plan of the general
/// path alone, which the in-place one must match.
pub fn plan_on_copy(
    engine: &Engine,
    analyzer: &dyn ScriptAnalyzer,
    object: &Value,
    ctx: &EvalContext<'_>,
    first: &Evaluation,
) -> MutationPlan {
    match Start::unless_exempt(engine, analyzer, ctx, first) {
        Some(start) => plan_on_copy_at(start, object, &start.spec_path()),
        None => MutationPlan::default(),
    }
}

/// The plan made on a copy of `object`, for plans that may reshape the pod: the patch is the
/// difference between the original spec and the copy's.
fn plan_on_copy_at(start: Start<'_>, object: &Value, spec_path: &str) -> MutationPlan {
    let mut out = MutationPlan::default();
    let tpl = start.first.template_pointer;
    let Some(original_spec) = json_pointer::get(object, spec_path) else {
        return out;
    };
    let mut current = object.clone();
    edit_until_done(start, &mut current, spec_path, &mut out);
    dedup_in_order(&mut out.mutations);
    dedup_in_order(&mut out.warnings);
    let Some(spec) = json_pointer::get(&current, spec_path) else {
        return MutationPlan::default();
    };
    // The template pointers are the engine's constants: a parse failure is a bug, reported
    // rather than patched around.
    let Ok(spec_ptr) = PointerBuf::parse(spec_path) else {
        out.warnings
            .push(format!("pidone cannot address the pod template at `{tpl}`"));
        out.mutations.clear();
        return out;
    };
    fn list<'v>(spec: &'v Value, key: &str) -> Option<&'v [Value]> {
        spec.get(key).and_then(Value::as_array).map(Vec::as_slice)
    }
    for key in ["initContainers", "containers"] {
        let mut path = spec_ptr.clone();
        path.push_back(key);
        diff::container_list(
            &path,
            list(original_spec, key),
            list(spec, key).unwrap_or_default(),
            &mut out.patch,
        );
    }
    for key in ["volumes", "shareProcessNamespace"] {
        if let Some(value) = spec.get(key)
            && original_spec.get(key) != Some(value)
        {
            // `add` of the whole value: applying the patch twice changes nothing.
            let mut path = spec_ptr.clone();
            path.push_back(key);
            out.patch.push(PatchOperation::Add(AddOperation {
                path,
                value: value.clone(),
            }));
        }
    }
    annotate(object, tpl, &mut out);
    out
}

/// Ends a plan: a plan that changes nothing records no mutations; one that does writes them
/// into `pidone.io/mutations` after those of earlier reinvocations.
pub(super) fn annotate(object: &Value, tpl: &str, out: &mut MutationPlan) {
    if out.patch.is_empty() {
        out.mutations.clear();
        return;
    }
    let metadata_path = format!("{tpl}/metadata");
    let Ok(metadata_ptr) = PointerBuf::parse(metadata_path.as_str()) else {
        out.warnings
            .push(format!("pidone cannot address the pod template at `{tpl}`"));
        out.patch.clear();
        out.mutations.clear();
        return;
    };
    let metadata = json_pointer::get(object, &metadata_path);
    let previous = metadata
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(ANNOTATION_MUTATIONS))
        .and_then(Value::as_str)
        .unwrap_or("");
    let summary = out.summary();
    let value = if previous.is_empty() {
        summary
    } else {
        format!("{previous},{summary}")
    };
    diff::set_annotation(
        &metadata_ptr,
        metadata,
        ANNOTATION_MUTATIONS,
        &value,
        &mut out.patch,
    );
}

// `record` and `warn` append; `dedup_in_order` drops the repeats once, at the end of the plan
// (a membership test per append would be quadratic in the number of containers).
pub(super) fn record(out: &mut MutationPlan, kind: MutationKind, container: &str) {
    out.mutations.push(Mutation {
        kind,
        container: container.to_string(),
    });
}

fn warn(out: &mut MutationPlan, text: String) {
    out.warnings.push(text);
}

/// Keeps the first of equal items, in order.
pub(super) fn dedup_in_order<T: Eq + std::hash::Hash + Clone>(items: &mut Vec<T>) {
    let mut seen = HashSet::with_capacity(items.len());
    items.retain(|item| seen.insert(item.clone()));
}

/// Most rounds of edits (each re-checked) a plan makes.
pub(super) const MAX_ROUNDS: usize = 4;

/// What a round of edits did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Round {
    Unchanged,
    Changed,
    /// Only in a round that replaces script slots only (see [`super::script_slots`]): it
    /// would have reshaped the pod (and did not).
    Reshapes,
}

/// One round of edits on the pod spec.
/// The scripts the round wrote (an inserted `exec`) are added to `written`: the re-check runs
/// them.
fn edit_round(
    spec: &mut Value,
    eval: &Evaluation,
    config: &Config,
    out: &mut MutationPlan,
    written: &mut Vec<ScriptKey>,
) -> Round {
    // Nothing to fix and nothing under the init: no edit below would apply.
    if !eval.inject_init && !eval.findings.iter().any(|f| f.action == Action::Mutate) {
        let lists = ["containers", "initContainers"].map(|key| {
            spec.get(key)
                .and_then(Value::as_array)
                .is_some_and(|list| list.iter().any(runs_under_init))
        });
        if lists == [false, false] {
            return Round::Unchanged;
        }
    }
    // The lists are taken out of the spec while edited and put back at the end; `None` where
    // the spec has no such list (or something else than a list: left alone).
    let mut take = |key: &str| -> Option<Vec<Value>> {
        match spec.get_mut(key) {
            Some(Value::Array(list)) => Some(std::mem::take(list)),
            _ => None,
        }
    };
    let had_containers = take("containers");
    let had_inits = take("initContainers");
    let containers_present = had_containers.is_some();
    let inits_present = had_inits.is_some();
    let mut containers = had_containers.unwrap_or_default();
    let mut inits = had_inits.unwrap_or_default();
    // Set by every edit below that changes a list.
    let mut edited = false;

    let mut moved: HashSet<usize> = HashSet::new();
    let mut wraps: Vec<(Section, usize, bool, String)> = Vec::new();
    let mut share_pid_ns = false;

    let by_container = FindingsByContainer::new(&eval.findings);
    for report in &eval.containers {
        let Some(index) = index_of(report) else {
            continue;
        };
        let mine = |rule: RuleId| by_container.get(&report.pointer, rule);

        if let Some(insertion) = exec_insertion(report, mine(RuleId::ShellNoExec)) {
            let target = match report.section {
                Section::Containers => containers.get_mut(index),
                Section::InitContainers => inits.get_mut(index),
            };
            if let Some(slot) = target
                .and_then(|c| c.get_mut(insertion.key))
                .and_then(|v| v.get_mut(insertion.slot))
            {
                // The kubelet expands `$(VAR)` before the shell runs: such a script is run
                // (and keyed) as expanded, which the re-check finds by itself.
                if !insertion.script.contains("$(") {
                    written.push(ScriptKey {
                        dialect: insertion.dialect,
                        script: insertion.script.clone(),
                    });
                }
                *slot = Value::String(insertion.script);
                edited = true;
                record(out, MutationKind::Exec, &report.container);
            }
        }

        if let Some(f) = mine(RuleId::SideAgent)
            && f.action == Action::Mutate
            && report.section == Section::Containers
        {
            moved.insert(index);
            record(out, MutationKind::Sidecar, &report.container);
            continue;
        }

        // A shell-no-exec whose exec fix cannot apply (a signal-deaf final program, a script
        // pidone does not rewrite) is fixed by the init instead, so no finding is traded for
        // another.
        let exec_unfixable = mine(RuleId::ShellNoExec).filter(|f| f.fallback.is_some());
        if eval.inject_init
            && let Some(f) = INIT_FIXES.iter().find_map(|r| mine(*r)).or(exec_unfixable)
        {
            if config.init_injection.strategy == InitStrategy::ShareProcessNamespace {
                share_pid_ns = true;
                record(out, MutationKind::Init, &report.container);
                continue;
            }
            if config.init_injection.image.is_empty() {
                warn(
                    out,
                    format!(
                        "pidone cannot run container {:?} under an init: initInjection.image is not set",
                        report.container
                    ),
                );
                continue;
            }
            // A launch from the image: pin the resolved ENTRYPOINT (and CMD, when the pod
            // gave no args) into the pod, so that there is a command to prefix.
            if let (Some(digest), Some((entrypoint, cmd))) =
                (&report.analysis.from_image, &report.analysis.image_argv)
                && !entrypoint.is_empty()
                && let Some(Value::Object(c)) = match report.section {
                    Section::Containers => containers.get_mut(index),
                    Section::InitContainers => inits.get_mut(index),
                }
            {
                c.insert("command".into(), json!(entrypoint));
                if !c.contains_key("args") && !cmd.is_empty() {
                    c.insert("args".into(), json!(cmd));
                }
                edited = true;
                record(
                    out,
                    MutationKind::Init,
                    &format!("{}@{digest}", report.container),
                );
            }
            let has_command = containers_of(report.section, &containers, &inits, index)
                .and_then(|c| c.get("command"))
                .and_then(Value::as_array)
                .is_some_and(|c| !c.is_empty());
            if !has_command {
                warn(
                    out,
                    format!(
                        "pidone cannot run container {:?} under an init: it has no command (the image's ENTRYPOINT runs); set command explicitly",
                        report.container
                    ),
                );
                continue;
            }
            // Child-only forwarding would leave what a shell started without SIGTERM: only a
            // lone signal-deaf program is the init's own child.
            wraps.push((
                report.section,
                index,
                f.rule != RuleId::SignalDeafPid1,
                report.container.clone(),
            ));
        }
    }

    for (section, index, group, name) in &wraps {
        let target = match section {
            Section::Containers => containers.get_mut(*index),
            Section::InitContainers => inits.get_mut(*index),
        };
        if let Some(c) = target
            && init_inject::wrap(c, *group)
        {
            edited = true;
            record(out, MutationKind::Init, name);
        }
    }

    // Side agents leave `containers`; the installer goes first among init containers.
    if !moved.is_empty() {
        edited = true;
        let mut sidecars = Vec::new();
        let mut kept = Vec::with_capacity(containers.len());
        for (i, c) in containers.into_iter().enumerate() {
            if moved.contains(&i) {
                sidecars.push(sidecar::as_native_sidecar(&c));
            } else {
                kept.push(c);
            }
        }
        containers = kept;
        let installer = (inits
            .first()
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            == Some(INIT_NAME))
        .then(|| inits.remove(0));
        inits = match config.side_agents.position {
            SidecarPosition::First => installer.into_iter().chain(sidecars).chain(inits).collect(),
            SidecarPosition::Last => installer.into_iter().chain(inits).chain(sidecars).collect(),
        };
    }
    let uses_init = containers.iter().chain(inits.iter()).any(runs_under_init);
    let has_installer = inits.iter().any(|c| named(c, INIT_NAME));
    if uses_init && !has_installer {
        inits.insert(0, init_inject::installer(&config.init_injection.image));
        edited = true;
    }

    let mut changed = edited;
    if !put_back(spec, containers, inits, containers_present, inits_present) {
        return Round::Unchanged;
    }
    let Some(obj) = spec.as_object_mut() else {
        return Round::Unchanged;
    };
    if uses_init {
        let volumes = obj
            .entry("volumes")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(v) = volumes
            && !v
                .iter()
                .any(|x| x.get("name").and_then(Value::as_str) == Some(INIT_NAME))
        {
            v.push(init_inject::volume());
            changed = true;
        }
    }
    if share_pid_ns && obj.get("shareProcessNamespace") != Some(&Value::Bool(true)) {
        obj.insert("shareProcessNamespace".into(), Value::Bool(true));
        changed = true;
    }
    if changed {
        Round::Changed
    } else {
        Round::Unchanged
    }
}

/// Puts the container lists an edit round took out back into the spec; a list that was
/// absent is added only when it has members now. False when the spec is not an object.
fn put_back(
    spec: &mut Value,
    containers: Vec<Value>,
    inits: Vec<Value>,
    containers_present: bool,
    inits_present: bool,
) -> bool {
    let Some(obj) = spec.as_object_mut() else {
        return false;
    };
    if containers_present || !containers.is_empty() {
        obj.insert("containers".into(), Value::Array(containers));
    }
    if inits_present || !inits.is_empty() {
        obj.insert("initContainers".into(), Value::Array(inits));
    }
    true
}

/// Whether a container's command starts with pidone-init.
fn runs_under_init(container: &Value) -> bool {
    container
        .get("command")
        .and_then(|command| command.get(0))
        .and_then(Value::as_str)
        == Some(INIT_PATH)
}

/// Each container's findings by rule; the first of a kind wins, as a scan finds it. Most
/// pods have a few findings, scanned; a pod of thousands of containers gets a hash map, so
/// that the lookups stay linear in its size.
pub(super) enum FindingsByContainer<'e> {
    Few(&'e [Finding]),
    Many(HashMap<(&'e str, RuleId), &'e Finding>),
}

impl<'e> FindingsByContainer<'e> {
    const FEW: usize = 16;

    pub(super) fn new(findings: &'e [Finding]) -> Self {
        if findings.len() <= Self::FEW {
            return Self::Few(findings);
        }
        let mut map = HashMap::with_capacity(findings.len());
        for f in findings {
            map.entry((f.pointer.as_str(), f.rule)).or_insert(f);
        }
        Self::Many(map)
    }

    pub(super) fn get(&self, pointer: &str, rule: RuleId) -> Option<&'e Finding> {
        match self {
            Self::Few(findings) => findings
                .iter()
                .find(|f| f.rule == rule && f.pointer == pointer),
            Self::Many(map) => map.get(&(pointer, rule)).copied(),
        }
    }
}

fn named(value: &Value, name: &str) -> bool {
    value.get("name").and_then(Value::as_str) == Some(name)
}

fn containers_of<'a>(
    section: Section,
    containers: &'a [Value],
    inits: &'a [Value],
    index: usize,
) -> Option<&'a Value> {
    match section {
        Section::Containers => containers.get(index),
        Section::InitContainers => inits.get(index),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_lists_kind_and_container_in_order() {
        let mut plan = MutationPlan::default();
        assert_eq!(plan.summary(), "");
        record(&mut plan, MutationKind::Exec, "app");
        assert_eq!(plan.summary(), "exec:app");
        record(&mut plan, MutationKind::Sidecar, "log-agent");
        record(&mut plan, MutationKind::Init, "app");
        assert_eq!(plan.summary(), "exec:app,sidecar:log-agent,init:app");
    }

    fn finding(pointer: usize, rule: RuleId, message: &str) -> Finding {
        Finding::for_test(
            &format!("c{pointer}"),
            &format!("/spec/containers/{pointer}"),
            rule,
            Action::Mutate,
            message,
        )
    }

    #[test]
    fn findings_are_looked_up_as_a_scan_finds_them_however_many() {
        let rules = [RuleId::ShellNoExec, RuleId::SideAgent, RuleId::MultiProcess];
        for count in [
            0,
            3,
            FindingsByContainer::FEW,
            FindingsByContainer::FEW + 1,
            60,
        ] {
            // Repeats of one container and rule: the first is the one found.
            let findings: Vec<Finding> = (0..count)
                .map(|i| finding(i % 7, rules[i % rules.len()], &format!("#{i}")))
                .collect();
            let index = FindingsByContainer::new(&findings);
            assert_eq!(
                matches!(index, FindingsByContainer::Many(_)),
                count > FindingsByContainer::FEW
            );
            for container in 0..8 {
                let pointer = format!("/spec/containers/{container}");
                for rule in rules.into_iter().chain([RuleId::SignalDeafPid1]) {
                    let scanned = findings
                        .iter()
                        .find(|f| f.pointer == pointer && f.rule == rule)
                        .map(|f| &f.message);
                    let found = index.get(&pointer, rule).map(|f| &f.message);
                    assert_eq!(found, scanned, "{count} findings, {pointer}, {rule:?}");
                }
            }
        }
    }
}
