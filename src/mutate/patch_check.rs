//! Whether a JSON Patch applies to an object, as the apiserver would find when it applies it.
//!
//! Most patches pidone makes replace or add members at places none of which lies inside
//! another (a script's `command`, the `pidone.io/mutations` annotation). Each operation of
//! such a patch meets the object as it was, so the patch applies when every `replace` finds
//! its target and every `add` finds the object it adds to: read, with no value cloned and
//! nothing applied. Any other patch (an `add` into an array, which shifts what follows; a
//! `remove`, `move`, `copy` or `test`; a path inside another operation's) is applied by
//! json-patch.

use crate::engine::json_pointer;
use json_patch::PatchOperation;
use json_patch::jsonptr::Pointer;
use serde_json::Value;

/// The value at `path`, found as serde_json finds it (which json-patch uses).
fn resolve<'v>(object: &'v Value, path: &Pointer) -> Option<&'v Value> {
    json_pointer::get(object, path.as_str())
}

/// Whether `patch` applies to `object`. `object` may be left patched, or partly patched when
/// the patch fails: callers check on an object they do not read again.
pub fn applies(object: &mut Value, patch: &[PatchOperation]) -> bool {
    match applies_unchanged(object, patch) {
        Some(applies) => applies,
        None => json_patch::patch_unsafe(object, patch).is_ok(),
    }
}

/// Whether `patch` applies, read without applying it; `None` for a patch whose operations are
/// not independent of one another (see the module).
fn applies_unchanged(object: &Value, patch: &[PatchOperation]) -> Option<bool> {
    let mut paths: Vec<&Pointer> = Vec::with_capacity(patch.len());
    let mut applies = true;
    for op in patch {
        let (path, found) = match op {
            PatchOperation::Replace(r) => (&*r.path, resolve(object, &r.path).is_some()),
            PatchOperation::Add(a) => {
                let (parent, _) = a.path.split_back()?;
                match resolve(object, parent) {
                    Some(Value::Object(_)) => (&*a.path, true),
                    // An element added shifts the ones after it.
                    Some(Value::Array(_)) => return None,
                    Some(_) | None => (&*a.path, false),
                }
            }
            _ => return None,
        };
        if paths
            .iter()
            .any(|p| p.starts_with(path) || path.starts_with(p))
        {
            return None;
        }
        paths.push(path);
        applies &= found;
    }
    Some(applies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn patch(ops: Value) -> Vec<PatchOperation> {
        serde_json::from_value(ops).unwrap()
    }

    #[test]
    fn script_edits_and_the_annotation_are_read_without_applying() {
        let pod = json!({"metadata": {"annotations": {"a": "b"}},
            "spec": {"containers": [{"command": ["sh", "-c", "x"]}, {"args": ["y"]}]}});
        let p = patch(json!([
            {"op": "replace", "path": "/spec/containers/0/command", "value": ["sh", "-c", "exec x"]},
            {"op": "replace", "path": "/spec/containers/1/args", "value": ["z"]},
            {"op": "add", "path": "/metadata/annotations/pidone.io~1mutations", "value": "exec:a"},
        ]));
        assert_eq!(applies_unchanged(&pod, &p), Some(true));
        let missing = patch(json!([
            {"op": "replace", "path": "/spec/containers/2/command", "value": []},
        ]));
        assert_eq!(applies_unchanged(&pod, &missing), Some(false));
        let no_annotations = patch(json!([
            {"op": "add", "path": "/spec/annotations/k", "value": "v"},
        ]));
        assert_eq!(applies_unchanged(&pod, &no_annotations), Some(false));
        let escaped = patch(json!([
            {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "v"},
            {"op": "add", "path": "/metadata/annotations/a~1b~0c", "value": "v"},
        ]));
        assert_eq!(applies_unchanged(&pod, &escaped), Some(false));
        // One operation inside another's place, an element added, a move: applied instead.
        for ops in [
            json!([{"op": "add", "path": "/metadata/annotations", "value": {}},
                   {"op": "add", "path": "/metadata/annotations/k", "value": "v"}]),
            json!([{"op": "add", "path": "/spec/containers/0", "value": {}}]),
            json!([{"op": "move", "from": "/spec/containers/0", "path": "/spec/x"}]),
        ] {
            assert_eq!(applies_unchanged(&pod, &patch(ops.clone())), None, "{ops}");
        }
    }

    fn document() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![Just(json!(null)), Just(json!(1)), Just(json!("s"))];
        leaf.prop_recursive(3, 24, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(prop::sample::select(vec!["a", "b", "0"]), inner, 0..3)
                    .prop_map(|m| json!(m)),
            ]
        })
    }

    fn operation() -> impl Strategy<Value = Value> {
        let token = prop::sample::select(vec!["a", "b", "0", "1", "01", "-", "+1", "a~1b"]);
        (
            prop::sample::select(vec!["add", "replace"]),
            prop::collection::vec(token, 0..4),
        )
            .prop_map(|(op, tokens)| {
                let path: String = tokens.iter().map(|t| format!("/{t}")).collect();
                json!({"op": op, "path": path, "value": 7})
            })
    }

    proptest! {
        #[test]
        fn what_is_read_is_what_json_patch_finds(
            doc in document(),
            ops in prop::collection::vec(operation(), 1..4),
        ) {
            let p = patch(Value::Array(ops));
            let mut applied = doc.clone();
            let expected = json_patch::patch_unsafe(&mut applied, &p).is_ok();
            if let Some(found) = applies_unchanged(&doc, &p) {
                prop_assert_eq!(found, expected);
            }
            let mut checked = doc.clone();
            prop_assert_eq!(applies(&mut checked, &p), expected);
        }
    }
}
