//! Objects into the mutation planner (`mutate::plan`, what `/mutate` sends and `pidone fix`
//! writes) under configurations that make each kind of fix: exec rewrite, native sidecars (on
//! and off), init injection (binary, both sidecar positions, shared process namespace, no
//! image). The planner must not reject its own patch; the patch applies with json-patch 4
//! (as the apiserver's); the result is still a workload; a valid pod stays valid under the
//! apiserver's Pod rules; and planning again on the result gives an empty patch.
//!
//! First byte: bits 0-2 the config, bit 3 native sidecars unsupported, bit 4 the pod spec
//! wrapped into a Deployment's template, bit 5 the rest is raw JSON (an object). Otherwise
//! the rest is a pod: one byte of pod settings, then containers separated by NUL bytes, each
//! one byte of container settings followed by its script.
#![no_main]

#[path = "../../tests/support/pod_rules.rs"]
mod pod_rules;

use libfuzzer_sys::fuzz_target;
use pidone::engine::Config;
use pidone::engine::config::ParserConfig;
use pidone::engine::evaluate::{EvalContext, NativeSidecarSupport};
use pidone::engine::workload;
use pidone::mutate;
use pidone::resolve::Evaluator;
use pidone::sandbox::{CacheLimits, PrescreenedAnalyzer};
use serde_json::{Map, Value, json};
use std::sync::{Arc, OnceLock};

const CONFIGS: [&str; 8] = [
    // Exec rewrite and native sidecars; init injection only where the pod asks for it, and
    // then with no image (warnings).
    "",
    "initInjection:\n  enabled: true\n  image: ghcr.io/pidone/pidone:0.1.0\n",
    "sideAgents:\n  position: last\ninitInjection:\n  enabled: true\n  image: ghcr.io/pidone/pidone:0.1.0\n",
    "initInjection:\n  enabled: true\n  strategy: shareProcessNamespace\n",
    "initInjection:\n  image: ghcr.io/pidone/pidone:0.1.0\n",
    "rules:\n  shell-no-exec: warn\n  side-agent: warn\ninitInjection:\n  enabled: true\n  image: ghcr.io/pidone/pidone:0.1.0\n",
    "rules:\n  shell-resident: mutate\n  script-entrypoint: mutate\n  signal-deaf-pid1: mutate\nsideAgents:\n  images: ['*agent*', '*proxy*', '*fluent*']\n  position: last\n",
    "exemptions:\n  namespaces: [kube-system]\n  allowAnnotations: false\ninitInjection:\n  enabled: true\n  image: ghcr.io/pidone/pidone:0.1.0\n",
];

fn engines() -> &'static Vec<Evaluator> {
    static ENGINES: OnceLock<Vec<Evaluator>> = OnceLock::new();
    ENGINES.get_or_init(|| {
        // libfuzzer-sys aborts on every panic, even one caught: the analyzer catches the
        // parser's own panics (they become `GaveUp` verdicts), so keep only the report. A
        // panic that escapes the target still aborts (libfuzzer-sys catches it and aborts).
        std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
        // The pre-screen keeps the parser's known slow inputs out, as in the webhook and the
        // CLI. A verdict depends only on the script and its dialect, so the cache changes no
        // result; it spares the re-evaluations of one plan most of their parses.
        let analyzer = Arc::new(PrescreenedAnalyzer::new(
            &ParserConfig::default(),
            CacheLimits::default(),
        ));
        CONFIGS
            .iter()
            .map(|text| {
                let config = Config::from_yaml(text).expect("config");
                Evaluator::new(Arc::new(config), analyzer.clone()).expect("engine")
            })
            .collect()
    })
}

const IMAGES: [&str; 8] = [
    "example/app:1",
    "example/worker:2",
    "fluent/fluent-bit:3",
    "hashicorp/vault:1.16",
    "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2",
    "istio/proxyv2:1.22",
    "example/agent:1",
    "busybox",
];

/// One container from its settings byte and script: bits 0-1 the shell, bit 2 the script in
/// `args`, bits 3-5 the image, bit 6 no command at all (the image's), bit 7 a volume mount.
fn container(i: usize, pick: u8, script: &[u8]) -> Value {
    let script = String::from_utf8_lossy(script);
    let mut argv = match pick % 4 {
        0 => vec![json!("sh"), json!("-c")],
        1 => vec![json!("/bin/bash"), json!("-c")],
        2 => vec![json!("busybox"), json!("sh"), json!("-c")],
        _ => vec![json!("/usr/bin/env"), json!("bash"), json!("-ec")],
    };
    let image = IMAGES[usize::from(pick >> 3) % IMAGES.len()];
    let mut c = json!({"name": format!("c{i}"), "image": image});
    if pick & 0x40 != 0 {
        if !script.is_empty() {
            c["args"] = json!(script.split_whitespace().collect::<Vec<_>>());
        }
    } else if pick & 4 != 0 {
        c["command"] = Value::Array(argv);
        c["args"] = json!([script]);
    } else {
        argv.push(json!(script));
        c["command"] = Value::Array(argv);
    }
    if pick & 0x80 != 0 {
        c["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
    }
    c
}

/// A pod from its settings byte and containers: bits 0-1 the restart policy, bit 2 the
/// `pidone.io/inject-init` annotation, bit 3 an init container, bit 4 the first container
/// moves to `initContainers` (bit 5: as a native sidecar), bit 6 the last container is named
/// a side agent by annotation, bit 7 a namespace that config 7 exempts.
fn pod(pick: u8, rest: &[u8]) -> Value {
    let mut containers: Vec<Value> = rest
        .split(|&b| b == 0)
        .take(4)
        .enumerate()
        .map(|(i, part)| match part.split_first() {
            Some((&c, script)) => container(i, c, script),
            None => container(i, 0, b""),
        })
        .collect();
    let mut inits = Vec::new();
    if pick & 8 != 0 {
        inits.push(json!({"name": "setup", "image": "busybox", "command": ["sh", "-c", "echo; /bin/setup"]}));
    }
    if pick & 0x10 != 0 && containers.len() > 1 {
        let mut first = containers.remove(0);
        if pick & 0x20 != 0 {
            first["restartPolicy"] = json!("Always");
        }
        inits.push(first);
    }
    let mut spec = json!({"containers": containers, "volumes": [{"name": "data", "emptyDir": {}}]});
    match pick % 4 {
        1 => spec["restartPolicy"] = json!("Always"),
        2 => spec["restartPolicy"] = json!("Never"),
        3 => spec["restartPolicy"] = json!("OnFailure"),
        _ => {}
    }
    if !inits.is_empty() {
        spec["initContainers"] = Value::Array(inits);
    }
    let mut annotations = Map::new();
    if pick & 4 != 0 {
        annotations.insert("pidone.io/inject-init".into(), json!("true"));
    }
    if pick & 0x40 != 0
        && let Some(name) = spec["containers"]
            .as_array()
            .and_then(|c| c.last())
            .and_then(|c| c.get("name"))
            .cloned()
    {
        annotations.insert("pidone.io/side-agents".into(), name);
    }
    let namespace = if pick & 0x80 != 0 {
        "kube-system"
    } else {
        "default"
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "fuzz", "namespace": namespace, "annotations": annotations},
        "spec": spec})
}

/// The object's pod spec and metadata as a Deployment's template.
fn deployment(pod: &Value) -> Option<Value> {
    let spec = pod.get("spec")?.clone();
    let mut template = json!({"spec": spec});
    if let Some(m) = pod.get("metadata") {
        template["metadata"] = m.clone();
    }
    Some(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "fuzz", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "fuzz"}}, "template": template}}))
}

fn pod_spec(object: &Value) -> Option<&Value> {
    let tpl = workload::template_pointer(object.get("kind")?.as_str()?)?;
    object.pointer(&format!("{tpl}/spec"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let engine = &engines()[usize::from(pick & 7)];
    let ctx = EvalContext {
        native_sidecars: if pick & 8 != 0 {
            NativeSidecarSupport::Unsupported("the fuzzed cluster has no native sidecars".into())
        } else {
            NativeSidecarSupport::Supported
        },
        ..EvalContext::default()
    };
    let raw = pick & 0x20 != 0;
    let object = if raw {
        match serde_json::from_slice::<Value>(rest) {
            Ok(v @ Value::Object(_)) => v,
            _ => return,
        }
    } else {
        let Some((&settings, containers)) = rest.split_first() else {
            return;
        };
        pod(settings, containers)
    };
    let object = if pick & 0x10 != 0 {
        match deployment(&object) {
            Some(d) => d,
            None => return,
        }
    } else {
        object
    };

    let eval = match engine.evaluate(&object, &ctx) {
        Ok(Some(eval)) => eval,
        other => {
            assert!(raw, "a generated pod is a workload: {other:?}");
            return;
        }
    };
    let plan = mutate::plan(engine.engine(), engine.analyzer(), &object, &ctx, &eval);
    assert!(
        !plan.warnings.iter().any(|w| w.contains("does not apply")),
        "the planner computed a patch that does not apply: {:?}",
        plan.warnings
    );
    let mut patched = object.clone();
    if let Err(e) = json_patch::patch(&mut patched, &plan.patch) {
        panic!("the patch does not apply: {e}\n{:?}", plan.patch);
    }
    if plan.is_empty() {
        return;
    }
    assert!(
        !plan.mutations.is_empty(),
        "a patch with no mutation recorded: {:?}",
        plan.patch
    );
    match workload::extract(&patched) {
        Ok(Some(_)) => {}
        other => panic!("the patched object is no workload: {other:?}"),
    }
    let again = match engine.evaluate(&patched, &ctx) {
        Ok(Some(eval)) => eval,
        other => panic!("the patched object does not evaluate: {other:?}"),
    };
    if let (Some(before), Some(after)) = (pod_spec(&object), pod_spec(&patched))
        && pod_rules::violations(before).is_empty()
    {
        let v = pod_rules::violations(after);
        assert!(
            v.is_empty(),
            "the patch breaks the pod: {v:?}\n{:?}",
            plan.patch
        );
    }
    let second = mutate::plan(engine.engine(), engine.analyzer(), &patched, &ctx, &again);
    assert!(
        second.is_empty(),
        "planning again patches again: {:?}\nfirst: {:?}",
        second.patch,
        plan.patch
    );
});
