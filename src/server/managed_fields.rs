//! A review body without its object's `metadata.managedFields`, cut out before decoding.
//!
//! The apiserver sends every object with its managed fields: per field manager, a `fieldsV1`
//! tree naming each field that manager set. In a Pod review they are a third of the bytes and
//! a fifth of what decoding costs: serde_json reads a value it skips token by token, as it
//! reads one it keeps. Nothing pidone decides reads them ([`crate::server::object`] drops
//! them), so the body is decoded with that one value replaced by `[]`, its end found by a scan
//! that follows only strings and brackets.
//!
//! For a body serde_json accepts, the scan finds exactly the value the decoder would have
//! skipped, so the decoded review is the same (tested here on generated documents, and by the
//! `review_managed_fields` fuzz target on arbitrary ones). Inside the cut value only strings
//! and bracket pairs are checked, not the rest of JSON's grammar: a body whose one fault lies
//! there decodes. The apiserver never sends such a body, and what pidone reads is unchanged.
//! Anything the scan does not follow (no such value, a key written with escapes, nesting
//! deeper than [`MAX_DEPTH`], a body that ends early) leaves the body as it is, for serde_json
//! to decode or reject.

use std::borrow::Cow;
use std::ops::Range;

/// The deepest nesting followed inside the cut value; deeper, the body is left whole. Well
/// under serde_json's limit of 128 levels, so a body too deep for serde_json stays too deep.
const MAX_DEPTH: u32 = 100;

/// The largest body that is cut: the copy and the body together stay within the bytes a body
/// may hold outside the server's shared body budget (`routes::FREE_BODY_BYTES`, which checks
/// this), so that budget still bounds what bodies hold. Larger bodies are decoded whole.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

/// The body with `request.object.metadata.managedFields` replaced by `[]`, or the body itself
/// when it has none, the scan cannot follow it, or the body is over [`MAX_BODY_BYTES`].
pub fn strip(body: &[u8]) -> Cow<'_, [u8]> {
    if body.len() > MAX_BODY_BYTES {
        return Cow::Borrowed(body);
    }
    let Some(span) = find(body) else {
        return Cow::Borrowed(body);
    };
    let mut out = Vec::with_capacity(body.len() - span.len() + 2);
    out.extend_from_slice(&body[..span.start]);
    out.extend_from_slice(b"[]");
    out.extend_from_slice(&body[span.end..]);
    Cow::Owned(out)
}

/// Where the value of `request.object.metadata.managedFields` lies in the body.
pub fn find(body: &[u8]) -> Option<Range<usize>> {
    let mut at = 0;
    for key in ["request", "object", "metadata", "managedFields"] {
        at = enter(body, at, key.as_bytes())?;
    }
    Some(at..skip_value(body, at)?)
}

fn whitespace(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(at) {
        at += 1;
    }
    at
}

/// Just past `byte`, which comes next after any whitespace.
fn expect(bytes: &[u8], at: usize, byte: u8) -> Option<usize> {
    let at = whitespace(bytes, at);
    (*bytes.get(at)? == byte).then_some(at + 1)
}

/// In the object that starts at `at`, the start of the value of `key` (its first occurrence,
/// spelled without escapes); `None` when it is absent or this is not an object.
fn enter(bytes: &[u8], at: usize, key: &[u8]) -> Option<usize> {
    let mut at = expect(bytes, at, b'{')?;
    loop {
        at = whitespace(bytes, at);
        if *bytes.get(at)? != b'"' {
            // `}`: the key is not in this object.
            return None;
        }
        let end = string_end(bytes, at + 1)?;
        let name = &bytes[at + 1..end - 1];
        at = whitespace(bytes, expect(bytes, end, b':')?);
        if name == key {
            return Some(at);
        }
        at = expect(bytes, skip_value(bytes, at)?, b',')?;
    }
}

/// Just past the value that starts at `at`.
fn skip_value(bytes: &[u8], at: usize) -> Option<usize> {
    match *bytes.get(at)? {
        b'"' => string_end(bytes, at + 1),
        b'{' | b'[' => nested_end(bytes, at),
        // A number or a literal: it ends where the enclosing structure goes on.
        _ => Some(
            bytes[at..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .map_or(bytes.len(), |n| at + n),
        ),
    }
}

/// Just past the closing quote of the string whose contents start at `at`. Eight bytes at a
/// time while there is neither a quote nor a backslash among them (most keys and values).
fn string_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    const QUOTES: u64 = ONES * b'"' as u64;
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    loop {
        while let Some(&chunk) = bytes.get(at..).and_then(|rest| rest.first_chunk::<8>()) {
            let word = u64::from_le_bytes(chunk);
            // A byte of `x` is zero where `word` has the byte sought; the lowest flagged byte
            // of `(x - ONES) & !x & HIGHS` is the first zero byte of `x`.
            let (q, b) = (word ^ QUOTES, word ^ BACKSLASHES);
            let found = ((q.wrapping_sub(ONES) & !q) | (b.wrapping_sub(ONES) & !b)) & HIGHS;
            if found != 0 {
                at += (found.trailing_zeros() / 8) as usize;
                break;
            }
            at += 8;
        }
        match *bytes.get(at)? {
            b'"' => return Some(at + 1),
            // The escaped byte cannot end the string (`\"`); `\uXXXX` goes on as plain bytes.
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
}

/// What a byte is to [`nested_end`]: 0 nothing, 1 a quote, 2 an opening bracket, 3 a
/// closing one.
static CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    class[b'"' as usize] = 1;
    class[b'{' as usize] = 2;
    class[b'[' as usize] = 2;
    class[b'}' as usize] = 3;
    class[b']' as usize] = 3;
    class
};

/// Just past the object or array that starts at `at`, each closing bracket matched to its
/// opening one.
fn nested_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    // The open brackets, innermost in the lowest bit: 1 for `{`, 0 for `[`.
    let mut open: u128 = 0;
    let mut depth = 0u32;
    loop {
        let byte = *bytes.get(at)?;
        at += 1;
        match CLASS[usize::from(byte)] {
            0 => {}
            1 => at = string_end(bytes, at)?,
            2 => {
                if depth == MAX_DEPTH {
                    return None;
                }
                open = (open << 1) | u128::from(byte == b'{');
                depth += 1;
            }
            _ => {
                if depth == 0 || (open & 1 == 1) != (byte == b'}') {
                    return None;
                }
                open >>= 1;
                depth -= 1;
                if depth == 0 {
                    return Some(at);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::object::{Full, Lean, LeanWithoutEnv};
    use crate::server::review::decode_cut;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn review(object: &Value) -> Value {
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "shop",
                "operation": "CREATE",
                "userInfo": {"username": "a", "groups": ["x", "y"], "extra": {"k": [{}]}},
                "object": object,
                "oldObject": null,
                "dryRun": false,
                "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
            }
        })
    }

    fn pod(managed_fields: Value) -> Value {
        json!({
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "generateName": "web-",
                "namespace": "shop",
                "labels": {"managedFields": "a label, not the field"},
                "annotations": {"note": "\"managedFields\": [\"]\"}"},
                "managedFields": managed_fields,
            },
            "spec": {"containers": [{"name": "app", "image": "app:1",
                "command": ["sh", "-c", "setup; exec app"],
                "env": [{"name": "A", "value": "{[\"}"}]}]},
        })
    }

    fn managed() -> Value {
        json!([{
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2026-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:ownerReferences": {
                ".": {}, "k:{\"uid\":\"1\"}": {}}}, "f:spec": {"f:containers": {
                "k:{\"name\":\"app\"}": {".": {}, "f:env": {"k:{\"name\":\"A\"}": {}}}}}}
        }])
    }

    /// Decodes with every cut, the original body and the stripped one, and requires the same.
    fn same_decoding(body: &[u8]) {
        let stripped = strip(body);
        let full = |b: &[u8]| format!("{:?}", decode_cut::<Full>(b));
        let lean = |b: &[u8]| format!("{:?}", decode_cut::<Lean>(b));
        let without_env = |b: &[u8]| format!("{:?}", decode_cut::<LeanWithoutEnv>(b).is_ok());
        if decode_cut::<Full>(body).is_ok() {
            assert_eq!(full(body), full(&stripped));
            assert_eq!(lean(body), lean(&stripped));
            assert_eq!(without_env(body), without_env(&stripped));
        }
    }

    #[test]
    fn the_span_is_the_managed_fields_value() {
        let body = serde_json::to_vec(&review(&pod(managed()))).unwrap();
        let span = find(&body).unwrap();
        let value: Value = serde_json::from_slice(&body[span]).unwrap();
        assert_eq!(value, managed());
        same_decoding(&body);
        assert!(strip(&body).len() < body.len());
    }

    #[test]
    fn pretty_printed_bodies_are_followed() {
        let body = serde_json::to_vec_pretty(&review(&pod(managed()))).unwrap();
        let span = find(&body).unwrap();
        let value: Value = serde_json::from_slice(&body[span]).unwrap();
        assert_eq!(value, managed());
        same_decoding(&body);
    }

    #[test]
    fn bodies_without_the_value_are_left_alone() {
        let mut pod = pod(Value::Null);
        pod["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        for body in [
            serde_json::to_vec(&review(&pod)).unwrap(),
            serde_json::to_vec(&review(&Value::Null)).unwrap(),
            br#"{"request":{"object":{"metadata":{}}}}"#.to_vec(),
            br#"{"request":{"object":{"metadata":{"managedFields":[1,2"#.to_vec(),
            br#"{"request":{"object":{"metadata":{"managedFields":[}]}}}}"#.to_vec(),
            br#"{"request":{"object":{"metadata":{"managed\u0046ields":[]}}}}"#.to_vec(),
            b"[1,2,3]".to_vec(),
            Vec::new(),
        ] {
            assert!(matches!(strip(&body), Cow::Borrowed(_)), "{body:?}");
        }
    }

    #[test]
    fn bodies_over_the_limit_are_decoded_whole() {
        let mut object = pod(managed());
        object["metadata"]["annotations"]["padding"] = Value::String("x".repeat(MAX_BODY_BYTES));
        let body = serde_json::to_vec(&review(&object)).unwrap();
        assert!(find(&body).is_some());
        assert!(matches!(strip(&body), Cow::Borrowed(_)));
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_left_to_serde_json() {
        let deep = "[".repeat(MAX_DEPTH as usize + 1) + &"]".repeat(MAX_DEPTH as usize + 1);
        let body =
            format!(r#"{{"request":{{"object":{{"metadata":{{"managedFields":{deep}}}}}}}}}"#);
        assert!(find(body.as_bytes()).is_none());
        let at_limit = "[".repeat(MAX_DEPTH as usize) + &"]".repeat(MAX_DEPTH as usize);
        let body =
            format!(r#"{{"request":{{"object":{{"metadata":{{"managedFields":{at_limit}}}}}}}}}"#);
        assert!(find(body.as_bytes()).is_some());
    }

    #[test]
    fn the_benchmark_review_is_stripped_to_the_same_decoding() {
        let body = include_bytes!("../../benches/fixtures/pod-review.json");
        assert!(find(body).is_some());
        same_decoding(body);
    }

    #[test]
    fn structural_bytes_dropped_into_real_managed_fields_decode_the_same_or_not_at_all() {
        let body = include_bytes!("../../benches/fixtures/pod-review.json");
        let span = find(body).unwrap();
        for at in span.clone().step_by(37) {
            for byte in *b"\"\\{}[],: x" {
                let mut changed = body.to_vec();
                changed[at] = byte;
                same_decoding(&changed);
                changed.insert(at, byte);
                same_decoding(&changed);
            }
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("managedFields".to_string()),
            Just("metadata".to_string()),
            Just("object".to_string()),
            "[a-z\"\\\\{}\\[\\]:, ]{0,6}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            // Eighths print and read back exactly (serde_json's float parsing is not exact).
            any::<i32>().prop_map(|i| Value::from(f64::from(i) / 8.0)),
            "[ -~\u{e9}\u{1F600}\\n\\t]{0,24}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn generated_reviews_decode_the_same_stripped(
            managed in json_value(),
            labels in json_value(),
            pretty in any::<bool>(),
        ) {
            let mut object = pod(managed.clone());
            object["metadata"]["labels"] = labels;
            let review = review(&object);
            let body = if pretty {
                serde_json::to_vec_pretty(&review).unwrap()
            } else {
                serde_json::to_vec(&review).unwrap()
            };
            let span = find(&body).unwrap();
            let found: Value = serde_json::from_slice(&body[span]).unwrap();
            prop_assert_eq!(found, managed);
            same_decoding(&body);
        }
    }
}
