//! The server answers reviews built from the example workloads the way the contract says, and
//! every answer passes the apiserver's response checks.

#[path = "support/fixtures.rs"]
mod fixtures;
mod support;

use pidone::engine::evaluate::{EvalContext, NativeSidecarSupport};
use pidone::engine::{Action, Config};
use pidone::resolve::Evaluator;
use pidone::resolve::InProcessAnalyzer;
use serde_json::{Value, json};
use std::sync::Arc;
use support::{Options, TestServer, review};

fn engine(config: &str) -> Evaluator {
    Evaluator::new(
        Arc::new(Config::from_yaml(config).unwrap()),
        Arc::new(InProcessAnalyzer),
    )
    .unwrap()
}

/// What the server assumes until the cluster's versions are checked.
fn ctx() -> EvalContext<'static> {
    EvalContext {
        namespace: None,
        native_sidecars: NativeSidecarSupport::Unsupported("not checked".into()),
        images: None,
        config_maps: None,
        image_files: None,
        scripts: None,
        ..Default::default()
    }
}

fn warnings(response: &Value) -> Vec<String> {
    response["warnings"]
        .as_array()
        .map(|w| w.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_gets_a_valid_answer_that_matches_the_engine() {
    let server = TestServer::start().await;
    let api = server.apiserver();
    let objects = support::fixture_objects();
    assert!(objects.len() >= 40, "{} objects", objects.len());
    let engine = engine("mode: enforce\n");
    let (mut denied, mut warned) = (0, 0);
    for object in &objects {
        let eval = engine.evaluate(object, &ctx()).unwrap().unwrap();
        let r = review("CREATE", object, None);
        let name = format!("{}/{}", object["kind"], object["metadata"]["name"]);

        let v = api.review("/validate", &r).await.unwrap();
        let denies = eval.findings.iter().any(|f| f.action == Action::Deny);
        assert_eq!(v["allowed"], !denies, "{name}: {v}");
        if denies {
            denied += 1;
            let message = v["status"]["message"].as_str().unwrap();
            assert_eq!(v["status"]["code"], 403);
            for f in eval.findings.iter().filter(|f| f.action == Action::Deny) {
                assert!(message.contains(&format!("[{}]", f.rule)), "{message}");
                assert!(
                    message.contains(&format!("container {:?}", f.container)),
                    "{message}"
                );
                assert!(
                    message.contains(&format!("pidone explain {}", f.rule)),
                    "{message}"
                );
            }
        }
        if !warnings(&v).is_empty() {
            warned += 1;
        }

        let m = api.review("/mutate", &r).await.unwrap();
        assert_eq!(m["allowed"], true, "{name}: mutate never denies: {m}");
        assert!(m.get("patch").is_none(), "no planner yet: {m}");
        let mutate_findings = eval
            .findings
            .iter()
            .filter(|f| f.action == Action::Mutate)
            .count();
        // A Pod's fixable findings are /mutate's; a workload's are fixed in its Pods and
        // reported by /validate (DESIGN section 5.1).
        if object["kind"] == "Pod" {
            assert_eq!(warnings(&m).len(), mutate_findings, "{name}: {m}");
        } else {
            assert!(warnings(&m).is_empty(), "{name}: {m}");
            let in_pods = warnings(&v)
                .iter()
                .filter(|w| w.contains(" (fixed in its Pods): "))
                .count();
            assert_eq!(in_pods, mutate_findings, "{name}: {v}");
        }

        for path in ["/validate/audit", "/mutate/audit"] {
            let a = api.review(path, &r).await.unwrap();
            assert_eq!(a["allowed"], true, "{name} {path}: {a}");
            assert!(a.get("patch").is_none());
            for w in warnings(&a) {
                assert!(w.contains("(audit: would "), "{w}");
            }
        }
        for path in ["/validate/off", "/mutate/off"] {
            let o = api.review(path, &r).await.unwrap();
            assert_eq!(
                o,
                json!({"uid": r["request"]["uid"], "allowed": true}),
                "{path}"
            );
        }
    }
    assert!(denied > 0 && warned > 0, "denied {denied}, warned {warned}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_analyzer_is_run_on_the_blocking_pool_with_the_same_answers() {
    let server = TestServer::start_with(Options {
        analyzer_blocks: true,
        ..Default::default()
    })
    .await;
    let api = server.apiserver();
    for object in support::fixture_objects().iter().take(10) {
        let r = review("CREATE", object, None);
        let v = api.review("/validate", &r).await.unwrap();
        let inline = engine("")
            .evaluate(object, &ctx())
            .unwrap()
            .unwrap()
            .max_action();
        assert_eq!(v["allowed"], inline != Some(Action::Deny));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_mode_reports_every_finding_once_across_both_webhooks() {
    let server = TestServer::start_with(Options {
        config: "mode: audit\n".into(),
        ..Default::default()
    })
    .await;
    let api = server.apiserver();
    let engine = engine("mode: audit\n");
    for object in support::fixture_objects() {
        let eval = engine.evaluate(&object, &ctx()).unwrap().unwrap();
        let r = review("CREATE", &object, None);
        let v = api.review("/validate", &r).await.unwrap();
        let m = api.review("/mutate", &r).await.unwrap();
        assert_eq!(v["allowed"], true);
        assert_eq!(m["allowed"], true);
        let reported = warnings(&v).len() + warnings(&m).len();
        assert_eq!(reported, eval.findings.len(), "{object}");
        let mut annotations = Vec::new();
        for response in [&v, &m] {
            if let Some(a) = response["auditAnnotations"].as_object() {
                annotations.extend(a.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        assert_eq!(annotations.len(), eval.findings.len());
        for f in &eval.findings {
            let (_, value) = annotations
                .iter()
                .find(|(k, _)| k == &format!("{}.{}", f.rule, f.container))
                .unwrap_or_else(|| panic!("no annotation for {} {}", f.rule, f.container));
            let value = value.as_str().unwrap();
            assert!(
                value.starts_with(&format!(
                    "would {}",
                    match f.action {
                        Action::Mutate => "",
                        a => a.as_str(),
                    }
                )),
                "{value}"
            );
            assert!(value.contains(&format!("pidone explain {}", f.rule)));
        }
    }
    let metrics = server.metrics().await;
    assert!(
        metrics
            .contains(r#"pidone_findings_total{rule="multi-process",action="deny",mode="audit"}"#),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_realistic_pod_is_about_15_kib_and_gets_its_findings() {
    let server = TestServer::start().await;
    let api = server.apiserver();
    let r = review("CREATE", &support::realistic_pod(), None);
    let size = support::wire(&r).len();
    assert!((13_000..18_000).contains(&size), "{size} bytes");

    let v = api.review("/validate", &r).await.unwrap();
    assert_eq!(v["allowed"], true);
    // Native sidecars are not known to be supported, so the side agent falls back to warn.
    let w = warnings(&v);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with(r#"side-agent: container "log-forwarder""#),
        "{w:?}"
    );
    assert!(
        v["auditAnnotations"]["side-agent.log-forwarder"]
            .as_str()
            .unwrap()
            .contains("Not fixed automatically: native sidecars are not available")
    );

    let m = api.review("/mutate", &r).await.unwrap();
    assert_eq!(
        warnings(&m)
            .iter()
            .map(|w| w.split(':').next().unwrap())
            .collect::<Vec<_>>(),
        vec!["shell-no-exec"]
    );
    server.stop().await;
}

/// A server with `planner`, and a review of the realistic pod for it.
async fn planning(planner: impl pidone::server::plan::Planner + 'static) -> (TestServer, Value) {
    let server = TestServer::start_with(Options {
        planner: Arc::new(planner),
        ..Default::default()
    })
    .await;
    (server, review("CREATE", &support::realistic_pod(), None))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planner_patch_is_sent_as_base64_json_patch_in_enforce_only() {
    let planner = |_: &pidone::engine::Evaluation, object: &Value| {
        let mut ops = Vec::new();
        if object.pointer("/metadata/annotations").is_none() {
            ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": {}}));
        }
        ops.push(json!({"op": "add", "path": "/metadata/annotations/pidone.io~1mutations", "value": "exec:app"}));
        serde_json::from_value::<Vec<json_patch::PatchOperation>>(Value::Array(ops)).unwrap()
    };
    let (server, r) = planning(planner).await;
    let api = server.apiserver();

    let m = api.review("/mutate", &r).await.unwrap();
    assert_eq!(m["patchType"], "JSONPatch");
    assert!(m["patch"].is_string(), "base64 string, not a byte array");
    assert!(warnings(&m)[0].starts_with("shell-no-exec (patched): "));

    let a = api.review("/mutate/audit", &r).await.unwrap();
    assert!(a.get("patch").is_none() && a.get("patchType").is_none());
    let shown: Value =
        serde_json::from_str(a["auditAnnotations"]["patch"].as_str().unwrap()).unwrap();
    assert_eq!(
        shown.as_array().unwrap().last().unwrap()["value"],
        "exec:app"
    );

    let v = api.review("/validate", &r).await.unwrap();
    assert!(v.get("patch").is_none(), "validate never patches");

    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"pidone_mutations_total{type="exec"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(
        r#"pidone_admission_requests_total{endpoint="mutate",kind="Pod",operation="CREATE",result="patched"} 1"#
    ));
    server.stop().await;
}

/// The server applies every patch to the review's object before sending it: a patch that does
/// not apply (here, a `replace` of a field the object does not have) is never sent; the review
/// is answered as if no fix existed, with a warning that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planner_patch_that_does_not_apply_is_not_sent() {
    let planner = |_: &pidone::engine::Evaluation, _: &Value| {
        serde_json::from_value::<Vec<json_patch::PatchOperation>>(json!([
            {"op": "add", "path": "/metadata/labels", "value": {}},
            {"op": "replace", "path": "/spec/containers/0/noSuchField", "value": 1}
        ]))
        .unwrap()
    };
    let (server, r) = planning(planner).await;
    let api = server.apiserver();
    let m = api.review("/mutate", &r).await.unwrap();
    assert!(
        m.get("patch").is_none() && m.get("patchType").is_none(),
        "{m}"
    );
    assert!(
        warnings(&m)
            .iter()
            .any(|w| w.contains("computed a patch that does not apply")),
        "{m}"
    );
    let metrics = server.metrics().await;
    let mutations: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("pidone_mutations_total{") && !l.ends_with(" 0"))
        .collect();
    assert!(mutations.is_empty(), "{mutations:?}");
    server.stop().await;
}

/// /validate decodes a review without the containers' `env` lists first. A launch that reads
/// them (the kubelet's `$(VAR)`) is decided with them: the script that runs two programs is
/// only in the environment. An env list the engine reports on is reported as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_reads_env_where_a_launch_needs_it() {
    let server = TestServer::start().await;
    let api = server.apiserver();
    let pod = |command: Value, env: Value| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "p", "namespace": "team"},
               "spec": {"containers": [{"name": "app", "image": "app:1",
                   "command": command, "env": env}]}})
    };
    let validate = |object: Value| {
        let api = api.clone();
        async move {
            let v = api
                .review("/validate", &review("CREATE", &object, None))
                .await
                .unwrap();
            let message = v["status"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (v, message)
        }
    };
    let (v, message) = validate(pod(
        json!(["sh", "-c", "$(RUN)"]),
        json!([{"name": "RUN", "value": "./server & ./worker & wait -n"}]),
    ))
    .await;
    assert_eq!(v["allowed"], false, "{v}");
    assert!(message.contains("multi-process"), "{v}");
    // The same script without the variable is decided without it, the same way.
    let (v, message) = validate(pod(
        json!(["sh", "-c", "./server & ./worker & wait -n"]),
        json!([{"name": "UNUSED", "value": "x"}]),
    ))
    .await;
    assert_eq!(v["allowed"], false, "{v}");
    assert!(message.contains("multi-process"), "{v}");
    // A malformed env list: the engine's own message.
    let (v, message) = validate(pod(json!(["./server"]), json!([{"name": 5}]))).await;
    assert!(
        message.contains("/spec/containers/0/env/0/name: expected a string"),
        "{v}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_are_analysed_on_update_only_when_the_template_changed() {
    let server = TestServer::start().await;
    let api = server.apiserver();
    let denied = support::fixture_objects()
        .into_iter()
        .find(|o| {
            o["kind"] == "Deployment"
                && engine("")
                    .evaluate(o, &ctx())
                    .unwrap()
                    .unwrap()
                    .max_action()
                    == Some(Action::Deny)
        })
        .expect("an example that enforce mode denies");

    let mut scaled = denied.clone();
    scaled["spec"]["replicas"] = json!(10);
    let same = review("UPDATE", &scaled, Some(&denied));
    let v = api.review("/validate", &same).await.unwrap();
    assert_eq!(
        v,
        json!({"uid": same["request"]["uid"], "allowed": true}),
        "scaling does not re-check containers"
    );
    // /mutate decodes the whole object at once and compares the templates on it; the old
    // object is read on both webhooks.
    let m = api.review("/mutate", &same).await.unwrap();
    assert_eq!(m, json!({"uid": same["request"]["uid"], "allowed": true}));
    let mut broken = same.clone();
    broken["request"]["oldObject"] = json!("not an object");
    for path in ["/validate", "/mutate"] {
        let v = api.review(path, &broken).await.unwrap();
        assert!(v.to_string().contains("request.oldObject"), "{path}: {v}");
    }

    let mut edited = denied.clone();
    edited["spec"]["template"]["metadata"]["labels"]["rev"] = json!("2");
    let changed = review("UPDATE", &edited, Some(&denied));
    let v = api.review("/validate", &changed).await.unwrap();
    assert_eq!(v["allowed"], false, "a template change is analysed");

    let mut dry = review("CREATE", &denied, None);
    dry["request"]["dryRun"] = json!(true);
    let v = api.review("/validate", &dry).await.unwrap();
    assert_eq!(v["allowed"], false, "dry runs are analysed the same way");
    server.stop().await;
}

/// Managed fields are cut out of a review's body before it is decoded (the object's, and the
/// old object's on an UPDATE): the answers must be those to the same reviews without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_fields_change_no_answer() {
    let server = TestServer::start_with(Options {
        planner: Arc::new(pidone::server::plan::Mutations),
        ..Default::default()
    })
    .await;
    let api = server.apiserver();
    let pod = support::realistic_pod();
    let managed = pod["metadata"]["managedFields"].clone();
    let mut deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "shop", "managedFields": managed},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "checkout"}},
                 "template": {"metadata": {"labels": {"app": "checkout"}}, "spec": pod["spec"]}}
    });
    let old = deployment.clone();
    deployment["spec"]["template"]["metadata"]["labels"]["rev"] = json!("2");
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    let reviews = [
        review("CREATE", &pod, None),
        review("CREATE", &deployment, None),
        review("UPDATE", &deployment, Some(&old)),
        review("UPDATE", &scaled, Some(&old)),
    ];
    let without = |review: &Value| {
        let mut review = review.clone();
        for object in ["object", "oldObject"] {
            if let Some(m) = review["request"][object]["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
        }
        review["request"]["uid"] = json!(support::uid());
        review
    };
    let answer = |mut response: Value| {
        response.as_object_mut().unwrap().remove("uid");
        response
    };
    let mut patched = 0;
    for review in &reviews {
        assert!(
            support::wire(review).len() <= 32 * 1024,
            "cut only up to 32 KiB"
        );
        for path in ["/validate/enforce", "/mutate/enforce"] {
            let with = api.review(path, review).await.unwrap();
            patched += usize::from(with.get("patch").is_some());
            let plain = api.review(path, &without(review)).await.unwrap();
            assert_eq!(
                answer(with),
                answer(plain),
                "{path} {}",
                review["request"]["operation"]
            );
        }
    }
    // Workloads are fixed through their pods (`mutations.workloads` is off by default).
    assert_eq!(patched, 1, "the pod is patched");
    server.stop().await;
}

/// A CREATE's env lists are cut out of its body before decoding: /validate decodes again
/// with them when its evaluation reads them, /mutate too, and when its patch would carry them
/// (a side agent moved whole). The answers must be those to the same reviews sent with their
/// members sorted, from which nothing but managed fields is cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_lists_change_no_answer() {
    let server = TestServer::start_with(Options {
        planner: Arc::new(pidone::server::plan::Mutations),
        config: "mode: enforce\nnativeSidecars: always\n".into(),
        ..Default::default()
    })
    .await;
    let api = server.apiserver();
    // Without its side agent, whose move the patch would carry whole: the exec fix alone.
    let mut pod = support::realistic_pod();
    let agent_container = pod["spec"]["containers"][1].take();
    pod["spec"]["containers"] = json!([pod["spec"]["containers"][0].take()]);
    // The kubelet expands `$(APP)` from the env list before the shell runs: the program the
    // shell ends with is a signal-deaf `sleep`, which an `exec` would not fix.
    let mut expanded = pod.clone();
    expanded["spec"]["containers"][0]["command"] = json!(["/bin/sh", "-c", "setup; $(APP) 3600"]);
    expanded["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "APP", "value": "sleep"}));
    // The side agent moves to the init containers whole, env included.
    let mut agent = pod.clone();
    let mut agent_container = agent_container;
    agent_container["env"] = json!([{"name": "FLUENT_LEVEL", "value": "debug-level-kept"}]);
    agent["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(agent_container);
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "checkout"}},
                 "template": {"metadata": {"labels": {"app": "checkout"}}, "spec": pod["spec"]}}
    });
    let answer = |mut response: Value| {
        response.as_object_mut().unwrap().remove("uid");
        response
    };
    let mut patches = Vec::new();
    for object in [&pod, &expanded, &agent, &deployment] {
        let review = review("CREATE", object, None);
        for path in ["/validate/enforce", "/mutate/enforce"] {
            let cut = api.review(path, &review).await.unwrap();
            let whole = api.review_sorted(path, &review).await.unwrap();
            if path.starts_with("/mutate") {
                patches.push(cut.get("patch").cloned());
            }
            assert_eq!(answer(cut), answer(whole), "{path} {}", object["kind"]);
        }
    }
    let decoded = |patch: &Option<Value>| -> String {
        use base64::Engine as _;
        let patch = patch.as_ref().and_then(Value::as_str).unwrap_or("");
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(patch)
                .unwrap(),
        )
        .unwrap()
    };
    assert!(decoded(&patches[0]).contains("exec /app/checkout"));
    assert!(patches[1].is_none(), "{}", decoded(&patches[1]));
    assert!(
        decoded(&patches[2]).contains("debug-level-kept"),
        "{}",
        decoded(&patches[2])
    );
    server.stop().await;
}

/// /mutate reads a CREATE's lean cut from the body and plans on it when the patch lies within
/// it; a body it cannot read that way (the members sorted: `operation` after the object) is
/// decoded whole and planned on whole. Over every fixture, under configurations whose patches
/// rewrite scripts, share the process namespace, run the init and move side agents, the two
/// answers must be the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_mutates_alike_read_from_the_body_or_decoded_whole() {
    let mut docs = fixtures::documents();
    docs.extend(fixtures::side_agent_corpus().into_iter().map(|(_, d)| d));
    let strip_uid = |mut response: Value| {
        response.as_object_mut().unwrap().remove("uid");
        response
    };
    for config in [
        "mode: enforce\nnativeSidecars: always\nmutations:\n  workloads: true\n",
        "mode: enforce\ninitInjection:\n  enabled: true\n  strategy: shareProcessNamespace\n",
        "mode: enforce\ninitInjection:\n  enabled: true\n  image: ghcr.io/pidone/pidone:0.1.0\n",
    ] {
        let server = TestServer::start_with(Options {
            planner: Arc::new(pidone::server::plan::Mutations),
            config: config.into(),
            ..Default::default()
        })
        .await;
        let api = server.apiserver();
        let mut patched = 0;
        for object in &docs {
            let review = review("CREATE", object, None);
            let read = api.review("/mutate", &review).await.unwrap();
            let whole = api.review_sorted("/mutate", &review).await.unwrap();
            patched += usize::from(read.get("patch").is_some());
            assert_eq!(strip_uid(read), strip_uid(whole), "{config}: {object}");
        }
        assert!(patched > 30, "{config}: {patched} patched");
        server.stop().await;
    }
}

/// A workload's UPDATE is judged by its pod template: left as it was (the same bytes in both
/// objects, or written differently), the review is allowed whatever the template holds;
/// changed, it is answered as a CREATE of the new object is. Over every workload fixture,
/// with the old object written compact and pretty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_is_judged_by_its_template_however_the_objects_are_written() {
    let server = TestServer::start_with(Options {
        planner: Arc::new(pidone::server::plan::Mutations),
        config: "mode: enforce\n".into(),
        ..Default::default()
    })
    .await;
    let api = server.apiserver();
    let mut docs = fixtures::documents();
    docs.extend(fixtures::side_agent_corpus().into_iter().map(|(_, d)| d));
    let strip_uid = |mut response: Value| {
        response.as_object_mut().unwrap().remove("uid");
        response
    };
    // The review as the apiserver writes it, the old object compact or pretty.
    let update = |new: &Value, old: &Value, pretty: bool| {
        let placeholder = json!("old object here");
        let review = review("UPDATE", new, Some(&placeholder));
        let text = if pretty {
            serde_json::to_string_pretty(old).unwrap()
        } else {
            old.to_string()
        };
        let body = String::from_utf8(support::wire(&review)).unwrap().replacen(
            &placeholder.to_string(),
            &text,
            1,
        );
        let mut review = review;
        review["request"]["oldObject"] = old.clone();
        (review, body.into_bytes())
    };
    let (mut workloads, mut refused) = (0, 0);
    for new in &docs {
        let kind = new["kind"].as_str().unwrap_or("Pod");
        let Some(pointer) = pidone::engine::workload::template_pointer(kind) else {
            continue;
        };
        if pointer.is_empty() || new.pointer(pointer).is_none() {
            continue;
        }
        workloads += 1;
        // The same template, other metadata.
        let mut old = new.clone();
        old["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "3"});
        for pretty in [false, true] {
            let (review, body) = update(new, &old, pretty);
            let answer = api.review_as("/validate", &review, body).await.unwrap();
            assert_eq!(answer["allowed"], json!(true), "{pretty}: {new}");
            assert!(answer.get("warnings").is_none(), "{pretty}: {answer}");
        }
        // Another template: answered as its CREATE.
        let mut changed = new.clone();
        changed.pointer_mut(pointer).unwrap()["metadata"]["labels"]["revision"] = json!("4");
        let create = api
            .review("/validate", &review("CREATE", &changed, None))
            .await
            .unwrap();
        refused +=
            usize::from(create["allowed"] == json!(false) || create.get("warnings").is_some());
        for pretty in [false, true] {
            let (review, body) = update(&changed, new, pretty);
            let answer = api.review_as("/validate", &review, body).await.unwrap();
            assert_eq!(
                strip_uid(answer),
                strip_uid(create.clone()),
                "{pretty}: {changed}"
            );
        }
    }
    assert!(
        workloads > 40 && refused > 20,
        "{workloads} workloads, {refused} refused or warned"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_metrics_and_alpn_h2() {
    let server = TestServer::start().await;
    let api = server.apiserver();
    for path in ["/healthz", "/readyz"] {
        let res = api.http.get(api.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.version(), reqwest::Version::HTTP_11);
        let res = reqwest::get(format!("http://{}{path}", server.admin_addr))
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "admin {path}");
    }
    let res = reqwest::get(format!("http://{}/metrics", server.admin_addr))
        .await
        .unwrap();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );

    let h2 = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(server.pki.ca_pem().as_bytes()).unwrap(),
        )
        .resolve(support::SERVICE_NAME, server.addr)
        .build()
        .unwrap();
    let r = review("CREATE", &support::realistic_pod(), None);
    let res = h2
        .post(api.url("/validate"))
        .header("Content-Type", "application/json")
        .body(support::wire(&r))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let body = res.bytes().await.unwrap();
    support::validate_response(&r, &body, false).unwrap();
    server.stop().await;
}

/// The load benchmark's reviews of the realistic Pod: as it is (`pod-review.json`), and with
/// its wrapper already ending in `exec` (`pod-review-exec.json`, nothing to patch).
fn benchmark_reviews() -> [(&'static str, Vec<u8>); 2] {
    let wire = |pod: &Value| {
        let mut r = review("CREATE", pod, None);
        r["request"]["uid"] = json!("3f0c1e62-7a3b-4c1d-9e5f-0a1b2c3d4e5f");
        support::wire(&r)
    };
    let pod = support::realistic_pod();
    let mut fixed = pod.clone();
    let script = &mut fixed["spec"]["containers"][0]["command"][2];
    let text = script
        .as_str()
        .unwrap()
        .replace("\n/app/checkout", "\nexec /app/checkout");
    *script = json!(text);
    [
        ("pod-review.json", wire(&pod)),
        ("pod-review-exec.json", wire(&fixed)),
    ]
}

/// The benchmark's fixtures stay in sync with `support::realistic_pod`
/// (`PIDONE_WRITE_FIXTURES=1` rewrites them).
#[test]
fn the_benchmark_fixtures_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures");
    for (name, body) in benchmark_reviews() {
        let path = dir.join(name);
        if std::env::var_os("PIDONE_WRITE_FIXTURES").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &body).unwrap();
        }
        let on_disk = std::fs::read(&path).expect("run with PIDONE_WRITE_FIXTURES=1 to create it");
        assert!(
            on_disk == body,
            "{} is stale: run with PIDONE_WRITE_FIXTURES=1",
            path.display()
        );
    }
}

/// The benchmark's two /mutate loads mean what its report says: the realistic Pod is patched
/// (an `exec`), the fixed one is allowed with no patch and no warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_reviews_are_patched_and_left_alone() {
    let server = TestServer::start_with(Options {
        planner: Arc::new(pidone::server::plan::Mutations),
        ..Default::default()
    })
    .await;
    let api = server.apiserver();
    let [(_, patched), (_, unpatched)] = benchmark_reviews();
    let answer = |body: Vec<u8>| async {
        let res = api.post("/mutate", "application/json", body).await.unwrap();
        assert_eq!(res.status(), 200);
        let v: Value = res.json().await.unwrap();
        v["response"].clone()
    };
    let p = answer(patched).await;
    assert_eq!(p["allowed"], true);
    assert_eq!(p["patchType"], "JSONPatch", "{p}");
    let u = answer(unpatched).await;
    assert_eq!(u["allowed"], true);
    assert!(u.get("patch").is_none(), "{u}");
    assert!(warnings(&u).is_empty(), "{u}");
    server.stop().await;
}
