//! Prometheus metrics (docs/design.md section 9), served as text on the admin port.
//!
//! Every label value is a `&'static str`: recording a request allocates nothing. Kinds and
//! operations outside the known sets are counted as `other`, so a client cannot grow the
//! label space.

use crate::engine::pod_bearing::pod_bearing;
use crate::engine::{Action, Mode, RuleId};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Content type of the text exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const DURATION_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    pub kind: &'static str,
    pub operation: &'static str,
    pub result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FindingLabels {
    pub rule: &'static str,
    pub action: &'static str,
    pub mode: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TypeLabels {
    pub r#type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

type HistogramFamily = Family<EndpointLabels, Histogram, fn() -> Histogram>;

/// The server's metrics and the registry that exposes them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily,
    findings: Family<FindingLabels, Counter>,
    mutations: Family<TypeLabels, Counter>,
    config_reloads: Family<ResultLabels, Counter>,
    tls_reloads: Family<ResultLabels, Counter>,
    parser: ParserCounters,
    shed: Counter,
    inflight: Gauge,
    /// Connections, limits and exemptions.
    pub limits: crate::server::limit_metrics::LimitMetrics,
    report_results: Family<ReportResultLabels, Gauge>,
    /// The series of `report_results` shown, so that gone ones are removed.
    report_series: std::sync::Mutex<std::collections::BTreeSet<(String, String, String)>>,
    report_writes: Family<ResultLabels, Counter>,
    config_map_lookups: Family<ResultLabels, Counter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReportResultLabels {
    pub namespace: String,
    pub rule: String,
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

/// The contained parser's counters (`pidone_parser_*`), mirrored from its own atomics.
#[derive(Default)]
struct ParserCounters {
    parses: Counter,
    cache_hits: Counter,
    prescreen_rejections: Family<ReasonLabels, Counter>,
    worker_restarts: Counter,
    deadline_overruns: Counter,
    worker_crashes: Counter,
}

/// Raises `counter` to `total` (the source only grows).
fn catch_up(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pidone");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission reviews answered, by endpoint, kind, operation and result",
            requests.clone(),
        );
        let duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        registry.register(
            "admission_duration_seconds",
            "Time to answer an admission review, from the first body byte to the response",
            duration.clone(),
        );
        let findings = Family::<FindingLabels, Counter>::default();
        registry.register(
            "findings",
            "Findings reported, by rule, the action enforce mode takes, and the mode",
            findings.clone(),
        );
        let mutations = Family::<TypeLabels, Counter>::default();
        registry.register(
            "mutations",
            "Mutations sent in patches, by type",
            mutations.clone(),
        );
        let config_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration file reloads, by result",
            config_reloads.clone(),
        );
        let tls_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "tls_reloads",
            "Certificate and key reloads, by result",
            tls_reloads.clone(),
        );
        let parser = ParserCounters::default();
        registry.register(
            "parser_parses",
            "Scripts parsed (cache misses that passed the pre-screen)",
            parser.parses.clone(),
        );
        registry.register(
            "parser_cache_hits",
            "Script verdicts served from the cache",
            parser.cache_hits.clone(),
        );
        registry.register(
            "parser_prescreen_rejections",
            "Scripts refused before parsing, by reason",
            parser.prescreen_rejections.clone(),
        );
        registry.register(
            "parser_worker_restarts",
            "Parse workers replaced",
            parser.worker_restarts.clone(),
        );
        registry.register(
            "parser_deadline_overruns",
            "Parses killed at their deadline",
            parser.deadline_overruns.clone(),
        );
        registry.register(
            "parser_worker_crashes",
            "Parse workers that died during a parse",
            parser.worker_crashes.clone(),
        );
        let shed = Counter::default();
        registry.register(
            "admission_shed",
            "Admission reviews answered 429 (Retry-After: 1) because no analysis slot freed up in time",
            shed.clone(),
        );
        let inflight = Gauge::default();
        registry.register(
            "admission_inflight",
            "Admission reviews being analysed or waiting for a slot",
            inflight.clone(),
        );
        let limits = crate::server::limit_metrics::LimitMetrics::register(&mut registry);
        let report_results = Family::<ReportResultLabels, Gauge>::default();
        registry.register(
            "report_results",
            "Results in the written reports (reports.enabled), by namespace, rule and result; no series while reports are off",
            report_results.clone(),
        );
        let report_writes = Family::<ResultLabels, Counter>::default();
        registry.register(
            "report_writes",
            "Report writes by the Lease holder, by result: ok, error, deleted",
            report_writes.clone(),
        );
        let config_map_lookups = Family::<ResultLabels, Counter>::default();
        registry.register(
            "config_map_lookups",
            "ConfigMaps looked up for the scripts containers run (scripts.configMaps), by result: hit (cache), miss (read from the API), error",
            config_map_lookups.clone(),
        );
        let metrics = Metrics {
            config_map_lookups,
            limits,
            registry,
            shed,
            inflight,
            report_results,
            report_series: Default::default(),
            report_writes,
            requests,
            duration,
            findings,
            mutations,
            config_reloads,
            tls_reloads,
            parser,
        };
        metrics.create_known_series();
        metrics
    }

    /// Creates, at zero, the series that dashboards and `absent()` alerts look for, so every
    /// family is on `/metrics` from the start instead of after its first event.
    fn create_known_series(&self) {
        for endpoint in ENDPOINTS {
            let _ = self.duration.get_or_create(&EndpointLabels { endpoint });
            for result in RESULTS {
                let _ = self.requests.get_or_create(&RequestLabels {
                    endpoint,
                    kind: "Pod",
                    operation: "CREATE",
                    result,
                });
            }
        }
        for rule in RuleId::ALL {
            for action in [Action::Deny, Action::Mutate, Action::Warn] {
                for mode in [Mode::Enforce, Mode::Audit] {
                    let _ = self.findings.get_or_create(&FindingLabels {
                        rule: rule.as_str(),
                        action: action.as_str(),
                        mode: mode.as_str(),
                    });
                }
            }
        }
        for r#type in MUTATION_TYPES {
            let _ = self.mutations.get_or_create(&TypeLabels { r#type });
        }
        for ok in [true, false] {
            let result = result_label(ok);
            let _ = self.config_reloads.get_or_create(&ResultLabels { result });
            let _ = self.tls_reloads.get_or_create(&ResultLabels { result });
        }
        for result in REPORT_WRITE_RESULTS {
            let _ = self.report_writes.get_or_create(&ResultLabels { result });
        }
        for result in CONFIG_MAP_LOOKUP_RESULTS {
            let _ = self
                .config_map_lookups
                .get_or_create(&ResultLabels { result });
        }
        for check in crate::engine::prescreen::PrescreenCheck::ALL {
            let _ = self
                .parser
                .prescreen_rejections
                .get_or_create(&ReasonLabels {
                    reason: check.as_str(),
                });
        }
    }

    /// Mirrors the report scanner's counters (ok, error, deleted) and its current results by
    /// (namespace, rule, result) into the exported ones.
    pub fn observe_reports(
        &self,
        writes: [u64; 3],
        current: std::collections::BTreeMap<(String, String, String), i64>,
    ) {
        for (result, total) in REPORT_WRITE_RESULTS.into_iter().zip(writes) {
            catch_up(
                &self.report_writes.get_or_create(&ResultLabels { result }),
                total,
            );
        }
        let mut shown = self
            .report_series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (namespace, rule, result) in shown.iter() {
            if !current.contains_key(&(namespace.clone(), rule.clone(), result.clone())) {
                self.report_results.remove(&ReportResultLabels {
                    namespace: namespace.clone(),
                    rule: rule.clone(),
                    result: result.clone(),
                });
            }
        }
        *shown = current.keys().cloned().collect();
        drop(shown);
        for ((namespace, rule, result), count) in current {
            self.report_results
                .get_or_create(&ReportResultLabels {
                    namespace,
                    rule,
                    result,
                })
                .set(count);
        }
    }

    /// Mirrors the contained parser's counters into the exported ones.
    pub fn observe_parser(&self, snapshot: &crate::sandbox::ParserStatsSnapshot) {
        let p = &self.parser;
        catch_up(&p.parses, snapshot.parses);
        catch_up(&p.cache_hits, snapshot.cache_hits);
        for (check, total) in &snapshot.prescreen_rejections {
            catch_up(
                &p.prescreen_rejections.get_or_create(&ReasonLabels {
                    reason: check.as_str(),
                }),
                *total,
            );
        }
        catch_up(&p.worker_restarts, snapshot.worker_restarts);
        catch_up(&p.deadline_overruns, snapshot.deadline_overruns);
        catch_up(&p.worker_crashes, snapshot.worker_crashes);
    }

    pub fn request(
        &self,
        endpoint: &'static str,
        kind: &str,
        operation: &str,
        result: &'static str,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint,
                kind: kind_label(kind),
                operation: operation_label(operation),
                result,
            })
            .inc();
        self.duration
            .get_or_create(&EndpointLabels { endpoint })
            .observe(elapsed.as_secs_f64());
    }

    pub fn finding(&self, rule: RuleId, action: Action, mode: Mode) {
        self.findings
            .get_or_create(&FindingLabels {
                rule: rule.as_str(),
                action: action.as_str(),
                mode: mode.as_str(),
            })
            .inc();
    }

    pub fn mutation(&self, kind: &str) {
        self.mutations
            .get_or_create(&TypeLabels {
                r#type: mutation_label(kind),
            })
            .inc();
    }

    /// One ConfigMap look-up: `hit`, `miss` or `error`.
    pub fn config_map_lookup(&self, result: &'static str) {
        self.config_map_lookups
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// One review shed under overload.
    pub fn shed(&self) {
        self.shed.inc();
    }

    /// Current value of `pidone_admission_shed_total`.
    pub fn shed_total(&self) -> u64 {
        self.shed.get()
    }

    /// Counts a review in `pidone_admission_inflight` until the guard is dropped.
    pub fn inflight_guard(&self) -> InflightGuard {
        self.inflight.inc();
        InflightGuard(self.inflight.clone())
    }

    pub fn config_reload(&self, ok: bool) {
        self.config_reloads
            .get_or_create(&ResultLabels {
                result: result_label(ok),
            })
            .inc();
    }

    pub fn tls_reload(&self, ok: bool) {
        self.tls_reloads
            .get_or_create(&ResultLabels {
                result: result_label(ok),
            })
            .inc();
    }

    /// Current value of `pidone_tls_reloads_total{result}` (`ok` or `error`).
    pub fn tls_reloads(&self, ok: bool) -> u64 {
        self.tls_reloads
            .get_or_create(&ResultLabels {
                result: result_label(ok),
            })
            .get()
    }

    /// Current value of `pidone_config_reloads_total{result}`.
    pub fn config_reloads(&self, ok: bool) -> u64 {
        self.config_reloads
            .get_or_create(&ResultLabels {
                result: result_label(ok),
            })
            .get()
    }

    /// The text exposition, ending in `# EOF`.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Decrements `pidone_admission_inflight` when dropped.
#[derive(Debug)]
pub struct InflightGuard(Gauge);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The `endpoint` label values.
const ENDPOINTS: [&str; 2] = ["validate", "mutate"];
/// The `result` label values of answered reviews.
const RESULTS: [&str; 5] = ["allowed", "warned", "patched", "denied", "invalid"];
/// The `result` label values of report writes.
const REPORT_WRITE_RESULTS: [&str; 3] = ["ok", "error", "deleted"];

/// Results of `pidone_config_map_lookups_total`.
const CONFIG_MAP_LOOKUP_RESULTS: [&str; 3] = ["hit", "miss", "error"];
/// The `type` label values of mutations.
const MUTATION_TYPES: [&str; 3] = ["exec", "sidecar", "init"];

fn result_label(ok: bool) -> &'static str {
    if ok { "ok" } else { "error" }
}

/// The kinds pidone analyses, else `other`.
pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "" => "unknown",
        _ => pod_bearing(kind).map_or("other", |k| k.kind),
    }
}

pub fn operation_label(operation: &str) -> &'static str {
    match operation {
        "CREATE" => "CREATE",
        "UPDATE" => "UPDATE",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "" => "unknown",
        _ => "other",
    }
}

fn mutation_label(kind: &str) -> &'static str {
    match kind {
        "exec" => "exec",
        "sidecar" => "sidecar",
        "init" => "init",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_pidone_analyses_is_its_own_label() {
        for k in &crate::engine::pod_bearing::POD_BEARING {
            assert_eq!(kind_label(k.kind), k.kind);
        }
        assert_eq!(kind_label(""), "unknown");
        assert_eq!(kind_label("Secret"), "other");
    }

    #[test]
    fn names_match_the_contract() {
        let m = Metrics::new();
        m.request(
            "validate",
            "Pod",
            "CREATE",
            "denied",
            Duration::from_millis(1),
        );
        m.request(
            "mutate",
            "Secret",
            "PATCH",
            "allowed",
            Duration::from_millis(1),
        );
        m.finding(RuleId::MultiProcess, Action::Deny, Mode::Audit);
        m.mutation("exec");
        m.mutation("anything else");
        m.config_reload(true);
        m.tls_reload(false);
        m.shed();
        let _busy = m.inflight_guard();
        let text = m.encode().unwrap();
        for line in [
            r#"pidone_admission_requests_total{endpoint="validate",kind="Pod",operation="CREATE",result="denied"} 1"#,
            r#"pidone_admission_requests_total{endpoint="mutate",kind="other",operation="other",result="allowed"} 1"#,
            r#"pidone_admission_duration_seconds_count{endpoint="validate"} 1"#,
            r#"pidone_findings_total{rule="multi-process",action="deny",mode="audit"} 1"#,
            r#"pidone_mutations_total{type="exec"} 1"#,
            r#"pidone_mutations_total{type="other"} 1"#,
            r#"pidone_config_reloads_total{result="ok"} 1"#,
            r#"pidone_tls_reloads_total{result="error"} 1"#,
            "pidone_admission_shed_total 1",
            "pidone_admission_inflight 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn every_family_has_series_before_any_event() {
        let text = Metrics::new().encode().unwrap();
        for line in [
            r#"pidone_admission_requests_total{endpoint="validate",kind="Pod",operation="CREATE",result="denied"} 0"#,
            r#"pidone_admission_requests_total{endpoint="mutate",kind="Pod",operation="CREATE",result="patched"} 0"#,
            r#"pidone_admission_duration_seconds_count{endpoint="mutate"} 0"#,
            r#"pidone_findings_total{rule="signal-deaf-pid1",action="warn",mode="audit"} 0"#,
            r#"pidone_findings_total{rule="multi-process",action="deny",mode="enforce"} 0"#,
            r#"pidone_mutations_total{type="sidecar"} 0"#,
            r#"pidone_config_reloads_total{result="error"} 0"#,
            r#"pidone_tls_reloads_total{result="ok"} 0"#,
            "pidone_admission_shed_total 0",
            "pidone_admission_inflight 0",
            "pidone_parser_parses_total 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        // Every registered family has at least one sample, but the reports' results, which
        // exist only for namespaces the reports have seen.
        for family in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let name = family.split(' ').next().unwrap_or_default();
            if name == "pidone_report_results" {
                continue;
            }
            assert!(
                text.lines()
                    .any(|l| !l.starts_with('#') && l.starts_with(name)),
                "family {name} has no series"
            );
        }
    }
}
