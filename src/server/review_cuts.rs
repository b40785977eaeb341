//! The values of a review body that pidone decodes it without, found before decoding.
//!
//! - The objects' `metadata.managedFields`: per field manager, a `fieldsV1` tree naming each
//!   field that manager set. In a Pod review they are a third of the bytes and a fifth of what
//!   decoding costs: serde_json reads a value it skips token by token, as it reads one it keeps.
//!   Nothing pidone decides reads them ([`crate::server::object`] drops them, and `oldObject` is
//!   only ever parsed that way). Cut on every review.
//! - On a CREATE, the containers' `env` lists, where the lean cut looks for them (the
//!   `containers` and `initContainers` of a pod spec, in an object, a `template` or a
//!   `jobTemplate`). They are most of a typical pod's remaining bytes and are read only by an
//!   evaluation that says so (`env_read`); the decoder that leaves them out
//!   ([`crate::server::object::LeanWithoutEnv`]) checks their shape as serde_json skips them,
//!   which costs about as much as building them. The scan checks it instead (an array whose
//!   object entries' `name` is a string or `null`), and cuts only a list that passes. Only on a
//!   CREATE: an UPDATE compares the object's pod template with the old object's, env included.
//!
//! A cut value is replaced by `[]` and found by [`crate::server::json_scan`], which follows
//! only strings and brackets inside it. For a body serde_json accepts, the scan finds exactly
//! the values the decoder would have read there, so the review decoded from the cut body is the
//! same but for those values (tested here on generated documents, and by the `review_cuts` fuzz
//! target on arbitrary ones). Inside a cut value only strings, bracket depth and (in an env
//! list) the members of its entries are checked, not the rest of JSON's grammar: a body whose
//! one fault lies there decodes. The apiserver never sends such a body, and what pidone reads
//! is unchanged. Anything the scan does not follow (no such value, a key written with escapes,
//! nesting deeper than [`crate::server::json_scan::MAX_DEPTH`], `operation` written after the object, a body
//! that ends early) is left as it is, for serde_json to decode or reject.

use crate::server::json_scan::{elements, members, skip_value, string_end};
use crate::server::object::{Member, Pruned};
use std::borrow::Cow;
use std::ops::Range;

/// The largest body that is cut: the copy and the body together stay within the bytes a body
/// may hold outside the server's shared body budget (`routes::FREE_BODY_BYTES`, which checks
/// this), so that budget still bounds what bodies hold. Larger bodies are decoded whole.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

/// What a cut value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// An object's `metadata.managedFields`.
    ManagedFields,
    /// A container's `env` list, checked.
    Env,
}

/// One value to cut: where it lies in the body, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub range: Range<usize>,
    pub part: Part,
}

/// The values a body is decoded without, in the order they lie in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cuts {
    pub spans: Vec<Span>,
}

impl Cuts {
    /// The cuts of `body`; none when it is over [`MAX_BODY_BYTES`].
    pub fn of(body: &[u8]) -> Cuts {
        if body.len() > MAX_BODY_BYTES {
            return Cuts::default();
        }
        Cuts { spans: find(body) }
    }

    /// Whether an env list is cut.
    pub fn has_env(&self) -> bool {
        self.spans.iter().any(|s| s.part == Part::Env)
    }

    /// The body without the managed fields, or the body itself when there are none.
    pub fn without_managed_fields<'b>(&self, body: &'b [u8]) -> Cow<'b, [u8]> {
        replace(
            body,
            self.spans.iter().filter(|s| s.part == Part::ManagedFields),
        )
    }

    /// The body without any value found (managed fields and env lists).
    pub fn without_all<'b>(&self, body: &'b [u8]) -> Cow<'b, [u8]> {
        replace(body, self.spans.iter())
    }
}

/// `body` with each span replaced by `[]`.
fn replace<'b, 's>(body: &'b [u8], spans: impl Iterator<Item = &'s Span> + Clone) -> Cow<'b, [u8]> {
    let cut: usize = spans.clone().map(|s| s.range.len()).sum();
    let count = spans.clone().count();
    if count == 0 {
        return Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len() - cut + 2 * count);
    let mut from = 0;
    for span in spans {
        out.extend_from_slice(&body[from..span.range.start]);
        out.extend_from_slice(b"[]");
        from = span.range.end;
    }
    out.extend_from_slice(&body[from..]);
    Cow::Owned(out)
}

/// Where the values to cut lie in the body, in order: the object's managed fields, on an
/// UPDATE the old object's, and on a CREATE the object's env lists. The scan stops after the
/// last value it looks for (after a CREATE's object, or after the last managed fields
/// otherwise), so that the rest of the body is not read twice. The operation is recognised by
/// `operation`, which the apiserver writes before the objects (written after them, only the
/// object's managed fields are found).
pub fn find(body: &[u8]) -> Vec<Span> {
    let mut found = Vec::new();
    // `None` here is the end of the scan, whether it is done or cannot follow the body: what
    // it found up to there are whole values either way.
    let _ = members(body, 0, |name, at| match name {
        b"request" => review_request(body, at, &mut found),
        _ => skip_value(body, at),
    });
    found
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Unknown,
    Create,
    Update,
}

/// Past the `request` at `at`, noting the values to cut in its objects.
fn review_request(bytes: &[u8], at: usize, found: &mut Vec<Span>) -> Option<usize> {
    let mut operation = Operation::Unknown;
    members(bytes, at, |name, at| match name {
        b"operation" => {
            let end = skip_value(bytes, at)?;
            operation = match &bytes[at..end] {
                b"\"CREATE\"" => Operation::Create,
                b"\"UPDATE\"" => Operation::Update,
                _ => Operation::Unknown,
            };
            Some(end)
        }
        b"object" => {
            let end = object(bytes, at, found, operation)?;
            // Nothing is looked for after the object, unless it is an UPDATE's.
            (operation == Operation::Update).then_some(end)
        }
        b"oldObject" => object(bytes, at, found, Operation::Unknown),
        _ => skip_value(bytes, at),
    })
}

/// Past the object at `at`, noting its managed fields; on a CREATE, its env lists too, else
/// `None` right after the managed fields when the object is the last place looked at.
fn object(bytes: &[u8], at: usize, found: &mut Vec<Span>, operation: Operation) -> Option<usize> {
    if bytes.get(at) != Some(&b'{') {
        return skip_value(bytes, at);
    }
    let create = operation == Operation::Create;
    // An UPDATE's object is followed by its old object; any other's is the last.
    let last = operation == Operation::Unknown;
    members(bytes, at, |name, at| match name {
        b"metadata" if bytes.get(at) == Some(&b'{') => members(bytes, at, |name, at| {
            let end = skip_value(bytes, at)?;
            if name == b"managedFields" {
                found.push(Span {
                    range: at..end,
                    part: Part::ManagedFields,
                });
                if last {
                    return None;
                }
            }
            Some(end)
        }),
        // The env lists are where the cut without env checks them: its own grammar leads.
        _ if create => env_lists(bytes, at, Pruned::LEAN_TOP_WITHOUT_ENV.member(name), found),
        _ => skip_value(bytes, at),
    })
}

/// Past the value at `at`, which the cut without env takes as `member`, noting the env lists
/// inside it that pass the check.
fn env_lists(bytes: &[u8], at: usize, member: Member, found: &mut Vec<Span>) -> Option<usize> {
    match (member, bytes.get(at)) {
        (Member::Into(inner), Some(b'{')) => members(bytes, at, |name, at| {
            env_lists(bytes, at, inner.member(name), found)
        }),
        (Member::Into(inner), Some(b'[')) => match inner.elements() {
            Some(element) => elements(bytes, at, |at| {
                env_lists(bytes, at, Member::Into(element), found)
            }),
            None => skip_value(bytes, at),
        },
        (Member::CheckEnv, _) => match checked_env_list(bytes, at) {
            Some(end) => {
                found.push(Span {
                    range: at..end,
                    part: Part::Env,
                });
                Some(end)
            }
            None => skip_value(bytes, at),
        },
        _ => skip_value(bytes, at),
    }
}

/// Just past the env list at `at` when the engine would take it as it is (as
/// `object::EnvCheck` checks it): an array whose object entries' `name` is a string or `null`,
/// with no member name written with escapes (which the decoder would read as `name`). `None`
/// for anything else, which is left to the decoder.
pub fn checked_env_list(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    elements(bytes, at, |at| {
        if let Some(end) = compact_entry_end(bytes, at) {
            return Some(end);
        }
        if bytes.get(at) != Some(&b'{') {
            return skip_value(bytes, at);
        }
        members(bytes, at, |name, at| {
            if name.contains(&b'\\') {
                return None;
            }
            let end = skip_value(bytes, at)?;
            let value = &bytes[at..end];
            if name == b"name" && value.first() != Some(&b'"') && value != b"null" {
                return None;
            }
            Some(end)
        })
    })
}

/// Just past the env entry at `at` when it is written as the apiserver writes most,
/// `{"name":"…"}`, `{"name":"…","value":"…"}` or `{"name":"…","valueFrom":…}` (compact, in
/// this order), which passes the check; `None` for any other entry, whose members are then
/// walked one by one.
fn compact_entry_end(bytes: &[u8], at: usize) -> Option<usize> {
    const NAME: &[u8] = b"{\"name\":\"";
    const VALUE: &[u8] = b",\"value\":\"";
    const VALUE_FROM: &[u8] = b",\"valueFrom\":";
    let after = |at: usize, prefix: &[u8]| {
        bytes
            .get(at..)?
            .starts_with(prefix)
            .then_some(at + prefix.len())
    };
    let mut at = string_end(bytes, after(at, NAME)?)?;
    if let Some(value) = after(at, VALUE) {
        at = string_end(bytes, value)?;
    } else if let Some(value) = after(at, VALUE_FROM) {
        at = skip_value(bytes, value)?;
    }
    (bytes.get(at) == Some(&b'}')).then_some(at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::arbitrary_json::{Shape, values};
    use crate::server::json_scan::MAX_DEPTH;
    use crate::server::object::{Full, Lean, LeanWithoutEnv};
    use crate::server::review::decode_cut;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// The body without its managed fields, as the server decodes it.
    fn strip(body: &[u8]) -> Cow<'_, [u8]> {
        Cuts::of(body).without_managed_fields(body)
    }

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

    /// Whether the env list `env` is one the scan cuts: an array whose object entries' `name`
    /// is a string or null, with no member name serde_json writes with escapes.
    fn env_passes(env: &Value) -> bool {
        let Some(entries) = env.as_array() else {
            return false;
        };
        entries.iter().filter_map(Value::as_object).all(|entry| {
            entry
                .keys()
                .all(|k| !k.contains(['"', '\\']) && !k.chars().any(char::is_control))
                && entry
                    .get("name")
                    .is_none_or(|n| n.is_string() || n.is_null())
        })
    }

    /// `object` with the env lists the scan cuts replaced by `[]`, found as the lean cut's
    /// grammar finds them.
    fn blank_env(object: &mut Value) {
        // Written out here apart from the grammar the scan follows, to check it.
        #[derive(Clone, Copy)]
        enum Place {
            Top,
            Spec,
            Template,
        }
        fn walk(value: &mut Value, place: Place) {
            let Some(map) = value.as_object_mut() else {
                return;
            };
            for (name, value) in map.iter_mut() {
                match (place, name.as_str()) {
                    (Place::Top | Place::Template, "spec") => walk(value, Place::Spec),
                    (Place::Top | Place::Spec, "template") | (Place::Spec, "jobTemplate") => {
                        walk(value, Place::Template)
                    }
                    (Place::Spec, "containers" | "initContainers") => {
                        for c in value.as_array_mut().into_iter().flatten() {
                            if let Some(env) = c.get_mut("env")
                                && env_passes(env)
                            {
                                *env = json!([]);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        walk(object, Place::Top);
    }

    /// Decodes with every cut, the original body and the cut ones, and requires the same:
    /// the managed fields cut changes nothing decoded; the env lists cut changes nothing the
    /// cut without env decodes, and in the whole object only the lists cut.
    fn same_decoding(body: &[u8]) {
        let cuts = Cuts::of(body);
        let managed = cuts.without_managed_fields(body);
        let all = cuts.without_all(body);
        if decode_cut::<Full>(body).is_err() {
            return;
        }
        assert_eq!(decoded::<Full>(body), decoded::<Full>(&managed));
        assert_eq!(decoded::<Lean>(body), decoded::<Lean>(&managed));
        let (whole, cut) = (
            decode_cut::<LeanWithoutEnv>(body),
            decode_cut::<LeanWithoutEnv>(&all),
        );
        assert_eq!(whole.is_ok(), cut.is_ok());
        if whole.is_ok() {
            assert_eq!(
                decoded::<LeanWithoutEnv>(body),
                decoded::<LeanWithoutEnv>(&all)
            );
        }
        let mut expected = decode_cut::<Full>(body).unwrap();
        if cuts.has_env() {
            assert!(expected.operation == "CREATE");
            if let Some(object) = &mut expected.object {
                blank_env(object);
            }
        }
        let mut got = decode_cut::<Full>(&all).unwrap();
        assert_eq!(expected.object.take(), got.object.take());
        // The old objects, compared above, are raw text: their managed fields are cut.
        (expected.old_object, got.old_object) = (None, None);
        assert_eq!(format!("{expected:?}"), format!("{got:?}"));
    }

    fn spans_of(body: &[u8], part: Part) -> Vec<Value> {
        find(body)
            .into_iter()
            .filter(|s| s.part == part)
            .map(|s| serde_json::from_slice(&body[s.range]).unwrap())
            .collect()
    }

    /// The one managed fields span found, parsed.
    fn only_span(body: &[u8]) -> Value {
        let spans = spans_of(body, Part::ManagedFields);
        assert_eq!(spans.len(), 1, "{spans:?}");
        spans[0].clone()
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
        assert_eq!(
            spans_of(&body, Part::ManagedFields),
            [managed(), old_fields.clone()]
        );
        // An UPDATE keeps its env lists: its pod templates are compared whole.
        assert!(spans_of(&body, Part::Env).is_empty());
        same_decoding(&body);
        // `operation` written after the objects (here by sorting the members): the old
        // object's are not looked for, nor env lists.
        let sorted = serde_json::from_slice::<Value>(&body).unwrap().to_string();
        assert_eq!(only_span(sorted.as_bytes()), managed());
        assert!(spans_of(sorted.as_bytes(), Part::Env).is_empty());
        same_decoding(sorted.as_bytes());
        // Not an UPDATE: the old object is not looked at.
        let body = review_body(&pod(managed()), &pod(old_fields), "DELETE", false);
        assert_eq!(only_span(&body), managed());
        same_decoding(&body);
    }

    #[test]
    fn a_create_has_its_checked_env_lists_cut() {
        let env = json!([{"name": "A", "value": "{[\"}"}]);
        let body = review(&pod(managed()));
        assert_eq!(spans_of(&body, Part::Env), [env]);
        let found = find(&body);
        assert_eq!(found[0].part, Part::ManagedFields);
        // A workload's templates, a CronJob's job template, init containers; not a list
        // elsewhere, not an ephemeral container's, not one the check fails.
        let good = json!([{"name": "X"}, {"name": null, "valueFrom": {"a": [1]}}, 7, []]);
        let cron = json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {
        "metadata": {"env": [1]},
        "spec": {
            "initContainers": [{"name": "i", "env": good}],
            "containers": [
                {"name": "a", "env": [{"name": 5}]},
                {"name": "b", "env": {"name": "A"}},
                {"name": "c", "env": [{"na\u{0}me": 5}]},
                {"name": "d", "env": null},
                {"name": "e", "env": [{"name": "B", "value": "1"}]},
            ],
            "ephemeralContainers": [{"name": "x", "env": [{"name": "C"}]}],
            "env": [{"name": "D"}],
        }}}}}});
        let body = review(&cron);
        // In the body's order: `json!` sorts `containers` before `initContainers`.
        assert_eq!(
            spans_of(&body, Part::Env),
            [json!([{"name": "B", "value": "1"}]), good]
        );
        same_decoding(&body);
        let deployment = json!({"kind": "Deployment", "spec": {"template": {"spec": {
            "containers": [{"name": "a", "env": [{"name": "A"}]}]}}}});
        assert_eq!(spans_of(&review(&deployment), Part::Env).len(), 1);
        same_decoding(&review(&deployment));
        // A name written with escapes is read as `name` by the decoder: not cut.
        let escaped = br#"{"request":{"operation":"CREATE","object":{"spec":{"containers":[
            {"env":[{"n\u0061me":5}]},{"env":[{"name":"A"}]}]}}}}"#;
        assert_eq!(spans_of(escaped, Part::Env), [json!([{"name": "A"}])]);
    }

    #[test]
    fn compact_entries_are_read_at_once_and_others_walked() {
        for entry in [
            r#"{"name":"A"}"#,
            r#"{"name":"A","value":"x\"y"}"#,
            r#"{"name":"A","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}"#,
        ] {
            assert_eq!(compact_entry_end(entry.as_bytes(), 0), Some(entry.len()));
            let list = format!("[{entry}]");
            assert_eq!(checked_env_list(list.as_bytes(), 0), Some(list.len()));
        }
        for entry in [
            r#"{"value":"x","name":"A"}"#,
            r#"{ "name":"A"}"#,
            r#"{"name":"A","value":"x","extra":1}"#,
            r#"{"name":"A","value":1}"#,
        ] {
            assert_eq!(compact_entry_end(entry.as_bytes(), 0), None, "{entry}");
            let list = format!("[{entry}]");
            assert_eq!(checked_env_list(list.as_bytes(), 0), Some(list.len()));
        }
        for list in [
            r#"[{"name":1}]"#,
            r#"[{"name":"A","name":{}}]"#,
            r#"{"name":"A"}"#,
        ] {
            assert_eq!(checked_env_list(list.as_bytes(), 0), None, "{list}");
        }
    }

    #[test]
    fn pretty_printed_bodies_are_followed() {
        let body = review_body(&pod(managed()), &Value::Null, "CREATE", true);
        assert_eq!(only_span(&body), managed());
        assert_eq!(spans_of(&body, Part::Env).len(), 1);
        same_decoding(&body);
    }

    #[test]
    fn bodies_without_the_value_are_left_alone() {
        let mut pod = pod(Value::Null);
        pod["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        pod["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("env");
        for body in [
            review(&pod),
            review(&Value::Null),
            br#"{"request":{"object":{"metadata":{}}}}"#.to_vec(),
            br#"{"request":{"object":{"metadata":{"managedFields":[1,2"#.to_vec(),
            br#"{"request":{"object":{"metadata":{"managed\u0046ields":[]}}}}"#.to_vec(),
            br#"{"request":{"operation":"CREATE","object":{"spec":{"containers":[{"env":[1,2"#
                .to_vec(),
            b"[1,2,3]".to_vec(),
            Vec::new(),
        ] {
            let cuts = Cuts::of(&body);
            assert!(
                matches!(cuts.without_all(&body), Cow::Borrowed(_)),
                "{body:?}"
            );
        }
    }

    #[test]
    fn bodies_over_the_limit_are_decoded_whole() {
        let mut object = pod(managed());
        object["metadata"]["annotations"]["padding"] = Value::String("x".repeat(MAX_BODY_BYTES));
        let body = review(&object);
        assert_eq!(find(&body).len(), 2);
        assert!(Cuts::of(&body).spans.is_empty());
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
    fn the_benchmark_review_is_cut_to_the_same_decoding() {
        let body = include_bytes!("../../benches/fixtures/pod-review.json");
        let found = find(body);
        assert_eq!(
            found.iter().map(|s| s.part).collect::<Vec<_>>(),
            [Part::ManagedFields, Part::Env]
        );
        same_decoding(body);
    }

    #[test]
    fn structural_bytes_dropped_into_real_cut_values_decode_the_same_or_not_at_all() {
        let body = include_bytes!("../../benches/fixtures/pod-review.json");
        for span in find(body) {
            for at in span.range.step_by(37) {
                for byte in *b"\"\\{}[],: x" {
                    let mut changed = body.to_vec();
                    changed[at] = byte;
                    same_decoding(&changed);
                    changed.insert(at, byte);
                    same_decoding(&changed);
                }
            }
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        values(Shape {
            names: &["managedFields", "metadata", "object", "name", "env"],
            other_names: "[a-z\"\\\\{}\\[\\]:, ]{0,6}",
            strings: "[ -~\u{e9}\u{1F600}\\n\\t]{0,24}",
            depth: 5,
            size: 48,
            width: 6,
        })
    }

    /// Env lists as the apiserver sends them, and anything else.
    fn env_list() -> impl Strategy<Value = Value> {
        let entry = (
            "[A-Z_]{1,8}",
            prop_oneof![
                "[ -~]{0,12}".prop_map(|v| json!({"value": v})),
                json_value().prop_map(|v| json!({"valueFrom": v})),
                json_value().prop_map(|v| json!({"value": v})),
            ],
        )
            .prop_map(|(name, mut rest)| {
                rest["name"] = Value::String(name);
                rest
            });
        prop_oneof![
            prop::collection::vec(entry, 0..5).prop_map(Value::Array),
            json_value(),
        ]
    }

    proptest! {
        #[test]
        fn generated_reviews_decode_the_same_cut(
            managed in json_value(),
            old_managed in json_value(),
            labels in json_value(),
            envs in prop::collection::vec(env_list(), 3),
            is_update in any::<bool>(),
            pretty in any::<bool>(),
            as_template in any::<bool>(),
        ) {
            let mut object = pod(managed.clone());
            object["metadata"]["labels"] = labels;
            object["spec"]["containers"][0]["env"] = envs[0].clone();
            object["spec"]["containers"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "b", "env": envs[1]}));
            object["spec"]["initContainers"] = json!([{"name": "i", "env": envs[2]}]);
            if as_template {
                let spec = object["spec"].take();
                object["spec"] = json!({"replicas": 1, "template": {"spec": spec}});
            }
            let body = if is_update {
                review_body(&object, &pod(old_managed.clone()), "UPDATE", pretty)
            } else {
                review_body(&object, &Value::Null, "CREATE", pretty)
            };
            let found = spans_of(&body, Part::ManagedFields);
            if is_update {
                prop_assert_eq!(found, vec![managed, old_managed]);
                prop_assert!(spans_of(&body, Part::Env).is_empty());
            } else {
                prop_assert_eq!(found, vec![managed]);
                let cut = spans_of(&body, Part::Env);
                let passing: Vec<Value> =
                    envs.iter().filter(|e| env_passes(e)).cloned().collect();
                // In the body's order: containers (a, b), then init containers.
                prop_assert_eq!(cut, passing);
            }
            same_decoding(&body);
        }
    }
}
