//! From an edited copy of the pod spec to JSON Patch operations that apply to the original.
//!
//! Arrays whose container order is unchanged are patched field by field (small, readable
//! patches); arrays whose membership changed are replaced whole, so no operation's index can
//! be invalidated by an earlier one. Paths are built token by token (`jsonptr` escapes them).

use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::{Map, Value, json};

fn name(container: &Value) -> &str {
    container.get("name").and_then(Value::as_str).unwrap_or("")
}

fn child(path: &Pointer, token: &str) -> PointerBuf {
    let mut child = path.to_buf();
    child.push_back(token);
    child
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

/// Operations turning `old` (absent when `None`) into `new` at `path` (a list of containers).
pub fn container_list(
    path: &Pointer,
    old: Option<&[Value]>,
    new: &[Value],
    ops: &mut Vec<PatchOperation>,
) {
    match old {
        None if new.is_empty() => {}
        None => ops.push(add(path.to_buf(), Value::from(new.to_vec()))),
        // Unchanged lists give no operations here, without a comparison of their own: each
        // container is compared once, field by field.
        Some(old) if old.len() == new.len() && old.iter().map(name).eq(new.iter().map(name)) => {
            for (i, (o, n)) in old.iter().zip(new).enumerate() {
                object_fields(&child(path, &i.to_string()), o, n, ops);
            }
        }
        // `add` on an existing member replaces it (RFC 6902 4.1).
        Some(_) => ops.push(add(path.to_buf(), Value::from(new.to_vec()))),
    }
}

/// Field-level operations between two JSON objects (one level deep).
pub fn object_fields(path: &Pointer, old: &Value, new: &Value, ops: &mut Vec<PatchOperation>) {
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    // Paths are built only for the fields that changed: most fields of an edited container
    // did not.
    for (key, value) in n {
        match o.get(key) {
            Some(v) if v == value => {}
            Some(_) => ops.push(PatchOperation::Replace(ReplaceOperation {
                path: child(path, key),
                value: value.clone(),
            })),
            None => ops.push(add(child(path, key), value.clone())),
        }
    }
    for key in o.keys().filter(|k| !n.contains_key(*k)) {
        ops.push(PatchOperation::Remove(RemoveOperation {
            path: child(path, key),
        }));
    }
}

/// Sets `key` in the annotations at `metadata_path`, creating `metadata` and `annotations`
/// when absent (json-patch v4 fails an `add` whose parent is missing).
pub fn set_annotation(
    metadata_path: &Pointer,
    metadata: Option<&Value>,
    key: &str,
    value: &str,
    ops: &mut Vec<PatchOperation>,
) {
    let annotations = child(metadata_path, "annotations");
    match metadata {
        Some(m) if m.get("annotations").is_some_and(Value::is_object) => {
            ops.push(add(child(&annotations, key), Value::from(value)))
        }
        Some(m) if m.is_object() => ops.push(add(annotations, json!({key: value}))),
        _ => ops.push(add(
            metadata_path.to_buf(),
            json!({"annotations": {key: value}}),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_order_patches_fields_only() {
        let old = vec![json!({"name": "a", "command": ["x"], "tty": true})];
        let new = vec![json!({"name": "a", "command": ["y"], "stdin": true})];
        let mut ops = Vec::new();
        let path = PointerBuf::parse("/spec/containers").unwrap();
        container_list(&path, Some(&old), &new, &mut ops);
        assert_eq!(
            serde_json::to_value(&ops).unwrap(),
            Value::Array(vec![
                json!({"op": "replace", "path": "/spec/containers/0/command", "value": ["y"]}),
                json!({"op": "add", "path": "/spec/containers/0/stdin", "value": true}),
                json!({"op": "remove", "path": "/spec/containers/0/tty"}),
            ])
        );
    }

    #[test]
    fn unchanged_lists_give_no_operations() {
        let list = vec![
            json!({"name": "a", "command": ["x"], "env": [{"name": "A", "value": "1"}]}),
            json!({"name": "b"}),
        ];
        let mut ops = Vec::new();
        let path = PointerBuf::parse("/spec/containers").unwrap();
        container_list(&path, Some(&list), &list.clone(), &mut ops);
        assert!(ops.is_empty(), "{ops:?}");
        container_list(&path, Some(&[]), &[], &mut ops);
        assert!(ops.is_empty(), "{ops:?}");
    }

    #[test]
    fn renamed_or_reordered_lists_are_replaced_whole() {
        let old = vec![json!({"name": "a"}), json!({"name": "b"})];
        let new = vec![json!({"name": "b"}), json!({"name": "a"})];
        let mut ops = Vec::new();
        let path = PointerBuf::parse("/spec/containers").unwrap();
        container_list(&path, Some(&old), &new, &mut ops);
        assert_eq!(
            serde_json::to_value(&ops).unwrap(),
            json!([{"op": "add", "path": "/spec/containers", "value": [{"name": "b"}, {"name": "a"}]}])
        );
    }

    #[test]
    fn annotations_parents_are_created() {
        let mut ops = Vec::new();
        let metadata = PointerBuf::parse("/metadata").unwrap();
        let template = PointerBuf::parse("/spec/template/metadata").unwrap();
        set_annotation(
            &metadata,
            Some(&json!({"name": "p"})),
            "pidone.io/mutations",
            "exec:a",
            &mut ops,
        );
        assert_eq!(
            serde_json::to_value(&ops[0]).unwrap(),
            json!({"op": "add", "path": "/metadata/annotations", "value": {"pidone.io/mutations": "exec:a"}})
        );
        ops.clear();
        set_annotation(
            &metadata,
            Some(&json!({"annotations": {}})),
            "pidone.io/mutations",
            "exec:a",
            &mut ops,
        );
        assert_eq!(
            ops[0].path().as_str(),
            "/metadata/annotations/pidone.io~1mutations"
        );
        ops.clear();
        set_annotation(&template, None, "k", "v", &mut ops);
        assert_eq!(ops[0].path().as_str(), "/spec/template/metadata");
    }
}
