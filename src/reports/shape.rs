//! The report resources as the apiserver stores them: `wgpolicyk8s.io/v1alpha2` PolicyReport and
//! ClusterPolicyReport, `openreports.io/v1alpha1` Report and ClusterReport. The two APIs share
//! their result and summary shapes; OpenReports adds a top-level `source`.

use crate::engine::config::ReportsApi;
use serde::Serialize;
use std::collections::BTreeMap;

/// The name of every report pidone writes (one per namespace, one cluster-scoped).
pub const REPORT_NAME: &str = "pidone";
/// `source` of results (and of OpenReports): what Policy Reporter groups and filters by.
pub const SOURCE: &str = "pidone";
/// `policy` of every result: the rules are pidone's rules.
pub const POLICY: &str = "pidone";
/// Labels on every report, for `kubectl get policyreports -l ...` and the scanner's clean-up.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "pidone");

/// Names of one API's group, version, kinds and plurals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiNames {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub cluster_kind: &'static str,
    pub cluster_plural: &'static str,
}

impl ApiNames {
    pub fn of(api: ReportsApi) -> ApiNames {
        match api {
            ReportsApi::PolicyReport => ApiNames {
                group: "wgpolicyk8s.io",
                version: "v1alpha2",
                kind: "PolicyReport",
                plural: "policyreports",
                cluster_kind: "ClusterPolicyReport",
                cluster_plural: "clusterpolicyreports",
            },
            ReportsApi::OpenReport => ApiNames {
                group: "openreports.io",
                version: "v1alpha1",
                kind: "Report",
                plural: "reports",
                cluster_kind: "ClusterReport",
                cluster_plural: "clusterreports",
            },
        }
    }

    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }
}

/// A reference to a Kubernetes object (`corev1.ObjectReference` in the CRDs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// `pass`, `fail`, `warn`, `error`, `skip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Warn,
    Error,
    Skip,
}

/// `critical`, `high`, `medium`, `low`, `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// `metav1.Timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Timestamp {
    pub seconds: i64,
    pub nanos: i32,
}

impl Timestamp {
    pub fn now() -> Timestamp {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            seconds: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
            nanos: 0,
        }
    }
}

/// One result: a rule on one container of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportResult {
    pub source: &'static str,
    pub policy: &'static str,
    pub rule: String,
    pub category: &'static str,
    pub result: Outcome,
    pub severity: Severity,
    pub scored: bool,
    pub timestamp: Timestamp,
    pub message: String,
    pub resources: Vec<ResourceRef>,
    /// String values only (the CRDs' `additionalProperties: {type: string}`).
    pub properties: BTreeMap<String, String>,
}

/// Counts of results by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    pub pass: u64,
    pub fail: u64,
    pub warn: u64,
    pub error: u64,
    pub skip: u64,
}

impl Summary {
    pub fn of(results: &[ReportResult]) -> Summary {
        let mut s = Summary::default();
        for r in results {
            match r.result {
                Outcome::Pass => s.pass += 1,
                Outcome::Fail => s.fail += 1,
                Outcome::Warn => s.warn += 1,
                Outcome::Error => s.error += 1,
                Outcome::Skip => s.skip += 1,
            }
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportMeta {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<OwnerReference>,
}

/// One report resource, ready to print or to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub api_version: String,
    pub kind: String,
    pub metadata: ReportMeta,
    /// OpenReports only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    pub summary: Summary,
    pub results: Vec<ReportResult>,
}

impl Report {
    /// An empty report of `api`: namespaced when `namespace` is given, else cluster-scoped.
    pub fn new(api: ReportsApi, namespace: Option<&str>) -> Report {
        let names = ApiNames::of(api);
        Report {
            api_version: names.api_version(),
            kind: if namespace.is_some() {
                names.kind
            } else {
                names.cluster_kind
            }
            .to_string(),
            metadata: ReportMeta {
                name: REPORT_NAME.to_string(),
                namespace: namespace.map(str::to_string),
                labels: BTreeMap::from([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())]),
                owner_references: Vec::new(),
            },
            source: (api == ReportsApi::OpenReport).then_some(SOURCE),
            summary: Summary::default(),
            results: Vec::new(),
        }
    }

    /// Sets the results (in a stable order) and the summary that counts them.
    pub fn set_results(&mut self, mut results: Vec<ReportResult>) {
        results.sort_by(|a, b| {
            (&a.resources, &a.properties.get("container"), &a.rule).cmp(&(
                &b.resources,
                &b.properties.get("container"),
                &b.rule,
            ))
        });
        self.summary = Summary::of(&results);
        self.results = results;
    }
}
