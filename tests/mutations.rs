//! Mutations over every fixture and example: the patch applies with json-patch, the result is
//! a valid Pod (k8s-openapi types and the apiserver's rules), and mutation is idempotent.

mod support {
    pub mod fixtures;
    pub mod pod_rules;
}

use k8s_openapi::api::core::v1::PodSpec;
use pidone::engine::Config;
use pidone::engine::evaluate::{EvalContext, NativeSidecarSupport};
use pidone::resolve::Evaluator;
use pidone::resolve::InProcessAnalyzer;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;
use support::fixtures::{documents, side_agent_corpus};
use support::pod_rules;

/// The mutation plan for an evaluated object.
fn plan_of(
    engine: &Evaluator,
    object: &Value,
    ctx: &EvalContext<'_>,
    eval: &pidone::engine::Evaluation,
) -> pidone::mutate::MutationPlan {
    pidone::mutate::plan(engine.engine(), engine.analyzer(), object, ctx, eval)
}

fn configs() -> Vec<(&'static str, Config)> {
    let default = Config::default();
    let inject = Config::from_yaml(
        "initInjection:\n  enabled: true\n  image: ghcr.io/pidone/pidone:0.1.0\n",
    )
    .unwrap();
    let last = Config::from_yaml("sideAgents:\n  position: last\ninitInjection:\n  enabled: true\n  image: ghcr.io/pidone/pidone:0.1.0\n").unwrap();
    let share =
        Config::from_yaml("initInjection:\n  enabled: true\n  strategy: shareProcessNamespace\n")
            .unwrap();
    vec![
        ("default", default),
        ("inject", inject),
        ("position-last", last),
        ("share-pid-ns", share),
    ]
}

fn pod_spec_pointer(kind: &str) -> &'static str {
    match kind {
        "Pod" => "/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        "PodTemplate" => "/template/spec",
        _ => "/spec/template/spec",
    }
}

/// A StatefulSet's volumeClaimTemplates are volumes of its pods.
fn with_claim_templates(object: &Value, mut spec: Value) -> Value {
    let claims: Vec<Value> = object
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(
            |c| json!({"name": c["metadata"]["name"], "persistentVolumeClaim": {"claimName": "x"}}),
        )
        .collect();
    if !claims.is_empty() {
        let mut volumes = spec
            .get("volumes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        volumes.extend(claims);
        spec["volumes"] = Value::Array(volumes);
    }
    spec
}

/// The plan made on the extracted workload (scripts edits only) is the plan made on a copy of
/// the object, with or without the workload handed in.
fn same_as_on_a_copy(
    engine: &Evaluator,
    object: &Value,
    ctx: &EvalContext<'_>,
    eval: &pidone::engine::Evaluation,
    plan: &pidone::mutate::MutationPlan,
) -> Result<(), String> {
    let reference =
        pidone::mutate::plan_on_copy(engine.engine(), engine.analyzer(), object, ctx, eval);
    let show = |p: &pidone::mutate::MutationPlan| {
        serde_json::to_string(&(&p.patch, &p.mutations, &p.warnings, p.env_read))
            .unwrap_or_default()
    };
    if show(plan) != show(&reference) {
        return Err(format!(
            "the plan differs from the one made on a copy:
  {}
  {}",
            show(plan),
            show(&reference)
        ));
    }
    // With the workload the caller extracted, the same plan.
    let unchecked =
        pidone::mutate::plan_unchecked(engine.engine(), engine.analyzer(), object, ctx, eval);
    let workload = pidone::engine::workload::extract(object).map_err(|e| e.to_string())?;
    let with = pidone::mutate::plan_unchecked_with(
        engine.engine(),
        engine.analyzer(),
        object,
        workload.as_ref(),
        ctx,
        eval,
    );
    if show(&with) != show(&unchecked) {
        return Err(format!(
            "the plan with the extracted workload differs:
  {}
  {}",
            show(&with),
            show(&unchecked)
        ));
    }
    Ok(())
}

/// Evaluates, plans, applies; checks validity and idempotency. Returns the mutation summary.
fn check(engine: &Evaluator, object: &Value) -> Result<String, String> {
    let ctx = EvalContext::default();
    let Some(eval) = engine.evaluate(object, &ctx).map_err(|e| e.to_string())? else {
        return Ok(String::new());
    };
    let plan = plan_of(engine, object, &ctx, &eval);
    same_as_on_a_copy(engine, object, &ctx, &eval, &plan)?;
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &plan.patch)
        .map_err(|e| format!("patch does not apply: {e}"))?;

    let kind = object["kind"].as_str().unwrap_or("");
    let spec = patched
        .pointer(pod_spec_pointer(kind))
        .cloned()
        .ok_or("no pod spec")?;
    serde_json::from_value::<PodSpec>(spec.clone())
        .map_err(|e| format!("not a k8s-openapi PodSpec: {e}"))?;
    let v = pod_rules::violations(&with_claim_templates(&patched, spec.clone()));
    if !v.is_empty() {
        return Err(format!("pod rules: {v:?}"));
    }
    // Reinvocation: the mutated object gets no patch.
    let again = engine
        .evaluate(&patched, &ctx)
        .map_err(|e| e.to_string())?
        .ok_or("kind vanished")?;
    let second = plan_of(engine, &patched, &ctx, &again);
    if !second.is_empty() {
        return Err(format!("second review patched again: {:?}", second.patch));
    }
    // Applying the same patch twice is refused or changes nothing.
    let mut twice = patched.clone();
    if json_patch::patch(&mut twice, &plan.patch).is_ok() && twice != patched {
        // `add .../-` style operations would duplicate; ours must not.
        let spec2 = twice
            .pointer(pod_spec_pointer(kind))
            .cloned()
            .unwrap_or(Value::Null);
        let v2 = pod_rules::violations(&with_claim_templates(&twice, spec2));
        if !v2.is_empty() {
            return Err(format!("patch applied twice breaks the pod: {v2:?}"));
        }
    }
    Ok(plan.summary())
}

#[test]
fn every_fixture_and_example_mutates_validly_and_idempotently() {
    let mut docs = documents();
    docs.extend(side_agent_corpus().into_iter().map(|(_, doc)| doc));
    let mut failures = Vec::new();
    let mut mutated = 0;
    for (name, config) in configs() {
        let engine = Evaluator::new(Arc::new(config), Arc::new(InProcessAnalyzer)).unwrap();
        for doc in &docs {
            match check(&engine, doc) {
                Ok(summary) => mutated += usize::from(!summary.is_empty()),
                Err(e) => failures.push(format!(
                    "[{name}] {}/{}: {e}",
                    doc["kind"], doc["metadata"]["name"]
                )),
            }
        }
    }
    assert!(mutated > 40, "only {mutated} objects were mutated");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn engine_with(yaml: &str) -> Evaluator {
    Evaluator::new(
        Arc::new(Config::from_yaml(yaml).unwrap()),
        Arc::new(InProcessAnalyzer),
    )
    .unwrap()
}

#[test]
fn exec_rewrite_changes_only_the_exec() {
    let script = "# start\nset -e\ncd /srv   &&   python -m 'app.server' --port \"$PORT\"  # serve";
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app", "image": "x", "command": ["/bin/sh", "-c", script]}]}});
    let engine = engine_with("");
    let eval = engine
        .evaluate(&pod, &EvalContext::default())
        .unwrap()
        .unwrap();
    let plan = plan_of(&engine, &pod, &EvalContext::default(), &eval);
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &plan.patch).unwrap();
    let new = patched["spec"]["containers"][0]["command"][2]
        .as_str()
        .unwrap();
    assert_eq!(new, script.replace("&&   python", "&&   exec python"));
    assert_eq!(
        patched["metadata"]["annotations"]["pidone.io/mutations"],
        "exec:app"
    );
    assert_eq!(
        serde_json::to_value(&plan.patch[0]).unwrap(),
        json!({"op": "replace", "path": "/spec/containers/0/command", "value": ["/bin/sh", "-c", new]})
    );
}

#[test]
fn side_agents_move_to_the_front_or_after_existing_init_containers() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {"a/b~c": "x"}},
        "spec": {"initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
                 "containers": [{"name": "app", "image": "x", "command": ["/app"]},
                                {"name": "proxy", "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2", "args": ["db"],
                                 "ports": [{"containerPort": 5432}], "readinessProbe": {"tcpSocket": {"port": 5432}}}]}});
    for (yaml, order) in [
        ("", ["proxy", "init"]),
        ("sideAgents:\n  position: last\n", ["init", "proxy"]),
    ] {
        let engine = engine_with(yaml);
        let eval = engine
            .evaluate(&pod, &EvalContext::default())
            .unwrap()
            .unwrap();
        let plan = plan_of(&engine, &pod, &EvalContext::default(), &eval);
        let mut patched = pod.clone();
        json_patch::patch(&mut patched, &plan.patch).unwrap();
        let inits: Vec<&str> = patched["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(inits, order);
        let proxy = patched["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "proxy")
            .unwrap();
        assert_eq!(proxy["restartPolicy"], "Always");
        assert_eq!(
            proxy["readinessProbe"]["tcpSocket"]["port"], 5432,
            "every field kept"
        );
        assert_eq!(patched["spec"]["containers"].as_array().unwrap().len(), 1);
        assert_eq!(patched["metadata"]["annotations"]["a/b~c"], "x");
        assert_eq!(
            patched["metadata"]["annotations"]["pidone.io/mutations"],
            "sidecar:proxy"
        );
    }
}

#[test]
fn no_native_sidecars_means_warn_not_move() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app", "image": "x", "command": ["/app"]},
                                {"name": "vault", "image": "hashicorp/vault:1.16", "command": ["vault", "agent"]}]}});
    let engine = engine_with("");
    let ctx = EvalContext {
        native_sidecars: NativeSidecarSupport::Unsupported("node n1 runs kubelet v1.28.3".into()),
        ..Default::default()
    };
    let eval = engine.evaluate(&pod, &ctx).unwrap().unwrap();
    let f = eval
        .findings
        .iter()
        .find(|f| f.rule.as_str() == "side-agent")
        .unwrap();
    assert_eq!(f.action.as_str(), "warn");
    assert!(f.fallback.as_deref().unwrap().contains("v1.28.3"));
    assert!(plan_of(&engine, &pod, &ctx, &eval).is_empty());
}

#[test]
fn init_injection_adds_volume_installer_mount_and_prefix() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {"pidone.io/inject-init": "true"}},
        "spec": {"containers": [{"name": "app", "image": "x", "command": ["sh", "-c", "/a & /b & wait"]},
                                {"name": "img", "image": "y", "args": ["--flag"]},
                                {"name": "keep", "image": "z", "command": ["sleep", "infinity"]}]}});
    let engine = engine_with("initInjection:\n  image: ghcr.io/pidone/pidone:0.1.0\n");
    let eval = engine
        .evaluate(&pod, &EvalContext::default())
        .unwrap()
        .unwrap();
    assert!(eval.inject_init, "the annotation turns injection on");
    let plan = plan_of(&engine, &pod, &EvalContext::default(), &eval);
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &plan.patch).unwrap();
    let spec = &patched["spec"];
    assert_eq!(spec["volumes"][0]["name"], "pidone-init");
    assert_eq!(spec["volumes"][0]["emptyDir"]["medium"], "Memory");
    assert_eq!(
        spec["initContainers"][0]["command"],
        json!(["/pidone-init", "--install", "/.pidone/init"])
    );
    assert_eq!(
        spec["containers"][0]["command"],
        json!(["/.pidone/init", "-g", "--", "sh", "-c", "/a & /b & wait"])
    );
    assert_eq!(
        spec["containers"][2]["command"],
        json!(["/.pidone/init", "--", "sleep", "infinity"])
    );
    assert_eq!(
        spec["containers"][0]["volumeMounts"][0],
        json!({"name": "pidone-init", "mountPath": "/.pidone", "readOnly": true})
    );
    assert!(
        spec["containers"][1].get("volumeMounts").is_none(),
        "no command, no injection"
    );
    assert_eq!(
        patched["metadata"]["annotations"]["pidone.io/mutations"],
        "init:app,init:keep"
    );
    assert!(pod_rules::violations(spec).is_empty());
    // The multi-process denial is gone once the init runs the group.
    let after = engine
        .evaluate(&patched, &EvalContext::default())
        .unwrap()
        .unwrap();
    assert!(
        after.findings.iter().all(|f| f.action.as_str() != "deny"),
        "{:?}",
        after.findings
    );
}

fn script_strategy() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("echo start".to_string()),
        Just("cd /srv".to_string()),
        Just("/app/server --port 80".to_string()),
        Just("exec /app/server".to_string()),
        Just("/app/agent &".to_string()),
        Just("wait".to_string()),
        Just("sleep infinity".to_string()),
        Just("while true; do sleep 5; done".to_string()),
        Just("if [ -f /x ]; then /app/a; else exec /app/b; fi".to_string()),
        Just("trap 'kill $c' TERM".to_string()),
        Just("/app/a | tee /log".to_string()),
        Just("FOO=bar /app/env-server".to_string()),
        Just("exit 0".to_string()),
        "[a-z]{1,8}".prop_map(|w| format!("/usr/bin/{w}")),
    ];
    (
        prop::collection::vec(fragment, 1..6),
        prop::sample::select(vec!["; ", " && ", "\n"]),
    )
        .prop_map(|(parts, sep)| parts.join(sep))
}

fn container_strategy(i: usize) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["sh", "bash", "/bin/dash", "busybox"]),
        script_strategy(),
        prop::sample::select(vec![
            "registry.example/app:1",
            "fluent/fluent-bit:3",
            "hashicorp/vault:1",
            "nginx",
        ]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(move |(shell, script, image, in_args, with_mount)| {
            let mut c = json!({"name": format!("c{i}"), "image": image});
            let argv: Vec<Value> = if shell == "busybox" {
                vec![json!("busybox"), json!("sh"), json!("-c"), json!(script)]
            } else {
                vec![json!(shell), json!("-c"), json!(script)]
            };
            if in_args {
                c["command"] = json!(argv[..argv.len() - 1]);
                c["args"] = json!([argv[argv.len() - 1]]);
            } else {
                c["command"] = json!(argv);
            }
            if with_mount {
                c["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
            }
            c
        })
}

fn pod_strategy() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(any::<u8>(), 1..5),
        prop::option::of(prop::sample::select(vec!["Always", "Never", "OnFailure"])),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(|(n, restart, inject, has_init)| {
            let containers: Vec<_> = (0..n.len()).map(container_strategy).collect();
            (containers, Just(restart), Just(inject), Just(has_init))
        })
        .prop_map(|(containers, restart, inject, has_init)| {
            let mut spec = json!({"containers": containers, "volumes": [{"name": "data", "emptyDir": {}}]});
            if let Some(r) = restart {
                spec["restartPolicy"] = json!(r);
            }
            if has_init {
                spec["initContainers"] = json!([{"name": "setup", "image": "busybox", "command": ["sh", "-c", "echo; /bin/setup"]}]);
            }
            let mut meta = json!({"name": "gen"});
            if inject {
                meta["annotations"] = json!({"pidone.io/inject-init": "true"});
            }
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]
    #[test]
    fn generated_pods_mutate_validly_and_idempotently(pod in pod_strategy()) {
        let engine = engine_with("initInjection:\n  image: ghcr.io/pidone/pidone:0.1.0\n");
        let result = check(&engine, &pod);
        prop_assert!(result.is_ok(), "{:?}\n{}", result, serde_json::to_string_pretty(&pod).unwrap());
    }
}

#[test]
fn init_injection_pins_the_resolved_entrypoint() {
    use pidone::engine::evaluate::ImageConfig;
    use std::collections::HashMap;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {"pidone.io/inject-init": "true"}},
        "spec": {"containers": [{"name": "app", "image": "example/keepalive:1"}]}});
    let mut images = HashMap::new();
    images.insert(
        "example/keepalive:1".to_string(),
        ImageConfig {
            entrypoint: vec!["sleep".into()],
            cmd: vec!["infinity".into()],
            digest: "sha256:abc".into(),
            ..Default::default()
        },
    );
    let engine = engine_with("initInjection:\n  image: ghcr.io/pidone/pidone:0.1.0\n");
    let ctx = EvalContext {
        images: Some(&images),
        ..Default::default()
    };
    let eval = engine.evaluate(&pod, &ctx).unwrap().unwrap();
    let plan = plan_of(&engine, &pod, &ctx, &eval);
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &plan.patch).unwrap();
    let c = &patched["spec"]["containers"][0];
    assert_eq!(c["command"], json!(["/.pidone/init", "--", "sleep"]));
    assert_eq!(c["args"], json!(["infinity"]));
    let recorded = patched["metadata"]["annotations"]["pidone.io/mutations"]
        .as_str()
        .unwrap();
    assert!(recorded.contains("app@sha256:abc"), "{recorded}");
    // Reinvocation: nothing more to do.
    let again = engine.evaluate(&patched, &ctx).unwrap().unwrap();
    assert!(plan_of(&engine, &patched, &ctx, &again).is_empty());
}
