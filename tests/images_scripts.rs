//! Scripts read from images' layers: images built layer by layer with umoci, pushed to a real
//! registry on loopback, whose ENTRYPOINT is a script shaped like those of official images
//! (docker-library's postgres and redis `docker-entrypoint.sh`: setup, then `exec "$@"` into
//! CMD; reached through the `/docker-entrypoint.sh` compatibility symlink), a `wait -n`
//! launcher, a setup script without `exec`, a script removed by a whiteout in an upper layer,
//! a binary. Each class through `pidone audit --resolve-images` and through the webhook with
//! `images.resolve`; then each bound of `images.scripts` (script size, layers, bytes, time).

mod images_support;
mod skips;
mod support;

use images_support::registry::{FsOp, HostileRegistry, Layout, Registry};
use pidone::engine::config::{ImageScriptsConfig, ImagesConfig};
use pidone::engine::image_files::{FileContent, ImageFile, WantedFile};
use pidone::images::{ImageResolver, Scope};
use pidone::server::plan::Mutations;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Options, TestServer, review};

/// Generous: the machine builds other things while these run.
const DEADLINE: Duration = Duration::from_secs(10);

/// The shape of docker-library's redis and postgres entrypoints: options become arguments of
/// the server, a step down from root re-runs the script, setup, then `exec "$@"`.
const SERVER_ENTRYPOINT: &str = r#"#!/bin/sh
set -e

# a first argument that is an option or a config file: run the server with it
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

# started as root: fix ownership, then run this script again as the service user
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec setpriv --reuid=redis --regid=redis --clear-groups -- "$0" "$@"
fi

um="$(umask)"
if [ "$um" = '0022' ]; then
	umask 0077
fi

exec "$@"
"#;

/// Two programs and `wait -n`: the container lives as long as the first of them.
const WAIT_N: &str = "#!/bin/bash\nset -e\n/usr/local/bin/server --port 8080 &\n/usr/local/bin/agent --upstream localhost:8080 &\nwait -n\nexit $?\n";

/// Setup, then the server in the foreground without `exec`.
const SETUP_NO_EXEC: &str = "#!/bin/sh\nset -e\nenvsubst < /etc/app.tmpl > /etc/app.conf\n/usr/local/bin/app --config /etc/app.conf\n";

/// Not an ELF a kernel would run, but the four bytes pidone looks at.
fn elf() -> Vec<u8> {
    let mut b = b"\x7fELF\x02\x01\x01".to_vec();
    b.extend(std::iter::repeat_n(0u8, 4096));
    b
}

/// Filler for a layer.
fn filler(path: &'static str) -> FsOp {
    FsOp::File(path, format!("{path}\n").into_bytes(), 0o644)
}

/// One image per launch class, pushed to `registry` as `scripts/<name>:1`; the expected
/// launch class of each and what its script read says.
fn build(registry: &Registry) -> Vec<(&'static str, &'static str, &'static str)> {
    let layout = Layout::new();
    // Five layers: base, the server, the entrypoint, the compatibility symlink, a config.
    layout.layered(
        "server",
        &["/docker-entrypoint.sh"],
        &["redis-server"],
        &[
            vec![filler("/etc/os-release"), filler("/bin/sh")],
            vec![FsOp::File("/usr/local/bin/redis-server", elf(), 0o755)],
            vec![FsOp::script(
                "/usr/local/bin/docker-entrypoint.sh",
                SERVER_ENTRYPOINT,
            )],
            vec![FsOp::Symlink(
                "/docker-entrypoint.sh",
                "usr/local/bin/docker-entrypoint.sh",
            )],
            vec![filler("/etc/redis.conf")],
        ],
    );
    layout.layered(
        "multi",
        &["/usr/local/bin/start.sh"],
        &[],
        &[
            vec![filler("/etc/os-release")],
            vec![FsOp::script("/usr/local/bin/start.sh", WAIT_N)],
        ],
    );
    layout.layered(
        "setup",
        &["/entrypoint.sh"],
        &[],
        &[vec![FsOp::script("/entrypoint.sh", SETUP_NO_EXEC)]],
    );
    // The lower layer's script is removed by the next one: the container has no such file.
    layout.layered(
        "gone",
        &["/opt/app/run.sh"],
        &[],
        &[
            vec![FsOp::script("/opt/app/run.sh", SETUP_NO_EXEC)],
            vec![FsOp::Remove("/opt/app/run.sh")],
        ],
    );
    // Removed, then written again (and reached through a hard link): the upper copy counts.
    layout.layered(
        "again",
        &["/opt/app/start"],
        &["app"],
        &[
            vec![FsOp::script("/opt/app/run.sh", WAIT_N)],
            vec![FsOp::Remove("/opt/app/run.sh")],
            vec![
                FsOp::script("/opt/app/run.sh", "#!/bin/sh\nexec \"$@\"\n"),
                FsOp::HardLink("/opt/app/start", "/opt/app/run.sh"),
            ],
        ],
    );
    // The entrypoint hands over to a second script of the image, which runs two programs:
    // found only by reading the second file after the first one's verdict.
    layout.layered(
        "chain",
        &["/entry.sh"],
        &[],
        &[
            vec![FsOp::script("/opt/app/next.sh", WAIT_N)],
            vec![FsOp::script(
                "/entry.sh",
                "#!/bin/sh\nset -e\nexec /opt/app/next.sh \"$@\"\n",
            )],
        ],
    );
    layout.layered(
        "binary",
        &["/usr/local/bin/app"],
        &["--port", "80"],
        &[vec![FsOp::File("/usr/local/bin/app", elf(), 0o755)]],
    );
    for name in [
        "server", "multi", "setup", "gone", "again", "chain", "binary",
    ] {
        layout.push(name, registry, &format!("scripts/{name}:1"));
    }
    vec![
        ("server", "exec", "/usr/local/bin/docker-entrypoint.sh"),
        ("multi", "multi", "/usr/local/bin/start.sh"),
        ("setup", "no-exec", "/entrypoint.sh"),
        ("gone", "script", ""),
        ("again", "exec", "/opt/app/run.sh"),
        ("chain", "multi", "/entry.sh"),
        ("binary", "direct", "/usr/local/bin/app"),
    ]
}

fn pod(registry: &Registry, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "scripts"},
        "spec": {"containers": [{"name": "app", "image": format!("{}/scripts/{name}:1", registry.host)}]}})
}

/// `pidone audit --resolve-images`: each class from the script in the image, with the source
/// of what was read; then the same from the disk cache once the registry is gone.
#[test]
fn audit_reads_entrypoint_scripts_from_the_layers() {
    require_tools!();
    let mut registry = Some(Registry::start(None));
    let expected = build(registry.as_ref().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pods.yaml");
    let docs: Vec<String> = expected
        .iter()
        .map(|(name, _, _)| serde_json::to_string(&pod(registry.as_ref().unwrap(), name)).unwrap())
        .collect();
    std::fs::write(&manifest, docs.join("\n---\n")).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::copy(&registry.as_ref().unwrap().ca_path, &ca).unwrap();
    let config = dir.path().join("pidone.yaml");
    std::fs::write(
        &config,
        format!(
            "images:\n  deadline: 10s\n  caBundle: {}\n  trustedRegistries: [\"{}\"]\n  scripts:\n    deadline: 20s\n",
            ca.display(),
            registry.as_ref().unwrap().host
        ),
    )
    .unwrap();
    let cache_home = dir.path().join("cache");
    let audit = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pidone"))
            .args([
                "audit",
                "--format",
                "json",
                "--fail-on",
                "never",
                "--resolve-images",
                "--config",
            ])
            .arg(&config)
            .arg(&manifest)
            .env("XDG_CACHE_HOME", &cache_home)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        (report, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let check = |report: &Value, stderr: &str| {
        for (name, class, read) in &expected {
            let c = report["containers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["object"]["name"] == *name)
                .unwrap_or_else(|| panic!("{name}: {report}"));
            assert_eq!(c["launch"], *class, "{name}: {c} {stderr}");
            let scripts = c["scripts"].as_array().cloned().unwrap_or_default();
            if read.is_empty() {
                assert!(scripts.is_empty(), "{name}: {c}");
                continue;
            }
            let source = scripts[0]["source"].as_str().unwrap();
            assert!(
                source.starts_with("image@sha256:") && source.ends_with(&format!(":{read}")),
                "{name}: {source}"
            );
        }
        // The reasons name what was read and where.
        let findings = report["findings"].as_array().unwrap();
        let message = |name: &str, rule: &str| {
            findings
                .iter()
                .find(|f| f["object"]["name"] == name && f["rule"] == rule)
                .and_then(|f| f["message"].as_str())
                .unwrap_or_else(|| panic!("no {rule} for {name}: {report}"))
                .to_string()
        };
        let m = message("multi", "multi-process");
        assert!(m.contains("source: image@sha256:"), "{m}");
        let m = message("setup", "shell-no-exec");
        assert!(m.contains("/entrypoint.sh"), "{m}");
        let m = message("gone", "script-entrypoint");
        assert!(m.contains("is not in the image"), "{m}");
        for quiet in ["server", "again", "binary"] {
            assert!(
                !findings.iter().any(|f| f["object"]["name"] == quiet),
                "{quiet}: {report}"
            );
        }
    };
    let (report, stderr) = audit();
    check(&report, &stderr);
    // The symlink's target is what the source names; the path run is the symlink.
    let server = report["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["object"]["name"] == "server")
        .unwrap()
        .clone();
    assert_eq!(server["scripts"][0]["path"], "/docker-entrypoint.sh");
    assert_eq!(server["scripts"][0]["class"], "exec");
    // The registry goes away: configs and files come from the disk cache.
    registry.take();
    let (report, stderr) = audit();
    check(&report, &stderr);
    assert!(stderr.is_empty(), "{stderr}");
}

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

/// The webhook with `images.resolve`: the same classes decide the admission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_reads_entrypoint_scripts_from_the_layers() {
    require_tools!();
    let registry = Registry::start(None);
    build(&registry);
    let config = format!(
        "mode: enforce\nimages:\n  resolve: true\n  deadline: 10s\n  caBundle: {}\n  trustedRegistries: [\"{}\"]\n  scripts:\n    deadline: 20s\n",
        registry.ca_path.display(),
        registry.host,
    );
    let server = TestServer::start_with(Options {
        config,
        planner: Arc::new(Mutations),
        analyzer_blocks: true,
        ..Options::default()
    })
    .await;
    let api = server.apiserver();
    let validate = |name: &'static str| {
        let object = pod(&registry, name);
        let api = &api;
        async move {
            api.review("/validate", &review("CREATE", &object, None))
                .await
                .unwrap()
        }
    };
    // `wait -n` over two programs: multi-process, denied in enforce mode.
    let answer = validate("multi").await;
    assert_eq!(answer["allowed"], false, "{answer}");
    let text = answer["status"]["message"].as_str().unwrap_or("");
    assert!(text.contains("multi-process"), "{answer}");
    assert!(text.contains("image@sha256:"), "{answer}");
    // The same, one `exec` away: the second script is read after the first one's verdict.
    let answer = validate("chain").await;
    assert_eq!(answer["allowed"], false, "{answer}");
    let text = answer["status"]["message"].as_str().unwrap_or("");
    assert!(text.contains("/opt/app/next.sh"), "{answer}");
    // Setup without exec: the fix would be in the image, so a warning.
    let answer = validate("setup").await;
    assert_eq!(answer["allowed"], true, "{answer}");
    let w = warnings(&answer);
    assert!(w.iter().any(|x| x.contains("shell-no-exec")), "{w:?}");
    // The whited-out script: the launch stays a script pidone cannot see, and says why.
    let answer = validate("gone").await;
    let w = warnings(&answer);
    assert!(
        w.iter()
            .any(|x| x.contains("script-entrypoint") && x.contains("is not in the image")),
        "{w:?}"
    );
    // `exec "$@"` into CMD, and a binary: nothing to say.
    for quiet in ["server", "again", "binary"] {
        let answer = validate(quiet).await;
        assert_eq!(answer["allowed"], true, "{quiet}: {answer}");
        assert!(warnings(&answer).is_empty(), "{quiet}: {answer}");
    }
    // Mutate: nothing to patch in the pod for a script that lives in the image.
    let answer = api
        .review("/mutate", &review("CREATE", &pod(&registry, "setup"), None))
        .await
        .unwrap();
    assert!(answer.get("patch").is_none(), "{answer}");
    server.stop().await;
}

fn config_for(registry: &Registry, scripts: ImageScriptsConfig) -> ImagesConfig {
    ImagesConfig {
        resolve: true,
        deadline: DEADLINE,
        ca_bundle: registry.ca_path.display().to_string(),
        trusted_registries: vec![registry.host.clone()],
        scripts,
        ..ImagesConfig::default()
    }
}

async fn read_one(resolver: &ImageResolver, image: &str, path: &str) -> ImageFile {
    let wanted = [WantedFile {
        image: image.to_string(),
        path: path.to_string(),
    }];
    let mut files = resolver.read_files(&wanted, DEADLINE, Scope::Trusted).await;
    files.remove(0).1
}

fn unread_reason(file: &ImageFile) -> &str {
    match &file.content {
        FileContent::Unread { reason } => reason,
        other => panic!("read: {other:?}"),
    }
}

/// Every bound of `images.scripts` stops a look-up with a reason: the script's size, the
/// layers walked, the bytes read; and the cache answers once the registry is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bound_stops_a_look_up() {
    require_tools!();
    let registry = Registry::start(None);
    let layout = Layout::new();
    let big = format!("#!/bin/sh\n{}exec app\n", "# setting\n".repeat(300));
    // The script in the bottom layer of five.
    layout.layered(
        "deep",
        &["/entry.sh"],
        &[],
        &[
            vec![
                FsOp::script("/entry.sh", "#!/bin/sh\nexec app\n"),
                FsOp::script("/big.sh", &big),
            ],
            vec![filler("/a")],
            vec![filler("/b")],
            vec![filler("/c")],
            vec![filler("/d")],
        ],
    );
    layout.push("deep", &registry, "bounds/deep:1");
    let image = format!("{}/bounds/deep:1", registry.host);
    let with =
        |scripts: ImageScriptsConfig| ImageResolver::new(&config_for(&registry, scripts)).unwrap();

    let resolver = with(ImageScriptsConfig {
        max_file_bytes: 1024,
        ..ImageScriptsConfig::default()
    });
    let file = read_one(&resolver, &image, "/entry.sh").await;
    assert!(
        matches!(file.content, FileContent::Script { .. }),
        "{file:?}"
    );
    assert!(
        file.digest.starts_with("sha256:") && file.path == "/entry.sh",
        "{file:?}"
    );
    let file = read_one(&resolver, &image, "/big.sh").await;
    assert!(
        unread_reason(&file).contains("larger than 1024 bytes"),
        "{file:?}"
    );
    let file = read_one(&resolver, &image, "/nowhere.sh").await;
    assert_eq!(file.content, FileContent::Missing);

    let resolver = with(ImageScriptsConfig {
        max_layers: 2,
        ..ImageScriptsConfig::default()
    });
    let file = read_one(&resolver, &image, "/entry.sh").await;
    assert!(unread_reason(&file).contains("maxLayers"), "{file:?}");

    let resolver = with(ImageScriptsConfig {
        max_bytes: 64,
        ..ImageScriptsConfig::default()
    });
    let file = read_one(&resolver, &image, "/entry.sh").await;
    assert!(unread_reason(&file).contains("maxBytes"), "{file:?}");

    // Found files are cached: the registry is not needed again.
    let resolver = with(ImageScriptsConfig::default());
    let first = read_one(&resolver, &image, "/entry.sh").await;
    drop(registry);
    let again = read_one(&resolver, &image, "/entry.sh").await;
    assert_eq!(first, again);
}

/// A layer blob that never comes costs the caller its deadline, and the answer says so; the
/// look-up goes on in the background, and admissions that ask meanwhile join it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_layer_costs_the_deadline() {
    let registry = HostileRegistry::start().await;
    let config = ImagesConfig {
        resolve: true,
        deadline: Duration::from_secs(2),
        ca_bundle: registry.ca_path.display().to_string(),
        trusted_registries: vec![registry.host.clone()],
        scripts: ImageScriptsConfig {
            deadline: Duration::from_secs(1),
            ..ImageScriptsConfig::default()
        },
        ..ImagesConfig::default()
    };
    let resolver = ImageResolver::new(&config).unwrap();
    let wanted = [WantedFile {
        image: format!("{}/slowlayer/app:1", registry.host),
        path: "/entry.sh".into(),
    }];
    let started = Instant::now();
    // Five admissions ask at once: one look-up (a manifest and a blob request) serves them.
    let reads =
        (0..5).map(|_| resolver.read_files(&wanted, Duration::from_secs(1), Scope::Trusted));
    let answers = futures::future::join_all(reads).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    for files in &answers {
        assert!(unread_reason(&files[0].1).contains("in time"), "{files:?}");
    }
    assert_eq!(
        registry.requests.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    // The look-up went on in the background: the next admission joins it (until the client's
    // read timeout, `images.deadline`, ends it), then its failure is remembered briefly. No
    // new request either way.
    let files = resolver
        .read_files(&wanted, Duration::from_secs(3), Scope::Trusted)
        .await;
    assert!(unread_reason(&files[0].1).contains("in time"), "{files:?}");
    assert_eq!(
        registry.requests.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    let files = resolver
        .read_files(&wanted, Duration::from_secs(1), Scope::Trusted)
        .await;
    assert!(
        unread_reason(&files[0].1).contains("remembered"),
        "{files:?}"
    );
    assert_eq!(
        registry.requests.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

/// A layer whose bytes do not match its digest gives no script, however good the script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_that_does_not_match_its_digest_is_not_believed() {
    let registry = HostileRegistry::start().await;
    let config = ImagesConfig {
        resolve: true,
        deadline: Duration::from_secs(5),
        ca_bundle: registry.ca_path.display().to_string(),
        trusted_registries: vec![registry.host.clone()],
        ..ImagesConfig::default()
    };
    let resolver = ImageResolver::new(&config).unwrap();
    let file = read_one(
        &resolver,
        &format!("{}/tampered/app:1", registry.host),
        "/entry.sh",
    )
    .await;
    assert!(
        unread_reason(&file).contains("does not match its digest"),
        "{file:?}"
    );
}

/// Files come through the registry's mirrors, as configs do: here the registry itself is not
/// even listening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_come_through_mirrors() {
    require_tools!();
    let mirror = Registry::start(None);
    let layout = Layout::new();
    layout.layered(
        "app",
        &["/entry.sh"],
        &[],
        &[vec![FsOp::script("/entry.sh", WAIT_N)]],
    );
    layout.push("app", &mirror, "team/app:1");
    let origin = format!("127.0.0.1:{}", images_support::registry::free_port());
    let mut config = config_for(&mirror, ImageScriptsConfig::default());
    config
        .mirrors
        .insert(origin.clone(), vec![mirror.host.clone()]);
    let resolver = ImageResolver::new(&config).unwrap();
    let file = read_one(&resolver, &format!("{origin}/team/app:1"), "/entry.sh").await;
    assert_eq!(
        file.content,
        FileContent::Script {
            text: WAIT_N.into()
        }
    );
}
