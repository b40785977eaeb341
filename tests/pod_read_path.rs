//! A Pod's CREATE review is read straight into the engine's workload (`server::pod_read`)
//! when it can be; one with a member name written with escapes is left to the lean cut (the
//! reader does not decode names). The same Pod written both ways must get the same answer,
//! byte for byte once parsed, on both endpoints and under configurations that patch, reshape
//! and deny: checked here for the realistic Pod and every pod template of the fixtures and
//! examples, made a Pod.

#[path = "support/fixtures.rs"]
mod fixtures;
mod support;

use pidone::engine::workload::template_pointer;
use pidone::server::plan::Mutations;
use serde_json::{Value, json};
use std::sync::Arc;
use support::{Options, TestServer, review, wire};

/// Every pod template of the fixtures and examples, made a Pod in namespace `team`.
fn pods() -> Vec<Value> {
    let mut objects = fixtures::documents();
    objects.extend(
        fixtures::side_agent_corpus()
            .into_iter()
            .map(|(_, doc)| doc),
    );
    objects.extend(support::fixture_objects());
    let mut pods = vec![support::realistic_pod()];
    // Mirror Pods, told by the annotation whatever its value.
    for value in [json!("hash"), json!(1)] {
        let mut mirror = support::realistic_pod();
        mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": value});
        pods.push(mirror);
    }
    for object in objects {
        let Some(pointer) = object["kind"].as_str().and_then(template_pointer) else {
            continue;
        };
        let Some(template) = object.pointer(pointer).filter(|_| !pointer.is_empty()) else {
            if pointer.is_empty() {
                pods.push(object.clone());
            }
            continue;
        };
        let mut metadata = template.get("metadata").cloned().unwrap_or(json!({}));
        metadata["generateName"] = json!("p-");
        metadata["namespace"] = json!("team");
        pods.push(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": template.get("spec").cloned().unwrap_or(json!({}))}),
        );
    }
    pods
}

/// `body` with a member named `xyz`, written `x\u0079z`, first in its object: the same Pod,
/// which the Pod reader leaves to the lean cut.
fn with_escaped_name(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    let at = text.find("\"object\":{").unwrap() + "\"object\":{".len();
    format!("{}\"x\\u0079z\":1,{}", &text[..at], &text[at..]).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_read_straight_into_its_workload_is_answered_as_through_the_lean_cut() {
    let pods = pods();
    assert!(pods.len() > 100, "{} pods", pods.len());
    let configs = [
        "mode: enforce\n",
        "mode: enforce\ninitInjection:\n  enabled: true\n  image: ghcr.io/pidone/pidone:0.1.0\n",
        "mode: enforce\nrules:\n  shell-no-exec: deny\n  side-agent: deny\n",
        "mode: audit\n",
    ];
    let (mut answered, mut patched) = (0, 0);
    for config in configs {
        let server = TestServer::start_with(Options {
            config: config.to_string(),
            planner: Arc::new(Mutations),
            ..Options::default()
        })
        .await;
        let api = server.apiserver();
        for pod in &pods {
            let r = review("CREATE", pod, None);
            let body = wire(&r);
            for path in ["/validate", "/mutate"] {
                let read = api.review_as(path, &r, body.clone()).await.unwrap();
                let through_cut = api
                    .review_as(path, &r, with_escaped_name(&body))
                    .await
                    .unwrap();
                assert_eq!(read, through_cut, "{config}{path}: {pod}");
                answered += 1;
                patched += usize::from(read.get("patch").is_some());
            }
        }
    }
    assert!(patched > 50, "only {patched} of {answered} answers patched");
}
