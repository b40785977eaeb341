//! Hostile clients and tenants against the real server (SECURITY.md, "Threats and bounds"),
//! scaled to run in seconds. Every attack runs beside a prober that checks, every 100 ms, that
//! `/healthz` and an ordinary review each answer within 1 s, and that the process's resident
//! memory stays under the chart's limit.

mod support;

use pidone::server::Limits;
use pidone::server::connections::Port;
use pidone::server::plan::Mutations;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::served::{Served, rss_tree};
use support::{ApiServer, Options, TestServer, review};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The attacks run one at a time: each measures promptness on a machine of two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The server's share of the chart's memory limit (charts/pidone/values.yaml
/// `resources.limits.memory`: this plus the two parse workers' address-space limits).
const CHART_MEMORY_LIMIT: u64 = 256 * 1024 * 1024;
/// What "answers promptly" means beside an attack.
const PROMPT: Duration = Duration::from_secs(1);

/// An ordinary pod: one container whose shell wrapper lacks `exec`.
fn ordinary_pod(n: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("ordinary-{n}"), "namespace": "default"},
        "spec": {"restartPolicy": "Always", "containers": [{
            "name": "app", "image": "registry.example/app:1",
            "command": ["sh", "-c", "echo starting; ./server"]
        }]}
    })
}

/// What the prober saw.
#[derive(Debug, Default)]
struct Probed {
    rounds: usize,
    slowest_health: Duration,
    slowest_review: Duration,
    failures: Vec<String>,
    peak_rss: u64,
}

/// Probes until `stop` is set: `/healthz` and an ordinary review, and the resident memory of
/// `pid` (when the server runs as its own process).
fn probe(
    api: ApiServer,
    pid: Option<u32>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Probed> {
    tokio::spawn(async move {
        let mut seen = Probed::default();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            if let Some(pid) = pid {
                seen.peak_rss = seen.peak_rss.max(rss_tree(pid));
            }
            let started = Instant::now();
            match tokio::time::timeout(PROMPT, api.http.get(format!("{}/healthz", api.base)).send())
                .await
            {
                Ok(Ok(r)) if r.status() == 200 => {}
                other => seen.failures.push(format!("healthz: {other:?}")),
            }
            seen.slowest_health = seen.slowest_health.max(started.elapsed());
            let started = Instant::now();
            n += 1;
            let ordinary = review("CREATE", &ordinary_pod(n), None);
            match tokio::time::timeout(PROMPT, api.review("/validate", &ordinary)).await {
                Ok(Ok(r)) if r["allowed"] == true => {}
                other => seen.failures.push(format!("review: {other:?}")),
            }
            seen.slowest_review = seen.slowest_review.max(started.elapsed());
            seen.rounds += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    })
}

fn assert_served(seen: &Probed) {
    eprintln!("{seen:?}");
    assert!(seen.rounds >= 3, "the prober barely ran: {seen:?}");
    assert!(seen.failures.is_empty(), "{:#?}", seen.failures);
    assert!(seen.slowest_health < PROMPT, "{seen:?}");
    assert!(seen.slowest_review < PROMPT, "{seen:?}");
    assert!(
        seen.peak_rss < CHART_MEMORY_LIMIT,
        "resident memory {} MiB",
        seen.peak_rss >> 20
    );
}

/// Text of the first line of an HTTP answer read from a raw connection.
async fn status_line<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, within: Duration) -> String {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    text.lines().next().unwrap_or("").to_string()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Reproduction: 40 TLS connections each announce an 8 MiB body, send 1 MiB of it and stall.
/// Bodies are read only with an analysis slot and drawn from a shared byte budget as they
/// arrive: past the budget the senders get 429 at once, the rest are cut off at the
/// apiserver's timeout, and memory stays far below the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_large_bodies_stay_within_the_byte_budget() {
    let _one = ONE_AT_A_TIME.lock().await;
    const BUDGET: usize = 8 * 1024 * 1024;
    let server = Served::start(
        "mode: enforce\n",
        &["--max-buffered-bytes", &BUDGET.to_string()],
    )
    .await;
    let baseline = rss_tree(server.pid());
    let stop = Arc::new(AtomicBool::new(false));
    let prober = probe(server.apiserver(), Some(server.pid()), Arc::clone(&stop));

    // The connections are open before the attack starts: it is about bodies, not handshakes
    // (40 handshakes at once cost a debug build on two cores a second of CPU).
    let mut connections = Vec::new();
    for _ in 0..40 {
        connections.push(
            support::raw_tls(server.addr, &server.ca_pem, true)
                .await
                .unwrap(),
        );
    }
    let chunk = Arc::new(vec![b' '; 64 * 1024]);
    let mut attackers = Vec::new();
    for mut tls in connections {
        let chunk = Arc::clone(&chunk);
        attackers.push(tokio::spawn(async move {
            let head = format!(
                "POST /validate?timeout=3s HTTP/1.1\r\nHost: pidone\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                8 * 1024 * 1024
            );
            tls.write_all(head.as_bytes()).await.unwrap();
            // 1 MiB of the 8, then nothing; the server may stop reading (and close) first.
            for _ in 0..16 {
                if tls.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            let _ = tls.flush().await;
            status_line(&mut tls, Duration::from_secs(8)).await
        }));
    }
    let mut statuses = Vec::new();
    for a in attackers {
        statuses.push(a.await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let seen = prober.await.unwrap();
    let over_budget = statuses.iter().filter(|s| s.contains(" 429 ")).count();
    let timed_out = statuses.iter().filter(|s| s.contains(" 408 ")).count();
    eprintln!(
        "429: {over_budget}, 408: {timed_out}, other: {:?}, RSS baseline {} MiB, peak {} MiB",
        statuses
            .iter()
            .filter(|s| !s.contains(" 429 ") && !s.contains(" 408 "))
            .collect::<Vec<_>>(),
        baseline >> 20,
        seen.peak_rss >> 20
    );
    assert_served(&seen);
    // 40 MiB sent against an 8 MiB budget: most were refused as they overdrew it, the others
    // were cut off at the apiserver's timeout (3 s).
    assert!(over_budget >= 20, "{statuses:?}");
    assert_eq!(over_budget + timed_out, 40, "{statuses:?}");
    let m = server.metrics().await;
    assert_eq!(
        metric(&m, "pidone_limits_total{limit=\"body-budget\"}"),
        over_budget as u64,
        "{m}"
    );
}

/// Reproduction: clients that take every analysis slot and trickle their bodies, a few bytes
/// at a time, under the apiserver's longest timeout (30 s). Each is cut off with 408 about a
/// second after its body started, below the rate floor, and an ordinary review waiting for a
/// slot gets one then (without the floor it would be shed after its queue wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_bodies_are_cut_off_at_the_rate_floor() {
    let _one = ONE_AT_A_TIME.lock().await;
    const SLOTS: usize = 4;
    let server = TestServer::start_with(Options {
        max_inflight: SLOTS,
        ..Default::default()
    })
    .await;
    let mut attackers = Vec::new();
    for _ in 0..SLOTS {
        let mut tls = support::raw_tls(server.addr, &server.pki.ca_pem(), true)
            .await
            .unwrap();
        attackers.push(tokio::spawn(async move {
            let started = Instant::now();
            let head = "POST /validate?timeout=30s HTTP/1.1\r\nHost: pidone\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
            tls.write_all(head.as_bytes()).await.unwrap();
            // 100 bytes every 100 ms: 1 KB/s, for at most 10 s.
            for _ in 0..100 {
                if tls.write_all(&[b' '; 100]).await.is_err() || tls.flush().await.is_err() {
                    break;
                }
                let mut byte = [0u8; 1];
                // An answer ends the trickle.
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(100), tls.read(&mut byte)).await
                {
                    if n > 0 {
                        let mut rest = Vec::new();
                        let _ = tokio::time::timeout(Duration::from_secs(1), tls.read_to_end(&mut rest)).await;
                        rest.insert(0, byte[0]);
                        let text = String::from_utf8_lossy(&rest).into_owned();
                        return (text.lines().next().unwrap_or("").to_string(), started.elapsed());
                    }
                    break;
                }
            }
            (String::new(), started.elapsed())
        }));
    }
    // The trickles hold every slot now; an ordinary review waits for one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let ordinary = server
        .apiserver()
        .review("/validate", &review("CREATE", &ordinary_pod(0), None))
        .await;
    let waited = started.elapsed();
    let mut answers = Vec::new();
    for a in attackers {
        answers.push(a.await.unwrap());
    }
    eprintln!("trickled bodies: {answers:?}\nordinary review after {waited:?}");
    for (status, took) in &answers {
        assert!(status.contains(" 408 "), "{answers:?}");
        assert!(*took < Duration::from_secs(2), "{answers:?}");
    }
    assert_eq!(ordinary.unwrap()["allowed"], true);
    assert!(waited < Duration::from_millis(1500), "{waited:?}");
    let m = server.metrics().await;
    assert_eq!(
        metric(&m, "pidone_limits_total{limit=\"body-rate\"}"),
        answers.len() as u64,
        "{m}"
    );
}

/// Reproduction: clients that open connections and never speak (and more of them than the
/// cap). The cap holds, a newcomer takes an idle connection's place so the apiserver still
/// gets in, and silent connections are closed after the header read timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_cannot_hold_the_port() {
    let _one = ONE_AT_A_TIME.lock().await;
    const CAP: usize = 16;
    let server = TestServer::start_with(Options {
        header_read_timeout: Duration::from_millis(1500),
        limits: Limits {
            max_connections: CAP,
            ..Limits::default()
        },
        ..Default::default()
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let prober = probe(server.apiserver(), None, Arc::clone(&stop));
    // Half finish the handshake and say nothing, half do not even start it.
    let mut silent = Vec::new();
    for i in 0..(3 * CAP) {
        if i % 2 == 0 {
            if let Ok(tls) = support::raw_tls(server.addr, &server.pki.ca_pem(), true).await {
                silent.push(Box::new(tls) as Box<dyn std::any::Any + Send>);
            }
        } else {
            let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
            silent.push(Box::new(tcp));
        }
        let open = server.app.metrics.limits.open_connections(Port::Webhook);
        assert!(open <= CAP, "{open} connections open, cap {CAP}");
    }
    let mut peak = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        let open = server.app.metrics.limits.open_connections(Port::Webhook);
        peak = peak.max(open);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let seen = prober.await.unwrap();
    assert_served(&seen);
    assert!(peak <= CAP, "{peak} connections open, cap {CAP}");
    let m = server.metrics().await;
    eprintln!(
        "evicted {}, silent {}, handshake {}",
        metric(&m, "pidone_connections_closed_total{reason=\"evicted\"}"),
        metric(&m, "pidone_connections_closed_total{reason=\"silent\"}"),
        metric(&m, "pidone_connections_closed_total{reason=\"handshake\"}")
    );
    assert!(metric(&m, "pidone_connections_closed_total{reason=\"evicted\"}") >= CAP as u64);
    // The survivors were closed for saying nothing.
    assert!(
        metric(&m, "pidone_connections_closed_total{reason=\"silent\"}")
            + metric(&m, "pidone_connections_closed_total{reason=\"handshake\"}")
            > 0,
        "{m}"
    );
    drop(silent);
}

/// What a kubelet probe of the admin port saw: every probe a new connection, as the kubelet
/// makes them.
#[derive(Debug, Default)]
struct AdminProbed {
    rounds: usize,
    slowest: Duration,
    failures: Vec<String>,
}

fn probe_admin(
    admin: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<AdminProbed> {
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let mut seen = AdminProbed::default();
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            match tokio::time::timeout(PROMPT, http.get(format!("http://{admin}/healthz")).send())
                .await
            {
                Ok(Ok(r)) if r.status() == 200 => {}
                other => seen.failures.push(format!("{other:?}")),
            }
            seen.slowest = seen.slowest.max(started.elapsed());
            seen.rounds += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    })
}

/// Reproduction: a client in the pod network opens hundreds of connections to the admin port
/// and says nothing, or starts a request head and stalls. The admin port's own cap holds, a
/// probe takes the place of a silent connection or of a head stalled for a second, and an idle
/// keep-alive connection is closed after the idle timeout: the kubelet's `/healthz` keeps
/// answering within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_cannot_starve_the_admin_port() {
    let _one = ONE_AT_A_TIME.lock().await;
    const CAP: usize = 16;
    let server = TestServer::start_with(Options {
        header_read_timeout: Duration::from_millis(1500),
        idle_timeout: Duration::from_secs(2),
        limits: Limits {
            max_admin_connections: CAP,
            ..Limits::default()
        },
        ..Default::default()
    })
    .await;
    let admin = server.admin_addr;
    // A scraper's keep-alive connection, idle after one request.
    let mut kept = tokio::net::TcpStream::connect(admin).await.unwrap();
    kept.write_all(b"GET /readyz HTTP/1.1\r\nHost: pidone\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let n = kept.read(&mut answer).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );
    let kept_since = Instant::now();

    let stop = Arc::new(AtomicBool::new(false));
    let prober = probe_admin(admin, Arc::clone(&stop));
    let mut silent = Vec::new();
    let mut peak = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(3000) {
        // 160 connections a second: a probe has 100 ms to send its request before as many
        // newer connections as the cap could take its place.
        for i in 0..CAP / 4 {
            if let Ok(mut tcp) = tokio::net::TcpStream::connect(admin).await {
                // Half of them start a request head and stall.
                if i % 2 == 0 {
                    let _ = tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: pid").await;
                }
                silent.push(tcp);
            }
        }
        peak = peak.max(server.app.metrics.limits.open_connections(Port::Admin));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let seen = prober.await.unwrap();
    eprintln!(
        "{} silent connections opened; admin connections peak {peak}; probes {seen:?}",
        silent.len()
    );
    assert!(seen.rounds >= 10, "{seen:?}");
    assert!(seen.failures.is_empty(), "{seen:#?}");
    assert!(seen.slowest < PROMPT, "{seen:?}");
    assert!(peak <= CAP, "{peak} admin connections open, cap {CAP}");
    // The idle scraper connection was closed (or evicted) by now.
    let closed = tokio::time::timeout(Duration::from_secs(3), kept.read(&mut answer)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "{closed:?} after {:?}",
        kept_since.elapsed()
    );
    let m = server.metrics().await;
    let evicted = metric(
        &m,
        "pidone_admin_connections_closed_total{reason=\"evicted\"}",
    );
    let refused = metric(
        &m,
        "pidone_admin_connections_closed_total{reason=\"refused\"}",
    );
    eprintln!("admin port: evicted {evicted}, refused {refused}");
    assert!(evicted >= silent.len() as u64 - CAP as u64, "{m}");
    // The webhook port's connections are counted apart.
    assert_eq!(
        metric(&m, "pidone_connections_closed_total{reason=\"evicted\"}"),
        0,
        "{m}"
    );
    drop(silent);
}

/// A pod with `n` containers named alike, each a shell wrapper without `exec`.
fn crowded_pod(n: usize) -> Value {
    let containers: Vec<Value> = (0..n)
        .map(|i| {
            json!({"name": "app", "image": format!("registry.example/app:{}", i % 7),
                   "command": ["sh", "-c", "echo starting; ./server"]})
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "crowded", "namespace": "default"},
           "spec": {"restartPolicy": "Always", "containers": containers}})
}

async fn post_raw(api: &ApiServer, path: &str, body: Vec<u8>) -> (u16, Vec<u8>, Duration) {
    let started = Instant::now();
    let res = api
        .post(path, "application/json", body)
        .await
        .expect("no answer");
    let status = res.status().as_u16();
    let body = res.bytes().await.expect("no body").to_vec();
    (status, body, started.elapsed())
}

/// Reproduction: pods with 30,000 containers. They are measured in one pass and refused
/// (enforce) before any analysis; the answers are small; the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_with_thousands_of_containers_are_refused_quickly_and_briefly() {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = Served::start("mode: enforce\n", &[]).await;
    let api = server.apiserver();
    let body = support::wire(&review("CREATE", &crowded_pod(30_000), None));
    eprintln!("request body: {} KiB", body.len() >> 10);
    let stop = Arc::new(AtomicBool::new(false));
    let prober = probe(api.clone(), Some(server.pid()), Arc::clone(&stop));
    // Two rounds of four at once (four 2.8 MiB bodies fit the default 16 MiB budget).
    for _ in 0..2 {
        let mut attacks = Vec::new();
        for i in 0..4 {
            let api = api.clone();
            let body = body.clone();
            let path = if i % 2 == 0 { "/validate" } else { "/mutate" };
            attacks.push(tokio::spawn(async move {
                (path, post_raw(&api, path, body).await)
            }));
        }
        for a in attacks {
            let (path, (status, answer, took)) = a.await.unwrap();
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
            let response = &serde_json::from_slice::<Value>(&answer).unwrap()["response"];
            eprintln!("{path}: {took:?}, {} bytes", answer.len());
            assert!(answer.len() < 4096, "{} bytes", answer.len());
            // Two large reviews are analysed at a time; the others wait their turn.
            assert!(took < Duration::from_secs(6), "{took:?}");
            if path == "/validate" {
                assert_eq!(response["allowed"], false);
                let message = response["status"]["message"].as_str().unwrap();
                assert!(message.contains("limits.maxContainers"), "{message}");
            } else {
                assert_eq!(response["allowed"], true);
                assert!(response.get("patch").is_none());
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    assert_served(&prober.await.unwrap());
    let m = server.metrics().await;
    assert_eq!(
        metric(&m, "pidone_limits_total{limit=\"containers\"}"),
        4,
        "{m}"
    );
}

/// Audit mode reports an object over a bound as a warning and an audit annotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_mode_warns_about_an_object_over_a_bound() {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start_with(Options {
        config: "mode: audit\nlimits:\n  maxArgvBytes: 1000\n".into(),
        ..Default::default()
    })
    .await;
    let response = server
        .apiserver()
        .review("/validate", &review("CREATE", &crowded_pod(100), None))
        .await
        .unwrap();
    assert_eq!(response["allowed"], true);
    let warnings = response["warnings"].to_string();
    assert!(warnings.contains("(audit)"), "{warnings}");
    let note = response["auditAnnotations"]["object-limits"]
        .as_str()
        .unwrap();
    assert!(
        note.starts_with("would deny") && note.contains("limits.maxArgvBytes"),
        "{note}"
    );
}

/// With the bound raised, a crowded pod is still planned without a quadratic step: 2,000
/// same-named containers each get their finding, annotation and `exec` patch, on the blocking
/// pool, while `/healthz` stays prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowded_pod_within_a_raised_bound_is_planned_off_the_async_threads() {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start_with(Options {
        config: "mode: enforce\nlimits:\n  maxContainers: 40000\n".into(),
        planner: Arc::new(Mutations),
        ..Default::default()
    })
    .await;
    let api = server.apiserver();
    let stop = Arc::new(AtomicBool::new(false));
    let prober = probe(api.clone(), None, Arc::clone(&stop));
    let body = support::wire(&review("CREATE", &crowded_pod(2_000), None));
    let (status, answer, took) = post_raw(&api, "/mutate", body).await;
    stop.store(true, Ordering::Relaxed);
    assert_eq!(status, 200);
    let response = &serde_json::from_slice::<Value>(&answer).unwrap()["response"];
    eprintln!(
        "2,000 containers: {took:?}, {} KiB answer",
        answer.len() >> 10
    );
    assert_eq!(response["allowed"], true);
    assert!(response["patch"].is_string(), "{response}");
    let annotations = response["auditAnnotations"].as_object().unwrap();
    assert!(annotations.contains_key("shell-no-exec.app-2000"));
    assert_served(&prober.await.unwrap());
}

/// `pidone.io/ignore` is honoured only where `exemptions.allowAnnotations` says; every use is
/// counted and annotated, and a refused one is annotated too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_annotations_are_limited_counted_and_annotated() {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start_with(Options {
        config: "mode: enforce\nexemptions:\n  allowAnnotations: [team-a]\n".into(),
        ..Default::default()
    })
    .await;
    let api = server.apiserver();
    let pod = |ns: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "p", "namespace": ns,
                            "annotations": {"pidone.io/ignore": "multi-process"}},
               "spec": {"restartPolicy": "Always", "containers": [{
                   "name": "app", "image": "registry.example/app:1",
                   "command": ["sh", "-c", "./a & ./b & wait"]}]}})
    };
    let honoured = api
        .review("/validate", &review("CREATE", &pod("team-a"), None))
        .await
        .unwrap();
    assert_eq!(honoured["allowed"], true, "{honoured}");
    assert!(
        honoured["auditAnnotations"]["ignored"]
            .as_str()
            .unwrap()
            .contains("multi-process"),
        "{honoured}"
    );
    let refused = api
        .review("/validate", &review("CREATE", &pod("team-b"), None))
        .await
        .unwrap();
    assert_eq!(refused["allowed"], false, "{refused}");
    assert!(
        refused["auditAnnotations"]["ignore-refused"]
            .as_str()
            .unwrap()
            .contains("team-b"),
        "{refused}"
    );
    let m = server.metrics().await;
    assert_eq!(
        metric(
            &m,
            "pidone_exemptions_total{rule=\"multi-process\",namespace=\"team-a\"}"
        ),
        1,
        "{m}"
    );
    assert!(!m.contains("namespace=\"team-b\""), "{m}");
}
