//! The workload the shipped build is trained on (`examples/pgo_workload.rs`, run by
//! `scripts/train-profile.sh`) runs against the real server as the image build runs it: every
//! review it makes from the fixture manifests is answered, on both endpoints, and the server
//! counts them. A workload that stopped working would fail the release image's build; here it
//! fails first.

mod cargo_build;
mod support;

use cargo_build::cargo_build;
use pidone::server::plan::Mutations;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use support::{Options, SERVICE_NAME, TestServer};

/// The example, built into this test binary's target directory and profile.
fn workload_bin() -> PathBuf {
    cargo_build(&["--example", "pgo_workload"], |dir| {
        dir.join("examples").join("pgo_workload")
    })
    .unwrap_or_else(|e| panic!("cannot build the pgo_workload example: {e}"))
}

/// The sum of `pidone_admission_requests_total` samples whose labels contain `labels`.
fn requests(metrics: &str, labels: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("pidone_admission_requests_total{") && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_training_workload_is_answered_in_full() {
    // As `pidone serve` runs: enforce mode, patches planned.
    let server = TestServer::start_with(Options {
        planner: Arc::new(Mutations),
        ..Options::default()
    })
    .await;
    let ca = server.dir.path().join("ca.crt");
    std::fs::write(&ca, server.pki.ca_pem()).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let manifests: Vec<PathBuf> = ["roundtrip/static", "roundtrip/charts", "side_agents"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(fixtures.join(dir)).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json"))
        .chain([fixtures.join("examples/launches.yaml")])
        .collect();
    let bin = tokio::task::spawn_blocking(workload_bin).await.unwrap();
    let addr = server.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args([addr.as_str(), SERVICE_NAME, ca.to_str().unwrap(), "1"])
            .args(&manifests)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the workload failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "N reviews answered (...)": one round, two clients, two endpoints.
    let sent: u64 = stdout
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stdout:?}"));
    let metrics = server.metrics().await;
    let validate = requests(&metrics, r#"endpoint="validate""#);
    let mutate = requests(&metrics, r#"endpoint="mutate""#);
    assert_eq!(validate, sent / 2, "{metrics}");
    assert_eq!(mutate, sent / 2, "{metrics}");
    // The workload reaches the rules, not only clean launches: some reviews are denied on
    // /validate and some patched on /mutate, and workload updates are sent too.
    assert!(requests(&metrics, r#"result="denied""#) > 0, "{metrics}");
    assert!(requests(&metrics, r#"result="patched""#) > 0, "{metrics}");
    assert!(requests(&metrics, r#"operation="UPDATE""#) > 0, "{metrics}");
    assert!(sent > 1000, "{stdout}");
    server.stop().await;
}
