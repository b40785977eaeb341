//! Metrics of the budgets against hostile clients and tenants (SECURITY.md): connections of each
//! port, limits that stopped a request or an object, and honoured `pidone.io/ignore`
//! annotations.

use crate::server::connections::Port;
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

/// Connections of one port.
#[derive(Default)]
struct PortMetrics {
    open: Gauge,
    closed: Family<ClosedLabels, Counter>,
}

/// See the module documentation.
#[derive(Default)]
pub struct LimitMetrics {
    webhook: PortMetrics,
    admin: PortMetrics,
    limits: Family<LimitLabels, Counter>,
    exemptions: Family<ExemptionLabels, Counter>,
}

/// Why pidone closes connections, for the help texts.
const CLOSE_REASONS: &str = "refused (at the cap, all busy), evicted (no request in flight, to make room at the cap), silent (no request in time), idle, slow-head";

impl LimitMetrics {
    pub fn register(registry: &mut Registry) -> LimitMetrics {
        let m = LimitMetrics::default();
        registry.register(
            "connections",
            "Connections open on the TLS port",
            m.webhook.open.clone(),
        );
        registry.register(
            "connections_closed",
            format!("Connections of the TLS port closed by pidone, by reason: {CLOSE_REASONS}, handshake"),
            m.webhook.closed.clone(),
        );
        registry.register(
            "admin_connections",
            "Connections open on the admin port",
            m.admin.open.clone(),
        );
        registry.register(
            "admin_connections_closed",
            format!("Connections of the admin port closed by pidone, by reason: {CLOSE_REASONS}"),
            m.admin.closed.clone(),
        );
        registry.register(
            "limits",
            "Requests or objects stopped by a limit: body-budget, body-rate, namespace-parses, containers, argv-bytes",
            m.limits.clone(),
        );
        registry.register(
            "exemptions",
            "Rules switched off by the pidone.io/ignore annotation, by rule and namespace",
            m.exemptions.clone(),
        );
        m
    }

    fn port(&self, port: Port) -> &PortMetrics {
        match port {
            Port::Webhook => &self.webhook,
            Port::Admin => &self.admin,
        }
    }

    pub fn connections_open(&self, port: Port, open: usize) {
        self.port(port)
            .open
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// Current value of `pidone_connections` (or `pidone_admin_connections`).
    pub fn open_connections(&self, port: Port) -> usize {
        usize::try_from(self.port(port).open.get()).unwrap_or(0)
    }

    pub fn connection_closed(&self, port: Port, reason: &'static str) {
        self.port(port)
            .closed
            .get_or_create(&ClosedLabels { reason })
            .inc();
    }

    /// Current value of `pidone_connections_closed_total{reason}` (or the admin port's).
    pub fn connections_closed(&self, port: Port, reason: &'static str) -> u64 {
        self.port(port)
            .closed
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
