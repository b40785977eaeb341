//! The pod-bearing kinds as the API serves them, and which of their objects are reported.

use serde_json::Value;

/// A kind that carries a pod (or a pod template).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodBearingKind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

impl PodBearingKind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn api_resource(&self) -> kube::api::ApiResource {
        let gvk = kube::core::GroupVersionKind::gvk(self.group, self.version, self.kind);
        kube::api::ApiResource::from_gvk_with_plural(&gvk, self.plural)
    }
}

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
) -> PodBearingKind {
    PodBearingKind {
        group,
        version,
        kind,
        plural,
    }
}

/// Every pod-bearing kind read from a cluster.
pub const POD_BEARING: [PodBearingKind; 8] = [
    kind("", "v1", "Pod", "pods"),
    kind("apps", "v1", "Deployment", "deployments"),
    kind("apps", "v1", "StatefulSet", "statefulsets"),
    kind("apps", "v1", "DaemonSet", "daemonsets"),
    kind("apps", "v1", "ReplicaSet", "replicasets"),
    kind("", "v1", "ReplicationController", "replicationcontrollers"),
    kind("batch", "v1", "Job", "jobs"),
    kind("batch", "v1", "CronJob", "cronjobs"),
];

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
    !(matches!(kind, "Pod" | "ReplicaSet" | "Job") && owned_by_controller(object))
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
        assert_eq!(POD_BEARING[1].api_version(), "apps/v1");
        assert_eq!(POD_BEARING[0].api_version(), "v1");
    }
}
