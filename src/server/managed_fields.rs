//! A review body without its objects' `metadata.managedFields`, cut out before decoding.
//!
//! The apiserver sends every object with its managed fields: per field manager, a `fieldsV1`
//! tree naming each field that manager set. In a Pod review they are a third of the bytes and
//! a fifth of what decoding costs: serde_json reads a value it skips token by token, as it
//! reads one it keeps. Nothing pidone decides reads them ([`crate::server::object`] drops
//! them, and `oldObject` is only ever parsed that way), so the body is decoded with those
//! values replaced by `[]`, their ends found by a scan that follows only strings and brackets.
//!
//! For a body serde_json accepts, the scan finds exactly the values the decoder would have
//! skipped, so the decoded review is the same (tested here on generated documents, and by the
//! `review_managed_fields` fuzz target on arbitrary ones). Inside a cut value only strings and
//! bracket pairs are checked, not the rest of JSON's grammar: a body whose one fault lies
//! there decodes. The apiserver never sends such a body, and what pidone reads is unchanged.
//! Anything the scan does not follow (no such value, a key written with escapes, nesting
//! deeper than [`MAX_DEPTH`], a body that ends early) is left as it is, for serde_json to
//! decode or reject.

use std::borrow::Cow;
use std::ops::Range;

/// The deepest nesting followed inside the cut value; deeper, the body is left whole. Well
/// under serde_json's limit of 128 levels, so a body too deep for serde_json stays too deep.
const MAX_DEPTH: u32 = 100;

/// The largest body that is cut: the copy and the body together stay within the bytes a body
/// may hold outside the server's shared body budget (`routes::FREE_BODY_BYTES`, which checks
/// this), so that budget still bounds what bodies hold. Larger bodies are decoded whole.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

/// The body with the object's managed fields replaced by `[]` (and the old object's, on an
/// UPDATE), or the body itself when it has none, the scan cannot follow it, or the body is over
/// [`MAX_BODY_BYTES`].
pub fn strip(body: &[u8]) -> Cow<'_, [u8]> {
    if body.len() > MAX_BODY_BYTES {
        return Cow::Borrowed(body);
    }
    let spans = find(body);
    if spans.is_empty() {
        return Cow::Borrowed(body);
    }
    let cut: usize = spans.iter().map(Range::len).sum();
    let mut out = Vec::with_capacity(body.len() - cut + 2 * spans.len());
    let mut from = 0;
    for span in spans {
        out.extend_from_slice(&body[from..span.start]);
        out.extend_from_slice(b"[]");
        from = span.end;
    }
    out.extend_from_slice(&body[from..]);
    Cow::Owned(out)
}

/// Where the values of `metadata.managedFields` lie in the body, in order: the object's, and
/// on an UPDATE the old object's. The scan stops after the last one it looks for, so that the
/// rest of a CREATE's object is not read twice; an UPDATE is recognised by `operation`, which
/// the apiserver writes before the objects (written after them, only the object's are found).
pub fn find(body: &[u8]) -> Vec<Range<usize>> {
    let mut found = Vec::with_capacity(2);
    // `None` here is the end of the scan, whether it is done or cannot follow the body: what
    // it found up to there are whole values either way.
    let _ = members(body, 0, |name, at| match name {
        b"request" => review_request(body, at, &mut found),
        _ => skip_value(body, at),
    });
    found
}

/// Past the `request` at `at`, noting the managed fields of its objects.
fn review_request(bytes: &[u8], at: usize, found: &mut Vec<Range<usize>>) -> Option<usize> {
    let mut update = false;
    members(bytes, at, |name, at| match name {
        b"operation" => {
            let end = skip_value(bytes, at)?;
            update = &bytes[at..end] == b"\"UPDATE\"";
            Some(end)
        }
        b"object" => managed_fields_of(bytes, at, found, !update),
        b"oldObject" => managed_fields_of(bytes, at, found, true),
        _ => skip_value(bytes, at),
    })
}

/// Past the object at `at`, noting where its `metadata.managedFields` lies; `None` right after
/// noting it when `last`.
fn managed_fields_of(
    bytes: &[u8],
    at: usize,
    found: &mut Vec<Range<usize>>,
    last: bool,
) -> Option<usize> {
    if bytes.get(at) != Some(&b'{') {
        return skip_value(bytes, at);
    }
    members(bytes, at, |name, at| match name {
        b"metadata" if bytes.get(at) == Some(&b'{') => members(bytes, at, |name, at| {
            let end = skip_value(bytes, at)?;
            if name == b"managedFields" {
                found.push(at..end);
                if last {
                    return None;
                }
            }
            Some(end)
        }),
        _ => skip_value(bytes, at),
    })
}

/// Past the object at `at`, calling `value` with each member's name (its raw text, escapes
/// as written) and the start of its value, which returns the end of that value.
fn members(
    bytes: &[u8],
    at: usize,
    mut value: impl FnMut(&[u8], usize) -> Option<usize>,
) -> Option<usize> {
    let mut at = whitespace(bytes, expect(bytes, at, b'{')?);
    if *bytes.get(at)? == b'}' {
        return Some(at + 1);
    }
    loop {
        at = whitespace(bytes, at);
        if *bytes.get(at)? != b'"' {
            return None;
        }
        let end = string_end(bytes, at + 1)?;
        let name = &bytes[at + 1..end - 1];
        at = whitespace(bytes, expect(bytes, end, b':')?);
        at = whitespace(bytes, value(name, at)?);
        match *bytes.get(at)? {
            b',' => at += 1,
            b'}' => return Some(at + 1),
            _ => return None,
        }
    }
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

    fn review(object: &Value) -> Vec<u8> {
        review_body(object, &Value::Null, "CREATE", false)
    }

    /// A review body with its members in the apiserver's order (`operation` before the
    /// objects), which `json!` would sort.
    fn review_body(object: &Value, old: &Value, operation: &str, pretty: bool) -> Vec<u8> {
        let text = |v: &Value| {
            if pretty {
                serde_json::to_string_pretty(v).unwrap()
            } else {
                v.to_string()
            }
        };
        format!(
            r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{{
            "uid":"u-1","kind":{{"group":"","version":"v1","kind":"Pod"}},
            "resource":{{"group":"","version":"v1","resource":"pods"}},"namespace":"shop",
            "operation":{},"userInfo":{{"username":"a","groups":["x","y"],"extra":{{"k":[{{}}]}}}},
            "object":{},"oldObject":{},"dryRun":false,
            "options":{{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}}}}}}"#,
            Value::from(operation),
            text(object),
            text(old)
        )
        .into_bytes()
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

    /// What a review decodes to in cut `C`, the old object parsed as pidone parses it (its
    /// raw text is not compared: it is the part that changes).
    fn decoded<C: crate::server::object::Cut + std::fmt::Debug>(body: &[u8]) -> String {
        match decode_cut::<C>(body) {
            Ok(mut r) => {
                let old = r
                    .old_object
                    .take()
                    .map(|raw| crate::server::object::parse(raw.get()).map_err(|e| e.to_string()));
                format!("{r:?} {old:?}")
            }
            Err(e) => format!("{e:?}"),
        }
    }

    /// Decodes with every cut, the original body and the stripped one, and requires the same.
    fn same_decoding(body: &[u8]) {
        let stripped = strip(body);
        if decode_cut::<Full>(body).is_ok() {
            assert_eq!(decoded::<Full>(body), decoded::<Full>(&stripped));
            assert_eq!(decoded::<Lean>(body), decoded::<Lean>(&stripped));
            assert_eq!(
                decode_cut::<LeanWithoutEnv>(body).is_ok(),
                decode_cut::<LeanWithoutEnv>(&stripped).is_ok()
            );
        }
    }

    /// The one span found, parsed.
    fn only_span(body: &[u8]) -> Value {
        let spans = find(body);
        assert_eq!(spans.len(), 1, "{spans:?}");
        serde_json::from_slice(&body[spans[0].clone()]).unwrap()
    }

    #[test]
    fn the_span_is_the_managed_fields_value() {
        let body = review(&pod(managed()));
        assert_eq!(only_span(&body), managed());
        same_decoding(&body);
        assert!(strip(&body).len() < body.len());
    }

    #[test]
    fn an_update_has_both_objects_cut_and_a_create_stops_after_its_object() {
        let mut old_fields = managed();
        old_fields[0]["manager"] = json!("kubectl");
        let body = review_body(&pod(managed()), &pod(old_fields.clone()), "UPDATE", false);
        let spans = find(&body);
        let values: Vec<Value> = spans
            .iter()
            .map(|s| serde_json::from_slice(&body[s.clone()]).unwrap())
            .collect();
        assert_eq!(values, [managed(), old_fields.clone()]);
        same_decoding(&body);
        // `operation` written after the objects (here by sorting the members): the old
        // object's are not looked for.
        let sorted = serde_json::from_slice::<Value>(&body).unwrap().to_string();
        assert_eq!(only_span(sorted.as_bytes()), managed());
        same_decoding(sorted.as_bytes());
        // Not an UPDATE: the old object is not looked at.
        let body = review_body(&pod(managed()), &pod(old_fields), "DELETE", false);
        assert_eq!(only_span(&body), managed());
        same_decoding(&body);
    }

    #[test]
    fn pretty_printed_bodies_are_followed() {
        let body = review_body(&pod(managed()), &Value::Null, "CREATE", true);
        assert_eq!(only_span(&body), managed());
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
            review(&pod),
            review(&Value::Null),
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
        let body = review(&object);
        assert_eq!(find(&body).len(), 1);
        assert!(matches!(strip(&body), Cow::Borrowed(_)));
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_left_to_serde_json() {
        let deep = "[".repeat(MAX_DEPTH as usize + 1) + &"]".repeat(MAX_DEPTH as usize + 1);
        let body =
            format!(r#"{{"request":{{"object":{{"metadata":{{"managedFields":{deep}}}}}}}}}"#);
        assert!(find(body.as_bytes()).is_empty());
        let at_limit = "[".repeat(MAX_DEPTH as usize) + &"]".repeat(MAX_DEPTH as usize);
        let body =
            format!(r#"{{"request":{{"object":{{"metadata":{{"managedFields":{at_limit}}}}}}}}}"#);
        assert_eq!(find(body.as_bytes()).len(), 1);
    }

    #[test]
    fn the_benchmark_review_is_stripped_to_the_same_decoding() {
        let body = include_bytes!("../../benches/fixtures/pod-review.json");
        assert_eq!(find(body).len(), 1);
        same_decoding(body);
    }

    #[test]
    fn structural_bytes_dropped_into_real_managed_fields_decode_the_same_or_not_at_all() {
        let body = include_bytes!("../../benches/fixtures/pod-review.json");
        let span = find(body)[0].clone();
        for at in span.step_by(37) {
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
            old_managed in json_value(),
            labels in json_value(),
            is_update in any::<bool>(),
            pretty in any::<bool>(),
        ) {
            let mut object = pod(managed.clone());
            object["metadata"]["labels"] = labels;
            let body = if is_update {
                review_body(&object, &pod(old_managed.clone()), "UPDATE", pretty)
            } else {
                review_body(&object, &Value::Null, "CREATE", pretty)
            };
            let found: Vec<Value> = find(&body)
                .into_iter()
                .map(|s| serde_json::from_slice(&body[s]).unwrap())
                .collect();
            if is_update {
                prop_assert_eq!(found, vec![managed, old_managed]);
            } else {
                prop_assert_eq!(found, vec![managed]);
            }
            same_decoding(&body);
        }
    }
}
