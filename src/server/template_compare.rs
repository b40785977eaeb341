//! Whether an UPDATE left a workload's pod template as it was, seen in the body's bytes.
//!
//! The apiserver encodes the object and the old object with one encoder (members in the
//! types' order, maps sorted), so a template it did not change is the same bytes in both.
//! The old object's template is found by a scan ([`crate::server::json_scan`]), and the
//! object's is matched against those bytes where it starts: no template is decoded, and the
//! scan of the object stops at the first byte that differs. Only "the same" is answered here;
//! anything else (other bytes, a name written with escapes, a member twice, a value on the
//! way that is not an object) is left to the comparison of the decoded objects. The body
//! was decoded by serde_json before (the review's lean cut), so the bytes compared are JSON.

use crate::server::json_scan::{members, skip_value};

/// Whether the pod template at `pointer` (a template pointer: `/spec/template` and the like)
/// is surely the same in the review's `object` in `body` and in `old_object` (the old object's
/// text): the same bytes, or missing from both. `false` leaves the question to the caller.
pub fn unchanged(body: &[u8], old_object: &[u8], pointer: &str) -> bool {
    let Some(path) = pointer.strip_prefix('/').filter(|p| !p.contains('~')) else {
        return false;
    };
    let tokens: Vec<&[u8]> = path.split('/').map(str::as_bytes).collect();
    // The old template's text, `None` when the old object has none.
    let mut old: Option<&[u8]> = None;
    let found = walk(old_object, 0, &tokens, &mut |at| {
        let end = skip_value(old_object, at)?;
        old = (old_object.get(at) == Some(&b'{')).then(|| &old_object[at..end]);
        old.map(|_| end)
    });
    if found.is_none() {
        return false;
    }
    // The object's template, matched against the old one's bytes where it starts: an
    // object's text is followed by nothing that could extend it, so bytes there that begin
    // with the old template are that template.
    let mut matched = false;
    let mut followed = false;
    let mut at_template = |at: usize| {
        let old = old?;
        body.get(at..)?.starts_with(old).then(|| {
            matched = true;
            at + old.len()
        })
    };
    // The scan stops once the object is walked: nothing after it is read.
    let _ = members(body, 0, |name, at| match name {
        b"request" => members(body, at, |name, at| match name {
            b"object" => {
                followed = walk(body, at, &tokens, &mut at_template).is_some();
                None
            }
            _ => skip_value(body, at),
        }),
        _ => skip_value(body, at),
    });
    followed && matched == old.is_some()
}

/// Past the object at `at`, walking along `tokens` (member names) into it in the same pass,
/// and calling `last` with where the value at the end of the way starts, which returns the
/// end of that value; a member missing on the way ends the walk there. `None` where the scan
/// cannot say: a value on the way is not an object, a name is written with escapes (it may
/// be one of the names sought), or a member on the way comes twice.
fn walk(
    bytes: &[u8],
    at: usize,
    tokens: &[&[u8]],
    last: &mut dyn FnMut(usize) -> Option<usize>,
) -> Option<usize> {
    let (token, rest) = tokens.split_first()?;
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    let mut seen = false;
    members(bytes, at, |name, at| {
        if name.contains(&b'\\') || (name == *token && seen) {
            return None;
        }
        if name != *token {
            return skip_value(bytes, at);
        }
        seen = true;
        if rest.is_empty() {
            last(at)
        } else {
            walk(bytes, at, rest, last)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn body(object: &str) -> Vec<u8> {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","operation":"UPDATE","object":{object},"oldObject":null}}}}"#
        )
        .into_bytes()
    }

    /// What the webhook decides on the decoded objects.
    fn decoded_same(new: &str, old: &str, pointer: &str) -> bool {
        let (new, old): (Value, Value) = (
            serde_json::from_str(new).unwrap(),
            serde_json::from_str(old).unwrap(),
        );
        new.pointer(pointer) == old.pointer(pointer)
    }

    #[test]
    fn the_same_template_is_found_the_same() {
        let deployment = |image: &str, replicas: u32| {
            json!({"kind": "Deployment", "metadata": {"name": "a", "generation": replicas},
                   "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"a": "b"}},
                   "spec": {"containers": [{"name": "app", "image": image}]}}, "paused": false}})
            .to_string()
        };
        let job = |command: &str| {
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"command": [command]}}}}}})
                .to_string()
        };
        let pointer = "/spec/template";
        for (new, old, pointer, same) in [
            (deployment("a:1", 1), deployment("a:1", 2), pointer, true),
            (deployment("a:1", 1), deployment("a:2", 1), pointer, false),
            (
                json!({"spec": {}}).to_string(),
                json!({"spec": {}}).to_string(),
                pointer,
                true,
            ),
            (
                json!({}).to_string(),
                json!({"spec": {}}).to_string(),
                pointer,
                true,
            ),
            (
                json!({"spec": {"template": {}}}).to_string(),
                json!({"spec": {}}).to_string(),
                pointer,
                false,
            ),
            (
                json!({"spec": {}}).to_string(),
                json!({"spec": {"template": {}}}).to_string(),
                pointer,
                false,
            ),
            (job("a"), job("a"), "/spec/jobTemplate/spec/template", true),
            (job("a"), job("b"), "/spec/jobTemplate/spec/template", false),
            // A template that begins with the old one's bytes is not the same.
            (
                r#"{"spec":{"template":{"a":1}}}"#.to_string(),
                r#"{"spec":{"template":{"a":1}}}"#.to_string(),
                pointer,
                true,
            ),
            (
                r#"{"spec":{"template":{"a":1,"b":2}}}"#.to_string(),
                r#"{"spec":{"template":{"a":1}}}"#.to_string(),
                pointer,
                false,
            ),
        ] {
            assert_eq!(
                unchanged(&body(&new), old.as_bytes(), pointer),
                same,
                "{new} {old}"
            );
            if same {
                assert!(decoded_same(&new, &old, pointer));
            }
        }
    }

    #[test]
    fn what_it_cannot_say_is_left_to_the_decoded_objects() {
        let same = r#"{"spec":{"template":{"a":1}}}"#;
        for (new, old) in [
            // Written differently: the same value, other bytes.
            (
                r#"{"spec":{"template":{"a":1}}}"#,
                r#"{"spec":{"template":{ "a": 1 }}}"#,
            ),
            // Twice, or with an escape, on either side.
            (r#"{"spec":{"template":{"a":1},"template":{"a":1}}}"#, same),
            (same, r#"{"spec":{"template":{"a":1},"template":{"a":1}}}"#),
            (
                r#"{"sp\u0065c":{"template":{"a":1}}}"#,
                r#"{"sp\u0065c":{"template":{"a":1}}}"#,
            ),
            (r#"{"spec":{"template":{"a":1}},"sp\u0065c":{}}"#, same),
            // Not objects on the way, or as the template.
            (r#"{"spec":[]}"#, r#"{"spec":[]}"#),
            (r#"{"spec":{"template":1}}"#, r#"{"spec":{"template":1}}"#),
            ("null", same),
        ] {
            assert!(
                !unchanged(&body(new), old.as_bytes(), "/spec/template"),
                "{new} {old}"
            );
        }
        assert!(!unchanged(
            br#"{"request":{}}"#,
            same.as_bytes(),
            "/spec/template"
        ));
        assert!(!unchanged(&body(same), same.as_bytes(), "/spec/a~1b"));
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
        /// "The same" only ever where the decoded objects have the same template; and
        /// always where they are written alike.
        #[test]
        fn the_same_only_where_decoded_alike(new in json_value(), old in json_value(), pretty in any::<bool>()) {
            let (new, old) = (new.to_string(), if pretty {
                serde_json::to_string_pretty(&old).unwrap()
            } else {
                old.to_string()
            });
            for pointer in ["/spec/template", "/spec", "/template/spec"] {
                let said = unchanged(&body(&new), old.as_bytes(), pointer);
                let same = decoded_same(&new, &old, pointer);
                prop_assert!(!said || same, "{} {} {}", pointer, new, old);
            }
            let decoded: Value = serde_json::from_str(&new).unwrap();
            let followable = decoded.is_object()
                && decoded.pointer("/spec").is_none_or(|spec| {
                    spec.is_object() && spec.get("template").is_none_or(Value::is_object)
                });
            if followable {
                prop_assert!(unchanged(&body(&new), new.as_bytes(), "/spec/template"), "{}", new);
            }
        }
    }
}
