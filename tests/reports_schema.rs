//! The reports pidone writes, checked against the published CRDs (tests/fixtures/crds, with
//! their source and version in its README): PolicyReport and ClusterPolicyReport
//! (`wgpolicyk8s.io/v1alpha2`), Report and ClusterReport (`openreports.io/v1alpha1`). Built from
//! the fixture manifests, and printed by `pidone audit --format policyreport|openreport`.

#[path = "reports_support/crd_schema.rs"]
mod crd_schema;

use pidone::cli::input::read_file;
use pidone::engine::Config;
use pidone::engine::config::{ParserConfig, ReportsApi};
use pidone::engine::evaluate::EvalContext;
use pidone::reports::build::{self, NamespaceInfo};
use pidone::reports::shape::{Report, Timestamp};
use pidone::resolve::Evaluator;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const FIXTURES: [&str; 2] = [
    "tests/fixtures/examples/launches.yaml",
    "tests/fixtures/patterns/launches.yaml",
];

fn crd(file: &str) -> String {
    std::fs::read_to_string(Path::new("tests/fixtures/crds").join(file)).unwrap()
}

/// The CRD file of a report's kind.
fn crd_for(kind: &str) -> &'static str {
    match kind {
        "PolicyReport" => "wgpolicyk8s.io_policyreports.yaml",
        "ClusterPolicyReport" => "wgpolicyk8s.io_clusterpolicyreports.yaml",
        "Report" => "openreports.io_reports.yaml",
        "ClusterReport" => "openreports.io_clusterreports.yaml",
        other => panic!("unexpected kind {other}"),
    }
}

/// Validates one report (as JSON) against its CRD; panics with every violation.
fn assert_valid(report: &Value) {
    let kind = report["kind"].as_str().unwrap();
    let file = crd_for(kind);
    let text = crd(file);
    let (group, crd_kind, scope) = crd_schema::names_of(&text);
    let api_version = report["apiVersion"].as_str().unwrap();
    let (report_group, version) = api_version.split_once('/').unwrap();
    assert_eq!(report_group, group);
    assert_eq!(kind, crd_kind);
    let namespaced = report["metadata"].get("namespace").is_some();
    assert_eq!(namespaced, scope == "Namespaced", "{kind} scope");
    let errors = crd_schema::validate(&crd_schema::schema_of(&text, version), report);
    assert!(
        errors.is_empty(),
        "{kind} {} against {file}:\n{}",
        report["metadata"],
        errors.join("\n")
    );
}

fn engine() -> Evaluator {
    let config = Config::default();
    Evaluator::new(
        Arc::new(config),
        pidone::cli::analyzer(&ParserConfig::default()),
    )
    .unwrap()
}

/// Every report of the fixtures, as enforce would judge them.
fn fixture_reports(api: ReportsApi) -> Vec<Report> {
    pidone::cli::audit::on_big_stack(move || {
        let engine = engine();
        let mut evaluated = Vec::new();
        for file in FIXTURES {
            for m in read_file(Path::new(file)).unwrap() {
                let ctx = EvalContext {
                    namespace: m
                        .object
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str),
                    ..EvalContext::default()
                };
                if let Ok(Some(eval)) = engine.evaluate(&m.object, &ctx) {
                    evaluated.push((m.object.clone(), eval));
                }
            }
        }
        let namespaces = vec![NamespaceInfo {
            name: "web".into(),
            uid: Some("5b0c7a0e-3d4e-4f5a-9b1c-2d3e4f5a6b7c".into()),
            mode_label: Some("audit".into()),
        }];
        build::all_reports(
            api,
            engine.config(),
            &namespaces,
            &evaluated,
            Timestamp {
                seconds: 1_764_900_000,
                nanos: 0,
            },
        )
    })
    .unwrap()
}

#[test]
fn policy_reports_of_the_fixtures_match_the_wgpolicyk8s_crds() {
    let reports = fixture_reports(ReportsApi::PolicyReport);
    assert!(
        reports.len() > 2,
        "one per namespace and the cluster report"
    );
    let results: usize = reports.iter().map(|r| r.results.len()).sum();
    assert!(results > 20, "the fixtures have many findings: {results}");
    for report in &reports {
        assert_valid(&serde_json::to_value(report).unwrap());
    }
    let cluster: Vec<&Report> = reports
        .iter()
        .filter(|r| r.kind == "ClusterPolicyReport")
        .collect();
    assert_eq!(cluster.len(), 1);
}

#[test]
fn open_reports_of_the_fixtures_match_the_openreports_crds() {
    let reports = fixture_reports(ReportsApi::OpenReport);
    for report in &reports {
        let value = serde_json::to_value(report).unwrap();
        assert_eq!(value["source"], "pidone");
        assert_valid(&value);
    }
    assert!(reports.iter().any(|r| r.kind == "ClusterReport"));
    assert!(reports.iter().any(|r| r.kind == "Report"));
}

#[test]
fn results_carry_rule_action_message_fix_evidence_and_severity() {
    let reports = fixture_reports(ReportsApi::PolicyReport);
    let web = reports
        .iter()
        .find(|r| r.metadata.namespace.as_deref() == Some("web"))
        .expect("a report for namespace web");
    // Owned by its Namespace, so it goes with it.
    let owner = &web.metadata.owner_references[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Namespace", "web")
    );
    assert_eq!(owner.uid, "5b0c7a0e-3d4e-4f5a-9b1c-2d3e4f5a6b7c");
    let all: Vec<&pidone::reports::shape::ReportResult> =
        reports.iter().flat_map(|r| r.results.iter()).collect();
    let no_exec = all
        .iter()
        .find(|r| r.rule == "shell-no-exec")
        .expect("a shell-no-exec result");
    let v = serde_json::to_value(no_exec).unwrap();
    assert_eq!(v["result"], "fail", "enforce mutates it");
    assert_eq!(v["severity"], "medium");
    assert_eq!(v["scored"], true);
    assert_eq!(v["properties"]["action"], "mutate");
    assert_eq!(v["properties"]["launch"], "no-exec");
    assert!(
        v["message"].as_str().unwrap().contains(". Fix: put `exec`"),
        "{v}"
    );
    assert!(
        v["properties"]["evidence"]
            .as_str()
            .unwrap()
            .starts_with("launch no-exec; command: "),
        "{v}"
    );
    assert!(v["resources"][0]["apiVersion"].as_str().is_some());
    let multi = all
        .iter()
        .find(|r| r.rule == "multi-process")
        .expect("a multi-process result");
    let v = serde_json::to_value(multi).unwrap();
    assert_eq!(
        (v["result"].as_str(), v["severity"].as_str()),
        (Some("fail"), Some("high"))
    );
    assert_eq!(v["properties"]["action"], "deny");
    // Warnings are warn, low.
    let warn = all
        .iter()
        .find(|r| r.properties.get("action").map(String::as_str) == Some("warn"))
        .expect("a warning");
    assert_eq!(serde_json::to_value(warn.result).unwrap(), "warn");
    // Summaries count the results.
    for r in &reports {
        let s = r.summary;
        assert_eq!(
            (s.pass + s.fail + s.warn + s.error + s.skip) as usize,
            r.results.len()
        );
    }
    // The cluster report: one result per namespace, on the Namespace.
    let cluster = reports
        .iter()
        .find(|r| r.kind == "ClusterPolicyReport")
        .unwrap();
    let web_mode = cluster
        .results
        .iter()
        .find(|r| r.resources[0].name == "web")
        .unwrap();
    assert_eq!(web_mode.rule, "namespace-mode");
    assert_eq!(web_mode.resources[0].kind, "Namespace");
    assert_eq!(web_mode.properties["mode"], "audit");
    assert!(
        web_mode
            .message
            .starts_with("mode audit: enforce would deny"),
        "{}",
        web_mode.message
    );
}

#[test]
fn the_validator_rejects_what_the_apiserver_would_drop_or_refuse() {
    let good = json!({
        "apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
        "metadata": {"name": "pidone", "namespace": "web"},
        "summary": {"pass": 0, "fail": 1, "warn": 0, "error": 0, "skip": 0},
        "results": [{"policy": "pidone", "rule": "shell-no-exec", "result": "fail", "severity": "medium",
                     "scored": true, "timestamp": {"seconds": 1, "nanos": 0}, "message": "m",
                     "source": "pidone", "properties": {"container": "app"},
                     "resources": [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "web", "name": "x"}]}]
    });
    assert_valid(&good);
    let schema = crd_schema::schema_of(&crd(crd_for("PolicyReport")), "v1alpha2");
    for (what, bad) in [
        (
            "unknown result field",
            json!({"results": [{"policy": "p", "evidence": "x"}]}),
        ),
        (
            "wrong enum",
            json!({"results": [{"policy": "p", "result": "failed"}]}),
        ),
        (
            "severity not in the enum",
            json!({"results": [{"policy": "p", "severity": "urgent"}]}),
        ),
        (
            "non-string property",
            json!({"results": [{"policy": "p", "properties": {"n": 1}}]}),
        ),
        ("missing policy", json!({"results": [{"rule": "r"}]})),
        (
            "nanos out of int32",
            json!({"results": [{"policy": "p", "timestamp": {"seconds": 1, "nanos": 4_000_000_000_i64}}]}),
        ),
        ("unknown top-level field", json!({"findings": []})),
        (
            "metadata field pidone must not set",
            json!({"metadata": {"name": "pidone", "resourceVersion": "1"}}),
        ),
    ] {
        let mut report = good.clone();
        for (k, v) in bad.as_object().unwrap() {
            report[k] = v.clone();
        }
        assert!(
            !crd_schema::validate(&schema, &report).is_empty(),
            "{what} passed"
        );
    }
}

#[test]
fn audit_prints_the_reports_of_manifests_as_a_yaml_stream() {
    for (format, kinds) in [
        ("policyreport", ["PolicyReport", "ClusterPolicyReport"]),
        ("openreport", ["Report", "ClusterReport"]),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_pidone"))
            .args(["audit", "--format", format, "--fail-on", "never"])
            .args(FIXTURES)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let docs: Vec<Value> = text
            .split("\n---\n")
            .map(|d| d.trim_start_matches("---\n"))
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_saphyr::from_str(d).unwrap())
            .collect();
        assert!(docs.len() > 2, "{text}");
        for doc in &docs {
            assert!(kinds.contains(&doc["kind"].as_str().unwrap()), "{doc}");
            assert_valid(doc);
        }
    }
}
