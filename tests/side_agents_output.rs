//! A side-agent finding carries its confidence and evidence wherever it is shown: `pidone
//! audit`'s JSON and SARIF, and the webhook's audit annotations (warnings are cut short for
//! kubectl; they still say "is a side agent" or "looks like a side agent").

mod support;

use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use support::{Options, TestServer, review};

/// A pod with a catalogued agent (`certain`) and one known only by its role (`likely`): the
/// Kubernetes docs' streaming sidecar beside a Cloud SQL proxy.
fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "counter", "namespace": "team"},
    "spec": {
        "containers": [
            {"name": "count", "image": "busybox:1.28", "ports": [{"containerPort": 8080}],
             "command": ["/bin/sh", "-c", "i=0; while true; do echo \"$i\" >> /var/log/1.log; i=$((i+1)); sleep 1; done"],
             "volumeMounts": [{"name": "varlog", "mountPath": "/var/log"}]},
            {"name": "count-log-1", "image": "busybox:1.28",
             "command": ["/bin/sh", "-c", "tail -n+1 -F /var/log/1.log"],
             "volumeMounts": [{"name": "varlog", "mountPath": "/var/log"}]},
            {"name": "db", "image": "gcr.io/cloudsql-docker/gce-proxy:1.33.2",
             "command": ["/cloud_sql_proxy", "-instances=p:r:i=tcp:5432"]}
        ],
        "volumes": [{"name": "varlog", "emptyDir": {}}]
    }})
}

fn audit(format: &str) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pidone"))
        .args(["audit", "--format", format, "--fail-on", "never", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pidone");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(pod().to_string().as_bytes())
        .expect("write stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("wait pidone");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[test]
fn json_findings_carry_confidence_and_evidence() {
    let report = audit("json");
    let agents: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "side-agent")
        .collect();
    assert_eq!(agents.len(), 2, "{report}");
    let db = agents.iter().find(|f| f["container"] == "db").unwrap();
    assert_eq!(db["confidence"], "certain");
    assert_eq!(db["action"], "mutate");
    let evidence = db["evidence"][0].as_str().unwrap();
    assert!(
        evidence.starts_with("catalogued proxy image cloudsql-docker/gce-proxy (as in GoogleCloudPlatform/cloud-sql-proxy "),
        "{evidence}"
    );
    let tail = agents
        .iter()
        .find(|f| f["container"] == "count-log-1")
        .unwrap();
    assert_eq!(tail["confidence"], "likely");
    assert_eq!(tail["action"], "warn");
    assert!(
        tail["evidence"][0]
            .as_str()
            .unwrap()
            .contains("follows /var/log/1.log on volume \"varlog\""),
        "{tail}"
    );
    assert!(
        tail["fix"]
            .as_str()
            .unwrap()
            .contains("pidone.io/side-agents: \"count-log-1\""),
        "{tail}"
    );
}

#[test]
fn sarif_results_carry_confidence_and_evidence() {
    let sarif = audit("sarif");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let agents: Vec<&Value> = results
        .iter()
        .filter(|r| r["ruleId"] == "side-agent")
        .collect();
    assert_eq!(agents.len(), 2, "{sarif}");
    let mut confidences: Vec<&str> = agents
        .iter()
        .map(|r| r["properties"]["confidence"].as_str().unwrap())
        .collect();
    confidences.sort();
    assert_eq!(confidences, ["certain", "likely"]);
    for r in &agents {
        assert!(
            !r["properties"]["evidence"].as_array().unwrap().is_empty(),
            "{r}"
        );
        let text = r["message"]["text"].as_str().unwrap();
        assert!(
            text.contains("[certain: ") || text.contains("[likely: "),
            "{text}"
        );
    }
    // Other rules carry neither.
    for r in results.iter().filter(|r| r["ruleId"] != "side-agent") {
        assert!(r["properties"].get("confidence").is_none(), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_annotations_and_warnings_say_how_sure_and_why() {
    let server = TestServer::start_with(Options {
        config: "mode: audit\n".into(),
        ..Options::default()
    })
    .await;
    let api = server.apiserver();
    // `/mutate` reports what it would patch, `/validate` the rest: together, each finding once.
    let r = review("CREATE", &pod(), None);
    let mutate = api.review("/mutate/audit", &r).await.unwrap();
    let validate = api.review("/validate/audit", &r).await.unwrap();
    let annotation = |key: &str| -> String {
        [&mutate, &validate]
            .iter()
            .find_map(|v| v["auditAnnotations"][key].as_str())
            .unwrap_or_else(|| panic!("no {key} in {mutate} {validate}"))
            .to_string()
    };
    let db = annotation("side-agent.db");
    assert!(
        db.contains("[certain: catalogued proxy image cloudsql-docker/gce-proxy"),
        "{db}"
    );
    let tail = annotation("side-agent.count-log-1");
    assert!(tail.starts_with("would warn"), "{tail}");
    assert!(
        tail.contains("[likely: it follows /var/log/1.log"),
        "{tail}"
    );
    let warnings: Vec<&str> = [&mutate, &validate]
        .iter()
        .flat_map(|v| v["warnings"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("\"count-log-1\"") && w.contains("looks like a side agent")),
        "{warnings:?}"
    );
    server.stop().await;
}
