//! `pidone audit --cluster`: live objects read through the kubeconfig (or in-cluster config).
//!
//! Pods and ReplicaSets owned by a controller are skipped: their owner's pod template is
//! audited instead, so each launch is reported once, where it can be fixed.

use crate::cli::input::{Manifest, Source};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

/// The pod-bearing kinds, as the API serves them.
const KINDS: [(&str, &str, &str, &str); 8] = [
    ("", "v1", "Pod", "pods"),
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("apps", "v1", "ReplicaSet", "replicasets"),
    ("", "v1", "ReplicationController", "replicationcontrollers"),
    ("batch", "v1", "Job", "jobs"),
    ("batch", "v1", "CronJob", "cronjobs"),
];

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

fn owned_by_controller(object: &Value) -> bool {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        })
}

/// Lists every pod-bearing object (in one namespace, or all) as manifests.
pub async fn list_objects(
    client: kube::Client,
    namespace: Option<&str>,
) -> Result<Vec<Manifest>, ClusterError> {
    let mut out = Vec::new();
    for (group, version, kind, plural) in KINDS {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
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
                if owned_by_controller(&object) && matches!(kind, "Pod" | "ReplicaSet" | "Job") {
                    continue;
                }
                out.push(Manifest {
                    source: Source {
                        file: format!("cluster:{plural}"),
                        document: out.len(),
                        line: None,
                    },
                    object,
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

/// Reads the live objects with the default client (kubeconfig, or in-cluster config).
pub fn read_cluster(namespace: Option<&str>) -> Result<Vec<Manifest>, ClusterError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClusterError::Client(kube::Error::Service(Box::new(e))))?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .map_err(ClusterError::Client)?;
        list_objects(client, namespace).await
    })
}
