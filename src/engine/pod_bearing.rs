//! The kinds that carry a pod or a pod template, in one table: where each keeps its pod
//! template (the engine), the label it gets in metrics (the server), how the API serves it and
//! which live objects are read from a cluster (the cluster audit and the reports).

/// A kind that carries a pod or a pod template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodBearingKind {
    pub kind: &'static str,
    /// API group (`""` for the core group) and version the kind is served at.
    pub group: &'static str,
    pub version: &'static str,
    /// The resource's plural name, as its API paths spell it.
    pub plural: &'static str,
    /// JSON Pointer of the pod template in an object (`""` for a Pod: the object is the pod).
    pub template: &'static str,
    /// Whether its pods are finite work when the template leaves `restartPolicy` unset (a Job's
    /// pods run to completion).
    pub finite: bool,
    /// Whether a controller that owns an object of the kind made it from its own pod template
    /// (a Deployment's ReplicaSets, a CronJob's Jobs, any controller's Pods): the owner is where
    /// its launches are reported and fixed.
    pub made_from_template: bool,
    /// Whether the cluster audit and the reports read the kind's live objects: the kinds that
    /// run pods or make them. A PodTemplate only stores a template nothing runs by itself;
    /// admission still checks it.
    pub live: bool,
}

impl PodBearingKind {
    /// `v1`, `apps/v1`: the apiVersion of its objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const WORKLOAD_TEMPLATE: &str = "/spec/template";

/// Every kind pidone analyses.
pub const POD_BEARING: [PodBearingKind; 9] = [
    PodBearingKind {
        kind: "Pod",
        group: "",
        version: "v1",
        plural: "pods",
        template: "",
        finite: false,
        made_from_template: true,
        live: true,
    },
    PodBearingKind {
        kind: "Deployment",
        group: "apps",
        version: "v1",
        plural: "deployments",
        template: WORKLOAD_TEMPLATE,
        finite: false,
        made_from_template: false,
        live: true,
    },
    PodBearingKind {
        kind: "StatefulSet",
        group: "apps",
        version: "v1",
        plural: "statefulsets",
        template: WORKLOAD_TEMPLATE,
        finite: false,
        made_from_template: false,
        live: true,
    },
    PodBearingKind {
        kind: "DaemonSet",
        group: "apps",
        version: "v1",
        plural: "daemonsets",
        template: WORKLOAD_TEMPLATE,
        finite: false,
        made_from_template: false,
        live: true,
    },
    PodBearingKind {
        kind: "ReplicaSet",
        group: "apps",
        version: "v1",
        plural: "replicasets",
        template: WORKLOAD_TEMPLATE,
        finite: false,
        made_from_template: true,
        live: true,
    },
    PodBearingKind {
        kind: "ReplicationController",
        group: "",
        version: "v1",
        plural: "replicationcontrollers",
        template: WORKLOAD_TEMPLATE,
        finite: false,
        made_from_template: false,
        live: true,
    },
    PodBearingKind {
        kind: "Job",
        group: "batch",
        version: "v1",
        plural: "jobs",
        template: WORKLOAD_TEMPLATE,
        finite: true,
        made_from_template: true,
        live: true,
    },
    PodBearingKind {
        kind: "CronJob",
        group: "batch",
        version: "v1",
        plural: "cronjobs",
        template: "/spec/jobTemplate/spec/template",
        finite: true,
        made_from_template: false,
        live: true,
    },
    PodBearingKind {
        kind: "PodTemplate",
        group: "",
        version: "v1",
        plural: "podtemplates",
        template: "/template",
        finite: false,
        made_from_template: false,
        live: false,
    },
];

/// The entry of `kind`, when pidone analyses it.
pub fn pod_bearing(kind: &str) -> Option<&'static PodBearingKind> {
    POD_BEARING.iter().find(|k| k.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_kind_is_listed_once_with_its_template() {
        let kinds: HashSet<&str> = POD_BEARING.iter().map(|k| k.kind).collect();
        assert_eq!(kinds.len(), POD_BEARING.len());
        for k in &POD_BEARING {
            assert_eq!(pod_bearing(k.kind), Some(k));
            assert!(k.template.is_empty() == (k.kind == "Pod"), "{}", k.kind);
            assert!(k.template.is_empty() || k.template.ends_with("/template"));
            assert!(k.plural.ends_with('s') && k.plural == k.plural.to_lowercase());
        }
        assert_eq!(pod_bearing("Service"), None);
        assert_eq!(
            pod_bearing("pod"),
            None,
            "kinds are matched as the API spells them"
        );
    }

    #[test]
    fn api_versions_name_the_core_group_by_version_alone() {
        let api = |kind| pod_bearing(kind).map(PodBearingKind::api_version);
        assert_eq!(api("Pod").as_deref(), Some("v1"));
        assert_eq!(api("Deployment").as_deref(), Some("apps/v1"));
        assert_eq!(api("CronJob").as_deref(), Some("batch/v1"));
    }
}
