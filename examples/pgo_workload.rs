//! The workload the shipped build of `pidone serve` is trained on (`scripts/train-profile.sh`):
//! admission reviews made from public manifests (`tests/fixtures/roundtrip`, whose
//! `SOURCES.md` says where each comes from), the side-agent corpus and the rule examples, sent
//! to a running server over TLS the way the apiserver sends them.
//!
//! For each pod-bearing object: its CREATE; for a workload, also the CREATE of a pod its
//! controller makes from the template (generated name, owner reference and the controller's
//! managed fields, as the apiserver passes a pod to webhooks), an UPDATE that leaves the
//! template alone (a scale) and one that changes it (a new image). Each review goes to
//! /validate and /mutate over HTTP/1.1 and HTTP/2, a few at a time. Any answer other than a
//! 200 carrying the review's uid fails the run: a profile of error paths would lay out the
//! wrong code.
//!
//! Usage: `pgo_workload ADDR SERVER_NAME CA_PEM ROUNDS MANIFEST...`

use anyhow::{Context, bail, ensure};
use futures::stream::{self, StreamExt};
use pidone::cluster::kinds;
use pidone::engine::pod_bearing::pod_bearing;
use pidone::engine::workload;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Reviews in flight per client.
const IN_FLIGHT: usize = 4;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, server_name, ca, rounds, manifests @ ..] = args.as_slice() else {
        bail!("usage: pgo_workload ADDR SERVER_NAME CA_PEM ROUNDS MANIFEST...");
    };
    let addr: SocketAddr = addr.parse().context("ADDR")?;
    let rounds: usize = rounds.parse().context("ROUNDS")?;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).context("CA_PEM")?)?;
    let mut objects = Vec::new();
    for path in manifests {
        let text = std::fs::read_to_string(path).with_context(|| path.clone())?;
        let documents =
            serde_saphyr::from_multiple::<Value>(&text).with_context(|| path.clone())?;
        objects.extend(
            documents
                .into_iter()
                .flat_map(items)
                .filter(read_from_clusters),
        );
    }
    ensure!(
        !objects.is_empty(),
        "no pod-bearing objects in the manifests"
    );
    let reviews: Vec<Value> = objects.iter().flat_map(reviews_of).collect();
    let client = |http1_only: bool| {
        let builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca.clone())
            .resolve(server_name, addr);
        if http1_only {
            builder.http1_only()
        } else {
            builder
        }
        .build()
    };
    let clients = [client(true)?, client(false)?];
    let base = format!("https://{server_name}:{}", addr.port());
    let mut sent = 0;
    for _ in 0..rounds {
        for client in &clients {
            for path in ["/validate", "/mutate"] {
                let url = format!("{base}{path}?timeout=10s");
                let answers = stream::iter(&reviews)
                    .map(|review| send(client, &url, review))
                    .buffer_unordered(IN_FLIGHT);
                let failed: Vec<String> = answers
                    .filter_map(|r| async move { r.err().map(|e| format!("{e:#}")) })
                    .collect()
                    .await;
                if let Some(first) = failed.first() {
                    bail!(
                        "{} of {} reviews to {path} failed: {first}",
                        failed.len(),
                        reviews.len()
                    );
                }
                sent += reviews.len();
            }
        }
    }
    println!(
        "{sent} reviews answered ({} objects, {} reviews a round)",
        objects.len(),
        reviews.len()
    );
    Ok(())
}

/// Sends one review; its answer must be a 200 with the review's uid.
async fn send(client: &reqwest::Client, url: &str, review: &Value) -> anyhow::Result<()> {
    let response = client.post(url).json(review).send().await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    ensure!(status == reqwest::StatusCode::OK, "{status}: {answer}");
    ensure!(
        answer.pointer("/response/uid") == review.pointer("/request/uid"),
        "the answer's uid is not the review's: {answer}"
    );
    Ok(())
}

/// A `List`'s items, or the object itself.
fn items(document: Value) -> Vec<Value> {
    match document {
        Value::Object(mut object)
            if object
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List")) =>
        {
            match object.remove("items") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            }
        }
        other => vec![other],
    }
}

/// An object the workload reviews: one of the kinds that run or make pods, as read from
/// clusters.
fn read_from_clusters(object: &Value) -> bool {
    let kind = object.get("kind").and_then(Value::as_str);
    kinds::live().any(|k| Some(k.kind) == kind)
}

/// Where a workload keeps its pod template (none for a Pod: the object is the pod).
fn template_pointer(kind: &str) -> Option<&'static str> {
    workload::template_pointer(kind).filter(|t| !t.is_empty())
}

/// The reviews the apiserver sends for `object` over its life (see the module).
fn reviews_of(object: &Value) -> Vec<Value> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("Pod");
    let mut object = object.clone();
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("workload")
        .to_string();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("namespace".into(), json!("apps"));
        metadata.insert("uid".into(), json!(uid(&name, kind)));
    }
    let mut reviews = vec![review("CREATE", &object, None)];
    let Some(template) = template_pointer(kind).and_then(|p| object.pointer(p)) else {
        return reviews;
    };
    reviews.push(review(
        "CREATE",
        &controller_pod(&object, &name, template),
        None,
    ));
    let mut scaled = object.clone();
    if let Some(spec) = scaled.get_mut("spec").and_then(Value::as_object_mut) {
        let replicas = spec.get("replicas").and_then(Value::as_u64).unwrap_or(1);
        spec.insert("replicas".into(), json!(replicas + 1));
    }
    reviews.push(review("UPDATE", &scaled, Some(&object)));
    let mut rolled = object.clone();
    let image = template_pointer(kind)
        .map(|p| format!("{p}/spec/containers/0/image"))
        .and_then(|p| rolled.pointer_mut(&p));
    if let Some(Value::String(image)) = image {
        image.push_str("-next");
        reviews.push(review("UPDATE", &rolled, Some(&object)));
    }
    reviews
}

/// The pod a workload's controller creates from `template`, as webhooks see it.
fn controller_pod(owner: &Value, name: &str, template: &Value) -> Value {
    let mut metadata = template
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    // The pod's owner is the object that made it: a Deployment's ReplicaSet, a CronJob's Job.
    let owner_kind = match owner.get("kind").and_then(Value::as_str) {
        Some("Deployment") | None => "ReplicaSet",
        Some("CronJob") => "Job",
        Some(other) => other,
    };
    let owner_api_version =
        pod_bearing(owner_kind).map_or_else(|| "apps/v1".to_string(), |k| k.api_version());
    let fields = json!({
        "f:metadata": fields_v1(&Value::Object(metadata.clone())),
        "f:spec": fields_v1(&spec),
    });
    metadata.insert("generateName".into(), json!(format!("{name}-7d9c5b8f4-")));
    metadata.insert("namespace".into(), json!("apps"));
    metadata.insert(
        "ownerReferences".into(),
        json!([{
            "apiVersion": owner_api_version, "kind": owner_kind,
            "name": format!("{name}-7d9c5b8f4"), "uid": uid(name, owner_kind),
            "controller": true, "blockOwnerDeletion": true
        }]),
    );
    metadata.insert(
        "managedFields".into(),
        json!([{
            "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
            "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields
        }]),
    );
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

/// The managed-fields set of `value` in the apiserver's FieldsV1 shape: `f:` members, list
/// items keyed by name (`k:{"name":...}`), leaves `{}`.
fn fields_v1(value: &Value) -> Value {
    let set: Map<String, Value> = match value {
        Value::Object(members) => members
            .iter()
            .map(|(k, v)| (format!("f:{k}"), fields_v1(v)))
            .collect(),
        Value::Array(elements) => elements
            .iter()
            .filter_map(|e| {
                let name = e.get("name")?.as_str()?;
                let mut item = fields_v1(e);
                if let Some(item) = item.as_object_mut() {
                    item.insert(".".into(), json!({}));
                }
                Some((format!("k:{}", json!({"name": name})), item))
            })
            .collect(),
        _ => Map::new(),
    };
    Value::Object(set)
}

/// A stable uid for an object, in the apiserver's format.
fn uid(name: &str, kind: &str) -> String {
    let n = name
        .bytes()
        .chain(kind.bytes())
        .fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        n >> 32,
        n & 0xffff_ffff_ffff
    )
}

/// A fresh request uid, as the apiserver sends on every call.
fn request_uid() -> String {
    static SENT: AtomicU64 = AtomicU64::new(1);
    let n = SENT.fetch_add(1, Ordering::Relaxed);
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// `object` wrapped into an AdmissionReview the way the apiserver wraps it.
fn review(operation: &str, object: &Value, old_object: Option<&Value>) -> Value {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("Pod");
    let resource = pod_bearing(kind);
    let (group, version, plural) =
        resource.map_or(("", "v1", "pods"), |k| (k.group, k.version, k.plural));
    let name = object
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(json!(""));
    let options = if operation == "CREATE" {
        "CreateOptions"
    } else {
        "UpdateOptions"
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": request_uid(),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": plural},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": plural},
            "name": name,
            "namespace": "apps",
            "operation": operation,
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "groups": ["system:serviceaccounts", "system:authenticated"]
            },
            "object": object,
            "oldObject": old_object,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": options}
        }
    })
}
