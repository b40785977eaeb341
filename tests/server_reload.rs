//! Certificates and configuration are reloaded from disk without a restart: through a
//! Secret-volume `..data` symlink swap, under load, without a failed request; bad files are
//! rejected and counted while the last good ones keep serving.

mod support;

use pidone::engine::Action;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{ApiServer, Pair, TestServer, review};

/// The leaf certificate a fresh connection is served.
async fn served_leaf(server: &TestServer) -> Vec<u8> {
    let api = ApiServer::new(&server.pki.ca_pem(), server.addr);
    let res = api.http.get(api.url("/healthz")).send().await.unwrap();
    res.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .expect("TLS info")
        .to_vec()
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_volume_swap_under_load_fails_no_request() {
    let mut server = TestServer::start().await;
    assert_eq!(served_leaf(&server).await, server.pair.cert_der);

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let (ca, addr) = (server.pki.ca_pem(), server.addr);
        load.push(tokio::spawn(async move {
            let r = review("CREATE", &support::realistic_pod(), None);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                // Half the workers keep their connections; the others reconnect every
                // few requests, so handshakes happen across the swap.
                let api = ApiServer::new(&ca, addr);
                for _ in 0..if worker % 2 == 0 { 1000 } else { 3 } {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let mut r = r.clone();
                    r["request"]["uid"] = json!(support::uid());
                    match api.review("/validate", &r).await {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            eprintln!("worker {worker} request {n}: {e}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    n += 1;
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    let next: Pair = server.pki.serving();
    server.secret.swap(&next);
    wait_for("the new certificate", async || {
        served_leaf(&server).await == next.cert_der
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed requests");
    assert!(
        ok.load(Ordering::Relaxed) > 20,
        "{} requests",
        ok.load(Ordering::Relaxed)
    );
    assert_eq!(server.app.metrics.tls_reloads(true), 1);
    assert_eq!(server.app.metrics.tls_reloads(false), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_pair_is_rejected_and_counted_and_the_old_one_serves() {
    let mut server = TestServer::start().await;
    let original = server.pair.clone();
    let other = server.pki.serving();

    // A certificate with somebody else's key.
    let mismatched = Pair {
        cert_pem: other.cert_pem.clone(),
        key_pem: server.pki.serving().key_pem,
        cert_der: other.cert_der.clone(),
    };
    server.secret.swap(&mismatched);
    wait_for("the rejection", async || {
        server.app.metrics.tls_reloads(false) == 1
    })
    .await;
    assert_eq!(served_leaf(&server).await, original.cert_der);

    // Not PEM at all.
    let garbage = Pair {
        cert_pem: "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".into(),
        key_pem: "nothing".into(),
        cert_der: Vec::new(),
    };
    server.secret.swap(&garbage);
    wait_for("the second rejection", async || {
        server.app.metrics.tls_reloads(false) == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.app.metrics.tls_reloads(false),
        2,
        "a bad pair is counted once, not on every poll"
    );
    let api = server.apiserver();
    let r = review("CREATE", &support::realistic_pod(), None);
    assert_eq!(api.review("/validate", &r).await.unwrap()["allowed"], true);
    assert_eq!(served_leaf(&server).await, original.cert_der);

    // A good pair after the bad ones is taken.
    server.secret.swap(&other);
    wait_for("the good pair", async || {
        served_leaf(&server).await == other.cert_der
    })
    .await;
    assert_eq!(server.app.metrics.tls_reloads(true), 1);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"pidone_tls_reloads_total{result="error"} 2"#),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_reloads_and_a_bad_one_keeps_the_last_good() {
    let server = TestServer::start().await;
    let api = server.apiserver();
    let denied = support::fixture_objects()
        .into_iter()
        .find(|o| {
            pidone::resolve::Evaluator::new(
                Arc::new(pidone::engine::Config::default()),
                Arc::new(pidone::resolve::InProcessAnalyzer),
            )
            .unwrap()
            .evaluate(o, &Default::default())
            .unwrap()
            .unwrap()
            .max_action()
                == Some(Action::Deny)
        })
        .unwrap();
    let verdict = async || {
        api.review("/validate", &review("CREATE", &denied, None))
            .await
            .unwrap()["allowed"]
            .as_bool()
            .unwrap()
    };
    assert!(!verdict().await);

    // Written the way a ConfigMap volume swaps files: a new file renamed into place.
    let replace = |text: &str| {
        let tmp = server.config_path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &server.config_path).unwrap();
    };
    replace("mode: audit\n");
    wait_for("audit mode", async || verdict().await).await;
    assert_eq!(server.app.metrics.config_reloads(true), 1);

    replace("mode: strict\n");
    wait_for("the rejection", async || {
        server.app.metrics.config_reloads(false) == 1
    })
    .await;
    assert!(verdict().await, "the last good configuration (audit) stays");

    replace("rules:\n  multi-process: warn\n");
    wait_for("the rule override", async || {
        server.app.metrics.config_reloads(true) == 2
    })
    .await;
    assert!(verdict().await);
    server.stop().await;
}

/// The `parser:` section applies on reload like every other section: the analyzer (which
/// outlives engines) takes the new limits and forgets verdicts made under the old ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parser_section_applies_on_reload() {
    let server = TestServer::start_with(support::Options {
        config: "mode: audit\n".into(),
        analyzer: Arc::new(pidone::sandbox::PrescreenedAnalyzer::new(
            &Default::default(),
            Default::default(),
        )),
        ..Default::default()
    })
    .await;
    let api = server.apiserver();
    // A wrapper shell that runs setup and then its app in the foreground: parsed, it is
    // `shell-no-exec`; not parsed, pidone can only say it could not read it.
    let script = format!("echo {}; /usr/bin/app", "x".repeat(300));
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "reloaded", "namespace": "default"},
        "spec": {"containers": [{
            "name": "app", "image": "example.com/app:1",
            "command": ["/bin/sh", "-c", script]}]}});
    // `mutate` findings are reported by /mutate, `warn` ones by /validate.
    let warnings = async || -> String {
        let mut all = String::new();
        for endpoint in ["/mutate", "/validate"] {
            let response = api
                .review(endpoint, &review("CREATE", &pod, None))
                .await
                .unwrap();
            all += &response["warnings"].to_string();
        }
        all
    };
    let before = warnings().await;
    assert!(before.contains("shell-no-exec"), "{before}");
    assert!(!before.contains("too large"), "{before}");

    let tmp = server.config_path.with_extension("tmp");
    std::fs::write(&tmp, "mode: audit\nparser:\n  maxScriptBytes: 100\n").unwrap();
    std::fs::rename(&tmp, &server.config_path).unwrap();
    wait_for("the parser limit", async || {
        warnings().await.contains("too large")
    })
    .await;
    assert_eq!(server.app.metrics.config_reloads(true), 1);
    server.stop().await;
}

/// Unusable `images:` settings (here a credentials file not there yet) are reported once and
/// left alone for a while, not re-read and logged on every review.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_image_settings_are_not_retried_on_every_review() {
    let server = TestServer::start().await;
    let credentials = server.dir.path().join("registry-credentials.json");
    let config = pidone::engine::Config::from_yaml(&format!(
        "images:\n  resolve: true\n  credentials: {}\n",
        credentials.display()
    ))
    .unwrap();
    assert!(server.app.image_resolver(&config.images).is_none());
    std::fs::write(&credentials, r#"{"auths": {}}"#).unwrap();
    assert!(
        server.app.image_resolver(&config.images).is_none(),
        "the failure is remembered: the file is not read again for the next review"
    );
    // Other settings are tried at once.
    let other = pidone::engine::Config::from_yaml(&format!(
        "images:\n  resolve: true\n  credentials: {}\n  deadline: 3s\n",
        credentials.display()
    ))
    .unwrap();
    assert!(server.app.image_resolver(&other.images).is_some());
    server.stop().await;
}
