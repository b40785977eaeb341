//! The catalogue of side agents pidone is certain about: images matched by exact repository
//! name, and agent commands matched by program and subcommand. Each entry names the public chart,
//! operator or example it was taken from (repository and path), so that it can be checked and
//! kept current.
//!
//! An image is catalogued only when every way it is deployed beside an app is a side agent; an
//! image that also runs servers (`hashicorp/vault`, `hashicorp/consul`, `quay.io/thanos/thanos`)
//! is catalogued by the command that makes it an agent (`vault agent`, `consul snapshot agent`,
//! `thanos sidecar`) instead.

use serde::Serialize;
use std::fmt;
use std::sync::LazyLock;

/// What a side agent does for the main container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    LogForwarder,
    Proxy,
    SecretAgent,
    Telemetry,
    ConfigSync,
    ContentSync,
    LeaderElector,
    Reloader,
    Exporter,
    Resizer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::LogForwarder => "log forwarder",
            Role::Proxy => "proxy",
            Role::SecretAgent => "secret agent",
            Role::Telemetry => "telemetry agent",
            Role::ConfigSync => "config syncer",
            Role::ContentSync => "content syncer",
            Role::LeaderElector => "leader elector",
            Role::Reloader => "config reloader",
            Role::Exporter => "metrics exporter",
            Role::Resizer => "resource resizer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An agent image: its repository path without registry host or tag (`kiwigrid/k8s-sidecar`).
#[derive(Debug, Clone, Copy)]
pub struct ImageEntry {
    pub repository: &'static str,
    pub role: Role,
    /// Where it is deployed as a side agent: `owner/repo path`.
    pub source: &'static str,
}

/// An agent command: the program's basename and the subcommand words that must follow it
/// (flags between them are skipped).
#[derive(Debug, Clone, Copy)]
pub struct CommandEntry {
    pub program: &'static str,
    pub subcommand: &'static [&'static str],
    pub role: Role,
    pub source: &'static str,
}

const fn image(repository: &'static str, role: Role, source: &'static str) -> ImageEntry {
    ImageEntry {
        repository,
        role,
        source,
    }
}

const fn command(
    program: &'static str,
    subcommand: &'static [&'static str],
    role: Role,
    source: &'static str,
) -> CommandEntry {
    CommandEntry {
        program,
        subcommand,
        role,
        source,
    }
}

use Role::*;

pub const IMAGES: &[ImageEntry] = &[
    // Log forwarders.
    image(
        "fluent/fluent-bit",
        LogForwarder,
        "fluent/helm-charts charts/fluent-bit/values.yaml",
    ),
    image(
        "fluent/fluentd",
        LogForwarder,
        "fluent/helm-charts charts/fluentd/values.yaml",
    ),
    image(
        "fluent/fluentd-kubernetes-daemonset",
        LogForwarder,
        "fluent/fluentd-kubernetes-daemonset README.md",
    ),
    image(
        "grafana/promtail",
        LogForwarder,
        "grafana/helm-charts charts/promtail/values.yaml",
    ),
    image(
        "grafana/alloy",
        LogForwarder,
        "grafana/alloy operations/helm/charts/alloy/values.yaml",
    ),
    image(
        "grafana/agent",
        Telemetry,
        "grafana/agent operations/helm/charts/grafana-agent/values.yaml",
    ),
    image(
        "timberio/vector",
        LogForwarder,
        "vectordotdev/helm-charts charts/vector/values.yaml",
    ),
    image(
        "beats/filebeat",
        LogForwarder,
        "elastic/helm-charts filebeat/values.yaml",
    ),
    image(
        "elastic/filebeat",
        LogForwarder,
        "elastic/beats deploy/kubernetes/filebeat-kubernetes.yaml",
    ),
    // Proxies and connectors.
    image(
        "cloud-sql-connectors/cloud-sql-proxy",
        Proxy,
        "GoogleCloudPlatform/cloud-sql-proxy examples/k8s-sidecar/proxy_with_workload_identity.yaml",
    ),
    image(
        "cloudsql-docker/gce-proxy",
        Proxy,
        "GoogleCloudPlatform/cloud-sql-proxy examples/kubernetes/proxy_with_workload_identity.yaml (v1)",
    ),
    image(
        "cloud-sql-connectors/alloydb-auth-proxy",
        Proxy,
        "GoogleCloudPlatform/alloydb-auth-proxy examples/k8s-sidecar/proxy_sidecar_deployment.yaml",
    ),
    image(
        "alloydb-connectors/alloydb-auth-proxy",
        Proxy,
        "GoogleCloudPlatform/alloydb-auth-proxy examples/k8s-sidecar/proxy_sidecar_deployment.yaml",
    ),
    image(
        "istio/proxyv2",
        Proxy,
        "istio/istio manifests/charts/istio-control/istio-discovery/files/injection-template.yaml",
    ),
    image(
        "linkerd/proxy",
        Proxy,
        "linkerd/linkerd2 charts/linkerd-control-plane/values.yaml",
    ),
    image(
        "linkerd-io/proxy",
        Proxy,
        "linkerd/linkerd2 charts/linkerd2/values.yaml (stable-2.x, gcr.io/linkerd-io/proxy)",
    ),
    image(
        "hashicorp/consul-dataplane",
        Proxy,
        "hashicorp/consul-k8s control-plane/connect-inject/webhook/consul_dataplane_sidecar.go",
    ),
    image(
        "oauth2-proxy/oauth2-proxy",
        Proxy,
        "oauth2-proxy/manifests helm/oauth2-proxy/values.yaml",
    ),
    image(
        "brancz/kube-rbac-proxy",
        Proxy,
        "prometheus-operator/kube-prometheus manifests/nodeExporter-daemonset.yaml",
    ),
    image(
        "kubebuilder/kube-rbac-proxy",
        Proxy,
        "kubernetes-sigs/kubebuilder testdata/project-v3/config/default/manager_auth_proxy_patch.yaml",
    ),
    image(
        "rbac-proxy/kube-rbac-proxy",
        Proxy,
        "brancz/kube-rbac-proxy README.md (quay.io/brancz/kube-rbac-proxy mirror path)",
    ),
    image(
        "daprio/daprd",
        Proxy,
        "dapr/dapr pkg/injector/patcher/sidecar_container.go",
    ),
    image(
        "dapr/daprd",
        Proxy,
        "dapr/dapr charts/dapr/charts/dapr_sidecar_injector/values.yaml (ghcr.io/dapr/daprd)",
    ),
    image(
        "cyberark/secretless-broker",
        Proxy,
        "cyberark/secretless-broker k8s-ci/k8s_crds/deployment.yaml.sh",
    ),
    // Secret agents.
    image(
        "hashicorp/consul-template",
        SecretAgent,
        "hashicorp/consul-template README.md (Docker image)",
    ),
    // Telemetry.
    image(
        "otel/opentelemetry-collector",
        Telemetry,
        "open-telemetry/opentelemetry-operator pkg/sidecar/pod.go (mode: sidecar)",
    ),
    image(
        "otel/opentelemetry-collector-contrib",
        Telemetry,
        "open-telemetry/opentelemetry-helm-charts charts/opentelemetry-collector/values.yaml",
    ),
    image(
        "open-telemetry/opentelemetry-collector-releases/opentelemetry-collector",
        Telemetry,
        "open-telemetry/opentelemetry-operator pkg/sidecar/pod.go (the collector image of mode: sidecar)",
    ),
    image(
        "open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-contrib",
        Telemetry,
        "open-telemetry/opentelemetry-helm-charts charts/opentelemetry-collector/values.yaml (image.repository)",
    ),
    image(
        "otel/opentelemetry-collector-k8s",
        Telemetry,
        "open-telemetry/opentelemetry-helm-charts charts/opentelemetry-collector/values.yaml",
    ),
    image(
        "aws-observability/aws-otel-collector",
        Telemetry,
        "aws-observability/aws-otel-collector deployment-template/eks/eks-sidecar.yaml",
    ),
    image(
        "jaegertracing/jaeger-agent",
        Telemetry,
        "jaegertracing/jaeger-operator pkg/inject/sidecar.go",
    ),
    image(
        "prom/statsd-exporter",
        Telemetry,
        "prometheus/statsd_exporter README.md (sidecar beside the app)",
    ),
    image(
        "prometheus-to-sd",
        Telemetry,
        "kubernetes/kubernetes cluster/addons/fluentd-gcp/event-exporter.yaml (prometheus-to-sd-exporter)",
    ),
    // Exporters that only run beside the server they read.
    image(
        "bitnami/redis-exporter",
        Exporter,
        "bitnami/charts bitnami/redis/values.yaml (metrics.image)",
    ),
    image(
        "bitnami/postgres-exporter",
        Exporter,
        "bitnami/charts bitnami/postgresql/values.yaml (metrics.image)",
    ),
    image(
        "bitnami/mysqld-exporter",
        Exporter,
        "bitnami/charts bitnami/mysql/values.yaml (metrics.image)",
    ),
    image(
        "bitnami/mongodb-exporter",
        Exporter,
        "bitnami/charts bitnami/mongodb/values.yaml (metrics.image)",
    ),
    image(
        "bitnami/memcached-exporter",
        Exporter,
        "bitnami/charts bitnami/memcached/values.yaml (metrics.image)",
    ),
    image(
        "bitnami/nginx-exporter",
        Exporter,
        "bitnami/charts bitnami/nginx/values.yaml (metrics.image)",
    ),
    image(
        "bitnami/apache-exporter",
        Exporter,
        "bitnami/charts bitnami/apache/values.yaml (metrics.image)",
    ),
    image(
        "bitnami/jmx-exporter",
        Exporter,
        "bitnami/charts bitnami/kafka/values.yaml (metrics.jmx.image)",
    ),
    image(
        "oliver006/redis_exporter",
        Exporter,
        "DandyDeveloper/charts charts/redis-ha/values.yaml (exporter.image)",
    ),
    image(
        "nginx/nginx-prometheus-exporter",
        Exporter,
        "nginxinc/nginx-prometheus-exporter README.md (sidecar)",
    ),
    // Config and content syncers.
    image(
        "kiwigrid/k8s-sidecar",
        ConfigSync,
        "grafana/helm-charts charts/grafana/values.yaml (sidecar.image)",
    ),
    image(
        "git-sync/git-sync",
        ContentSync,
        "apache/airflow chart/values.yaml (dags.gitSync)",
    ),
    image(
        "git-sync",
        ContentSync,
        "kubernetes/git-sync README.md (k8s.gcr.io/git-sync, v3)",
    ),
    // Reloaders.
    image(
        "jimmidyson/configmap-reload",
        Reloader,
        "prometheus-community/helm-charts charts/prometheus/values.yaml (configmapReload, until 2023)",
    ),
    image(
        "prometheus-operator/prometheus-config-reloader",
        Reloader,
        "prometheus-community/helm-charts charts/prometheus/values.yaml (configmapReload.prometheus.image)",
    ),
    image(
        "coreos/prometheus-config-reloader",
        Reloader,
        "prometheus-operator/prometheus-operator pkg/prometheus/statefulset.go (quay.io/coreos, before 0.43)",
    ),
    // Resizers that scale the main container's resources with the cluster.
    image(
        "autoscaling/addon-resizer",
        Resizer,
        "kubernetes/kubernetes cluster/addons/metrics-server/metrics-server-deployment.yaml (metrics-server-nanny)",
    ),
    // Leader electors.
    image(
        "google_containers/leader-elector",
        LeaderElector,
        "kubernetes-retired/contrib election/README.md",
    ),
    image(
        "leader-elector",
        LeaderElector,
        "kubernetes-retired/contrib election/README.md (k8s.gcr.io/leader-elector)",
    ),
];

pub const COMMANDS: &[CommandEntry] = &[
    command(
        "vault",
        &["agent"],
        SecretAgent,
        "hashicorp/vault-k8s agent-inject/agent/container_sidecar.go",
    ),
    command(
        "consul-template",
        &[],
        SecretAgent,
        "hashicorp/consul-template README.md",
    ),
    command(
        "envconsul",
        &[],
        SecretAgent,
        "hashicorp/envconsul README.md",
    ),
    command(
        "consul",
        &["snapshot", "agent"],
        SecretAgent,
        "hashicorp/consul-k8s charts/consul/templates/server-statefulset.yaml (consul-snapshot-agent)",
    ),
    command(
        "consul",
        &["connect", "envoy"],
        Proxy,
        "hashicorp/consul command/connect/envoy/envoy.go (runs Envoy as the service's sidecar proxy)",
    ),
    command(
        "consul-dataplane",
        &[],
        Proxy,
        "hashicorp/consul-k8s control-plane/connect-inject/webhook/consul_dataplane_sidecar.go",
    ),
    command(
        "cloud_sql_proxy",
        &[],
        Proxy,
        "GoogleCloudPlatform/cloud-sql-proxy examples/kubernetes/proxy_with_sa_key.yaml (v1)",
    ),
    command(
        "cloud-sql-proxy",
        &[],
        Proxy,
        "GoogleCloudPlatform/cloud-sql-proxy examples/k8s-sidecar/proxy_with_workload_identity.yaml",
    ),
    command(
        "alloydb-auth-proxy",
        &[],
        Proxy,
        "GoogleCloudPlatform/alloydb-auth-proxy examples/k8s-sidecar/proxy_sidecar_deployment.yaml",
    ),
    command(
        "pilot-agent",
        &["proxy", "sidecar"],
        Proxy,
        "istio/istio manifests/charts/istio-control/istio-discovery/files/injection-template.yaml",
    ),
    command(
        "linkerd2-proxy",
        &[],
        Proxy,
        "linkerd/linkerd2 charts/partials/templates/_proxy.tpl",
    ),
    command(
        "oauth2-proxy",
        &[],
        Proxy,
        "oauth2-proxy/manifests helm/oauth2-proxy/templates/deployment.yaml",
    ),
    command(
        "kube-rbac-proxy",
        &[],
        Proxy,
        "brancz/kube-rbac-proxy examples/resource-attributes/deployment.yaml",
    ),
    command(
        "daprd",
        &[],
        Proxy,
        "dapr/dapr pkg/injector/patcher/sidecar_container.go",
    ),
    command(
        "fluent-bit",
        &[],
        LogForwarder,
        "fluent/helm-charts charts/fluent-bit/templates/_pod.tpl",
    ),
    command(
        "td-agent-bit",
        &[],
        LogForwarder,
        "fluent/fluent-bit-kubernetes-logging output/elasticsearch/fluent-bit-ds.yaml",
    ),
    command(
        "fluentd",
        &[],
        LogForwarder,
        "fluent/fluentd-kubernetes-daemonset README.md",
    ),
    command(
        "promtail",
        &[],
        LogForwarder,
        "grafana/helm-charts charts/promtail/templates/daemonset.yaml",
    ),
    command(
        "filebeat",
        &[],
        LogForwarder,
        "elastic/beats deploy/kubernetes/filebeat-kubernetes.yaml",
    ),
    command(
        "otelcol",
        &[],
        Telemetry,
        "open-telemetry/opentelemetry-operator internal/manifests/collector/container.go",
    ),
    command(
        "otelcol-contrib",
        &[],
        Telemetry,
        "open-telemetry/opentelemetry-helm-charts charts/opentelemetry-collector/templates/_pod.tpl",
    ),
    command(
        "jaeger-agent",
        &[],
        Telemetry,
        "jaegertracing/jaeger-operator pkg/inject/sidecar.go",
    ),
    command(
        "thanos",
        &["sidecar"],
        Telemetry,
        "prometheus-operator/prometheus-operator pkg/prometheus/server/statefulset.go (thanos-sidecar)",
    ),
    command(
        "git-sync",
        &[],
        ContentSync,
        "kubernetes/git-sync README.md",
    ),
    command(
        "configmap-reload",
        &[],
        Reloader,
        "jimmidyson/configmap-reload README.md",
    ),
    command(
        "prometheus-config-reloader",
        &[],
        Reloader,
        "prometheus-operator/prometheus-operator pkg/operator/config_reloader.go",
    ),
    command(
        "leader-elector",
        &[],
        LeaderElector,
        "kubernetes-retired/contrib election/README.md",
    ),
];

/// Images whose ENTRYPOINT runs one program with the pod's `args` (directly or through an
/// entrypoint script that execs it): a pod that gives only `args` runs `program args...`.
#[derive(Debug, Clone, Copy)]
pub struct ImageProgram {
    pub repository: &'static str,
    pub program: &'static str,
    pub source: &'static str,
}

pub const IMAGE_PROGRAMS: &[ImageProgram] = &[
    ImageProgram {
        repository: "hashicorp/vault",
        program: "vault",
        source: "hashicorp/vault .release/docker/docker-entrypoint.sh",
    },
    ImageProgram {
        repository: "hashicorp/consul",
        program: "consul",
        source: "hashicorp/consul .release/docker/docker-entrypoint.sh",
    },
    ImageProgram {
        repository: "thanos/thanos",
        program: "thanos",
        source: "thanos-io/thanos Dockerfile (ENTRYPOINT [\"/bin/thanos\"])",
    },
    ImageProgram {
        repository: "thanos-io/thanos",
        program: "thanos",
        source: "thanos-io/thanos Dockerfile (ENTRYPOINT [\"/bin/thanos\"])",
    },
    ImageProgram {
        repository: "hashicorp/consul-template",
        program: "consul-template",
        source: "hashicorp/consul-template Dockerfile",
    },
];

/// The catalogued images whose repository ends in `name` (its last path segment), in
/// catalogue order: an image can only be an entry with its own last segment, and every
/// container's image is matched on every evaluation.
pub fn images_named(name: &str) -> &'static [&'static ImageEntry] {
    // Sorted by name for a binary search: no hashing of every image's name.
    static BY_NAME: LazyLock<Vec<(&'static str, Vec<&'static ImageEntry>)>> = LazyLock::new(|| {
        let mut by_name: Vec<(&'static str, Vec<&'static ImageEntry>)> = Vec::new();
        for e in IMAGES {
            let last = e.repository.rsplit('/').next().unwrap_or(e.repository);
            match by_name.binary_search_by(|(n, _)| n.cmp(&last)) {
                Ok(i) => by_name[i].1.push(e),
                Err(i) => by_name.insert(i, (last, vec![e])),
            }
        }
        by_name
    });
    BY_NAME
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .and_then(|i| BY_NAME.get(i))
        .map_or(&[], |(_, entries)| entries.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_well_formed_and_cite_a_source() {
        for e in IMAGES {
            assert!(!e.repository.is_empty());
            assert_eq!(
                e.repository,
                e.repository.to_ascii_lowercase(),
                "{}",
                e.repository
            );
            assert!(!e.repository.contains(':') && !e.repository.contains('@'));
            assert!(!e.repository.contains('*'), "no globs: {}", e.repository);
            assert!(
                e.source.contains('/') && e.source.contains(' '),
                "{}",
                e.source
            );
        }
        for e in COMMANDS {
            assert!(!e.program.is_empty() && !e.program.contains('/'));
            assert!(
                e.source.contains('/') && e.source.contains(' '),
                "{}",
                e.source
            );
        }
        let mut seen = std::collections::HashSet::new();
        for e in IMAGES {
            assert!(seen.insert(e.repository), "duplicate {}", e.repository);
        }
    }

    #[test]
    fn every_image_is_found_under_its_last_segment_in_catalogue_order() {
        // Repositories are unique (tested above): they name the entries.
        let position = |repository: &str| IMAGES.iter().position(|i| i.repository == repository);
        let mut found = 0;
        for e in IMAGES {
            let last = e.repository.rsplit('/').next().unwrap();
            let named = images_named(last);
            let order: Vec<usize> = named
                .iter()
                .filter_map(|n| position(n.repository))
                .collect();
            assert!(
                order.contains(&position(e.repository).unwrap()),
                "{}",
                e.repository
            );
            assert!(order.is_sorted(), "{last}: {order:?}");
            found += named
                .iter()
                .filter(|n| n.repository == e.repository)
                .count();
        }
        assert_eq!(found, IMAGES.len());
        assert!(images_named("no-such-agent").is_empty());
    }
}
