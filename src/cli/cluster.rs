//! `pidone audit --cluster`: live objects read through the kubeconfig (or in-cluster config).
//!
//! Pods and ReplicaSets owned by a controller are skipped: their owner's pod template is
//! audited instead, so each launch is reported once, where it can be fixed.
//!
//! `--format policyreport|openreport` prints the reports `pidone serve` keeps current with
//! `reports.enabled` (one per namespace plus the cluster-scoped one), built the same way.

use crate::cli::input::{Manifest, Source};
use crate::cluster::kinds::POD_BEARING;
use crate::engine::Engine;
use crate::engine::config::ReportsApi;
use crate::engine::evaluate::{EvalContext, ImageConfig};
use crate::reports::build::{self, MODE_LABEL, NamespaceInfo};
use crate::reports::shape::Timestamp;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot build a Kubernetes client (kubeconfig or in-cluster config): {0}")]
    Client(#[source] kube::Error),
    #[error("cannot list {kind}: {source}")]
    List {
        kind: &'static str,
        #[source]
        source: kube::Error,
    },
}

/// Lists every pod-bearing object (in one namespace, or all) as manifests.
pub async fn list_objects(
    client: kube::Client,
    namespace: Option<&str>,
) -> Result<Vec<Manifest>, ClusterError> {
    let mut out = Vec::new();
    for pod_bearing in POD_BEARING {
        let (kind, plural) = (pod_bearing.kind, pod_bearing.plural);
        let resource = pod_bearing.api_resource();
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let mut params = ListParams::default().limit(500);
        loop {
            let list = api
                .list(&params)
                .await
                .map_err(|source| ClusterError::List { kind, source })?;
            for item in list.items {
                let Ok(mut object) = serde_json::to_value(&item) else {
                    continue;
                };
                // List items carry no kind; the evaluation needs it.
                if let Some(map) = object.as_object_mut() {
                    map.insert("kind".into(), Value::String(kind.into()));
                    map.insert(
                        "apiVersion".into(),
                        Value::String(resource.api_version.clone()),
                    );
                }
                if !crate::cluster::kinds::reported(kind, &object) {
                    continue;
                }
                out.push(Manifest {
                    source: Source {
                        file: format!("cluster:{plural}"),
                        document: out.len(),
                        line: None,
                    },
                    object,
                    pointer: String::new(),
                });
            }
            match list.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
    }
    Ok(out)
}

/// The namespaces (one, or all) as Namespace manifests, for the reports' owners and modes.
/// Best effort: without the right to read namespaces the reports still print, without owner
/// references, and every namespace follows the global mode.
async fn list_namespaces(client: kube::Client, namespace: Option<&str>) -> Vec<Manifest> {
    let api: Api<Namespace> = Api::all(client);
    let items = match namespace {
        Some(ns) => api.get_opt(ns).await.ok().flatten().into_iter().collect(),
        None => api
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default(),
    };
    items
        .into_iter()
        .filter_map(|ns| serde_json::to_value(ns).ok())
        .enumerate()
        .map(|(document, mut object)| {
            if let Some(map) = object.as_object_mut() {
                map.insert("kind".into(), Value::String("Namespace".into()));
                map.insert("apiVersion".into(), Value::String("v1".into()));
            }
            Manifest {
                source: Source {
                    file: "cluster:namespaces".into(),
                    document,
                    line: None,
                },
                object,
                pointer: String::new(),
            }
        })
        .collect()
}

/// What a Namespace object tells the reports.
fn namespace_info(object: &Value) -> Option<NamespaceInfo> {
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Some(NamespaceInfo {
        name: text("/metadata/name")?,
        uid: text("/metadata/uid"),
        mode_label: object
            .pointer("/metadata/labels")
            .and_then(|l| l.get(MODE_LABEL))
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// The reports of `manifests` (Namespace manifests among them give owners and modes) as a
/// YAML stream that `kubectl apply -f -` takes. Objects that fail evaluation are left out
/// (`audit` reports them as errors).
pub fn reports_yaml(
    api: ReportsApi,
    engine: &Engine,
    manifests: &[Manifest],
    images: Option<&HashMap<String, ImageConfig>>,
    config_maps: Option<&crate::engine::mounted_scripts::ConfigMaps>,
) -> String {
    let mut namespaces = Vec::new();
    let mut evaluated = Vec::new();
    for m in manifests {
        if m.object.get("kind").and_then(Value::as_str) == Some("Namespace") {
            namespaces.extend(namespace_info(&m.object));
            continue;
        }
        let ctx = EvalContext {
            namespace: m
                .object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str),
            images,
            config_maps,
            native_sidecars: crate::cluster::offline(engine.config().native_sidecars),
        };
        if let Ok(Some(eval)) = engine.evaluate(&m.object, &ctx) {
            evaluated.push((m.object.clone(), eval));
        }
    }
    let reports = build::all_reports(
        api,
        engine.config(),
        &namespaces,
        &evaluated,
        Timestamp::now(),
    );
    let mut out = String::new();
    for report in &reports {
        if let Ok(text) = serde_saphyr::to_string(report) {
            out.push_str("---\n");
            out.push_str(&text);
        }
    }
    out
}

/// Reads the live objects with the default client (kubeconfig, or in-cluster config).
/// With `namespaces`, the Namespace objects come too (for `--format policyreport|openreport`).
pub fn read_cluster(
    namespace: Option<&str>,
    namespaces: bool,
) -> Result<Vec<Manifest>, ClusterError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClusterError::Client(kube::Error::Service(Box::new(e))))?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .map_err(ClusterError::Client)?;
        let mut manifests = list_objects(client.clone(), namespace).await?;
        if namespaces {
            manifests.extend(list_namespaces(client, namespace).await);
        }
        Ok(manifests)
    })
}
