//! The webhook looks up the ENTRYPOINT of images whose containers set no command, against a
//! real registry on loopback, and classifies the launch from the image; a stalled registry
//! costs at most the deadline and leaves the launch image-default with a warning.

mod images_support;
mod skips;
mod support;

use images_support::registry::{Layout, Registry, missing_tools};
use pidone::server::plan::Mutations;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Options, TestServer, review};

fn warnings(response: &Value) -> Vec<String> {
    response["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_classifies_the_image_entrypoint() {
    if let Some(missing) = missing_tools() {
        skips::skip(&format!(
            "registry tools missing: {missing} (see .ci/apt-packages.txt)"
        ));
        return;
    }
    let registry = Registry::start(None);
    let layout = Layout::new();
    layout.image(
        "wrapped",
        "amd64",
        Some(&["/bin/sh", "-c", "setup; /app/server"]),
        None,
    );
    let image = format!("{}/shop/wrapped:1", registry.host);
    layout.push("wrapped", &registry, "shop/wrapped:1");

    // A listener that accepts and never answers: the deadline must hold.
    let stall = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stalled = format!("{}/shop/stalled:1", stall.local_addr().unwrap());

    // Both registries are on loopback: named in trustedRegistries, as a cluster's own would be.
    let config = format!(
        "mode: enforce\nimages:\n  resolve: true\n  deadline: 1s\n  caBundle: {}\n  trustedRegistries: [\"{}\", \"{}\"]\n",
        registry.ca_path.display(),
        registry.host,
        stall.local_addr().unwrap()
    );
    let server = TestServer::start_with(Options {
        config,
        planner: Arc::new(Mutations),
        analyzer_blocks: true,
        ..Options::default()
    })
    .await;
    let api = server.apiserver();

    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
        "spec": {"containers": [{"name": "app", "image": image}]}});
    // The script is in the image, which pidone does not rewrite: the mutate action falls back
    // to a warning, which the validating webhook reports.
    let answer = api
        .review("/mutate", &review("CREATE", &pod, None))
        .await
        .unwrap();
    assert!(answer.get("patch").is_none(), "{answer}");
    let answer = api
        .review("/validate", &review("CREATE", &pod, None))
        .await
        .unwrap();
    let w = warnings(&answer);
    assert!(
        w.iter().any(|x| x.contains("shell-no-exec")),
        "{w:?} {answer}"
    );

    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q", "namespace": "shop"},
        "spec": {"containers": [{"name": "app", "image": stalled}]}});
    let started = Instant::now();
    let answer = api
        .review("/mutate", &review("CREATE", &pod, None))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer["allowed"], true);
    let w = warnings(&answer);
    assert!(w.iter().any(|x| x.contains("stalled")), "{w:?}");
    drop(stall);
    server.stop().await;
}
