//! Plans that only insert `exec` into scripts (most plans), made on the extracted workload:
//! each round's scripts replace their slots in a copy of the workload, which the round's
//! re-check evaluates as it is (the object is neither edited nor extracted again), and the
//! patch replaces each edited `command` or `args` with its final words.

use super::INIT_PATH;
use super::plan::{
    ExecInsertion, FindingsByContainer, INIT_FIXES, MAX_ROUNDS, MutationKind, MutationPlan, Round,
    Start, annotate, dedup_in_order, exec_insertion, index_of, record,
};
use crate::engine::config::Action;
use crate::engine::evaluate::{Earlier, EvalContext, Evaluation, Words};
use crate::engine::lent::Lent;
use crate::engine::rules::RuleId;
use crate::engine::script_verdicts::ScriptKey;
use crate::engine::workload::{ContainerSpec, Section, Workload};
use json_patch::jsonptr::PointerBuf;
use json_patch::{PatchOperation, ReplaceOperation};
use serde_json::Value;
use std::borrow::Cow;
use std::cell::OnceCell;

/// The plan made on `w`, the workload of `object`, when every round only inserts `exec` into
/// scripts; `None` when a round would reshape the pod instead (the caller plans on a copy of
/// the object).
pub(super) fn plan(
    start: Start<'_>,
    object: &Value,
    w: &Workload<'_>,
    spec_path: &str,
) -> Option<MutationPlan> {
    let Start {
        engine,
        analyzer,
        ctx,
        first,
    } = start;
    // Re-checks steer the next round and are never shown: not worded.
    let recheck_ctx = EvalContext {
        words: Words::None,
        ..ctx.clone()
    };
    let mut out = MutationPlan::default();
    // Each round's scripts, kept for the edited workloads to borrow.
    let scripts: [OnceCell<Vec<String>>; MAX_ROUNDS] = Default::default();
    // Borrows the original's lists; only the fields edited below are copied.
    let mut current = w.view();
    let mut edited: Vec<(usize, &'static str)> = Vec::new();
    let mut eval = Cow::Borrowed(first);
    for written in &scripts {
        let mut edits = Vec::new();
        match round(&current, &eval, &mut out, &mut edits) {
            Round::Unchanged => break,
            Round::Reshapes => return None,
            Round::Changed => {}
        }
        let mut expected = Vec::new();
        let mut at = Vec::with_capacity(edits.len());
        let mut texts = Vec::with_capacity(edits.len());
        for (position, e) in edits {
            // The kubelet expands `$(VAR)` before the shell runs: such a script is run (and
            // keyed) as expanded, which the re-check finds by itself.
            if !e.script.contains("$(") {
                expected.push(ScriptKey {
                    dialect: e.dialect,
                    script: e.script.clone(),
                });
            }
            at.push((position, e.key, e.slot));
            texts.push(e.script);
        }
        let texts = written.get_or_init(|| texts);
        // The containers this round leaves as they were: the re-check keeps their launches.
        let mut unchanged = vec![true; current.containers.len()];
        for (&(position, key, slot), text) in at.iter().zip(texts) {
            // The edited field becomes the copy's own (a view borrows it from the original).
            if let Some(field) = current
                .containers
                .get_mut(position)
                .and_then(|c| field_mut(c, key))
                && slot < field.len()
            {
                let mut words = (**field).clone();
                if let Some(word) = words.get_mut(slot) {
                    *word = text;
                }
                *field = Lent::Owned(words);
                edited.push((position, key));
                if let Some(u) = unchanged.get_mut(position) {
                    *u = false;
                }
            }
        }
        let earlier = Earlier {
            evaluation: &eval,
            unchanged: &unchanged,
        };
        let next = crate::resolve::evaluate_workload_expecting(
            engine,
            &current,
            &recheck_ctx,
            analyzer,
            expected,
            Some(earlier),
        );
        out.env_read |= next.env_read;
        eval = Cow::Owned(next);
    }
    dedup_in_order(&mut out.mutations);
    dedup_in_order(&mut out.warnings);
    // Containers in the order their list's diff takes them, fields in the order of their
    // names (as a diff of the containers would write them).
    let key_of = |&(position, key): &(usize, &'static str)| {
        let c = w.containers.get(position);
        c.map(|c| (c.section == Section::Containers, c.index, key))
    };
    edited.sort_by_key(key_of);
    edited.dedup();
    for (position, key) in edited {
        let (Some(before), Some(after)) =
            (w.containers.get(position), current.containers.get(position))
        else {
            return None;
        };
        let (Some(old), Some(new)) = (field(before, key), field(after, key)) else {
            return None;
        };
        if old != new {
            // `…/spec/containers/0/command`: the section, the index and the field need no
            // escape in a JSON Pointer; written at once, then checked as a pointer.
            let (section, index) = (after.section.as_str(), after.index.to_string());
            let mut text = String::with_capacity(
                spec_path.len() + section.len() + index.len() + key.len() + 3,
            );
            for token in [spec_path, "/", section, "/", &index, "/", key] {
                text.push_str(token);
            }
            let path = PointerBuf::parse(text).ok()?;
            out.patch.push(PatchOperation::Replace(ReplaceOperation {
                path,
                value: Value::Array(new.iter().map(|&w| Value::String(w.into())).collect()),
            }));
        }
    }
    annotate(object, first.template_pointer, &mut out);
    out.on_workload = true;
    Some(out)
}

/// One round: the `exec` insertions `eval` asks for, in `edits` (and recorded in `out`);
/// [`Round::Reshapes`] when it asks for any other fix.
fn round(
    w: &Workload<'_>,
    eval: &Evaluation,
    out: &mut MutationPlan,
    edits: &mut Vec<(usize, ExecInsertion)>,
) -> Round {
    // Nothing to fix and nothing under the init: no edit below would apply.
    if !eval.inject_init
        && !eval.findings.iter().any(|f| f.action == Action::Mutate)
        && !w.containers.iter().any(runs_under_init)
    {
        return Round::Unchanged;
    }
    let mut reshapes = false;
    let by_container = FindingsByContainer::new(&eval.findings);
    for report in &eval.containers {
        let Some(index) = index_of(report) else {
            continue;
        };
        let mine = |rule: RuleId| by_container.get(&report.pointer, rule);
        if let Some(insertion) = exec_insertion(report, mine(RuleId::ShellNoExec))
            && let Some(position) = w
                .containers
                .iter()
                .position(|c| c.section == report.section && c.index == index)
            && w.containers
                .get(position)
                .and_then(|c| field(c, insertion.key))
                .is_some_and(|words| insertion.slot < words.len())
        {
            edits.push((position, insertion));
            record(out, MutationKind::Exec, &report.container);
        }
        // Any other fix moves a container or adds the init: a plan on a copy of the object.
        let moves = mine(RuleId::SideAgent)
            .is_some_and(|f| f.action == Action::Mutate && report.section == Section::Containers);
        let exec_unfixable = mine(RuleId::ShellNoExec).filter(|f| f.fallback.is_some());
        let wraps = eval.inject_init
            && INIT_FIXES
                .iter()
                .find_map(|r| mine(*r))
                .or(exec_unfixable)
                .is_some();
        reshapes |= moves || wraps;
    }
    // A launch already under the init whose installer or volume is missing gets them (an
    // insertion never writes a command's first word, which says whether it runs under it).
    let uses_init = w.containers.iter().any(runs_under_init);
    let has_installer = w
        .containers
        .iter()
        .any(|c| c.section == Section::InitContainers && c.name == super::INIT_NAME);
    let has_volume = w.volumes.iter().any(|v| v.name == super::INIT_NAME);
    if reshapes || (uses_init && (!has_installer || !has_volume)) {
        return Round::Reshapes;
    }
    if edits.is_empty() {
        Round::Unchanged
    } else {
        Round::Changed
    }
}

/// Whether a container's command starts with pidone-init.
fn runs_under_init(c: &ContainerSpec<'_>) -> bool {
    c.command.as_ref().and_then(|words| words.first()) == Some(&INIT_PATH)
}

fn field<'c, 'a>(c: &'c ContainerSpec<'a>, key: &str) -> Option<&'c [&'a str]> {
    match key {
        "command" => c.command.as_deref().map(Vec::as_slice),
        "args" => c.args.as_deref().map(Vec::as_slice),
        _ => None,
    }
}

fn field_mut<'c, 'a>(
    c: &'c mut ContainerSpec<'a>,
    key: &str,
) -> Option<&'c mut Lent<'a, Vec<&'a str>>> {
    match key {
        "command" => c.command.as_mut(),
        "args" => c.args.as_mut(),
        _ => None,
    }
}
