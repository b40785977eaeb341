//! The pod-bearing kinds (the engine's table) as a cluster serves them: which kinds are read,
//! through which API resource, and which of their objects are reported.

use crate::engine::pod_bearing::{POD_BEARING, PodBearingKind, pod_bearing};
use serde_json::Value;

/// The kinds whose live objects the cluster audit and the reports read, in the table's order.
pub fn live() -> impl Iterator<Item = &'static PodBearingKind> {
    POD_BEARING.iter().filter(|k| k.live)
}

/// How the API serves `kind`, for kube's dynamic clients.
pub fn api_resource(kind: &PodBearingKind) -> kube::api::ApiResource {
    let gvk = kube::core::GroupVersionKind::gvk(kind.group, kind.version, kind.kind);
    kube::api::ApiResource::from_gvk_with_plural(&gvk, kind.plural)
}

/// Whether an object has an owner with `controller: true`.
pub fn owned_by_controller(object: &Value) -> bool {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        })
}

/// Whether a live object is audited and reported itself. Pods, ReplicaSets and Jobs that a
/// controller owns are not: their owner's pod template is, so each launch is reported once,
/// where it can be fixed.
pub fn reported(kind: &str, object: &Value) -> bool {
    !(pod_bearing(kind).is_some_and(|k| k.made_from_template) && owned_by_controller(object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn owned_pods_replicasets_and_jobs_are_left_to_their_owner() {
        let owned = json!({"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "controller": true}]}});
        let listed = json!({"metadata": {"ownerReferences": [{"kind": "Thing", "name": "x"}]}});
        for kind in ["Pod", "ReplicaSet", "Job"] {
            assert!(!reported(kind, &owned), "{kind}");
            assert!(reported(kind, &listed), "{kind}");
            assert!(reported(kind, &json!({})), "{kind}");
        }
        // A Deployment owned by an operator is still where its pods come from.
        assert!(reported("Deployment", &owned));
        // A PodTemplate is checked at admission but not read from clusters.
        let live: Vec<&str> = live().map(|k| k.kind).collect();
        assert_eq!(live.len(), POD_BEARING.len() - 1);
        assert!(!live.contains(&"PodTemplate"));
    }
}
