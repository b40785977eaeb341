//! Known side agents: log forwarders, proxies, secret agents and telemetry agents that belong
//! in native sidecars rather than next to the app in `containers`.

use crate::engine::config::ConfigError;
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// Globs on the image reference (registry/repository:tag), lower-cased.
pub const BUILTIN_SIDE_AGENT_IMAGES: &[&str] = &[
    // log forwarders
    "*fluent-bit*",
    "*fluentd*",
    "*fluent/fluentd*",
    "*timberio/vector*",
    "*promtail*",
    "*filebeat*",
    "*grafana/alloy*",
    "*grafana/agent*",
    // proxies and meshes
    "*cloud-sql-proxy*",
    "*cloudsql-proxy*",
    "*cloud-sql-connectors*",
    "*istio/proxyv2*",
    "*envoyproxy/envoy*",
    "*linkerd*proxy*",
    "*oauth2-proxy*",
    "*kube-rbac-proxy*",
    "*pgbouncer*",
    // secrets
    "*hashicorp/vault*",
    "*vault-agent*",
    "*vault-k8s*",
    "*secrets-store-sync*",
    // telemetry
    "*opentelemetry-collector*",
    "*otel/*collector*",
    "*aws-otel-collector*",
    "*jaegertracing/jaeger-agent*",
    "*datadog/agent*",
    "*newrelic/*infrastructure*",
    "*prom/statsd-exporter*",
    "*statsd-exporter*",
    "*splunk-otel-collector*",
    // config and content sync
    "*git-sync*",
    "*configmap-reload*",
    "*config-reloader*",
    "*dapr/daprd*",
];

/// A side-agent glob, matched without regard to case. The pattern is compiled as written:
/// lower-casing it first would change what a character range means (`[J-c]` spans `J` to `c`;
/// `[j-c]` is not a range at all).
fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).case_insensitive(true).build()
}

/// Matches image references against the configured (or built-in) side-agent globs, ignoring
/// case.
pub struct SideAgentMatcher {
    set: GlobSet,
}

impl SideAgentMatcher {
    pub fn new(patterns: Option<&[String]>) -> Result<Self, ConfigError> {
        let mut builder = GlobSetBuilder::new();
        match patterns {
            Some(list) => {
                for (i, p) in list.iter().enumerate() {
                    builder.add(glob(p).map_err(|e| ConfigError::Field {
                        field: format!("sideAgents.images[{i}]"),
                        reason: e.to_string(),
                    })?);
                }
            }
            None => {
                for p in BUILTIN_SIDE_AGENT_IMAGES {
                    builder.add(glob(p).map_err(|e| ConfigError::Field {
                        field: "sideAgents.images (built-in)".into(),
                        reason: e.to_string(),
                    })?);
                }
            }
        }
        let set = builder.build().map_err(|e| ConfigError::Field {
            field: "sideAgents.images".into(),
            reason: e.to_string(),
        })?;
        Ok(SideAgentMatcher { set })
    }

    pub fn matches(&self, image: &str) -> bool {
        !image.is_empty() && self.set.is_match(image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_list_matches_well_known_agents() {
        let m = SideAgentMatcher::new(None).unwrap();
        assert!(BUILTIN_SIDE_AGENT_IMAGES.len() >= 20);
        for image in [
            "cr.fluentbit.io/fluent/fluent-bit:3.1",
            "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.11.0",
            "docker.io/istio/proxyv2:1.22.3",
            "hashicorp/vault:1.16",
            "otel/opentelemetry-collector-contrib:0.104.0",
            "registry.k8s.io/git-sync/git-sync:v4.2.1",
        ] {
            assert!(m.matches(image), "{image}");
        }
        for image in [
            "nginx:1.27",
            "registry.example/shop/orders-api:4.2.0",
            "postgres:16",
            "",
        ] {
            assert!(!m.matches(image), "{image}");
        }
    }

    #[test]
    fn configured_list_replaces_builtin() {
        let m = SideAgentMatcher::new(Some(&["*my-agent*".to_string()])).unwrap();
        assert!(m.matches("example.com/My-Agent:1"));
        assert!(!m.matches("fluent/fluent-bit:3"));
    }

    /// Found by the `config_parser` fuzzer: `[J-c]` is a range as written but not once
    /// lower-cased, so the config was accepted and the engine then refused it.
    #[test]
    fn patterns_keep_their_ranges_and_match_without_case() {
        let m = SideAgentMatcher::new(Some(&["*agent-[J-c]*".to_string()])).unwrap();
        for image in [
            "example/agent-K:1",
            "example/agent-k:1",
            "EXAMPLE/AGENT-B:1",
        ] {
            assert!(m.matches(image), "{image}");
        }
        assert!(
            !m.matches("example/agent-d:1"),
            "d is outside J-c and j-z, A-C"
        );
        assert!(!m.matches("example/agent-1:1"));
    }
}
