//! Configuration files into `Config::from_yaml`, the loader behind `pidone serve --config`, its
//! reloads and the CLI's `--config`: an error or a config, never a panic. An accepted config
//! builds an engine that evaluates and plans a pod, its deadlines can be set on a clock (the
//! parser pool and the image resolver add them to `Instant::now()`), and written out again it
//! reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pidone::engine::Config;
use pidone::engine::evaluate::EvalContext;
use pidone::mutate;
use pidone::resolve::Evaluator;
use pidone::resolve::InProcessAnalyzer;
use pidone::resolve::ScriptAnalyzer;
use serde_json::{Value, json};
use std::fmt::Write;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

fn analyzer() -> Arc<dyn ScriptAnalyzer> {
    static ANALYZER: OnceLock<Arc<dyn ScriptAnalyzer>> = OnceLock::new();
    Arc::clone(ANALYZER.get_or_init(|| Arc::new(InProcessAnalyzer)))
}

/// A pod that most settings touch: a wrapper shell, a side agent, an init container, an
/// annotation, a namespace.
fn pod() -> &'static Value {
    static POD: OnceLock<Value> = OnceLock::new();
    POD.get_or_init(|| {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "fuzz", "namespace": "default",
                         "annotations": {"pidone.io/ignore": "shell-resident"}},
            "spec": {
                "initContainers": [{"name": "setup", "image": "busybox", "command": ["sh", "-c", "echo; /bin/setup"]}],
                "containers": [
                    {"name": "app", "image": "example/app:1", "command": ["sh", "-c", "cd /srv && /app/server & wait"]},
                    {"name": "proxy", "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2", "args": ["db"]},
                    {"name": "log", "image": "fluent/fluent-bit:3"}
                ]
            }
        })
    })
}

/// The config as YAML that the loader must read back: JSON (YAML's flow subset) with every
/// character outside printable ASCII escaped, since YAML allows fewer raw characters in a
/// double-quoted scalar than JSON does.
fn as_yaml(config: &Config) -> String {
    let json = serde_json::to_string(config).expect("a config serializes");
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c as u32 {
            0x20..=0x7e => out.push(c),
            n @ 0..=0xffff => {
                let _ = write!(out, "\\u{n:04x}");
            }
            n => {
                let _ = write!(out, "\\U{n:08x}");
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    // `pidone serve` refuses a file that is not UTF-8 before parsing; the CLI reads a String.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_yaml(text) else {
        return;
    };
    let now = Instant::now();
    for (field, value) in [
        ("parser.deadline", config.parser.deadline),
        ("images.deadline", config.images.deadline),
    ] {
        assert!(
            now.checked_add(value).is_some(),
            "{field}: {value:?} is accepted but overflows a deadline"
        );
    }
    let written = as_yaml(&config);
    match Config::from_yaml(&written) {
        Ok(back) => assert_eq!(back, config, "read back from {written}"),
        Err(e) => panic!("an accepted config does not read back: {e}\n{written}"),
    }
    let engine = Evaluator::new(Arc::new(config), analyzer())
        .expect("a config that passed validation builds an engine");
    let ctx = EvalContext::default();
    let eval = engine
        .evaluate(pod(), &ctx)
        .expect("the pod is a workload")
        .expect("a pod has a template");
    let _ = mutate::plan(engine.engine(), engine.analyzer(), pod(), &ctx, &eval);
});
