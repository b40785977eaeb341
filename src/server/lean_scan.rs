//! The lean cut of a CREATE review's object read straight from the body, in one pass: a walk of
//! the object that takes the lean cut's own decisions ([`Pruned::member`], the grammar of
//! [`crate::server::object`]) and builds the object as it goes. A kept value is decoded by
//! serde_json where it lies in the body; a skipped one is passed over by
//! [`crate::server::json_scan`] (strings and brackets); a container's env list, in the cut
//! without env, is checked as [`crate::server::review_cuts`] checks it. The rest of the review
//! is then decoded by serde_json from a copy of the body with the object replaced by `null`.
//!
//! Decoded this way, the review is the one `review::decode_cut` gives for a body serde_json
//! accepts (tested on generated reviews and on every fixture), without serde_json reading the
//! object's skipped values (most of it: managed fields, probes, resources, env lists) token
//! by token. As with the cuts of [`crate::server::review_cuts`], inside a skipped value only
//! strings and brackets are checked, so a body whose one fault lies there decodes; the
//! apiserver never sends one.
//!
//! Anything else is left to the decoder (`None`): not a CREATE (an UPDATE compares pod
//! templates on the whole object), `operation` written after the object, an object that is
//! not a JSON object, a kept name or string with a control character (serde_json rejects
//! them; in a skipped value they are not looked for), an env list the check fails, nesting
//! deeper than [`MAX_DEPTH`], a body over [`MAX_BODY_BYTES`], or one the scan cannot follow.

use crate::server::json_scan::{MAX_DEPTH, elements, members, skip_value, string_end};
use crate::server::object::{Member, Pruned};
use crate::server::review_cuts::{MAX_BODY_BYTES, checked_env_list};
use serde_json::{Map, Value};
use std::ops::Range;

/// A review's object in a lean cut, and the rest of the review to decode.
#[derive(Debug)]
pub struct Scanned {
    /// The object, as the cut decodes it.
    pub object: Value,
    /// The body with the object replaced by `null`.
    pub envelope: Vec<u8>,
}

/// The object of the CREATE review `body` in the lean cut `cut` (`Lean::ROOT` or
/// `LeanWithoutEnv::ROOT`), or `None` for a body left to the decoder (see the module).
pub fn scan(body: &[u8], cut: Pruned) -> Option<Scanned> {
    if body.len() > MAX_BODY_BYTES {
        return None;
    }
    let mut found: Option<(Range<usize>, Value)> = None;
    members(body, 0, |name, at| match name {
        b"request" => request(body, at, cut, &mut found),
        _ => skip_value(body, at),
    })?;
    let (span, object) = found?;
    let mut envelope = Vec::with_capacity(body.len() - span.len() + 4);
    envelope.extend_from_slice(&body[..span.start]);
    envelope.extend_from_slice(b"null");
    envelope.extend_from_slice(&body[span.end..]);
    Some(Scanned { object, envelope })
}

/// Past the `request` at `at`, its object built into `found`.
fn request(
    bytes: &[u8],
    at: usize,
    cut: Pruned,
    found: &mut Option<(Range<usize>, Value)>,
) -> Option<usize> {
    let mut create = false;
    members(bytes, at, |name, at| match name {
        b"operation" => {
            let end = skip_value(bytes, at)?;
            create = &bytes[at..end] == b"\"CREATE\"";
            Some(end)
        }
        // Once, after `operation`, and an object.
        b"object" if create && found.is_none() && bytes.get(at) == Some(&b'{') => {
            let (object, end) = build(bytes, at, cut, 0)?;
            *found = Some((at..end, object));
            Some(end)
        }
        b"object" => None,
        _ => skip_value(bytes, at),
    })
}

/// The value at `at` in state `cut`, and where it ends.
fn build(bytes: &[u8], at: usize, cut: Pruned, depth: u32) -> Option<(Value, usize)> {
    if depth >= MAX_DEPTH {
        return None;
    }
    match *bytes.get(at)? {
        b'{' => {
            let mut map = Map::new();
            let end = members(bytes, at, |raw, at| {
                // The decision is taken on the name's bytes; only a name kept is made a
                // `String` (checked as serde_json checks it).
                let escaped = raw.contains(&b'\\');
                let decoded;
                let name = if escaped {
                    decoded = unescaped(raw)?;
                    decoded.as_bytes()
                } else {
                    raw
                };
                match cut.member(name) {
                    Member::Skip => skip_value(bytes, at),
                    Member::CheckEnv => checked_env_list(bytes, at),
                    Member::Keep => {
                        let (value, end) = decode(bytes, at)?;
                        map.insert(key(name)?, value);
                        Some(end)
                    }
                    Member::Into(inner) => {
                        let (value, end) = build(bytes, at, inner, depth + 1)?;
                        map.insert(key(name)?, value);
                        Some(end)
                    }
                }
            })?;
            Some((Value::Object(map), end))
        }
        b'[' => {
            let inner = cut.elements();
            let mut items = Vec::new();
            let end = elements(bytes, at, |at| {
                let (value, end) = match inner {
                    Some(inner) => build(bytes, at, inner, depth + 1)?,
                    None => decode(bytes, at)?,
                };
                items.push(value);
                Some(end)
            })?;
            Some((Value::Array(items), end))
        }
        _ => decode(bytes, at),
    }
}

/// The text of a name or string written with escapes, as serde_json decodes it.
fn unescaped(raw: &[u8]) -> Option<String> {
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).ok()
}

/// A name (or string) without escapes as a `String`, `None` where serde_json rejects it: a
/// control character, or not UTF-8.
fn key(raw: &[u8]) -> Option<String> {
    if raw.iter().any(|&b| b < 0x20) {
        return None;
    }
    String::from_utf8(raw.to_vec()).ok()
}

/// The JSON value at `at`, decoded by serde_json, and where it ends.
fn decode(bytes: &[u8], at: usize) -> Option<(Value, usize)> {
    // Most kept values are strings without escapes: read here.
    if bytes.get(at) == Some(&b'"') {
        let end = string_end(bytes, at + 1)?;
        let raw = &bytes[at + 1..end - 1];
        if !raw.contains(&b'\\') {
            return Some((Value::String(key(raw)?), end));
        }
    }
    // A stream of one value: it says where the value ended (and requires that what follows
    // could follow a value: whitespace, a comma, a bracket).
    let mut values = serde_json::Deserializer::from_slice(bytes.get(at..)?).into_iter::<Value>();
    let value = values.next()?.ok()?;
    Some((value, at + values.byte_offset()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::arbitrary_json::{Shape, values};
    use crate::server::object::{Cut, Lean, LeanWithoutEnv};
    use crate::server::review::decode_cut;
    use proptest::prelude::*;
    use serde_json::json;

    /// A CREATE review with its members in the apiserver's order.
    fn review(object: &Value, pretty: bool) -> Vec<u8> {
        let object = if pretty {
            serde_json::to_string_pretty(object).unwrap()
        } else {
            object.to_string()
        };
        format!(
            r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{{
            "uid":"u-1","kind":{{"group":"","version":"v1","kind":"Pod"}},"namespace":"shop",
            "operation":"CREATE","userInfo":{{"username":"a"}},"object":{object},
            "oldObject":null,"dryRun":false}}}}"#
        )
        .into_bytes()
    }

    /// When the scan reads the review, it reads what the decoder decodes.
    fn reads_as_decoded<C: Cut + std::fmt::Debug>(body: &[u8]) -> bool {
        let Some(scanned) = scan(body, C::ROOT) else {
            return false;
        };
        let mut decoded = decode_cut::<C>(body).expect("a body the scan reads decodes");
        let mut read = decode_cut::<C>(&scanned.envelope).unwrap();
        assert_eq!(decoded.object.take(), Some(scanned.object));
        assert_eq!(read.object.take(), None);
        assert_eq!(format!("{decoded:?}"), format!("{read:?}"));
        true
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "web-", "namespace": "shop",
                "labels": {"app": "web"}, "annotations": {"a\"b": "c"},
                "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]},
            "spec": {
                "restartPolicy": "Always",
                "affinity": {"nodeAffinity": {"x": [1, 2.5, null, true]}},
                "volumes": [{"name": "v", "configMap": {"name": "scripts"}, "extra": 1}],
                "initContainers": [{"name": "i", "image": "busybox", "restartPolicy": "Always",
                    "env": [{"name": "A", "value": "1"}]}],
                "containers": [{"name": "app", "image": "app:1",
                    "command": ["/bin/sh", "-c", "setup; exec app"],
                    "env": [{"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                    "volumeMounts": [{"name": "v", "mountPath": "/s", "readOnly": true}],
                    "livenessProbe": {"exec": {"command": ["true"]}},
                    "ports": [{"containerPort": 80}]}]
            },
            "status": {"phase": "Pending"}
        })
    }

    #[test]
    fn a_create_is_read_as_the_decoder_reads_it() {
        for pretty in [false, true] {
            let body = review(&pod(), pretty);
            assert!(reads_as_decoded::<LeanWithoutEnv>(&body));
            assert!(reads_as_decoded::<Lean>(&body));
        }
        let deployment = json!({"kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 1, "template": {"metadata": {"labels": {}}, "spec": pod()["spec"]}}});
        assert!(reads_as_decoded::<LeanWithoutEnv>(&review(
            &deployment,
            false
        )));
        let body = include_bytes!("../../benches/fixtures/pod-review.json");
        assert!(reads_as_decoded::<LeanWithoutEnv>(body));
        assert!(reads_as_decoded::<Lean>(body));
    }

    #[test]
    fn keys_with_escapes_are_read_decoded() {
        let body = br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{
            "uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE",
            "object":{"sp\u0065c":{"containers":[{"n\u0061me":"a","image":"x"}]}}}}"#;
        assert!(reads_as_decoded::<Lean>(body));
        let scanned = scan(body, Lean::ROOT).unwrap();
        assert_eq!(scanned.object["spec"]["containers"][0]["name"], "a");
    }

    #[test]
    fn what_the_scan_does_not_read_is_left_to_the_decoder() {
        let object = pod().to_string();
        let body = |operation: &str, object: &str| {
            format!(
                r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{{"uid":"u","kind":{{"group":"","version":"v1","kind":"Pod"}},"operation":"{operation}","object":{object}}}}}"#
            )
        };
        assert!(scan(body("CREATE", &object).as_bytes(), Lean::ROOT).is_some());
        for unread in [
            body("UPDATE", &object),
            body("CREATE", "null"),
            body("CREATE", "[1]"),
            // An env list the engine reports: decoded, to be reported.
            body(
                "CREATE",
                r#"{"spec":{"containers":[{"env":{"name":"A"}}]}}"#,
            ),
            body(
                "CREATE",
                r#"{"spec":{"containers":[{"env":[{"name":1}]}]}}"#,
            ),
            // A key or string kept with a control character: serde_json rejects it.
            body("CREATE", "{\"spec\":{\"containers\":{\"a\u{1}\":1}}}"),
            body("CREATE", "{\"kind\":\"Po\u{1}d\"}"),
            // The object twice, and `operation` after it.
            format!(
                r#"{{"request":{{"operation":"CREATE","object":{object},"object":{object}}}}}"#
            ),
            format!(r#"{{"request":{{"object":{object},"operation":"CREATE"}}}}"#),
        ] {
            assert!(
                scan(unread.as_bytes(), LeanWithoutEnv::ROOT).is_none(),
                "{unread}"
            );
        }
        // Templates nested deeper than the scan follows.
        let mut deep = json!({"containers": [{"name": "a"}]});
        for _ in 0..MAX_DEPTH {
            deep = json!({"template": {"spec": deep}});
        }
        let deep = body("CREATE", &json!({"spec": deep}).to_string());
        assert!(scan(deep.as_bytes(), Lean::ROOT).is_none());
        // Over the size limit.
        let mut big = pod();
        big["metadata"]["annotations"]["pad"] = json!("x".repeat(MAX_BODY_BYTES));
        assert!(scan(&review(&big, false), Lean::ROOT).is_none());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        values(Shape {
            names: &[
                "spec",
                "containers",
                "env",
                "name",
                "template",
                "metadata",
                "annotations",
                "volumes",
            ],
            other_names: "[a-z\"\\\\ ]{0,5}",
            strings: "[ -~\u{e9}\\n]{0,12}",
            depth: 6,
            size: 64,
            width: 5,
        })
    }

    proptest! {
        #[test]
        fn generated_objects_are_read_as_decoded(
            spec in json_value(),
            metadata in json_value(),
            container in json_value(),
            pretty in any::<bool>(),
        ) {
            let mut object = pod();
            object["spec"]["extra"] = spec;
            object["metadata"]["extra"] = metadata;
            object["spec"]["containers"].as_array_mut().unwrap().push(container);
            let body = review(&object, pretty);
            // The lean cut is always read; the cut without env leaves to the decoder an env
            // list the check fails (or one with a member name written with escapes).
            prop_assert!(reads_as_decoded::<Lean>(&body));
            reads_as_decoded::<LeanWithoutEnv>(&body);
        }
    }
}
