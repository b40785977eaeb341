//! Image look-ups against a real registry on loopback (TLS with a CA made for the test):
//! exec- and shell-form ENTRYPOINTs, ENTRYPOINT script + CMD, CMD only, a multi-platform index,
//! digest references, a private repository, mirrors, the cache, and a registry that stalls;
//! then a registry that misbehaves on purpose (streams, stalls, redirects, hostile token
//! realms) and pod-named registries on addresses pidone must not reach.

mod images_support;
mod skips;

use images_support::examples::{launches, load_examples, move_commands_to_images, retag};
use images_support::registry::{HostileRegistry, Layout, Registry, free_port};
use pidone::engine::Config;
use pidone::engine::config::ImagesConfig;
use pidone::engine::evaluate::{EvalContext, ImageConfig};
use pidone::images::{ImageResolver, Scope, images_to_resolve};
use pidone::resolve::Evaluator;
use pidone::resolve::InProcessAnalyzer;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Generous: the machine builds other things while these run.
const DEADLINE: Duration = Duration::from_secs(10);

fn config_for(registry: &Registry) -> ImagesConfig {
    ImagesConfig {
        resolve: true,
        deadline: DEADLINE,
        ca_bundle: registry.ca_path.display().to_string(),
        // On loopback: refused unless the configuration names it.
        trusted_registries: vec![registry.host.clone()],
        ..ImagesConfig::default()
    }
}

fn engine() -> Evaluator {
    Evaluator::new(Arc::new(Config::default()), Arc::new(InProcessAnalyzer)).unwrap()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Resolves the pod's images and evaluates it: `(launch, rules, from_image)` per container.
async fn evaluate(
    resolver: &ImageResolver,
    pod: &serde_json::Value,
) -> Vec<(String, Vec<String>, Option<String>)> {
    let images = images_to_resolve(pod);
    let (found, warnings) = resolver
        .resolve_all(images.iter().map(String::as_str), DEADLINE)
        .await;
    assert!(warnings.is_empty(), "{warnings:?}");
    let ctx = EvalContext {
        images: Some(&found),
        ..Default::default()
    };
    let eval = engine().evaluate(pod, &ctx).unwrap().unwrap();
    eval.containers
        .iter()
        .map(|c| {
            let rules = eval
                .findings
                .iter()
                .filter(|f| f.container == c.container)
                .map(|f| f.rule.to_string())
                .collect();
            (c.launch.to_string(), rules, c.analysis.from_image.clone())
        })
        .collect()
}

fn pod(containers: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": containers}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entrypoint_and_cmd_forms_are_classified() {
    require_tools!();
    let registry = Registry::start(None);
    let layout = Layout::new();
    layout.image(
        "exec",
        "amd64",
        Some(&["/usr/bin/app", "--port", "80"]),
        None,
    );
    layout.image(
        "shell",
        "amd64",
        Some(&["/bin/sh", "-c", "setup; app --port 80"]),
        None,
    );
    layout.image_with(
        "script",
        "amd64",
        Some(&["/docker-entrypoint.sh"]),
        Some(&["nginx", "-g", "daemon off;"]),
        &["--config.workingdir=/srv", "--config.user=101"],
    );
    layout.image("cmd", "amd64", None, Some(&["nginx", "-g", "daemon off;"]));
    for name in ["exec", "shell", "script", "cmd"] {
        layout.push(name, &registry, &format!("forms/{name}:1"));
    }
    let resolver = ImageResolver::new(&config_for(&registry)).unwrap();
    let image = |name: &str| format!("{}/forms/{name}:1", registry.host);

    let script = resolver.resolve(&image("script"), DEADLINE).await.unwrap();
    assert_eq!(
        script,
        ImageConfig {
            entrypoint: strings(&["/docker-entrypoint.sh"]),
            cmd: strings(&["nginx", "-g", "daemon off;"]),
            digest: registry.digest("forms/script:1"),
            working_dir: "/srv".into(),
            user: "101".into()
        }
    );

    let p = pod(serde_json::json!([
        {"name": "exec", "image": image("exec")},
        {"name": "shell", "image": image("shell")},
        {"name": "script", "image": image("script")},
        {"name": "cmd", "image": image("cmd")},
        {"name": "cmd-args", "image": image("cmd"), "args": ["sleep", "infinity"]},
        {"name": "overridden", "image": image("shell"), "command": ["/app"]},
    ]));
    let got = evaluate(&resolver, &p).await;
    let summary: Vec<(&str, Vec<&str>)> = got
        .iter()
        .map(|(l, r, _)| (l.as_str(), r.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        summary,
        [
            ("direct", vec![]),
            ("no-exec", vec!["shell-no-exec"]),
            ("script", vec!["script-entrypoint"]),
            ("direct", vec![]),
            // No ENTRYPOINT: args replace CMD and run as they are.
            ("direct", vec!["signal-deaf-pid1"]),
            ("direct", vec![]),
        ]
    );
    assert_eq!(
        got[0].2.as_deref(),
        Some(registry.digest("forms/exec:1").as_str())
    );
    assert_eq!(got[5].2, None, "command overrides the image");
    let stats = resolver.stats();
    assert_eq!(stats.errors + stats.timeouts, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_resolves_to_the_configured_platform() {
    require_tools!();
    let registry = Registry::start(None);
    let layout = Layout::new();
    layout.image("amd", "amd64", Some(&["/amd64-app"]), None);
    layout.image("arm", "arm64", Some(&["/arm64-app"]), None);
    layout.index(
        "multi",
        &[("arm", "linux", "arm64"), ("amd", "linux", "amd64")],
    );
    layout.push("multi", &registry, "multi/app:1");
    let image = format!("{}/multi/app:1", registry.host);
    let index_digest = registry.digest("multi/app:1");

    let resolver = ImageResolver::new(&config_for(&registry)).unwrap();
    let amd = resolver.resolve(&image, DEADLINE).await.unwrap();
    assert_eq!(amd.entrypoint, ["/amd64-app"], "linux/amd64 is the default");
    assert_eq!(amd.digest, index_digest, "the digest the reference names");

    let arm_resolver = ImageResolver::new(&ImagesConfig {
        platform: "linux/arm64".into(),
        ..config_for(&registry)
    })
    .unwrap();
    let arm = arm_resolver.resolve(&image, DEADLINE).await.unwrap();
    assert_eq!(arm.entrypoint, ["/arm64-app"]);

    let none = ImageResolver::new(&ImagesConfig {
        platform: "linux/s390x".into(),
        ..config_for(&registry)
    })
    .unwrap();
    let e = none.resolve(&image, DEADLINE).await.unwrap_err();
    assert!(e.to_string().contains("platform"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_references_and_the_cache() {
    require_tools!();
    let registry = Registry::start(None);
    let layout = Layout::new();
    layout.image("v1", "amd64", Some(&["/v1"]), None);
    layout.image("v2", "amd64", Some(&["/v2"]), None);
    layout.push("v1", &registry, "cache/app:1");
    let tag = format!("{}/cache/app:1", registry.host);
    let d1 = registry.digest("cache/app:1");
    let ttl = Duration::from_secs(3);
    let resolver = ImageResolver::new(&ImagesConfig {
        tag_ttl: ttl,
        ..config_for(&registry)
    })
    .unwrap();

    // Ten admissions at once share one request.
    let fetched_at = Instant::now();
    let lookups = (0..10).map(|_| resolver.resolve(&tag, DEADLINE));
    let results = futures::future::join_all(lookups).await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().entrypoint == ["/v1"])
    );
    let s = resolver.stats();
    assert_eq!((s.lookups, s.fetched, s.coalesced), (10, 10, 9), "{s:?}");

    // The tag is cached, and so is its digest.
    assert_eq!(resolver.resolve(&tag, DEADLINE).await.unwrap().digest, d1);
    let pinned = format!("{}/cache/app@{d1}", registry.host);
    assert_eq!(
        resolver
            .resolve(&pinned, DEADLINE)
            .await
            .unwrap()
            .entrypoint,
        ["/v1"]
    );
    assert_eq!(resolver.stats().hits, 2);

    // The tag moves: the cache answers the old content until the TTL runs out.
    layout.push("v2", &registry, "cache/app:1");
    let cached = resolver.resolve(&tag, DEADLINE).await.unwrap();
    if fetched_at.elapsed() < ttl - Duration::from_millis(500) {
        assert_eq!(cached.entrypoint, ["/v1"]);
    }
    let wait = (ttl + Duration::from_millis(100)).saturating_sub(fetched_at.elapsed());
    tokio::time::sleep(wait).await;
    let moved = resolver.resolve(&tag, DEADLINE).await.unwrap();
    assert_eq!(moved.entrypoint, ["/v2"]);
    assert_eq!(moved.digest, registry.digest("cache/app:1"));
    // The old digest still names the old content, for good.
    assert_eq!(
        resolver
            .resolve(&pinned, DEADLINE)
            .await
            .unwrap()
            .entrypoint,
        ["/v1"]
    );

    // A digest reference never seen before is fetched by digest; a wrong one is an error.
    let fresh = ImageResolver::new(&config_for(&registry)).unwrap();
    assert_eq!(fresh.resolve(&pinned, DEADLINE).await.unwrap().digest, d1);
    let missing = format!("{}/cache/app@sha256:{}", registry.host, "0".repeat(64));
    let (found, warnings) = fresh.resolve_all([missing.as_str()], DEADLINE).await;
    assert!(found.is_empty());
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0]
            .message
            .starts_with(&format!("could not resolve image {missing} within 10s: ")),
        "{}",
        warnings[0]
    );
    assert_eq!(fresh.stats().errors, 1);

    // The cache survives a round trip through its disk form.
    let saved = serde_json::to_string(&resolver.export_cache()).unwrap();
    let restored = ImageResolver::new(&config_for(&registry)).unwrap();
    restored.import_cache(serde_json::from_str(&saved).unwrap());
    assert_eq!(
        restored
            .resolve(&pinned, DEADLINE)
            .await
            .unwrap()
            .entrypoint,
        ["/v1"]
    );
    assert_eq!(restored.stats().hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_repository_needs_the_credentials() {
    require_tools!();
    let registry = Registry::start(Some(("puller", "s3cret-pass")));
    let layout = Layout::new();
    layout.image("app", "amd64", Some(&["/bin/sh", "-c", "exec /app"]), None);
    layout.push("app", &registry, "private/app:1");
    let image = format!("{}/private/app:1", registry.host);

    let anonymous = ImageResolver::new(&config_for(&registry)).unwrap();
    let (found, warnings) = anonymous.resolve_all([image.as_str()], DEADLINE).await;
    assert!(found.is_empty());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(!warnings[0].timeout);

    let dir = tempfile::tempdir().unwrap();
    let config_json = dir.path().join("config.json");
    registry.docker_config(&config_json);
    let authed = ImageResolver::new(&ImagesConfig {
        credentials: config_json.display().to_string(),
        ..config_for(&registry)
    })
    .unwrap();
    let (found, warnings) = authed.resolve_all([image.as_str()], DEADLINE).await;
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(found[&image].entrypoint, ["/bin/sh", "-c", "exec /app"]);
    assert!(
        !format!("{authed:?}").contains("s3cret"),
        "no secrets in Debug"
    );
}

/// A listener that accepts connections and never answers (nor completes a TLS handshake).
fn stalled_listener() -> (
    String,
    std::thread::JoinHandle<()>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        let start = Instant::now();
        // Bounded: the listener gives up after a minute whatever happens.
        while !stop2.load(std::sync::atomic::Ordering::Relaxed)
            && start.elapsed() < Duration::from_secs(60)
        {
            if let Ok((conn, _)) = listener.accept() {
                held.push(conn);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    (host, handle, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_registry_costs_the_deadline_and_no_more() {
    let (host, handle, stop) = stalled_listener();
    let resolver = ImageResolver::new(&ImagesConfig {
        resolve: true,
        deadline: Duration::from_millis(500),
        trusted_registries: vec![host.clone()],
        ..ImagesConfig::default()
    })
    .unwrap();
    let images = [
        format!("{host}/stuck/app:1"),
        format!("{host}/stuck/other:2"),
    ];
    let start = Instant::now();
    let (found, warnings) = resolver
        .resolve_all(
            images.iter().map(String::as_str),
            Duration::from_millis(500),
        )
        .await;
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert!(
        took < Duration::from_millis(1200),
        "the deadline held: {took:?}"
    );
    assert!(found.is_empty());
    assert_eq!(warnings.len(), 2);
    for w in &warnings {
        assert!(w.timeout, "{w}");
        assert!(
            w.message
                .starts_with(&format!("could not resolve image {}", w.image))
                && w.message.contains("within 500ms"),
            "{w}"
        );
    }
    let s = resolver.stats();
    assert_eq!((s.lookups, s.timeouts, s.errors), (2, 2, 0), "{s:?}");

    // Within the failure TTL the next admission does not wait again.
    let start = Instant::now();
    let (_, warnings) = resolver
        .resolve_all(
            images.iter().map(String::as_str),
            Duration::from_millis(500),
        )
        .await;
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    // It either joined the request as it ended, or found the failure remembered.
    assert!(warnings.iter().all(|w| w.timeout), "{warnings:?}");
    assert_eq!(resolver.stats().timeouts, 4);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    let (_, warnings) = resolver
        .resolve_all(
            images.iter().map(String::as_str),
            Duration::from_millis(500),
        )
        .await;
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    assert!(
        warnings
            .iter()
            .all(|w| w.timeout && w.message.contains("remembered")),
        "{warnings:?}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    handle.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_are_tried_in_order_then_the_registry() {
    require_tools!();
    let registry = Registry::start(None);
    let layout = Layout::new();
    layout.image("app", "amd64", Some(&["/mirrored"]), None);
    layout.push("app", &registry, "team/app:1");
    let (stalled, handle, stop) = stalled_listener();
    let refused = format!("127.0.0.1:{}", free_port());
    // The upstream name does not resolve: only the mirrors can answer.
    let mut mirrors = std::collections::BTreeMap::new();
    mirrors.insert(
        "upstream.invalid".to_string(),
        vec![refused.clone(), stalled.clone(), registry.host.clone()],
    );
    let resolver = ImageResolver::new(&ImagesConfig {
        mirrors,
        deadline: Duration::from_secs(4),
        ..config_for(&registry)
    })
    .unwrap();
    let got = resolver
        .resolve("upstream.invalid/team/app:1", Duration::from_secs(4))
        .await
        .unwrap();
    assert_eq!(got.entrypoint, ["/mirrored"]);
    assert_eq!(got.digest, registry.digest("team/app:1"));

    // Without a mirror that has it, the error names every source tried.
    let e = resolver
        .resolve("upstream.invalid/team/missing:1", Duration::from_secs(4))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("mirror {refused}")) && e.contains("upstream.invalid:"),
        "{e}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    handle.join().unwrap();
}

/// A subset of the labelled examples through the registry: each `command` becomes the
/// ENTRYPOINT (and `args` the CMD) of a pushed image, the pod sets neither, and the launch class
/// and rules are those of the original.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_through_the_registry() {
    require_tools!();
    let registry = Registry::start(None);
    let docs: Vec<serde_json::Value> = load_examples().into_iter().take(8).collect();
    let (moved_docs, moved) = move_commands_to_images(&docs, |original, n| {
        retag(original, n, Some(&registry.host))
    });
    assert!(moved.len() >= 8, "{}", moved.len());
    let layout = Layout::new();
    for (n, m) in moved.iter().enumerate() {
        let name = format!("example-{n}");
        let entrypoint: Vec<&str> = m.entrypoint.iter().map(String::as_str).collect();
        let cmd: Vec<&str> = m.cmd.iter().map(String::as_str).collect();
        layout.image(&name, "amd64", Some(&entrypoint), Some(&cmd));
        let dest = m
            .image
            .strip_prefix(&format!("{}/", registry.host))
            .unwrap();
        layout.push(&name, &registry, dest);
    }
    let resolver = ImageResolver::new(&config_for(&registry)).unwrap();
    let engine = engine();
    let mut compared = 0;
    for (original, moved_doc) in docs.iter().zip(&moved_docs) {
        // Only the images moved to the test registry: nothing else is reachable here.
        let images: Vec<String> = images_to_resolve(moved_doc)
            .into_iter()
            .filter(|i| i.starts_with(&registry.host))
            .collect();
        let (found, warnings) = resolver
            .resolve_all(images.iter().map(String::as_str), DEADLINE)
            .await;
        assert!(warnings.is_empty(), "{warnings:?}");
        let ctx = EvalContext {
            images: Some(&found),
            ..Default::default()
        };
        let before = launches(&engine, original, &EvalContext::default());
        let after = launches(&engine, moved_doc, &ctx);
        assert_eq!(before, after);
        compared += found.len();
    }
    assert_eq!(compared, moved.len());
}

/// `pidone audit --resolve-images`: looks images up, then answers from its disk cache when the
/// registry is gone.
#[test]
fn audit_resolves_images_and_keeps_a_disk_cache() {
    require_tools!();
    let mut registry = Some(Registry::start(None));
    let host = registry.as_ref().unwrap().host.clone();
    let layout = Layout::new();
    layout.image(
        "app",
        "amd64",
        Some(&["/bin/sh", "-c", "setup; app --port 80"]),
        None,
    );
    layout.push("app", registry.as_ref().unwrap(), "cli/app:1");
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - {{name: app, image: \"{host}/cli/app:1\"}}\n"
        ),
    )
    .unwrap();
    // The CA outlives the registry (whose files go with it).
    let ca = dir.path().join("ca.pem");
    std::fs::copy(&registry.as_ref().unwrap().ca_path, &ca).unwrap();
    let config = dir.path().join("pidone.yaml");
    std::fs::write(
        &config,
        format!(
            "images:\n  deadline: 10s\n  caBundle: {}\n  trustedRegistries: [\"{}\"]\n",
            ca.display(),
            registry.as_ref().unwrap().host
        ),
    )
    .unwrap();
    let cache_home = dir.path().join("cache");
    let audit = |resolve: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pidone"));
        cmd.args([
            "audit",
            "--format",
            "json",
            "--fail-on",
            "never",
            "--config",
        ])
        .arg(&config)
        .arg(&manifest)
        .env("XDG_CACHE_HOME", &cache_home);
        if resolve {
            cmd.arg("--resolve-images");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            report["containers"][0]["launch"]
                .as_str()
                .unwrap()
                .to_string(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    {
        assert_eq!(audit(false).0, "image-default");
        let (launch, stderr) = audit(true);
        assert_eq!(launch, "no-exec", "{stderr}");
        assert!(cache_home.join("pidone/images.json").is_file());
        // The registry goes away: the tag is still fresh in the disk cache.
        registry.take();
        let (launch, stderr) = audit(true);
        assert_eq!(launch, "no-exec", "{stderr}");
        assert!(stderr.is_empty(), "{stderr}");
        // Without the cache, the look-up fails with a warning and the launch stays unknown.
        std::fs::remove_dir_all(&cache_home).unwrap();
        let (launch, stderr) = audit(true);
        assert_eq!(launch, "image-default");
        assert!(stderr.contains("could not resolve image"), "{stderr}");
    }
}

fn hostile_config(registry: &HostileRegistry, trusted: bool) -> ImagesConfig {
    ImagesConfig {
        resolve: true,
        deadline: Duration::from_secs(2),
        ca_bundle: registry.ca_path.display().to_string(),
        trusted_registries: if trusted {
            vec![registry.host.clone()]
        } else {
            Vec::new()
        },
        ..ImagesConfig::default()
    }
}

/// A registry a pod names on loopback, link-local or metadata addresses (by IP or by a name
/// that resolves there) is refused without a request, unless the configuration names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_named_registries_on_private_addresses_are_refused() {
    let registry = HostileRegistry::start().await;
    let port = registry.host.rsplit(':').next().unwrap().to_string();
    let resolver = ImageResolver::new(&hostile_config(&registry, false)).unwrap();
    for image in [
        format!("{}/ok/app:1", registry.host),
        format!("localhost:{port}/ok/app:1"),
        "169.254.169.254/latest/app:1".to_string(),
        "0.0.0.0:5000/ok/app:1".to_string(),
    ] {
        let started = Instant::now();
        let e = resolver
            .resolve(&image, Duration::from_secs(2))
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("refused"), "{image}: {text}");
        assert!(!e.is_timeout(), "{image}: {text}");
        assert!(started.elapsed() < Duration::from_secs(1), "{image}");
    }
    assert_eq!(registry.requests.load(Ordering::Relaxed), 0);
    // Named in the configuration, the same registry is used.
    let trusted = ImageResolver::new(&hostile_config(&registry, true)).unwrap();
    let found = trusted
        .resolve(&format!("{}/ok/app:1", registry.host), DEADLINE)
        .await
        .unwrap();
    assert_eq!(found.entrypoint, ["/ok"]);
}

/// Every answer of a hostile registry is bounded: a config that streams past its declared
/// size, a huge manifest, redirects to plain HTTP or to the metadata address, token realms on
/// plain HTTP or the metadata address, and a registry that never answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_registry_is_bounded_in_bytes_time_and_reach() {
    let registry = HostileRegistry::start().await;
    let resolver = ImageResolver::new(&hostile_config(&registry, true)).unwrap();
    let cases = [
        ("stream/app:1", "larger than 64 bytes"),
        ("big/app:1", "manifest is larger than"),
        ("downgrade/app:1", "redirect from HTTPS"),
        ("metadata/app:1", "169.254.169.254"),
        ("token-http/app:1", "token realm http"),
        ("token-metadata/app:1", "refused"),
    ];
    for (name, expect) in cases {
        let image = format!("{}/{name}", registry.host);
        let started = Instant::now();
        let e = resolver
            .resolve(&image, Duration::from_secs(2))
            .await
            .unwrap_err();
        let took = started.elapsed();
        eprintln!("{name}: {took:?}: {e}");
        assert!(e.to_string().contains(expect), "{name}: {e}");
        assert!(took < Duration::from_secs(1), "{name}: {took:?}");
    }
    let started = Instant::now();
    let e = resolver
        .resolve(
            &format!("{}/stall/app:1", registry.host),
            Duration::from_millis(500),
        )
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(started.elapsed() < Duration::from_millis(1200));
}

/// A registry that accepts and never answers holds at most its own request slots: look-ups of
/// another registry go on at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_registry_costs_its_own_lookups_only() {
    let stalled = HostileRegistry::start().await;
    let healthy = HostileRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("cas.pem");
    let pems: Vec<String> = [&stalled, &healthy]
        .iter()
        .map(|r| std::fs::read_to_string(&r.ca_path).unwrap())
        .collect();
    std::fs::write(&bundle, pems.join("")).unwrap();
    let config = ImagesConfig {
        trusted_registries: vec![stalled.host.clone(), healthy.host.clone()],
        deadline: Duration::from_secs(4),
        ca_bundle: bundle.display().to_string(),
        ..hostile_config(&stalled, true)
    };
    let resolver = ImageResolver::new(&config).unwrap();
    let mut stuck = Vec::new();
    for i in 0..40 {
        let resolver = resolver.clone();
        let image = format!("{}/stall/app{i}:1", stalled.host);
        stuck.push(tokio::spawn(async move {
            resolver.resolve(&image, Duration::from_secs(4)).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let found = resolver
        .resolve(
            &format!("{}/ok/app:1", healthy.host),
            Duration::from_secs(4),
        )
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(found.entrypoint, ["/ok"]);
    assert!(took < Duration::from_secs(1), "{took:?}");
    // The stalled registry saw at most its own slots' worth of requests at a time.
    assert!(
        stalled.requests.load(Ordering::Relaxed) <= pidone::images::resolver::PER_REGISTRY_LOOKUPS,
        "{}",
        stalled.requests.load(Ordering::Relaxed)
    );
    for s in stuck {
        assert!(s.await.unwrap().unwrap_err().is_timeout());
    }
}

/// One pod naming 1,000 images costs at most 16 look-ups (two requests each); the rest are
/// warned about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_object_fans_out_to_a_bounded_number_of_lookups() {
    let registry = HostileRegistry::start().await;
    let resolver = ImageResolver::new(&hostile_config(&registry, true)).unwrap();
    let images: Vec<String> = (0..1000)
        .map(|i| format!("{}/ok/app:{i}", registry.host))
        .collect();
    let (found, warnings) = resolver
        .resolve_all_for(
            images.iter().map(String::as_str),
            DEADLINE,
            Scope::Namespace("tenant"),
        )
        .await;
    let max = pidone::images::resolver::MAX_IMAGES_PER_OBJECT;
    assert_eq!(found.len(), max);
    assert_eq!(warnings.len(), 1000 - max);
    assert!(
        warnings[0].message.contains("at most 16 images"),
        "{}",
        warnings[0]
    );
    assert_eq!(registry.requests.load(Ordering::Relaxed), 2 * max);
}

/// A registry credential serves only the namespaces the configuration lists for it; what it
/// revealed is not served to others from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_used_only_for_their_namespaces() {
    require_tools!();
    let registry = Registry::start(Some(("puller", "s3cret-pass")));
    let layout = Layout::new();
    layout.image("app", "amd64", Some(&["/private-app"]), None);
    layout.push("app", &registry, "private/app:1");
    let image = format!("{}/private/app:1", registry.host);
    let dir = tempfile::tempdir().unwrap();
    let config_json = dir.path().join("config.json");
    registry.docker_config(&config_json);
    let resolver = ImageResolver::new(&ImagesConfig {
        credentials: config_json.display().to_string(),
        credential_namespaces: [(registry.host.clone(), vec!["team-a".to_string()])].into(),
        ..config_for(&registry)
    })
    .unwrap();
    let lookup = |ns: &'static str| {
        let resolver = resolver.clone();
        let image = image.clone();
        async move {
            resolver
                .resolve_all_for([image.as_str()], DEADLINE, Scope::Namespace(ns))
                .await
        }
    };
    let (found, warnings) = lookup("team-b").await;
    assert!(found.is_empty(), "team-b may not use the credential");
    assert_eq!(warnings.len(), 1);
    let (found, _) = lookup("team-a").await;
    assert_eq!(found[&image].entrypoint, ["/private-app"]);
    // Cached for team-a, still not for team-b.
    let (found, _) = lookup("team-b").await;
    assert!(found.is_empty());
    let (found, _) = resolver.resolve_all([image.as_str()], DEADLINE).await;
    assert_eq!(found.len(), 1, "the CLI uses every credential");
}
