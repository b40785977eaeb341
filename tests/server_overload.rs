//! Overload: far more concurrent reviews than the server can analyse. Every request must get
//! an answer (a review, or 429 with `Retry-After: 1`, which the apiserver retries) well within
//! the apiserver's timeout, none may hang, and the server must serve normally afterwards.

mod support;

use pidone::engine::script::{Dialect, ScriptVerdict};
use pidone::resolve::{InProcessAnalyzer, ScriptAnalyzer};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{Options, TestServer, review};

/// An analyzer that takes `delay` per script (a parse worker under load), then answers like
/// the in-process one.
struct SlowAnalyzer {
    delay: Duration,
    calls: AtomicUsize,
}

impl ScriptAnalyzer for SlowAnalyzer {
    fn analyze(&self, dialect: Dialect, script: &str) -> Arc<ScriptVerdict> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.delay);
        InProcessAnalyzer.analyze(dialect, script)
    }
}

/// A Pod whose one container runs a script unique to `n`, so no verdict cache can answer it.
fn pod(n: usize) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("flood-{n}"), "namespace": "default"},
        "spec": {
            "restartPolicy": "Always",
            "containers": [{
                "name": "app",
                "image": "registry.example/app:1",
                "command": ["sh", "-c", format!("echo start {n}; ./server --port 80{n}")],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"
            }]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_answered_in_time_with_reviews_or_429_and_the_server_recovers() {
    let analyzer = Arc::new(SlowAnalyzer {
        delay: Duration::from_millis(150),
        calls: AtomicUsize::new(0),
    });
    const FLOOD: usize = 120;
    let server = TestServer::start_with(Options {
        analyzer: Arc::clone(&analyzer) as Arc<dyn ScriptAnalyzer>,
        analyzer_blocks: true,
        max_inflight: 2,
        ..Default::default()
    })
    .await;
    // Connections are set up before the flood, as the apiserver's kept-alive ones would be:
    // the test measures the answers, not 120 TLS handshakes at once.
    let api = support::ApiServer::with_idle_connections(&server.pki.ca_pem(), server.addr, 200);
    let warm: Vec<_> = (0..FLOOD)
        .map(|_| {
            let http = api.http.clone();
            let url = format!("{}/healthz", api.base);
            tokio::spawn(async move { http.get(url).send().await.unwrap().status() })
        })
        .collect();
    for w in warm {
        assert_eq!(w.await.unwrap(), 200);
    }
    // The apiserver's timeout for this webhook: 4 s, so a review waits at most 2 s for a slot.
    // Slots free up at about 13 reviews/s, so most of the flood has to be shed.
    let timeout = Duration::from_secs(4);
    let url = format!("{}/validate?timeout=4s", api.base);

    let started = Instant::now();
    let mut calls = Vec::new();
    for n in 0..FLOOD {
        let http = api.http.clone();
        let url = url.clone();
        let body = support::wire(&review("CREATE", &pod(n), None));
        calls.push(tokio::spawn(async move {
            let sent = Instant::now();
            let res = http
                .post(&url)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json, */*")
                .body(body)
                .send()
                .await
                .expect("no answer");
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let body = res.bytes().await.expect("no body");
            (status, retry_after, body, sent.elapsed())
        }));
    }
    let (mut reviewed, mut shed) = (0u64, 0u64);
    let mut slowest = Duration::ZERO;
    for call in calls {
        let (status, retry_after, body, took) = call.await.unwrap();
        slowest = slowest.max(took);
        match status {
            200 => {
                let review: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(review["kind"], "AdmissionReview");
                assert!(review["response"]["allowed"].is_boolean());
                reviewed += 1;
            }
            429 => {
                assert_eq!(retry_after.as_deref(), Some("1"));
                assert!(!body.is_empty());
                shed += 1;
            }
            other => panic!("HTTP {other}: {}", String::from_utf8_lossy(&body)),
        }
    }
    let flood_took = started.elapsed();
    eprintln!(
        "flood of {FLOOD}: {reviewed} reviewed, {shed} shed, slowest answer {slowest:?}, \
         all answered after {flood_took:?}"
    );
    assert_eq!(reviewed + shed, FLOOD as u64);
    assert!(analyzer.calls.load(Ordering::Relaxed) as u64 >= reviewed);
    assert!(reviewed >= 2, "{reviewed} reviewed");
    assert!(shed > 0, "nothing was shed");
    // Every answer well within the apiserver's timeout: at most half of it (2 s) waiting for
    // a slot, then one analysis.
    assert!(
        slowest < timeout * 3 / 4,
        "slowest answer {slowest:?} not within the {timeout:?} timeout"
    );
    assert_eq!(server.app.metrics.shed_total(), shed);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(&format!("pidone_admission_shed_total {shed}")),
        "{metrics}"
    );

    // Recovery: once the flood is gone, reviews are served again (sequentially, each within
    // the analysis time plus a little).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(metrics.contains("pidone_admission_inflight"), "{metrics}");
    for n in FLOOD..FLOOD + 5 {
        let sent = Instant::now();
        let r = review("CREATE", &pod(n), None);
        let answer = api.review("/validate", &r).await.unwrap();
        assert!(answer["allowed"].is_boolean());
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "{:?}",
            sent.elapsed()
        );
    }
    assert_eq!(server.app.metrics.shed_total(), shed, "shed after recovery");
    let after = server.metrics().await;
    assert!(after.contains("pidone_admission_inflight 0"), "{after}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apiserver_that_retries_429_gets_every_review_through() {
    let analyzer = Arc::new(SlowAnalyzer {
        delay: Duration::from_millis(50),
        calls: AtomicUsize::new(0),
    });
    let server = TestServer::start_with(Options {
        analyzer: Arc::clone(&analyzer) as Arc<dyn ScriptAnalyzer>,
        analyzer_blocks: true,
        max_inflight: 1,
        ..Default::default()
    })
    .await;
    let api = server.apiserver();
    let url = format!("{}/validate?timeout=1s", api.base);
    // 30 at once with 1 slot and 50 ms each: more than a 0.5 s wait can absorb, so some are
    // shed; the apiserver retries those (up to 10 times, after Retry-After).
    let mut calls = Vec::new();
    for n in 0..30 {
        let http = api.http.clone();
        let url = url.clone();
        let body = support::wire(&review("CREATE", &pod(1000 + n), None));
        calls.push(tokio::spawn(async move {
            for attempt in 0..=10 {
                let res = http
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                match res.status().as_u16() {
                    200 => return attempt,
                    429 => {
                        let after: u64 = res.headers()["retry-after"]
                            .to_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                        tokio::time::sleep(Duration::from_secs(after)).await;
                    }
                    other => panic!("HTTP {other}"),
                }
            }
            panic!("still shed after 10 retries");
        }));
    }
    let mut retried = 0;
    for call in calls {
        if call.await.unwrap() > 0 {
            retried += 1;
        }
    }
    assert!(retried > 0, "nothing was shed");
    assert!(server.app.metrics.shed_total() as usize >= retried);
    assert!(analyzer.calls.load(Ordering::Relaxed) >= 30);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analysis_that_outlives_the_timeout_is_shed_in_time() {
    // A parse that takes longer than the apiserver waits (a worker stuck at its deadline, a
    // queue of new scripts): the review is answered with 429 before the timeout, not after.
    let analyzer = Arc::new(SlowAnalyzer {
        delay: Duration::from_millis(2500),
        calls: AtomicUsize::new(0),
    });
    let server = TestServer::start_with(Options {
        analyzer: Arc::clone(&analyzer) as Arc<dyn ScriptAnalyzer>,
        analyzer_blocks: true,
        ..Default::default()
    })
    .await;
    let api = server.apiserver();
    let url = format!("{}/validate?timeout=2s", api.base);
    let sent = Instant::now();
    let res = api
        .http
        .post(&url)
        .header("Content-Type", "application/json")
        .body(support::wire(&review("CREATE", &pod(7), None)))
        .send()
        .await
        .unwrap();
    let took = sent.elapsed();
    assert_eq!(res.status().as_u16(), 429);
    assert_eq!(
        res.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    // Timeout (2 s) minus the margin kept for the answer to travel back (0.5 s).
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(server.app.metrics.shed_total(), 1);
    // The analysis itself ran on, once, to its end (its verdicts would serve the retry).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(analyzer.calls.load(Ordering::Relaxed), 1);
    server.stop().await;
}
