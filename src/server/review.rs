//! The AdmissionReview wire format (`admission.k8s.io/v1`): decode only what a decision needs,
//! encode the response the way kube-apiserver validates it.
//!
//! The request is decoded into borrowed structs in one pass: `object` becomes a
//! `serde_json::Value` without the parts pidone never reads (see [`crate::server::object`]),
//! `oldObject` stays a raw slice of the body until a workload UPDATE needs it, and `userInfo`,
//! `options` and the rest are skipped without allocating. A body that does not decode still yields its `request.uid`
//! when one can be found, so the denial can be matched to the request.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::marker::PhantomData;

use crate::json_text::push_json_str;
use crate::server::object::{Cut, Full, Lean};

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// Group, version and kind as the apiserver sends them in `request.kind`.
#[derive(Debug, Deserialize)]
pub struct GroupVersionKind<'a> {
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
}

/// The part of `request` pidone reads; `C` says how much of `object` is decoded.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "C: Cut"))]
pub struct AdmissionRequest<'a, C: Cut = Full> {
    #[serde(borrow)]
    pub uid: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: GroupVersionKind<'a>,
    #[serde(borrow, default)]
    pub sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub operation: Cow<'a, str>,
    /// Parsed in the same pass as the review (the apiserver only sends objects pidone's
    /// webhook rules asked for), without `metadata.managedFields` and `status`; `None` when
    /// absent or JSON `null`.
    #[serde(
        default,
        deserialize_with = "crate::server::object::deserialize::<C, _>"
    )]
    pub object: Option<serde_json::Value>,
    /// Kept raw: only workload UPDATEs need it.
    #[serde(borrow, default)]
    pub old_object: Option<&'a RawValue>,
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// The cut `object` is in (no data).
    #[serde(skip)]
    pub cut: PhantomData<C>,
}

impl<C: Cut> AdmissionRequest<'_, C> {
    /// The subresource, when the request is for one (`pods/status`, `pods/ephemeralcontainers`).
    pub fn sub_resource(&self) -> Option<&str> {
        self.sub_resource.as_deref().filter(|s| !s.is_empty())
    }

    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref().filter(|s| !s.is_empty())
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run.unwrap_or(false)
    }
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "C: Cut"))]
struct Envelope<'a, C: Cut> {
    #[serde(rename = "apiVersion", borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    request: Option<AdmissionRequest<'a, C>>,
}

/// Why a body is not a usable AdmissionReview.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON at all: answered with a plain 400, not with an AdmissionReview.
    #[error("the request body is not JSON")]
    NotJson,
    /// JSON, but not a usable AdmissionReview: answered with an AdmissionReview denial that
    /// carries the request's uid when it could be found (else an empty uid).
    #[error("{message}")]
    Invalid { uid: String, message: String },
}

impl DecodeError {
    fn invalid(body: &[u8], message: String) -> DecodeError {
        DecodeError::Invalid {
            uid: probe_uid(body).unwrap_or_default(),
            message,
        }
    }

    /// The label this error is counted under.
    pub fn metric_label(&self) -> &'static str {
        match self {
            DecodeError::NotJson => "rejected",
            DecodeError::Invalid { .. } => "invalid",
        }
    }
}

/// Decodes an AdmissionReview request body, with the object cut for planning patches.
pub fn decode(body: &[u8]) -> Result<AdmissionRequest<'_>, DecodeError> {
    decode_cut(body)
}

/// Decodes an AdmissionReview request body with the object cut to what evaluation reads.
pub fn decode_lean(body: &[u8]) -> Result<AdmissionRequest<'_, Lean>, DecodeError> {
    decode_cut(body)
}

/// Decodes an AdmissionReview request body with the object in cut `C`.
pub fn decode_cut<C: Cut>(body: &[u8]) -> Result<AdmissionRequest<'_, C>, DecodeError> {
    // UTF-8 checked once for the whole body (fast), not string by string while parsing; a
    // body that is not UTF-8 is parsed from bytes, for the same error as before.
    let parsed = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    };
    let envelope: Envelope<'_, C> = match parsed {
        Ok(e) => e,
        Err(e) if looks_like_json(body) => {
            return Err(DecodeError::invalid(
                body,
                format!("the body is not a valid AdmissionReview: {e}"),
            ));
        }
        Err(_) => return Err(DecodeError::NotJson),
    };
    let request = envelope.request;
    let uid = || {
        request
            .as_ref()
            .map(|r| r.uid.to_string())
            .unwrap_or_default()
    };
    if envelope.api_version.as_deref() != Some(API_VERSION)
        || envelope.kind.as_deref() != Some(KIND)
    {
        return Err(DecodeError::Invalid {
            uid: uid(),
            message: format!(
                "expected apiVersion {API_VERSION} and kind {KIND}, got {} {}",
                envelope.api_version.as_deref().unwrap_or("(none)"),
                envelope.kind.as_deref().unwrap_or("(none)")
            ),
        });
    }
    let Some(request) = request else {
        return Err(DecodeError::Invalid {
            uid: String::new(),
            message: "the AdmissionReview has no request".into(),
        });
    };
    if request.uid.is_empty() {
        return Err(DecodeError::Invalid {
            uid: String::new(),
            message: "request.uid is empty".into(),
        });
    }
    Ok(request)
}

/// Whether a body that failed to decode is JSON-ish (answered with an AdmissionReview) rather
/// than something else entirely (answered with a plain 400): it starts with `{` or `[`, or it
/// is some other complete JSON value.
fn looks_like_json(body: &[u8]) -> bool {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => true,
        Some(_) => serde_json::from_slice::<IgnoredAny>(body).is_ok(),
        None => false,
    }
}

/// Finds `request.uid` in a body that does not decode, reading as far as the JSON allows. The
/// apiserver writes `uid` first, so truncated or overly deep bodies still give it up.
pub fn probe_uid(body: &[u8]) -> Option<String> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = TopSeed(&found).deserialize(&mut de);
    found.into_inner()
}

struct TopSeed<'c>(&'c RefCell<Option<String>>);
struct RequestSeed<'c>(&'c RefCell<Option<String>>);

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AdmissionReview object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "request" {
                map.next_value_seed(RequestSeed(self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AdmissionRequest object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "uid" {
                if let serde_json::Value::String(uid) = map.next_value()? {
                    *self.0.borrow_mut() = Some(uid);
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// `response.status` of a denial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

/// `response` of an AdmissionReview.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse<'a> {
    pub uid: &'a str,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'a Status>,
    /// Standard base64 of the JSON Patch array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<Base64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub warnings: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: &'a BTreeMap<String, String>,
}

/// Serialises a response into an `admission.k8s.io/v1` AdmissionReview: the text serde_json
/// writes for [`AdmissionResponse`] (tested against it), written by hand with
/// [`push_json_str`], which finds the runs of a message that need no escape eight bytes at a
/// time (the messages are most of a response).
pub fn encode(response: AdmissionResponse<'_>) -> Vec<u8> {
    let texts = response.warnings.iter().map(String::len).sum::<usize>()
        + response
            .audit_annotations
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
        + response.patch.as_ref().map_or(0, |p| p.as_str().len())
        + response.status.map_or(0, |s| s.message.len());
    let mut out = String::with_capacity(256 + texts + texts / 8);
    out.push_str("{\"apiVersion\":\"");
    out.push_str(API_VERSION);
    out.push_str("\",\"kind\":\"");
    out.push_str(KIND);
    out.push_str("\",\"response\":{\"uid\":");
    push_json_str(&mut out, response.uid);
    out.push_str(",\"allowed\":");
    out.push_str(if response.allowed { "true" } else { "false" });
    if let Some(status) = response.status {
        let _ = write!(out, ",\"status\":{{\"code\":{},\"reason\":", status.code);
        push_json_str(&mut out, status.reason);
        out.push_str(",\"message\":");
        push_json_str(&mut out, &status.message);
        out.push('}');
    }
    if let Some(patch) = &response.patch {
        // Base64's alphabet needs no escape in JSON.
        out.push_str(",\"patch\":\"");
        out.push_str(patch.as_str());
        out.push('"');
    }
    if let Some(patch_type) = response.patch_type {
        out.push_str(",\"patchType\":");
        push_json_str(&mut out, patch_type);
    }
    if !response.warnings.is_empty() {
        out.push_str(",\"warnings\":");
        for (i, warning) in response.warnings.iter().enumerate() {
            out.push(if i == 0 { '[' } else { ',' });
            push_json_str(&mut out, warning);
        }
        out.push(']');
    }
    if !response.audit_annotations.is_empty() {
        out.push_str(",\"auditAnnotations\":");
        for (i, (key, value)) in response.audit_annotations.iter().enumerate() {
            out.push(if i == 0 { '{' } else { ',' });
            push_json_str(&mut out, key);
            out.push(':');
            push_json_str(&mut out, value);
        }
        out.push('}');
    }
    out.push_str("}}");
    out.into_bytes()
}

/// Standard base64 text: made only by [`base64`], so it holds only `A-Z a-z 0-9 + / =`,
/// which a JSON string holds as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Base64(String);

impl Base64 {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Standard base64 of a JSON Patch, as `response.patch` carries it.
pub fn encode_patch(ops: &[json_patch::PatchOperation]) -> Result<Base64, serde_json::Error> {
    Ok(base64(serde_json::to_string(ops)?))
}

/// Standard base64 of `bytes` (a JSON Patch's text).
pub fn base64(bytes: impl AsRef<[u8]>) -> Base64 {
    use base64::Engine as _;
    Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What serde_json writes for a response: what [`encode`] must write.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ReviewOut<'a> {
        api_version: &'static str,
        kind: &'static str,
        response: AdmissionResponse<'a>,
    }

    proptest! {
        #[test]
        fn responses_are_written_as_serde_json_writes_them(
            uid in "[a-z0-9-]{0,12}",
            allowed: bool,
            status in proptest::option::of((100u16..600, "(.|\\PC|[\"\\\\\n]){0,60}")),
            patch in proptest::option::of(prop::collection::vec(any::<u8>(), 0..40).prop_map(base64)),
            warnings in prop::collection::vec("(.|[\"\\\\\t\u{1}]){0,50}", 0..3),
            annotations in prop::collection::btree_map("[a-z.-]{1,10}", "(.|[\"\\\\\n]){0,80}", 0..3),
        ) {
            let status = status.map(|(code, message)| Status { code, reason: "Forbidden", message });
            let patch_type = patch.as_ref().map(|_| "JSONPatch");
            let response = AdmissionResponse {
                uid: &uid,
                allowed,
                status: status.as_ref(),
                patch,
                patch_type,
                warnings: &warnings,
                audit_annotations: &annotations,
            };
            let expected = serde_json::to_vec(&ReviewOut {
                api_version: API_VERSION,
                kind: KIND,
                response: response.clone(),
            })
            .unwrap();
            prop_assert_eq!(String::from_utf8(encode(response)).unwrap(), String::from_utf8(expected).unwrap());
        }
    }

    fn review(request: &str) -> String {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
        )
    }

    #[test]
    fn decodes_the_fields_it_needs_and_borrows_the_object() {
        let body = review(
            r#"{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},
                "resource":{"group":"","version":"v1","resource":"pods"},
                "name":"p","namespace":"ns","operation":"CREATE",
                "userInfo":{"username":"alice","groups":["a"]},
                "object":{"kind":"Pod","metadata":{"name":"p"}},"oldObject":null,
                "dryRun":true,"options":{"kind":"CreateOptions"}}"#,
        );
        let r = decode(body.as_bytes()).unwrap();
        assert_eq!(r.uid, "u-1");
        assert_eq!(r.kind.kind, "Pod");
        assert_eq!(r.operation, "CREATE");
        assert_eq!(r.namespace(), Some("ns"));
        assert!(r.dry_run());
        assert!(r.old_object.is_none());
        assert_eq!(
            r.object.as_ref().unwrap(),
            &serde_json::json!({"kind":"Pod","metadata":{"name":"p"}})
        );
        assert!(matches!(r.uid, Cow::Borrowed(_)));
    }

    #[test]
    fn undecodable_reviews_keep_their_uid() {
        let body = review(r#"{"uid":"u-2","kind":"Pod","operation":"CREATE"}"#);
        match decode(body.as_bytes()) {
            Err(DecodeError::Invalid { uid, message }) => {
                assert_eq!(uid, "u-2");
                assert!(message.contains("not a valid AdmissionReview"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let truncated = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-3","kind":{"kind":"Pod"},"object":{"a":"#;
        assert!(matches!(
            decode(truncated.as_bytes()),
            Err(DecodeError::Invalid { uid, .. }) if uid == "u-3"
        ));
        // Deep nesting fails with serde_json's recursion limit, not a stack overflow.
        let deep = |at_object: bool| {
            let nest = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
            let (kind, object) = if at_object {
                (r#"{"kind":"Pod"}"#.to_string(), nest)
            } else {
                (format!(r#"{{"kind":{nest}}}"#), "{}".to_string())
            };
            review(&format!(
                r#"{{"uid":"u-4","operation":"CREATE","object":{object},"kind":{kind}}}"#
            ))
        };
        assert!(matches!(
            decode(deep(true).as_bytes()),
            Err(DecodeError::Invalid { uid, message }) if uid == "u-4" && message.contains("recursion limit")
        ));
        assert!(matches!(
            decode(deep(false).as_bytes()),
            Err(DecodeError::Invalid { uid, .. }) if uid == "u-4"
        ));
    }

    #[test]
    fn wrong_envelopes_are_invalid_and_non_json_is_not_json() {
        let wrong = r#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE"}}"#;
        assert!(matches!(
            decode(wrong.as_bytes()),
            Err(DecodeError::Invalid { uid, message }) if uid == "u" && message.contains("v1beta1")
        ));
        assert!(matches!(
            decode(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
            Err(DecodeError::Invalid { uid, .. }) if uid.is_empty()
        ));
        assert!(matches!(decode(b"[1,2]"), Err(DecodeError::Invalid { .. })));
        assert!(matches!(decode(b"42"), Err(DecodeError::Invalid { .. })));
        assert_eq!(decode(b"hello").unwrap_err(), DecodeError::NotJson);
        assert_eq!(decode(b"").unwrap_err(), DecodeError::NotJson);
        assert_eq!(decode(b"  \n").unwrap_err(), DecodeError::NotJson);
    }

    #[test]
    fn responses_are_v1_reviews_with_base64_patches() {
        let ops: Vec<json_patch::PatchOperation> = serde_json::from_str(
            r#"[{"op":"add","path":"/metadata/annotations","value":{"a":"b"}}]"#,
        )
        .unwrap();
        let patch = encode_patch(&ops).unwrap();
        let body = encode(AdmissionResponse {
            uid: "u",
            allowed: true,
            status: None,
            patch: Some(patch.clone()),
            patch_type: Some("JSONPatch"),
            warnings: &[],
            audit_annotations: &BTreeMap::new(),
        });
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["apiVersion"], API_VERSION);
        assert_eq!(v["kind"], KIND);
        assert_eq!(v["response"]["patchType"], "JSONPatch");
        assert!(v["response"].get("warnings").is_none());
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["response"]["patch"].as_str().unwrap())
            .unwrap();
        let back: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(back[0]["path"], "/metadata/annotations");
    }
}
