//! From evaluations to report results and reports. Pure: the scanner and `pidone audit
//! --cluster` feed it what they read.
//!
//! - One result per finding: the rule, the outcome (`fail` where enforce denies or changes
//!   the object, `warn` where it only warns), a scored severity, the message with the fix,
//!   and properties: container, action in enforce mode, launch class, evidence, fix.
//! - Namespaced reports hold their namespace's objects; the cluster-scoped report holds one
//!   result per namespace: its mode and what enforce would do there.

use crate::engine::config::{Action, Config, Mode, ReportsApi};
use crate::engine::evaluate::{Evaluation, Finding};
use crate::engine::rules::{Harm, RuleId};
use crate::reports::shape::{
    Outcome, OwnerReference, POLICY, Report, ReportResult, ResourceRef, SOURCE, Severity, Timestamp,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// `category` of every result.
pub const CATEGORY: &str = "PID 1";
/// `rule` of the cluster report's per-namespace results.
pub const NAMESPACE_RULE: &str = "namespace-mode";
/// The namespace label that picks a mode (as the chart's webhook entries read it).
pub const MODE_LABEL: &str = "pidone.io/mode";
/// Evidence longer than this is cut (with `...`): reports have a size limit too.
const MAX_EVIDENCE: usize = 300;

/// The severity of a rule: how much harm the launch does when the pod is stopped.
pub fn rule_severity(rule: RuleId) -> Severity {
    match rule.info().harm {
        Harm::High => Severity::High,
        Harm::Medium => Severity::Medium,
        Harm::Low => Severity::Low,
    }
}

/// The scored severity of a finding: the rule's, raised to `high` where enforce denies.
pub fn severity(finding: &Finding) -> Severity {
    let base = rule_severity(finding.rule);
    if finding.action == Action::Deny {
        base.max(Severity::High)
    } else {
        base
    }
}

/// `fail` where enforce mode would deny or change the object, `warn` where it only warns.
pub fn outcome(action: Action) -> Outcome {
    match action {
        Action::Deny | Action::Mutate => Outcome::Fail,
        Action::Warn => Outcome::Warn,
        Action::Ignore => Outcome::Skip,
    }
}

/// What the container runs, as written in the object: `command` and `args`, shell-quoted.
fn evidence(object: &Value, finding: &Finding, launch: Option<&str>) -> String {
    let words = |field: &str| -> Vec<String> {
        object
            .pointer(&format!("{}/{field}", finding.pointer))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let command = words("command");
    let args = words("args");
    let mut text = match (command.is_empty(), args.is_empty()) {
        (true, true) => "no command or args: the image's ENTRYPOINT and CMD run".to_string(),
        (false, true) => format!("command: {}", shell_words::join(&command)),
        (true, false) => format!("args: {}", shell_words::join(&args)),
        (false, false) => format!(
            "command: {}; args: {}",
            shell_words::join(&command),
            shell_words::join(&args)
        ),
    };
    if let Some(launch) = launch {
        text = format!("launch {launch}; {text}");
    }
    if text.chars().count() > MAX_EVIDENCE {
        text = text.chars().take(MAX_EVIDENCE - 3).collect::<String>() + "...";
    }
    text
}

/// The results of one evaluated object, one per finding.
pub fn object_results(
    resource: &ResourceRef,
    object: &Value,
    eval: &Evaluation,
    now: Timestamp,
) -> Vec<ReportResult> {
    eval.findings
        .iter()
        .filter(|f| f.action != Action::Ignore)
        .map(|f| {
            let launch = eval
                .containers
                .iter()
                .find(|c| c.container == f.container && c.section == f.section)
                .map(|c| c.launch.as_str());
            let mut message = format!("{}. Fix: {}", f.message, f.fix);
            let mut properties = BTreeMap::from([
                ("container".to_string(), f.container.clone()),
                ("section".to_string(), f.section.as_str().to_string()),
                ("action".to_string(), f.action.as_str().to_string()),
                ("evidence".to_string(), evidence(object, f, launch)),
                ("fix".to_string(), f.fix.clone()),
            ]);
            if let Some(launch) = launch {
                properties.insert("launch".into(), launch.to_string());
            }
            if let Some(why) = &f.fallback {
                message.push_str(&format!(" (pidone cannot fix this automatically: {why})"));
                properties.insert("notFixedBecause".into(), why.clone());
            }
            ReportResult {
                source: SOURCE,
                policy: POLICY,
                rule: f.rule.as_str().to_string(),
                category: CATEGORY,
                result: outcome(f.action),
                severity: severity(f),
                scored: true,
                timestamp: now,
                message,
                resources: vec![resource.clone()],
                properties,
            }
        })
        .collect()
}

/// How pidone treats a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceMode {
    Enforce,
    Audit,
    /// `pidone.io/mode=off`, or no label while the global mode is `off`.
    Off,
    /// Listed in `exemptions.namespaces`.
    Exempt,
}

impl NamespaceMode {
    /// The mode of `namespace` with the value of its `pidone.io/mode` label: a known label value
    /// wins, anything else falls back to the global mode (as the webhook entries select).
    pub fn of(config: &Config, namespace: &str, label: Option<&str>) -> NamespaceMode {
        if config.exemptions.namespaces.iter().any(|n| n == namespace) {
            return NamespaceMode::Exempt;
        }
        let mode = match label {
            Some("enforce") => Mode::Enforce,
            Some("audit") => Mode::Audit,
            Some("off") => Mode::Off,
            _ => config.mode,
        };
        match mode {
            Mode::Enforce => NamespaceMode::Enforce,
            Mode::Audit => NamespaceMode::Audit,
            Mode::Off => NamespaceMode::Off,
        }
    }

    /// Whether objects of the namespace are reported.
    pub fn reported(self) -> bool {
        matches!(self, NamespaceMode::Enforce | NamespaceMode::Audit)
    }
}

/// A namespace as the reports need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceInfo {
    pub name: String,
    /// Unknown when the namespace could not be read: the report then has no owner.
    pub uid: Option<String>,
    pub mode_label: Option<String>,
}

/// The cluster report's result for one namespace: its mode, and in audit mode what enforce
/// would do there.
pub fn namespace_result(
    ns: &NamespaceInfo,
    mode: NamespaceMode,
    results: &[ReportResult],
    now: Timestamp,
) -> ReportResult {
    let objects = |action: &str| {
        let mut names: Vec<&ResourceRef> = results
            .iter()
            .filter(|r| r.properties.get("action").map(String::as_str) == Some(action))
            .flat_map(|r| r.resources.iter())
            .collect();
        names.sort();
        names.dedup();
        names.len()
    };
    let (deny, mutate, warn) = (objects("deny"), objects("mutate"), objects("warn"));
    let (result, severity, message) = match mode {
        NamespaceMode::Exempt => (
            Outcome::Skip,
            Severity::Info,
            "exempt (exemptions.namespaces): pidone does not check this namespace".to_string(),
        ),
        NamespaceMode::Off => (
            Outcome::Skip,
            Severity::Info,
            "mode off: pidone does not check this namespace".to_string(),
        ),
        NamespaceMode::Enforce => (
            Outcome::Pass,
            Severity::Info,
            format!(
                "mode enforce; objects created before it still to fix: {deny} denied, {mutate} changed, {warn} warned about on their next change"
            ),
        ),
        NamespaceMode::Audit if deny + mutate == 0 => (
            Outcome::Pass,
            Severity::Info,
            format!(
                "mode audit: enforce would deny and change nothing here ({warn} objects with warnings); label the namespace {MODE_LABEL}=enforce to enforce"
            ),
        ),
        NamespaceMode::Audit => (
            Outcome::Warn,
            if deny > 0 {
                Severity::High
            } else {
                Severity::Medium
            },
            format!(
                "mode audit: enforce would deny {deny} objects, change {mutate} and warn about {warn}; fix them before labelling the namespace {MODE_LABEL}=enforce"
            ),
        ),
    };
    let mode_name = match mode {
        NamespaceMode::Enforce => "enforce",
        NamespaceMode::Audit => "audit",
        NamespaceMode::Off => "off",
        NamespaceMode::Exempt => "exempt",
    };
    ReportResult {
        source: SOURCE,
        policy: POLICY,
        rule: NAMESPACE_RULE.to_string(),
        category: CATEGORY,
        result,
        severity,
        scored: false,
        timestamp: now,
        message,
        resources: vec![ResourceRef {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: ns.name.clone(),
            uid: ns.uid.clone(),
        }],
        properties: BTreeMap::from([
            ("mode".to_string(), mode_name.to_string()),
            ("deny".to_string(), deny.to_string()),
            ("mutate".to_string(), mutate.to_string()),
            ("warn".to_string(), warn.to_string()),
        ]),
    }
}

/// The report of one namespace, owned by the Namespace (deleted with it) when its uid is known.
pub fn namespace_report(api: ReportsApi, ns: &NamespaceInfo, results: Vec<ReportResult>) -> Report {
    let mut report = Report::new(api, Some(&ns.name));
    if let Some(uid) = &ns.uid {
        report.metadata.owner_references.push(OwnerReference {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            name: ns.name.clone(),
            uid: uid.clone(),
        });
    }
    report.set_results(results);
    report
}

/// The cluster-scoped report: one result per namespace.
pub fn cluster_report(api: ReportsApi, results: Vec<ReportResult>) -> Report {
    let mut report = Report::new(api, None);
    report.set_results(results);
    report
}

/// A reference to an object as the report names it.
pub fn resource_ref(object: &Value) -> Option<ResourceRef> {
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Some(ResourceRef {
        api_version: text("/apiVersion")?,
        kind: text("/kind")?,
        namespace: text("/metadata/namespace"),
        name: text("/metadata/name")?,
        uid: text("/metadata/uid"),
    })
}

/// Every report for a set of evaluated objects: one per reported namespace (also for namespaces
/// without findings, so a fixed namespace's report empties), plus the cluster report.
/// `objects` are (object, evaluation) pairs; objects in namespaces not listed in `namespaces`
/// get a namespace entry without uid.
pub fn all_reports(
    api: ReportsApi,
    config: &Config,
    namespaces: &[NamespaceInfo],
    objects: &[(Value, Evaluation)],
    now: Timestamp,
) -> Vec<Report> {
    let mut by_ns: BTreeMap<String, Vec<ReportResult>> = BTreeMap::new();
    let mut known: BTreeMap<String, NamespaceInfo> = namespaces
        .iter()
        .map(|n| (n.name.clone(), n.clone()))
        .collect();
    for (object, eval) in objects {
        let Some(resource) = resource_ref(object) else {
            continue;
        };
        let Some(ns) = resource.namespace.clone() else {
            continue;
        };
        known.entry(ns.clone()).or_insert_with(|| NamespaceInfo {
            name: ns.clone(),
            uid: None,
            mode_label: None,
        });
        by_ns
            .entry(ns)
            .or_default()
            .extend(object_results(&resource, object, eval, now));
    }
    let mut reports = Vec::new();
    let mut cluster_results = Vec::new();
    for (name, ns) in &known {
        let mode = NamespaceMode::of(config, name, ns.mode_label.as_deref());
        let results = by_ns.remove(name).unwrap_or_default();
        cluster_results.push(namespace_result(ns, mode, &results, now));
        if mode.reported() {
            reports.push(namespace_report(api, ns, results));
        }
    }
    reports.push(cluster_report(api, cluster_results));
    reports
}
