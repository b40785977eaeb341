//! From an edited copy of the pod spec to JSON Patch operations that apply to the original.
//!
//! Arrays whose container order is unchanged are patched field by field (small, readable
//! patches); arrays whose membership changed are replaced whole, so no operation's index can
//! be invalidated by an earlier one.

use super::escape_token;
use serde_json::{Map, Value, json};

fn names(list: &[Value]) -> Vec<&str> {
    list.iter()
        .map(|c| c.get("name").and_then(Value::as_str).unwrap_or(""))
        .collect()
}

/// Operations turning `old` (absent when `None`) into `new` at `path` (a list of containers).
pub fn container_list(path: &str, old: Option<&[Value]>, new: &[Value], ops: &mut Vec<Value>) {
    match old {
        None if new.is_empty() => {}
        None => ops.push(json!({"op": "add", "path": path, "value": new})),
        Some(old) if old == new => {}
        Some(old) if old.len() == new.len() && names(old) == names(new) => {
            for (i, (o, n)) in old.iter().zip(new).enumerate() {
                object_fields(&format!("{path}/{i}"), o, n, ops);
            }
        }
        // `add` on an existing member replaces it (RFC 6902 4.1).
        Some(_) => ops.push(json!({"op": "add", "path": path, "value": new})),
    }
}

/// Field-level operations between two JSON objects (one level deep).
fn object_fields(path: &str, old: &Value, new: &Value, ops: &mut Vec<Value>) {
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    for (key, value) in n {
        let p = format!("{path}/{}", escape_token(key));
        match o.get(key) {
            Some(v) if v == value => {}
            Some(_) => ops.push(json!({"op": "replace", "path": p, "value": value})),
            None => ops.push(json!({"op": "add", "path": p, "value": value})),
        }
    }
    for key in o.keys().filter(|k| !n.contains_key(*k)) {
        ops.push(json!({"op": "remove", "path": format!("{path}/{}", escape_token(key))}));
    }
}

/// Sets `key` in the annotations at `metadata_path`, creating `metadata` and `annotations`
/// when absent (json-patch v4 fails an `add` whose parent is missing).
pub fn set_annotation(
    metadata_path: &str,
    metadata: Option<&Value>,
    key: &str,
    value: &str,
    ops: &mut Vec<Value>,
) {
    match metadata {
        Some(m) if m.get("annotations").is_some_and(Value::is_object) => ops.push(json!({
            "op": "add",
            "path": format!("{metadata_path}/annotations/{}", escape_token(key)),
            "value": value,
        })),
        Some(m) if m.is_object() => ops.push(json!({
            "op": "add",
            "path": format!("{metadata_path}/annotations"),
            "value": {key: value},
        })),
        _ => ops.push(json!({
            "op": "add",
            "path": metadata_path,
            "value": {"annotations": {key: value}},
        })),
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
        container_list("/spec/containers", Some(&old), &new, &mut ops);
        assert_eq!(
            ops,
            vec![
                json!({"op": "replace", "path": "/spec/containers/0/command", "value": ["y"]}),
                json!({"op": "add", "path": "/spec/containers/0/stdin", "value": true}),
                json!({"op": "remove", "path": "/spec/containers/0/tty"}),
            ]
        );
    }

    #[test]
    fn annotations_parents_are_created() {
        let mut ops = Vec::new();
        set_annotation(
            "/metadata",
            Some(&json!({"name": "p"})),
            "pidone.io/mutations",
            "exec:a",
            &mut ops,
        );
        assert_eq!(
            ops[0],
            json!({"op": "add", "path": "/metadata/annotations", "value": {"pidone.io/mutations": "exec:a"}})
        );
        ops.clear();
        set_annotation(
            "/metadata",
            Some(&json!({"annotations": {}})),
            "pidone.io/mutations",
            "exec:a",
            &mut ops,
        );
        assert_eq!(ops[0]["path"], "/metadata/annotations/pidone.io~1mutations");
        ops.clear();
        set_annotation("/spec/template/metadata", None, "k", "v", &mut ops);
        assert_eq!(ops[0]["path"], "/spec/template/metadata");
    }
}
