//! Whether an UPDATE changed a workload's pod template, compared as the apiserver wrote it.
//!
//! The apiserver encodes the object and the old object with one encoder (members in the
//! types' order, maps sorted), so an unchanged template is the same bytes in both: those
//! are found by a scan of the body ([`crate::server::json_scan`]) and compared, and only
//! templates whose bytes differ are decoded to be compared as values. Either way no whole
//! object is decoded. The body was decoded by serde_json before (the review's lean cut), so
//! what is compared here is valid JSON.

use crate::server::json_scan::{members, skip_value};
use serde_json::Value;

/// Whether the pod template at `pointer` (a template pointer, `/spec/template` and the like)
/// differs between the review's `object` in `body` and `old_object` (the old object's text), as
/// `Value::pointer` on both decoded objects would find; `None` when this cannot say: an object
/// missing, not a JSON object, or a body the scan cannot follow (the caller decodes both).
pub fn changed(body: &[u8], old_object: &[u8], pointer: &str) -> Option<bool> {
    let new = review_object(body)?;
    let (new, old) = (at_pointer(new, pointer)?, at_pointer(old_object, pointer)?);
    match (new, old) {
        (None, None) => Some(false),
        (Some(new), Some(old)) if new == old => Some(false),
        (Some(new), Some(old)) => {
            let new: Value = serde_json::from_slice(new).ok()?;
            let old: Value = serde_json::from_slice(old).ok()?;
            Some(new != old)
        }
        _ => Some(true),
    }
}

/// The text of `request.object` in a review's body, when it is a JSON object.
fn review_object(body: &[u8]) -> Option<&[u8]> {
    let mut object = None;
    members(body, 0, |name, at| match name {
        b"request" => members(body, at, |name, at| {
            let end = skip_value(body, at)?;
            if name == b"object" {
                object = Some(&body[at..end]);
            }
            Some(end)
        }),
        _ => skip_value(body, at),
    })?;
    object.filter(|o| o.first() == Some(&b'{'))
}

/// The text of the value at `pointer` in the JSON object `object`: `Some(None)` when there is
/// none (a member missing, or a value on the way that is not an object), `None` when the
/// scan cannot follow. Template pointers name members only; a token with an escape (`~`) is
/// left to the caller.
fn at_pointer<'a>(object: &'a [u8], pointer: &str) -> Option<Option<&'a [u8]>> {
    if object.first() != Some(&b'{') {
        return None;
    }
    let mut at: &'a [u8] = object;
    for token in pointer.strip_prefix('/')?.split('/') {
        if token.contains('~') {
            return None;
        }
        if at.first() != Some(&b'{') {
            return Some(None);
        }
        // The last of members with one name is the one serde_json keeps.
        let mut found = None;
        members(at, 0, |name, start| {
            let end = skip_value(at, start)?;
            if name == token.as_bytes() {
                found = Some(&at[start..end]);
            }
            Some(end)
        })?;
        match found {
            Some(value) => at = value,
            None => return Some(None),
        }
    }
    Some(Some(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn body(object: &Value) -> Vec<u8> {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","operation":"UPDATE","object":{object},"oldObject":null}}}}"#
        )
        .into_bytes()
    }

    /// What the webhook decided before: both objects decoded, their templates compared.
    fn decoded(new: &Value, old: &Value, pointer: &str) -> bool {
        new.pointer(pointer) != old.pointer(pointer)
    }

    #[test]
    fn templates_compare_as_decoded() {
        let deployment = |image: &str, replicas: u32| {
            json!({"kind": "Deployment", "metadata": {"name": "a", "generation": replicas},
                   "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"a": "b"}},
                   "spec": {"containers": [{"name": "app", "image": image}]}}}})
        };
        let cases = [
            (deployment("a:1", 1), deployment("a:1", 2), "/spec/template"),
            (deployment("a:1", 1), deployment("a:2", 1), "/spec/template"),
            (json!({"spec": {}}), json!({"spec": {}}), "/spec/template"),
            (
                json!({"spec": {"template": {}}}),
                json!({"spec": {}}),
                "/spec/template",
            ),
            (
                json!({"spec": []}),
                json!({"spec": {"template": 1}}),
                "/spec/template",
            ),
            (json!({"spec": "x"}), json!({"spec": "x"}), "/spec/template"),
            (
                json!({"spec": {"jobTemplate": {"spec": {"template": {"a": [1, 2]}}}}}),
                json!({"spec": {"jobTemplate": {"spec": {"template": {"a": [1, 3]}}}}}),
                "/spec/jobTemplate/spec/template",
            ),
        ];
        for (new, old, pointer) in cases {
            let old_text = old.to_string();
            assert_eq!(
                changed(&body(&new), old_text.as_bytes(), pointer),
                Some(decoded(&new, &old, pointer)),
                "{new} {old}"
            );
        }
    }

    #[test]
    fn members_written_differently_are_compared_as_values() {
        let new = br#"{"spec":{"template":{"a":1,"b":[1, 2]}}}"#;
        let old = br#"{"spec":{"template":{"b":[1,2],"a":1.0}}}"#;
        let body = format!(
            r#"{{"request":{{"object":{}}}}}"#,
            std::str::from_utf8(new).unwrap()
        );
        // 1 and 1.0 are different JSON numbers to serde_json, as they were before.
        assert_eq!(changed(body.as_bytes(), old, "/spec/template"), Some(true));
        let old = br#"{"spec":{"template":{"b":[1,2],"a":1}}}"#;
        assert_eq!(changed(body.as_bytes(), old, "/spec/template"), Some(false));
        // The last of two members with one name counts, as in serde_json's map.
        let old = br#"{"spec":{"template":{"x":1},"template":{"a":1,"b":[1,2]}}}"#;
        assert_eq!(changed(body.as_bytes(), old, "/spec/template"), Some(false));
    }

    #[test]
    fn what_it_cannot_say_is_left_to_the_decoder() {
        let object = json!({"spec": {"template": {}}});
        for (body, old) in [
            (br#"{"request":{"object":null}}"#.to_vec(), &b"{}"[..]),
            (br#"{"request":{}}"#.to_vec(), &b"{}"[..]),
            (body(&object), &b"null"[..]),
            (body(&object), &b"[1]"[..]),
        ] {
            assert_eq!(changed(&body, old, "/spec/template"), None);
        }
        assert_eq!(changed(&body(&object), b"{}", "/spec/a~1b"), None);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0u8..3).prop_map(|n| json!(n)),
            "[ab\"\\\\]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map("spec|template|a|b", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_objects_compare_as_decoded(new in json_value(), old in json_value(), pretty in any::<bool>()) {
            let wrap = |v: Value| json!({"spec": {"template": v}});
            let (new, old) = (wrap(new), wrap(old));
            let old_text = if pretty { serde_json::to_string_pretty(&old).unwrap() } else { old.to_string() };
            prop_assert_eq!(
                changed(&body(&new), old_text.as_bytes(), "/spec/template"),
                Some(decoded(&new, &old, "/spec/template"))
            );
        }
    }
}
