//! The seam between the server and the mutation planner.
//!
//! The server asks a [`Planner`] for the JSON Patch that would fix an evaluated object, on the
//! mutate path only, in enforce mode (to send it) and in audit mode (to show it). An empty
//! patch means "no automatic fix": the mutate path then allows with warnings. Planners work
//! on the raw JSON of the object (docs/design.md section 5) and must be idempotent: an object they
//! already mutated gets an empty patch.

use crate::engine::config::Action;
use crate::engine::evaluate::{ANNOTATION_MUTATIONS, EvalContext};
use crate::engine::workload::Workload;
use crate::engine::{Engine, Evaluation};
use crate::resolve::ScriptAnalyzer;
use crate::server::object::{Member, Pruned};
use json_patch::PatchOperation;
use json_patch::jsonptr::Pointer;
use serde_json::Value;

/// A planner's answer: the patch, and notes on fixes it could not apply.
#[derive(Debug, Default, Clone)]
pub struct Planned {
    pub patch: Vec<PatchOperation>,
    pub notes: Vec<String>,
    /// The planner's re-checks read a container's `env` (see `MutationPlan::env_read`).
    pub env_read: bool,
    /// The plan read of the object only what a script-only plan reads (see
    /// `MutationPlan::on_workload`).
    pub on_workload: bool,
}

/// Computes the patch for an evaluation. Must not panic; called on the request path.
pub trait Planner: Send + Sync {
    /// Whether [`Planner::plan`] may have something to say about this evaluation. When not,
    /// the server skips decoding the whole object for it (the evaluation itself needs only a
    /// lean cut of it, see [`crate::server::object`]).
    fn wants(&self, _eval: &Evaluation) -> bool {
        true
    }

    /// `analyzer` resolves the scripts the planner's re-checks of the edited object run;
    /// `workload` is `object`'s, when the server extracted it from this very value. The server
    /// applies the patch to the object before sending it and sends none, with a note, when
    /// it does not apply.
    fn plan(
        &self,
        engine: &Engine,
        analyzer: &dyn ScriptAnalyzer,
        ctx: &EvalContext<'_>,
        eval: &Evaluation,
        object: &Value,
        workload: Option<&Workload<'_>>,
    ) -> Planned;
}

/// No mutations: every object is allowed with warnings instead of patched.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMutations;

impl Planner for NoMutations {
    fn wants(&self, _eval: &Evaluation) -> bool {
        false
    }

    fn plan(
        &self,
        _: &Engine,
        _: &dyn ScriptAnalyzer,
        _: &EvalContext<'_>,
        _: &Evaluation,
        _: &Value,
        _: Option<&Workload<'_>>,
    ) -> Planned {
        Planned::default()
    }
}

/// pidone's mutations (docs/design.md section 5): exec rewrite, native sidecars, init injection.
#[derive(Debug, Default, Clone, Copy)]
pub struct Mutations;

impl Planner for Mutations {
    /// Fixes come from findings whose action is `mutate`, and from init injection.
    fn wants(&self, eval: &Evaluation) -> bool {
        !eval.exempt
            && (eval.inject_init || eval.findings.iter().any(|f| f.action == Action::Mutate))
    }

    fn plan(
        &self,
        engine: &Engine,
        analyzer: &dyn ScriptAnalyzer,
        ctx: &EvalContext<'_>,
        eval: &Evaluation,
        object: &Value,
        workload: Option<&Workload<'_>>,
    ) -> Planned {
        // The server checks the patch on the object it decoded (no copy): see `Planner::plan`.
        let plan =
            crate::mutate::plan_unchecked_with(engine, analyzer, object, workload, ctx, eval);
        Planned {
            patch: plan.patch,
            notes: plan.warnings,
            env_read: plan.env_read,
            on_workload: plan.on_workload,
        }
    }
}

impl<F> Planner for F
where
    F: Fn(&Evaluation, &Value) -> Vec<PatchOperation> + Send + Sync,
{
    fn plan(
        &self,
        _: &Engine,
        _: &dyn ScriptAnalyzer,
        _: &EvalContext<'_>,
        eval: &Evaluation,
        object: &Value,
        _: Option<&Workload<'_>>,
    ) -> Planned {
        Planned {
            patch: self(eval, object),
            notes: Vec::new(),
            env_read: false,
            on_workload: false,
        }
    }
}

/// Whether `patch`, planned on an object whose containers' `env` lists were cut to `[]`
/// (see `review_cuts`), is the patch of the object as sent: no operation addresses a member
/// named `env` or anything inside one, and no value it writes has such a member (a whole
/// container or list of them would carry a cut list). The planner never edits an env list,
/// so its comparisons of the original and edited objects agree on them either way.
pub fn independent_of_env(patch: &[PatchOperation]) -> bool {
    fn has_env(value: &Value) -> bool {
        match value {
            Value::Object(map) => map.contains_key("env") || map.values().any(has_env),
            Value::Array(items) => items.iter().any(has_env),
            _ => false,
        }
    }
    patch.iter().all(|op| {
        let (path, value) = match op {
            PatchOperation::Add(a) => (&a.path, Some(&a.value)),
            PatchOperation::Replace(r) => (&r.path, Some(&r.value)),
            PatchOperation::Remove(r) => (&r.path, None),
            // Never planned: moves and copies carry values the patch does not show.
            _ => return false,
        };
        !path.tokens().any(|t| t.decoded() == "env") && !value.is_some_and(has_env)
    })
}

/// Whether `patch`, planned on `object` decoded in the cut `root`, is the patch of the whole
/// object. It is when every operation addresses a value the cut keeps whole: the way there
/// runs through members the cut reads into, and the value itself (or a member or element
/// it lies in) is one the cut decodes whole. There the cut and the whole object hold the same
/// value, so the planner's edits, their re-checks (which read the lean cut only) and the
/// patch's applying agree; a member the cut leaves out (which the whole object may have) is
/// never addressed, and no value the patch writes holds a part the cut left out (a moved
/// container is written whole, at a place the cut reads into).
pub fn within_cut(root: Pruned, object: &Value, patch: &[PatchOperation]) -> bool {
    patch.iter().all(|op| match op {
        PatchOperation::Add(a) => kept_whole(root, object, &a.path),
        PatchOperation::Replace(r) => kept_whole(root, object, &r.path),
        PatchOperation::Remove(r) => kept_whole(root, object, &r.path),
        // Never planned: moves and copies carry values the patch does not show.
        _ => false,
    })
}

/// Whether the value at `path` (which may be a new member or element) is one the cut `root`
/// keeps whole.
fn kept_whole(root: Pruned, object: &Value, path: &Pointer) -> bool {
    // `None` once inside a value decoded whole.
    let mut state = Some(root);
    let mut at = Some(object);
    for token in path.tokens() {
        let Some(cut) = state else {
            return true;
        };
        let name = token.decoded();
        match at {
            Some(Value::Object(map)) => {
                state = match cut.member(name.as_bytes()) {
                    Member::Keep => None,
                    Member::Into(inner) => Some(inner),
                    Member::Skip | Member::CheckEnv => return false,
                };
                at = map.get(name.as_ref());
            }
            Some(Value::Array(items)) => {
                state = cut.elements();
                at = name.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            // Below a value that is not there, or not a container: the patch would not apply.
            _ => return false,
        }
    }
    state.is_none()
}

/// The mutation types a patch applies, read from the `pidone.io/mutations` annotation it
/// writes (docs/design.md section 4: `exec:app,sidecar:log-agent,init:app` gives exec, sidecar,
/// init). Used for `pidone_mutations_total{type}`; a patch that does not say gives `unknown`.
pub fn mutation_types(patch: &[PatchOperation]) -> Vec<String> {
    let mut types = Vec::new();
    for op in patch {
        let (path, value) = match op {
            PatchOperation::Add(a) => (a.path.as_str(), &a.value),
            PatchOperation::Replace(r) => (r.path.as_str(), &r.value),
            _ => continue,
        };
        let listed = if path.ends_with("/pidone.io~1mutations") {
            value.as_str()
        } else if path.ends_with("/metadata/annotations") {
            value.get(ANNOTATION_MUTATIONS).and_then(Value::as_str)
        } else {
            None
        };
        for item in listed.unwrap_or("").split(',') {
            let kind = item.split(':').next().unwrap_or("").trim();
            if !kind.is_empty() && !types.iter().any(|t| t == kind) {
                types.push(kind.to_string());
            }
        }
    }
    if types.is_empty() && !patch.is_empty() {
        types.push("unknown".to_string());
    }
    types
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_is_independent_of_env_unless_it_writes_or_addresses_one() {
        let patch = |text: &str| -> Vec<PatchOperation> { serde_json::from_str(text).unwrap() };
        assert!(independent_of_env(&patch(
            r#"[{"op":"replace","path":"/spec/containers/0/command","value":["sh","-c","exec a"]},
                {"op":"add","path":"/spec/volumes","value":[{"name":"v","emptyDir":{}}]},
                {"op":"remove","path":"/spec/containers/1/args"},
                {"op":"add","path":"/metadata/annotations","value":{"pidone.io/mutations":"exec:a"}}]"#
        )));
        assert!(independent_of_env(&[]));
        for unsafe_patch in [
            r#"[{"op":"add","path":"/spec/initContainers","value":[{"name":"a","env":[]}]}]"#,
            r#"[{"op":"add","path":"/spec/containers/0","value":{"name":"a","env":[]}}]"#,
            r#"[{"op":"replace","path":"/spec/containers/0/env","value":[]}]"#,
            r#"[{"op":"remove","path":"/spec/containers/0/env/1"}]"#,
            r#"[{"op":"copy","from":"/a","path":"/b"}]"#,
        ] {
            assert!(!independent_of_env(&patch(unsafe_patch)), "{unsafe_patch}");
        }
    }

    #[test]
    fn mutation_types_come_from_the_mutations_annotation() {
        let patch: Vec<PatchOperation> = serde_json::from_str(
            r#"[{"op":"add","path":"/spec/template/metadata/annotations/pidone.io~1mutations",
                 "value":"exec:app,sidecar:log-agent,exec:web"},
                {"op":"add","path":"/spec/containers/0/command/2","value":"exec app"}]"#,
        )
        .unwrap();
        assert_eq!(mutation_types(&patch), vec!["exec", "sidecar"]);
        let whole: Vec<PatchOperation> = serde_json::from_str(
            r#"[{"op":"add","path":"/metadata/annotations","value":{"pidone.io/mutations":"init:app"}}]"#,
        )
        .unwrap();
        assert_eq!(mutation_types(&whole), vec!["init"]);
        let silent: Vec<PatchOperation> =
            serde_json::from_str(r#"[{"op":"remove","path":"/spec/x"}]"#).unwrap();
        assert_eq!(mutation_types(&silent), vec!["unknown"]);
        assert!(mutation_types(&[]).is_empty());
    }
}
