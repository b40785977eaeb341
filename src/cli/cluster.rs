//! `pidone audit --cluster`: live objects read through the kubeconfig (or in-cluster config).
//!
//! Pods and ReplicaSets owned by a controller are skipped: their owner's pod template is
//! audited instead, so each launch is reported once, where it can be fixed.
//!
//! Scripts that containers run from ConfigMap volumes are read from the ConfigMaps the pod
//! templates mount (listed per namespace, see [`list_config_maps`]).
//!
//! `--format policyreport|openreport` prints the reports `pidone serve` keeps current with
//! `reports.enabled` (one per namespace plus the cluster-scoped one), built the same way.

use crate::cli::input::{Manifest, Source};
use crate::cluster::kinds;
use crate::engine::config::ReportsApi;
use crate::engine::evaluate::{EvalContext, ImageConfig, Words};
use crate::reports::build::{self, MODE_LABEL, NamespaceInfo};
use crate::reports::shape::Timestamp;
use crate::resolve::Evaluator;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    for pod_bearing in kinds::live() {
        let (kind, plural) = (pod_bearing.kind, pod_bearing.plural);
        let resource = kinds::api_resource(pod_bearing);
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
                if !kinds::reported(kind, &object) {
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
    engine: &Evaluator,
    manifests: &[Manifest],
    images: Option<&HashMap<String, ImageConfig>>,
    image_files: Option<&crate::engine::image_files::ImageFiles>,
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
            image_files,
            native_sidecars: crate::cluster::offline(engine.config().native_sidecars),
            scripts: None,
            words: Words::All,
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

/// Most bytes of ConfigMap data `audit --cluster` keeps (data of ConfigMaps that pods mount).
pub const MAX_CONFIG_MAP_BYTES: usize = 64 * 1024 * 1024;

/// ConfigMaps per page of a list: ConfigMaps reach 1 MiB each, so a page stays small.
const CONFIG_MAP_PAGE: u32 = 50;

/// The ConfigMaps that the objects' pod templates mount, as ConfigMap manifests (only their
/// `data`), so that scripts containers run from them are analysed: each namespace's ConfigMaps
/// are listed a page at a time and only the mounted ones are kept, within
/// [`MAX_CONFIG_MAP_BYTES`]. Best effort: a namespace whose ConfigMaps cannot be listed (no
/// RBAC) is named in the warnings, and its scripts stay unread.
pub async fn list_config_maps(
    client: kube::Client,
    objects: &[Manifest],
) -> (Vec<Manifest>, Vec<String>) {
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in objects {
        let Some(ns) = m
            .object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
        else {
            continue;
        };
        for name in crate::engine::config_map_refs::mounted(&m.object) {
            wanted.entry(ns.to_string()).or_default().insert(name);
        }
    }
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut bytes = 0usize;
    'namespaces: for (ns, names) in &wanted {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let mut params = ListParams::default().limit(CONFIG_MAP_PAGE);
        loop {
            let list = match api.list(&params).await {
                Ok(list) => list,
                Err(e) => {
                    warnings.push(format!(
                        "cannot list the ConfigMaps of namespace {ns} ({}); scripts from them are not analysed",
                        short_error(&e)
                    ));
                    continue 'namespaces;
                }
            };
            for cm in list.items {
                let Some(name) = cm.metadata.name.clone().filter(|n| names.contains(n)) else {
                    continue;
                };
                let data = cm.data.unwrap_or_default();
                let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
                if bytes + size > MAX_CONFIG_MAP_BYTES {
                    warnings.push(format!(
                        "more than {} MiB of ConfigMaps; configmap/{name} in {ns} and later ones are not analysed",
                        MAX_CONFIG_MAP_BYTES / (1024 * 1024)
                    ));
                    break 'namespaces;
                }
                bytes += size;
                out.push(Manifest {
                    source: Source {
                        file: "cluster:configmaps".into(),
                        document: out.len(),
                        line: None,
                    },
                    object: serde_json::json!({
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": name, "namespace": ns},
                        "data": data,
                    }),
                    pointer: String::new(),
                });
            }
            match list.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
    }
    (out, warnings)
}

/// The API's own message for a refusal, else the error.
fn short_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("HTTP {}: {}", status.code, status.message),
        other => other.to_string(),
    }
}

/// What `audit --cluster` read: the live objects (and the ConfigMaps they mount), and what it
/// could not read without failing.
#[derive(Debug, Default)]
pub struct ClusterRead {
    pub manifests: Vec<Manifest>,
    pub warnings: Vec<String>,
}

/// Reads the live objects with the default client (kubeconfig, or in-cluster config), and the
/// ConfigMaps their pod templates mount.
/// With `namespaces`, the Namespace objects come too (for `--format policyreport|openreport`).
pub fn read_cluster(
    namespace: Option<&str>,
    namespaces: bool,
) -> Result<ClusterRead, ClusterError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClusterError::Client(kube::Error::Service(Box::new(e))))?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .map_err(ClusterError::Client)?;
        let mut manifests = list_objects(client.clone(), namespace).await?;
        let (config_maps, warnings) = list_config_maps(client.clone(), &manifests).await;
        if namespaces {
            manifests.extend(list_namespaces(client, namespace).await);
        }
        manifests.extend(config_maps);
        Ok(ClusterRead {
            manifests,
            warnings,
        })
    })
}
