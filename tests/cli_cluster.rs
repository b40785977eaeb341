//! `pidone audit --cluster` against a small fake apiserver that serves the list endpoints.

#[path = "support/fake_api.rs"]
mod fake_api;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use serde_json::{Value, json};
use std::process::Command;

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": format!("{kind}List"), "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})
}

fn pod(name: &str, owned: bool, script: &str) -> Value {
    let mut meta = json!({"name": name, "namespace": "shop"});
    if owned {
        meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": true}]);
    }
    json!({"metadata": meta, "spec": {"containers": [{"name": "app", "image": "x", "command": ["sh", "-c", script]}]}})
}

async fn items(Path(plural): Path<String>) -> axum::Json<Value> {
    axum::Json(match plural.as_str() {
        "pods" => list(
            "Pod",
            vec![
                pod("standalone", false, "echo; /app"),
                pod("from-rs", true, "/a & /b & wait"),
            ],
        ),
        "deployments" => list(
            "Deployment",
            vec![json!({"metadata": {"name": "api", "namespace": "shop"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "api", "image": "x", "command": ["sh", "-c", "/a & /b & wait"]}]}}}})],
        ),
        other => list(other, vec![]),
    })
}

#[tokio::test]
async fn audits_live_objects_once_each() {
    let app = Router::new().route("/api/v1/{plural}", get(items)).route(
        "/apis/{group}/v1/{plural}",
        get(|Path((_g, p)): Path<(String, String)>| items(Path(p))),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(&kubeconfig, format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: 'http://{addr}'}}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context: {{cluster: fake, user: u}}\ncurrent-context: c\n"
    )).unwrap();

    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pidone"))
            .args([
                "audit",
                "--cluster",
                "--format",
                "json",
                "--fail-on",
                "never",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let objects: Vec<String> = report["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}/{}",
                c["object"]["kind"].as_str().unwrap(),
                c["object"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        objects,
        ["Pod/standalone", "Deployment/api"],
        "pods owned by a controller are audited through it"
    );
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["shell-no-exec", "multi-process"]);
}

#[test]
fn unreachable_cluster_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {server: 'http://127.0.0.1:9'}\nusers:\n- name: u\n  user: {}\ncontexts:\n- name: c\n  context: {cluster: fake, user: u}\ncurrent-context: c\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pidone"))
        .args(["audit", "--cluster"])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot list Pod"));
}

/// Scripts that pods run from ConfigMap volumes are read from the namespaces' ConfigMaps
/// (listed in pages, only the mounted ones kept); a namespace whose ConfigMaps cannot be
/// listed keeps the old finding and is named in a warning.
#[tokio::test]
async fn config_map_scripts_are_read_from_the_cluster() {
    let api = fake_api::FakeApi::start().await;
    let pod = |ns: &str, name: &str, config_map: &str| {
        json!({"metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "app", "image": "x", "command": ["/scripts/run.sh"],
                "volumeMounts": [{"name": "s", "mountPath": "/scripts"}]}],
                "volumes": [{"name": "s", "configMap": {"name": config_map, "defaultMode": 493}}]}})
    };
    api.objects(
        "pods",
        vec![
            pod("shop", "multi", "multi-scripts"),
            pod("shop", "exec", "exec-scripts"),
            pod("locked", "locked", "multi-scripts"),
        ],
    );
    // More ConfigMaps than a page holds, most of them not mounted by any pod.
    for i in 0..70 {
        api.config_map("shop", &format!("other-{i:02}"), &[("x", "y")]);
    }
    api.config_map(
        "shop",
        "multi-scripts",
        &[("run.sh", "#!/bin/sh\n/app &\n/agent &\nwait\n")],
    );
    api.config_map(
        "shop",
        "exec-scripts",
        &[("run.sh", "#!/bin/sh\nset -e\nexec /app\n")],
    );
    api.config_map(
        "locked",
        "multi-scripts",
        &[("run.sh", "#!/bin/sh\n/app &\n/agent &\nwait\n")],
    );
    api.forbid("locked");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pidone"))
            .args([
                "audit",
                "--cluster",
                "--format",
                "json",
                "--fail-on",
                "never",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings: Vec<(String, String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["object"]["name"].as_str().unwrap().to_string(),
                f["rule"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let rules: Vec<(&str, &str)> = findings
        .iter()
        .map(|(o, r, _)| (o.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        rules,
        [("multi", "multi-process"), ("locked", "script-entrypoint")],
        "{findings:?}"
    );
    assert!(
        findings[0].2.contains("configmap/multi-scripts:run.sh"),
        "{findings:?}"
    );
    assert!(
        stderr.contains("cannot list the ConfigMaps of namespace locked (HTTP 403"),
        "{stderr}"
    );
    assert_eq!(api.lists("shop"), 2, "two pages of 50");
    assert_eq!(api.all_gets(), 0, "listed, not fetched one by one");
}
