//! Containers another mutating webhook injected into a pod: a service mesh's proxy and its
//! init containers.
//!
//! With `reinvocationPolicy: IfNeeded` pidone sees pods after a mesh injector changed them
//! (and, ordered by configuration name, often before). Those containers are the injector's:
//! moving one would fight it (the injector has its own native-sidecar setting and its own
//! ordering of init containers), and counting one as the pod's main container would make the
//! user's lone container look like a side agent next to it. So they are never side agents and
//! never main containers; their launches are still analysed like any other.
//!
//! Injectors mark what they injected on the pod:
//! - Istio writes `sidecar.istio.io/status`, a JSON object whose `initContainers` and
//!   `containers` list the names it added (istio/istio, `pkg/kube/inject/inject.go`; see the
//!   `*.yaml.injected` files under `pkg/kube/inject/testdata/inject/`).
//! - Linkerd writes `linkerd.io/proxy-version` and adds `linkerd-proxy`, with `linkerd-init`
//!   or `linkerd-network-validator` as init containers (linkerd/linkerd2,
//!   `charts/partials/templates/_proxy.tpl`, `_proxy-init.tpl`, `_network-validator.tpl`).

use crate::engine::workload::Annotations;
use serde_json::Value;

pub const ISTIO_STATUS: &str = "sidecar.istio.io/status";
pub const LINKERD_PROXY_VERSION: &str = "linkerd.io/proxy-version";
const LINKERD_CONTAINERS: [&str; 3] =
    ["linkerd-proxy", "linkerd-init", "linkerd-network-validator"];

/// Names of the containers (and init containers) a mesh injector says it added, from the pod
/// template's annotations. A status annotation that does not parse names nothing.
pub fn injected_containers(annotations: &Annotations<'_>) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(status) = annotations.get(ISTIO_STATUS)
        && let Ok(Value::Object(status)) = serde_json::from_str::<Value>(status)
    {
        for key in ["initContainers", "containers"] {
            if let Some(Value::Array(list)) = status.get(key) {
                names.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
            }
        }
    }
    if annotations.contains(LINKERD_PROXY_VERSION) {
        names.extend(LINKERD_CONTAINERS.iter().map(|n| n.to_string()));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(annotations: Value) -> Vec<String> {
        let pod = json!({"kind": "Pod", "metadata": {"annotations": annotations},
            "spec": {"containers": []}});
        let w = crate::engine::workload::extract(&pod).unwrap().unwrap();
        injected_containers(&w.annotations)
    }

    #[test]
    fn istio_status_lists_its_containers() {
        // As in istio/istio pkg/kube/inject/testdata/inject/hello-always.yaml.injected.
        let status = r#"{"version":"","initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy","istio-token"],"imagePullSecrets":null}"#;
        assert_eq!(
            names(json!({ISTIO_STATUS: status, "other": "x"})),
            ["istio-init", "istio-proxy"]
        );
        // Native-sidecar mode lists the proxy under initContainers.
        let native = r#"{"initContainers":["istio-validation","istio-proxy"],"containers":null}"#;
        assert_eq!(
            names(json!({ISTIO_STATUS: native})),
            ["istio-validation", "istio-proxy"]
        );
    }

    #[test]
    fn linkerd_is_known_by_its_proxy_version() {
        assert_eq!(
            names(json!({LINKERD_PROXY_VERSION: "edge-24.11.8"})),
            LINKERD_CONTAINERS
        );
    }

    #[test]
    fn nothing_else_counts() {
        assert!(injected_containers(&Annotations::default()).is_empty());
        for annotations in [
            json!({}),
            json!({ISTIO_STATUS: "not json"}),
            json!({ISTIO_STATUS: "[\"istio-proxy\"]"}),
            json!({ISTIO_STATUS: {"containers": ["istio-proxy"]}}),
            json!({ISTIO_STATUS: r#"{"containers":[1,null]}"#}),
            json!({"sidecar.istio.io/inject": "true"}),
        ] {
            assert!(names(annotations.clone()).is_empty(), "{annotations}");
        }
    }
}
