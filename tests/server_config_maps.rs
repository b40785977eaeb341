//! `scripts.configMaps`: the webhook reads the scripts containers run from ConfigMap volumes
//! through the API (a fake apiserver here), over TLS as the apiserver calls it, in enforce
//! mode. A script that backgrounds its programs is denied, one that ends in `exec` passes; a
//! forbidden, missing or stalled ConfigMap gives the old warning (a script pidone cannot
//! see) with the reason, within the deadline; a second review is served from the cache.

#[path = "support/fake_api.rs"]
mod fake_api;
mod support;

use fake_api::FakeApi;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{Options, TestServer, review};

const MULTI: &str = "#!/bin/sh\nset -e\n/usr/local/bin/app &\n/usr/local/bin/agent &\nwait\n";
const EXEC: &str = "#!/bin/sh\nset -e\necho starting\nexec /usr/local/bin/app --serve\n";

/// A pod that runs `/scripts/run.sh` from the ConfigMap `config_map` (mounted as a
/// directory), in `namespace`.
fn pod(namespace: &str, name: &str, config_map: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "containers": [{
                "name": "app", "image": "example.com/app:1",
                "command": ["/scripts/run.sh"],
                "volumeMounts": [{"name": "scripts", "mountPath": "/scripts"}]
            }],
            "volumes": [{"name": "scripts", "configMap": {"name": config_map, "defaultMode": 493}}]
        }
    })
}

/// The same, with the script mounted as one file (`subPath`) and run by a shell.
fn pod_sub_path(namespace: &str, config_map: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "sub", "namespace": namespace},
        "spec": {
            "containers": [{
                "name": "app", "image": "example.com/app:1",
                "command": ["/bin/bash", "/entrypoint.sh"],
                "volumeMounts": [{"name": "s", "mountPath": "/entrypoint.sh", "subPath": "run.sh"}]
            }],
            "volumes": [{"name": "s", "configMap": {"name": config_map}}]
        }
    })
}

fn warnings(response: &Value) -> Vec<String> {
    response["warnings"]
        .as_array()
        .map(|w| w.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

async fn start(config: &str, api: &FakeApi) -> TestServer {
    let server = TestServer::start_with(Options {
        config: config.into(),
        ..Options::default()
    })
    .await;
    server.app.set_kube_client(Ok(api.client()));
    server
}

fn metric(text: &str, result: &str) -> u64 {
    let series = format!("pidone_config_map_lookups_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in the metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_from_the_api_decide_and_are_cached() {
    let api = FakeApi::start().await;
    api.config_map("shop", "multi", &[("run.sh", MULTI)]);
    api.config_map("shop", "exec", &[("run.sh", EXEC)]);
    let server = start("mode: enforce\nscripts:\n  configMaps: true\n", &api).await;
    let client = server.apiserver();

    // `app & agent & wait` in the ConfigMap: denied, and the denial says where it read it.
    let denied = client
        .review(
            "/validate",
            &review("CREATE", &pod("shop", "a", "multi"), None),
        )
        .await
        .unwrap();
    assert_eq!(denied["allowed"], false, "{denied}");
    let message = denied["status"]["message"].as_str().unwrap();
    assert!(message.contains("[multi-process]"), "{message}");
    assert!(message.contains("configmap/multi:run.sh"), "{message}");
    assert_eq!(api.gets("shop", "multi"), 1);

    // Ends in `exec`: allowed, without the warning about a script pidone cannot see.
    let allowed = client
        .review(
            "/validate",
            &review("CREATE", &pod("shop", "b", "exec"), None),
        )
        .await
        .unwrap();
    assert_eq!(allowed["allowed"], true, "{allowed}");
    assert!(warnings(&allowed).is_empty(), "{allowed}");

    // The same pods again (a rollout), through both webhooks: the cache answers.
    for path in ["/mutate", "/validate"] {
        for (name, config_map) in [("c", "multi"), ("d", "exec")] {
            let r = client
                .review(
                    path,
                    &review("CREATE", &pod("shop", name, config_map), None),
                )
                .await
                .unwrap();
            if path == "/validate" {
                assert_eq!(r["allowed"], config_map == "exec", "{r}");
            }
        }
    }
    assert_eq!(api.gets("shop", "multi"), 1, "served from the cache");
    assert_eq!(api.gets("shop", "exec"), 1, "served from the cache");

    // subPath mounts and the invoking shell are followed too.
    api.config_map("shop", "sub", &[("run.sh", MULTI)]);
    let r = client
        .review(
            "/validate",
            &review("CREATE", &pod_sub_path("shop", "sub"), None),
        )
        .await
        .unwrap();
    assert_eq!(r["allowed"], false, "{r}");

    // An ownerless workload's template is judged the same way.
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": pod("shop", "x", "multi")["spec"].clone()}}
    });
    let r = client
        .review("/validate", &review("CREATE", &deployment, None))
        .await
        .unwrap();
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(api.gets("shop", "multi"), 1);

    let metrics = server.metrics().await;
    assert_eq!(metric(&metrics, "miss"), 3, "{metrics}");
    assert!(metric(&metrics, "hit") >= 5, "{metrics}");
    assert_eq!(metric(&metrics, "error"), 0, "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_config_maps_warn_as_before_within_the_deadline() {
    let api = FakeApi::start().await;
    api.config_map("locked", "multi", &[("run.sh", MULTI)]);
    api.config_map("slow", "multi", &[("run.sh", MULTI)]);
    api.forbid("locked");
    api.stall("slow");
    let server = start(
        "mode: enforce\nscripts:\n  configMaps: true\n  deadline: 1s\n",
        &api,
    )
    .await;
    let client = server.apiserver();

    // Without the option the script is unseen: the old warning, and no API call.
    let baseline = {
        let plain = TestServer::start().await;
        let r = plain
            .apiserver()
            .review(
                "/validate",
                &review("CREATE", &pod("locked", "p", "multi"), None),
            )
            .await
            .unwrap();
        plain.stop().await;
        r
    };
    assert_eq!(baseline["allowed"], true, "{baseline}");
    let old = warnings(&baseline);
    assert!(
        old.iter().any(|w| w.starts_with("script-entrypoint")),
        "{old:?}"
    );

    for (namespace, reason) in [
        ("locked", "forbidden"),
        ("slow", "no answer in time"),
        ("shop", "not found"),
    ] {
        let started = Instant::now();
        let r = client
            .review(
                "/validate",
                &review("CREATE", &pod(namespace, "p", "multi"), None),
            )
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(
            r["allowed"], true,
            "{namespace}: never denied for the API: {r}"
        );
        let w = warnings(&r);
        assert!(
            w.iter().any(|w| w.starts_with("script-entrypoint")),
            "{namespace}: the old warning: {w:?}"
        );
        assert!(
            w.iter()
                .any(|w| w.starts_with("pidone: configmap/multi") && w.contains(reason)),
            "{namespace}: the reason: {w:?}"
        );
        assert!(
            took < Duration::from_secs(3),
            "{namespace}: answered in {took:?}, past the 1s look-up deadline"
        );
        assert_eq!(api.gets(namespace, "multi"), 1, "{namespace}");
    }
    let metrics = server.metrics().await;
    assert_eq!(metric(&metrics, "error"), 2, "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_and_reload_switch_it() {
    let api = FakeApi::start().await;
    api.config_map("shop", "multi", &[("run.sh", MULTI)]);
    api.config_map("web", "multi", &[("run.sh", MULTI)]);
    let server = start("mode: enforce\n", &api).await;
    let client = server.apiserver();
    let allowed = async |namespace: &str| {
        client
            .review(
                "/validate",
                &review("CREATE", &pod(namespace, "p", "multi"), None),
            )
            .await
            .unwrap()["allowed"]
            .as_bool()
            .unwrap()
    };
    // Off by default: no look-up.
    assert!(allowed("shop").await);
    assert_eq!(api.all_gets(), 0);

    // Reloaded with one namespace: that one is read, the other is not.
    let tmp = server.config_path.with_extension("tmp");
    std::fs::write(&tmp, "mode: enforce\nscripts:\n  configMaps: [shop]\n").unwrap();
    std::fs::rename(&tmp, &server.config_path).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while server.app.metrics.config_reloads(true) == 0 {
        assert!(Instant::now() < until, "the configuration was not reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!allowed("shop").await);
    assert!(allowed("web").await);
    assert_eq!(api.gets("shop", "multi"), 1);
    assert_eq!(api.gets("web", "multi"), 0);
    server.stop().await;
}

/// As `pidone serve` runs: scripts parsed in worker processes, reviews analysed on the
/// blocking pool (look-ups within the review's own time, which the apiserver's `?timeout=`
/// sets), and reviews whose ConfigMaps and scripts are cached answered without blocking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_parse_workers_and_the_apiservers_timeout() {
    use pidone::sandbox::{CacheLimits, ContainedAnalyzer, ContainmentConfig, PoolConfig};
    let api = FakeApi::start().await;
    api.config_map("shop", "multi", &[("run.sh", MULTI)]);
    api.config_map("slow", "multi", &[("run.sh", MULTI)]);
    api.stall("slow");
    let analyzer = ContainedAnalyzer::new(
        &pidone::engine::config::ParserConfig::default(),
        ContainmentConfig {
            pool: PoolConfig {
                workers: 1,
                executable: Some(std::path::PathBuf::from(env!("CARGO_BIN_EXE_pidone"))),
                ..PoolConfig::default()
            },
            cache: CacheLimits::default(),
        },
    )
    .unwrap();
    let server = TestServer::start_with(Options {
        // A look-up deadline longer than the apiserver gives: the review's time wins.
        config: "mode: enforce\nscripts:\n  configMaps: true\n  deadline: 20s\n".into(),
        analyzer: std::sync::Arc::new(analyzer),
        analyzer_blocks: true,
        ..Options::default()
    })
    .await;
    server.app.set_kube_client(Ok(api.client()));
    let client = server.apiserver();

    for _ in 0..3 {
        let r = client
            .review(
                "/validate",
                &review("CREATE", &pod("shop", "a", "multi"), None),
            )
            .await
            .unwrap();
        assert_eq!(r["allowed"], false, "{r}");
    }
    assert_eq!(api.gets("shop", "multi"), 1);
    // Each look-up counted once, though the later reviews were first tried without blocking.
    let metrics = server.metrics().await;
    assert_eq!(
        (metric(&metrics, "miss"), metric(&metrics, "hit")),
        (1, 2),
        "{metrics}"
    );

    // The apiserver waits 2 s: the stalled look-up gives up within half of what is left.
    let request = review("CREATE", &pod("slow", "a", "multi"), None);
    let started = Instant::now();
    let response = client
        .http
        .post(format!("{}/validate?timeout=2s", client.base))
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&request).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    let took = started.elapsed();
    let r = support::validate_response(&request, &body, false).unwrap();
    // About 0.75 s of look-up; the apiserver would give up at 2 s.
    assert!(
        took < Duration::from_millis(1900),
        "answered in {took:?}, too close to the apiserver's 2 s"
    );
    assert_eq!(r["allowed"], true, "{r}");
    let w = warnings(&r);
    assert!(
        w.iter()
            .any(|w| w.contains("configmap/multi not read (no answer in time)")),
        "{w:?}"
    );
    server.stop().await;
}
