//! `pidone serve` as a real process: what it logs at start is true (the native sidecar setting
//! in force, no cluster check under `always`/`never`), carries no colour codes when stdout is
//! not a terminal, and every metric family is on /metrics before the first review.

mod support;

use std::process::Stdio;
use std::time::Duration;
use support::Pki;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// Runs `pidone serve` with `config` and text logs until it logged `until` (or 20 s passed);
/// returns its output so far and the body of /metrics.
async fn start_and_read(config: &str, until: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let pair = Pki::new().serving();
    let (cert, key, path) = (
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        dir.path().join("config.yaml"),
    );
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pidone"))
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .args(["--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .args(["--log-format", "text"])
        // No cluster: `auto` would have to say it cannot reach one.
        .env("KUBECONFIG", dir.path().join("missing-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !out.contains(until) {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no {until:?} in 20 s; output so far:\n{out}"))
            .unwrap()
            .unwrap_or_else(|| panic!("pidone exited; output:\n{out}"));
        out.push_str(&line);
        out.push('\n');
    }
    // The "serving" line names the admin address.
    let admin: std::net::SocketAddr = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("admin_addr=")?.parse().ok())
        .unwrap_or_else(|| panic!("no admin address in:\n{out}"));
    let mut tcp = tokio::net::TcpStream::connect(admin).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut metrics = String::new();
    tcp.read_to_string(&mut metrics).await.unwrap();
    let _ = child.start_kill();
    (out, metrics)
}

#[tokio::test]
async fn always_says_always_and_checks_no_cluster() {
    let (out, metrics) = start_and_read(
        "mode: audit\nnativeSidecars: always\n",
        "nativeSidecars: always",
    )
    .await;
    assert!(!out.contains("not available"), "{out}");
    assert!(!out.contains("cannot reach"), "{out}");
    assert!(!out.contains('\x1b'), "colour codes in a pipe:\n{out:?}");
    for family in [
        "pidone_admission_requests_total{",
        "pidone_admission_duration_seconds_bucket{",
        "pidone_findings_total{",
        "pidone_mutations_total{",
        "pidone_config_reloads_total{",
        "pidone_tls_reloads_total{",
        "pidone_admission_shed_total ",
        "pidone_report_writes_total{",
    ] {
        assert!(
            metrics.contains(family),
            "no {family} before any review:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn never_says_never() {
    let (out, _) = start_and_read("nativeSidecars: never\n", "nativeSidecars: never").await;
    assert!(!out.contains("cannot reach"), "{out}");
    assert!(!out.contains('\x1b'), "{out:?}");
}

#[tokio::test]
async fn auto_says_why_side_agents_stay() {
    let (out, _) = start_and_read(
        "nativeSidecars: auto\n",
        "native sidecars are not available",
    )
    .await;
    assert!(out.contains("nativeSidecars: auto"), "{out}");
    assert!(!out.contains('\x1b'), "{out:?}");
}
