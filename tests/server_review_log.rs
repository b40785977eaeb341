//! The line `pidone serve` logs for each review, read from the real binary's JSON output: one
//! `admission review` line per review, its findings inside it (rule, container, action,
//! message), and nothing logged per finding.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::review;
use support::served::Served;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_review_is_one_json_line_with_its_findings() {
    let (server, stdout) = Served::start_logging(
        "mode: enforce\nnativeSidecars: never\n",
        &["--log-format", "json"],
    )
    .await;
    let mut lines = BufReader::new(stdout).lines();
    let api = server.apiserver();

    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "two-programs", "namespace": "shop"},
        "spec": {"containers": [
            {"name": "app", "image": "app:1", "command": ["sh", "-c", "./app & ./agent \"quoted\" & wait -n"]},
            {"name": "setup", "image": "setup:1", "command": ["sh", "-c", "setup; exec app"]}]}});
    let quiet = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "quiet", "namespace": "shop"},
        "spec": {"containers": [{"name": "app", "image": "app:1", "command": ["/app"]}]}});
    let denied = api
        .review("/validate", &review("CREATE", &pod, None))
        .await
        .unwrap();
    assert_eq!(denied["allowed"], false, "{denied}");
    let allowed = api
        .review("/validate", &review("CREATE", &quiet, None))
        .await
        .unwrap();
    assert_eq!(allowed["allowed"], true, "{allowed}");

    // Read the log until both reviews' lines are in.
    let mut reviews: Vec<Value> = Vec::new();
    let mut per_finding = 0;
    while reviews.len() < 2 {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("the review lines within 10 s")
            .unwrap()
            .expect("pidone exited");
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            panic!("a log line that is not JSON: {line}");
        };
        match entry["message"].as_str() {
            Some("admission review") => reviews.push(entry),
            Some("finding") => per_finding += 1,
            _ => {}
        }
    }
    assert_eq!(per_finding, 0, "findings belong in the review's line");
    let fields = |r: &Value| r.clone();
    let first = fields(&reviews[0]);
    assert_eq!(first["name"], "two-programs", "{first}");
    assert_eq!(first["result"], "denied", "{first}");
    let findings: Value = match &first["findings"] {
        Value::String(text) => serde_json::from_str(text).expect("findings: a JSON array"),
        other => other.clone(),
    };
    let findings = findings.as_array().expect("findings: an array").clone();
    let multi = findings
        .iter()
        .find(|f| f["rule"] == "multi-process")
        .unwrap_or_else(|| panic!("{findings:?}"));
    assert_eq!(multi["container"], "app");
    assert_eq!(multi["action"], "deny");
    assert!(
        multi["message"]
            .as_str()
            .unwrap_or("")
            .contains("\"app\": the shell starts"),
        "{multi}"
    );
    let second = fields(&reviews[1]);
    assert_eq!(second["name"], "quiet", "{second}");
    let none: Value = match &second["findings"] {
        Value::String(text) => serde_json::from_str(text).expect("findings: a JSON array"),
        other => other.clone(),
    };
    assert_eq!(none, json!([]), "{second}");
}
