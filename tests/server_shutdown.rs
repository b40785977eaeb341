//! `pidone serve` as a real process: SIGTERM during load drains in-flight requests and exits 0;
//! a second signal exits at once.

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{ApiServer, Pki, review};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

struct Process {
    child: Child,
    addr: SocketAddr,
    admin_addr: SocketAddr,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

/// Starts `pidone serve` on ephemeral ports and reads the bound addresses from its JSON log.
async fn spawn(drain_timeout: &str) -> Process {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let pair = pki.serving();
    let (cert, key, config) = (
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        dir.path().join("config.yaml"),
    );
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    std::fs::write(&config, "mode: enforce\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pidone"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .args(["--listen", "127.0.0.1:0"])
        .env("PIDONE_METRICS_LISTEN", "127.0.0.1:0")
        .env("PIDONE_LOG_FORMAT", "json")
        .env("PIDONE_DRAIN_TIMEOUT", drain_timeout)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut tx = Some(tx);
        // Keep reading so the child never blocks on a full pipe.
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "serving"
                && let Some(tx) = tx.take()
            {
                let addr = |k: &str| v[k].as_str().unwrap().parse::<SocketAddr>().unwrap();
                let _ = tx.send((addr("addr"), addr("admin_addr")));
            }
        }
    });
    let (addr, admin_addr) = tokio::time::timeout(Duration::from_secs(20), rx)
        .await
        .expect("pidone serve logs its addresses")
        .unwrap();
    Process {
        child,
        addr,
        admin_addr,
        ca_pem: pki.ca_pem(),
        _dir: dir,
    }
}

fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id().unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

/// Sends the headers and the first half of a review, leaving the request in flight.
async fn start_slow_request(
    p: &Process,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Vec<u8>,
    Value,
) {
    let r = review("CREATE", &support::realistic_pod(), None);
    let body = support::wire(&r);
    let mut tls = support::raw_tls(p.addr, &p.ca_pem, true).await.unwrap();
    let head = format!(
        "POST /validate?timeout=10s HTTP/1.1\r\nHost: pidone.pidone.svc\r\nContent-Type: application/json\r\nAccept: application/json, */*\r\nUser-Agent: kube-apiserver-admission\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let half = body.len() / 2;
    tls.write_all(&body[..half]).await.unwrap();
    tls.flush().await.unwrap();
    (tls, body[half..].to_vec(), r)
}

async fn finish_slow_request(
    mut tls: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    rest: Vec<u8>,
    r: &Value,
) {
    tls.write_all(&rest).await.unwrap();
    tls.flush().await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "a draining server closes the connection after the response: {text}"
    );
    let json = &text[text.find("\r\n\r\n").unwrap() + 4..];
    support::validate_response(r, json.as_bytes(), false).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_load_finishes_in_flight_requests_and_exits_0() {
    let mut p = spawn("20s").await;
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let api = ApiServer::new(&p.ca_pem, p.addr);
        let (stop, ok) = (stop.clone(), ok.clone());
        workers.push(tokio::spawn(async move {
            let r = review("CREATE", &support::realistic_pod(), None);
            let mut after_signal_errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match api.review("/validate", &r).await {
                    Ok(v) => {
                        assert_eq!(v["allowed"], true);
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    // Once draining, new requests are refused or find their connection
                    // closed: that is the end of this worker, never an HTTP error.
                    Err(e) => {
                        assert!(e.starts_with("call error: ") && !e.contains("HTTP"), "{e}");
                        after_signal_errors.push(e);
                        break;
                    }
                }
            }
            after_signal_errors
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(ok.load(Ordering::Relaxed) > 10, "load is flowing");
    let mut slow = Vec::new();
    for _ in 0..3 {
        slow.push(start_slow_request(&p).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let before = ok.load(Ordering::Relaxed);
    let signalled = Instant::now();
    signal(&p.child, rustix::process::Signal::TERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Draining: not ready, but still finishing what it started.
    let ready = reqwest::get(format!("http://{}/readyz", p.admin_addr))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "still running while requests are in flight"
    );
    for (tls, rest, r) in slow {
        finish_slow_request(tls, rest, &r).await;
    }
    let status = tokio::time::timeout(Duration::from_secs(10), p.child.wait())
        .await
        .expect("exits soon after the in-flight requests finished")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert!(ok.load(Ordering::Relaxed) >= before);
    // The port is closed.
    assert!(tokio::net::TcpStream::connect(p.addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let mut p = spawn("60s").await;
    let (_tls, _rest, _r) = start_slow_request(&p).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    signal(&p.child, rustix::process::Signal::TERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(p.child.try_wait().unwrap().is_none(), "draining");
    signal(&p.child, rustix::process::Signal::INT);
    let status = tokio::time::timeout(Duration::from_secs(5), p.child.wait())
        .await
        .expect("the second signal ends it")
        .unwrap();
    assert_eq!(status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_timeout_bounds_the_wait() {
    let mut p = spawn("1s").await;
    let (_tls, _rest, _r) = start_slow_request(&p).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let signalled = Instant::now();
    signal(&p.child, rustix::process::Signal::TERM);
    let status = tokio::time::timeout(Duration::from_secs(10), p.child.wait())
        .await
        .expect("exits after the drain timeout")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
}
