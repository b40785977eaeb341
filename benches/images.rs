//! Admission-style evaluation with image look-ups: no resolution, a warm cache, and a cold cache
//! against a registry on loopback (Distribution's docker-registry, images built by umoci and
//! pushed by skopeo; that part is skipped when the tools are missing); then reading an
//! entrypoint script from the layers of a five-layer image, cold and cached.
//! Run: cargo bench --bench images

#[allow(dead_code)]
#[path = "../tests/images_support/registry.rs"]
mod registry;

use criterion::{Criterion, criterion_group, criterion_main};
use pidone::engine::Config;
use pidone::engine::config::ImagesConfig;
use pidone::engine::evaluate::{EvalContext, ImageConfig};
use pidone::engine::image_files::{FileContent, WantedFile};
use pidone::images::cache::{DiskCache, DiskEntry};
use pidone::images::{ImageResolver, Scope, images_to_resolve};
use pidone::resolve::Evaluator;
use pidone::resolve::InProcessAnalyzer;
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
        Evaluator::new(Arc::new(Config::default()), Arc::new(InProcessAnalyzer)).expect("engine");
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
        files: Vec::new(),
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
    scripts(c, &rt, &reg, &config);
}

/// Bytes that do not compress (a small linear congruential generator): a base layer's
/// binaries.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

/// Reading `/docker-entrypoint.sh` from a five-layer image shaped like an official one: a base
/// layer (2 MiB of binaries, 400 small files), packages, the server, the entrypoint in
/// `/usr/local/bin` and the compatibility symlink at `/` on top. Cold: the manifest and the
/// layers from the top down to the script (the symlink sends the walk back to the top once);
/// "bottom": a script in the base layer, every layer read. Cached: the answer from memory.
fn scripts(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    reg: &registry::Registry,
    config: &ImagesConfig,
) {
    use registry::FsOp;
    let mut base: Vec<FsOp> = (0..400)
        .map(|i| {
            let path: &'static str =
                Box::leak(format!("/usr/share/doc/pkg{i}/copyright").into_boxed_str());
            FsOp::File(
                path,
                format!("package {i}\n").repeat(20).into_bytes(),
                0o644,
            )
        })
        .collect();
    base.push(FsOp::File("/usr/lib/libbase.so", noise(2 << 20, 1), 0o755));
    base.push(FsOp::script(
        "/usr/lib/base-entrypoint.sh",
        "#!/bin/sh\nset -e\nexec \"$@\"\n",
    ));
    let layout = registry::Layout::new();
    layout.layered(
        "db",
        &["/docker-entrypoint.sh"],
        &["postgres"],
        &[
            base,
            vec![FsOp::File("/usr/lib/libpq.so", noise(512 << 10, 2), 0o755)],
            vec![FsOp::File("/usr/local/bin/postgres", noise(256 << 10, 3), 0o755)],
            vec![FsOp::script(
                "/usr/local/bin/docker-entrypoint.sh",
                "#!/usr/bin/env bash\nset -Eeo pipefail\nif [ \"$1\" = postgres ]; then initdb || true; fi\nexec \"$@\"\n",
            )],
            vec![FsOp::Symlink(
                "/docker-entrypoint.sh",
                "usr/local/bin/docker-entrypoint.sh",
            )],
        ],
    );
    layout.push("db", reg, "shop/db:16");
    let resolver = ImageResolver::new(config).expect("resolver");
    let deadline = Duration::from_secs(10);
    let want = |path: &str| {
        [WantedFile {
            image: format!("{}/shop/db:16", reg.host),
            path: path.to_string(),
        }]
    };
    let read = |wanted: &[WantedFile]| {
        let files = rt.block_on(resolver.read_files(wanted, deadline, Scope::Trusted));
        assert!(
            matches!(files[0].1.content, FileContent::Script { .. }),
            "{files:?}"
        );
    };
    let top = want("/docker-entrypoint.sh");
    let bottom = want("/usr/lib/base-entrypoint.sh");
    let mut group = c.benchmark_group("image scripts");
    group.sample_size(20);
    group.bench_function("5-layer image: cold, script near the top", |b| {
        b.iter(|| {
            resolver.clear_cache();
            read(&top)
        })
    });
    group.bench_function("5-layer image: cold, script in the base layer", |b| {
        b.iter(|| {
            resolver.clear_cache();
            read(&bottom)
        })
    });
    read(&top);
    group.bench_function("5-layer image: cached", |b| b.iter(|| read(&top)));

    // A whole admission of a pod that runs the image's entrypoint, everything cached: the
    // config, the engine asking which files the launch runs (two rounds: the script, then
    // nothing more), the files, the evaluation. Against the same pod without reading scripts.
    // With a verdict cache in front of the parser, as the webhook's parse pool and the CLI
    // have: the script is parsed once, not once per round.
    let config = Config::default();
    let analyzer = pidone::cli::analyzer(&config.parser);
    let engine = Evaluator::new(Arc::new(config), analyzer).expect("engine");
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "db", "namespace": "shop"},
        "spec": {"containers": [{"name": "db", "image": format!("{}/shop/db:16", reg.host)}]}});
    let configs = |pod: &serde_json::Value| {
        let refs = images_to_resolve(pod);
        let (images, warnings) =
            rt.block_on(resolver.resolve_all(refs.iter().map(String::as_str), deadline));
        assert!(warnings.is_empty(), "{warnings:?}");
        images
    };
    configs(&pod);
    group.bench_function(
        "admission, all cached: config only (launch `script`)",
        |b| {
            b.iter(|| {
                let images = configs(&pod);
                let ctx = EvalContext {
                    images: Some(&images),
                    ..Default::default()
                };
                let eval = engine.evaluate(&pod, &ctx).expect("eval").expect("pod");
                assert_eq!(eval.containers[0].launch.as_str(), "script");
            })
        },
    );
    group.bench_function(
        "admission, all cached: config and script (launch `exec`)",
        |b| {
            b.iter(|| {
                let images = configs(&pod);
                let files = pidone::images::files::gather(
                    |files| {
                        let ctx = EvalContext {
                            images: Some(&images),
                            image_files: Some(files),
                            ..Default::default()
                        };
                        engine.needs(&pod, &ctx).image_files
                    },
                    |wanted, left| {
                        Some(rt.block_on(resolver.read_files(wanted, left, Scope::Trusted)))
                    },
                    deadline,
                );
                let ctx = EvalContext {
                    images: Some(&images),
                    image_files: Some(&files),
                    ..Default::default()
                };
                let eval = engine.evaluate(&pod, &ctx).expect("eval").expect("pod");
                assert_eq!(eval.containers[0].launch.as_str(), "exec");
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
