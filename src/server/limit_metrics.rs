//! Metrics of the budgets against hostile clients and tenants (SECURITY.md): connections,
//! limits that stopped a request or an object, and honoured `pidone.io/ignore` annotations.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why a connection was closed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ClosedLabels {
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct LimitLabels {
    pub limit: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ExemptionLabels {
    pub rule: &'static str,
    /// Namespaces are created by cluster administrators, not pod authors: a bounded set.
    pub namespace: String,
}

/// See the module documentation.
#[derive(Default)]
pub struct LimitMetrics {
    connections: Gauge,
    connections_closed: Family<ClosedLabels, Counter>,
    limits: Family<LimitLabels, Counter>,
    exemptions: Family<ExemptionLabels, Counter>,
}

impl LimitMetrics {
    pub fn register(registry: &mut Registry) -> LimitMetrics {
        let m = LimitMetrics::default();
        registry.register(
            "connections",
            "Connections open on the TLS port",
            m.connections.clone(),
        );
        registry.register(
            "connections_closed",
            "Connections of the TLS port closed by pidone, by reason: refused (at the cap, all busy), evicted (idle, to make room at the cap), silent (no request in time), idle, slow-head, handshake",
            m.connections_closed.clone(),
        );
        registry.register(
            "limits",
            "Requests or objects stopped by a limit: body-budget, containers, argv-bytes",
            m.limits.clone(),
        );
        registry.register(
            "exemptions",
            "Rules switched off by the pidone.io/ignore annotation, by rule and namespace",
            m.exemptions.clone(),
        );
        m
    }

    pub fn connections_open(&self, open: usize) {
        self.connections
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// Current value of `pidone_connections`.
    pub fn open_connections(&self) -> usize {
        usize::try_from(self.connections.get()).unwrap_or(0)
    }

    pub fn connection_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ClosedLabels { reason })
            .inc();
    }

    /// Current value of `pidone_connections_closed_total{reason}`.
    pub fn connections_closed(&self, reason: &'static str) -> u64 {
        self.connections_closed
            .get_or_create(&ClosedLabels { reason })
            .get()
    }

    pub fn limit_hit(&self, limit: &'static str) {
        self.limits.get_or_create(&LimitLabels { limit }).inc();
    }

    /// Current value of `pidone_limits_total{limit}`.
    pub fn limit_hits(&self, limit: &'static str) -> u64 {
        self.limits.get_or_create(&LimitLabels { limit }).get()
    }

    pub fn exemption(&self, rule: &'static str, namespace: &str) {
        self.exemptions
            .get_or_create(&ExemptionLabels {
                rule,
                namespace: namespace.to_string(),
            })
            .inc();
    }
}
