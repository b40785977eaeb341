//! Admission-style evaluation with image look-ups: no resolution, a warm cache, and a cold cache
//! against a registry on loopback (Distribution's docker-registry, images built by umoci and
//! pushed by skopeo; that part is skipped when the tools are missing).
//! Run: cargo bench --bench images

#[allow(dead_code)]
#[path = "../tests/images_support/registry.rs"]
mod registry;

use criterion::{Criterion, criterion_group, criterion_main};
use pidone::engine::config::ImagesConfig;
use pidone::engine::evaluate::{EvalContext, ImageConfig};
use pidone::engine::script::InProcessAnalyzer;
use pidone::engine::{Config, Engine};
use pidone::images::cache::{DiskCache, DiskEntry};
use pidone::images::{ImageResolver, images_to_resolve};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A Deployment like most: an init container with a command, two containers that run their
/// image's ENTRYPOINT (one with args), on the given registry host.
fn deployment(host: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "shop", "namespace": "shop", "labels": {"app": "shop"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "shop"}},
          "template": {"metadata": {"labels": {"app": "shop"}},
            "spec": {
              "initContainers": [{"name": "wait-db", "image": "postgres:16-alpine",
                 "command": ["sh", "-c", "until pg_isready -h db; do sleep 2; done"]}],
              "containers": [
                {"name": "api", "image": format!("{host}/shop/api:2.0"),
                 "ports": [{"containerPort": 8080}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
                {"name": "worker", "image": format!("{host}/shop/worker:2.0"),
                 "args": ["--queue", "orders"]}
              ]}}}
    })
}

/// The same launches written in the pod: `command` = ENTRYPOINT, `args` = CMD (or the pod's
/// args), so evaluation does the same analysis without any look-up.
fn deployment_with_commands(host: &str) -> serde_json::Value {
    let mut d = deployment(host);
    let containers = &mut d["spec"]["template"]["spec"]["containers"];
    containers[0]["command"] = serde_json::json!(["/docker-entrypoint.sh"]);
    containers[0]["args"] = serde_json::json!(["/app/api", "--port", "8080"]);
    containers[1]["command"] = serde_json::json!(["/app/worker"]);
    d
}

fn configs() -> [(&'static str, Vec<String>, Vec<String>); 2] {
    [
        (
            "api",
            vec!["/docker-entrypoint.sh".into()],
            vec!["/app/api".into(), "--port".into(), "8080".into()],
        ),
        ("worker", vec!["/app/worker".into()], vec!["--help".into()]),
    ]
}

fn bench(c: &mut Criterion) {
    let engine =
        Engine::new(Arc::new(Config::default()), Arc::new(InProcessAnalyzer)).expect("engine");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // No resolution: what admission costs today.
    let host = "registry.example";
    let object = deployment(host);
    c.bench_function("admission: no image resolution (image-default)", |b| {
        b.iter(|| engine.evaluate(black_box(&object), &EvalContext::default()))
    });
    let written = deployment_with_commands(host);
    c.bench_function("admission: same launches written in the pod", |b| {
        b.iter(|| engine.evaluate(black_box(&written), &EvalContext::default()))
    });

    // Warm cache: the configs are cached; look-ups answer from memory.
    let warm = ImageResolver::new(&ImagesConfig::default()).expect("resolver");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    warm.import_cache(DiskCache {
        version: 1,
        entries: configs()
            .into_iter()
            .map(|(name, entrypoint, cmd)| DiskEntry {
                key: format!("{host}/shop/{name}:2.0"),
                config: ImageConfig {
                    entrypoint,
                    cmd,
                    digest: format!("sha256:{}", "a".repeat(64)),
                    ..Default::default()
                },
                stored_at: now,
                pinned: false,
            })
            .collect(),
    });
    let deadline = Duration::from_secs(2);
    c.bench_function("admission: warm image cache", |b| {
        b.iter(|| {
            let object = black_box(&object);
            let refs = images_to_resolve(object);
            let (images, warnings) =
                rt.block_on(warm.resolve_all(refs.iter().map(String::as_str), deadline));
            assert!(warnings.is_empty() && images.len() == 2);
            let ctx = EvalContext {
                images: Some(&images),
                ..Default::default()
            };
            engine.evaluate(object, &ctx)
        })
    });
    c.bench_function("look-up only: warm image cache, 2 images", |b| {
        b.iter(|| {
            let refs = images_to_resolve(black_box(&object));
            rt.block_on(warm.resolve_all(refs.iter().map(String::as_str), deadline))
        })
    });

    // Cold cache against a registry on loopback.
    if let Some(missing) = registry::missing_tools() {
        eprintln!("skipping the registry benchmarks: missing {missing}");
        return;
    }
    let reg = registry::Registry::start(None);
    let layout = registry::Layout::new();
    for (name, entrypoint, cmd) in configs() {
        let e: Vec<&str> = entrypoint.iter().map(String::as_str).collect();
        let c: Vec<&str> = cmd.iter().map(String::as_str).collect();
        layout.image(name, "amd64", Some(&e), Some(&c));
        layout.push(name, &reg, &format!("shop/{name}:2.0"));
    }
    let object = deployment(&reg.host);
    let config = ImagesConfig {
        resolve: true,
        ca_bundle: reg.ca_path.display().to_string(),
        // On loopback: refused unless the configuration names it.
        trusted_registries: vec![reg.host.clone()],
        ..ImagesConfig::default()
    };
    let cold = ImageResolver::new(&config).expect("resolver");
    let mut group = c.benchmark_group("registry");
    group.sample_size(30);
    group.bench_function("admission: cold image cache (connection reused)", |b| {
        b.iter(|| {
            cold.clear_cache();
            let refs = images_to_resolve(&object);
            let (images, warnings) =
                rt.block_on(cold.resolve_all(refs.iter().map(String::as_str), deadline));
            assert!(warnings.is_empty(), "{warnings:?}");
            let ctx = EvalContext {
                images: Some(&images),
                ..Default::default()
            };
            engine.evaluate(&object, &ctx)
        })
    });
    group.sample_size(10);
    group.bench_function(
        "admission: new resolver, cold cache, new TLS connection",
        |b| {
            b.iter(|| {
                let fresh = ImageResolver::new(&config).expect("resolver");
                let refs = images_to_resolve(&object);
                let (images, warnings) =
                    rt.block_on(fresh.resolve_all(refs.iter().map(String::as_str), deadline));
                assert!(warnings.is_empty(), "{warnings:?}");
                images.len()
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
