//! The container image of `scripts/build-image.sh`, checked the way a cluster runs it.
//!
//! `PIDONE_IMAGE` names the image (`LAYOUT:TAG`, an OCI image layout; `scripts/test.sh` builds
//! one). The tests unpack it with umoci and run its binaries from the unpacked root file
//! system the way a container runtime would: a new mount and PID namespace, the root
//! read-only, `/proc`, `/dev`, a `/tmp` tmpfs and the chart's `/etc/pidone` mounted, then
//! `chroot` as UID and GID 65532 with no new privileges. Nothing of the host is reachable
//! inside: the image has no shell, so the command is the image's own binary.
//!
//! Registry host names are resolved by a DNS server on loopback (dnsmasq), and the root's
//! `/etc/nsswitch.conf` says `hosts: files`: a resolver going through libc's NSS would not
//! find the registry, pidone's own (hickory-resolver) asks DNS itself.
//!
//! Without the image, root or the tools, the tests are reported as skipped (`tests/skips/`),
//! and fail under `CI=true`.

mod images_support;
mod skips;
mod support;

use base64::Engine as _;
use images_support::registry::{Layout, Registry, free_port};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{ApiServer, Pki, review};

/// Host programs the checks run (the image itself has none of them).
const TOOLS: &[&str] = &[
    "umoci",
    "skopeo",
    "docker-registry",
    "dnsmasq",
    "unshare",
    "mount",
    "setpriv",
    "chroot",
    "env",
    "sh",
];
/// The user the image runs as.
const USER: &str = "65532:65532";
/// The registry host name the DNS server answers for.
const REGISTRY_NAME: &str = "registry.pidone.test";
const PATIENCE: Duration = Duration::from_secs(20);

/// The image under test, or `None` after recording why the test cannot run.
fn image() -> Option<String> {
    let missing = skips::missing(TOOLS);
    if !missing.is_empty() {
        skips::skip(&format!(
            "image checks: missing {} (see .ci/apt-packages.txt)",
            missing.join(", ")
        ));
        return None;
    }
    if !skips::is_root() {
        skips::skip("image checks: need root (namespaces, mounts, chroot)");
        return None;
    }
    match std::env::var("PIDONE_IMAGE") {
        Ok(image) if !image.is_empty() => Some(image),
        _ => {
            skips::skip(
                "image checks: PIDONE_IMAGE is not set (scripts/test.sh builds the image with \
                 scripts/build-image.sh)",
            );
            None
        }
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------
// The image on disk

/// `LAYOUT:TAG` split at the last colon (the layout path may contain colons, the tag not).
fn layout_and_tag(image: &str) -> (PathBuf, String) {
    let (layout, tag) = image
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("PIDONE_IMAGE={image} is not LAYOUT:TAG"));
    (PathBuf::from(layout), tag.to_string())
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    std::fs::read(layout.join("blobs/sha256").join(hex))
        .unwrap_or_else(|e| panic!("blob {digest}: {e}"))
}

/// The image manifest and its config.
fn manifest_and_config(image: &str) -> (Value, Value) {
    let (layout, tag) = layout_and_tag(image);
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("index.json is JSON");
    let entry = index["manifests"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag.as_str())
        })
        .unwrap_or_else(|| panic!("no tag {tag} in {}", layout.display()));
    let digest = entry["digest"].as_str().expect("manifest digest");
    let manifest: Value = serde_json::from_slice(&blob(&layout, digest)).expect("manifest JSON");
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let config: Value = serde_json::from_slice(&blob(&layout, config_digest)).expect("config JSON");
    (manifest, config)
}

/// Unpacks the image into `dir/bundle` and returns its root file system.
fn unpack(image: &str, dir: &Path) -> PathBuf {
    let bundle = dir.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image", image])
        .arg(&bundle));
    bundle.join("rootfs")
}

/// Every entry of the root file system except directories: path, mode, owner.
fn files(rootfs: &Path) -> BTreeMap<String, (u32, u32, u32)> {
    walkdir::WalkDir::new(rootfs)
        .into_iter()
        .map(|e| e.expect("walk the root file system"))
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            let meta = e.path().symlink_metadata().expect("stat");
            let path = format!(
                "/{}",
                e.path()
                    .strip_prefix(rootfs)
                    .expect("under rootfs")
                    .display()
            );
            (path, (meta.mode() & 0o7777, meta.uid(), meta.gid()))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// deploy/Dockerfile's final stage

#[derive(Debug, Default)]
struct FinalStage {
    /// Where COPY puts files.
    files: BTreeSet<String>,
    user: String,
    exposed: BTreeSet<String>,
    labels: BTreeMap<String, String>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
}

/// Reads the last stage of deploy/Dockerfile (continuations joined, comments dropped).
fn dockerfile_final_stage() -> FinalStage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Dockerfile");
    let text = std::fs::read_to_string(&path).expect("deploy/Dockerfile");
    let joined = text.replace("\\\n", " ");
    let mut stage = FinalStage::default();
    for line in joined.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        let json_array = |rest: &str| -> Vec<String> {
            serde_json::from_str(rest).unwrap_or_else(|e| panic!("{word} {rest}: {e}"))
        };
        match word.to_ascii_uppercase().as_str() {
            "FROM" => stage = FinalStage::default(),
            "COPY" => {
                let words: Vec<&str> = rest
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let (dest, sources) = words.split_last().expect("COPY has a destination");
                for source in sources {
                    let file = if dest.ends_with('/') {
                        let name = Path::new(source).file_name().expect("file name");
                        format!("{dest}{}", name.to_string_lossy())
                    } else {
                        dest.to_string()
                    };
                    stage.files.insert(file);
                }
            }
            "USER" => stage.user = rest.to_string(),
            "EXPOSE" => stage.exposed.extend(rest.split_whitespace().map(|p| {
                if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                }
            })),
            "LABEL" => {
                for pair in shell_words::split(rest).expect("LABEL words") {
                    let (k, v) = pair.split_once('=').expect("LABEL key=value");
                    stage.labels.insert(k.to_string(), v.to_string());
                }
            }
            "ENTRYPOINT" => stage.entrypoint = json_array(rest),
            "CMD" => stage.cmd = json_array(rest),
            _ => {}
        }
    }
    stage
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_image_holds_what_the_dockerfile_builds() {
    let Some(image) = image() else {
        return;
    };
    let want = dockerfile_final_stage();
    let (manifest, config) = manifest_and_config(&image);
    let c = &config["config"];
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(c["User"], want.user.as_str());
    assert_eq!(want.user, USER);
    assert_eq!(strings(&c["Entrypoint"]), want.entrypoint);
    assert_eq!(strings(&c["Cmd"]), want.cmd);
    let exposed: BTreeSet<String> = c["ExposedPorts"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(exposed, want.exposed);
    let labels: BTreeMap<String, String> = c["Labels"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(labels, want.labels);
    assert_eq!(
        manifest["layers"].as_array().map(Vec::len),
        Some(1),
        "one layer from scratch: {manifest}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let rootfs = unpack(&image, dir.path());
    let found = files(&rootfs);
    let paths: BTreeSet<String> = found.keys().cloned().collect();
    assert_eq!(
        paths, want.files,
        "the image's files against the Dockerfile's COPYs"
    );
    for (path, (mode, uid, gid)) in &found {
        assert_eq!((*uid, *gid), (0, 0), "{path} is owned by root");
        let expected = if path == "/pidone" || path == "/pidone-init" {
            0o555
        } else {
            0o644
        };
        assert_eq!(*mode, expected, "{path}: mode {mode:o}");
    }
    // No shell, no directory the runtime user could write to.
    assert!(!rootfs.join("bin").exists() && !rootfs.join("usr").exists());
    for entry in walkdir::WalkDir::new(&rootfs) {
        let entry = entry.expect("walk");
        let meta = entry.path().symlink_metadata().expect("stat");
        assert!(
            meta.uid() == 0 && meta.mode() & 0o022 == 0,
            "{} is writable by others",
            entry.path().display()
        );
    }
    // The passwd entry of the image's user.
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).expect("passwd");
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("nonroot:x:65532:65532:"))
    );
}

// ---------------------------------------------------------------------------------------
// Running the image

/// An unpacked image prepared as a container runtime prepares its root: mount points for
/// `/proc`, `/dev`, `/tmp`, `/etc/pidone` and the files the kubelet mounts in `/etc`.
struct Root {
    dir: tempfile::TempDir,
    rootfs: PathBuf,
    /// Host directory mounted read-only at `/etc/pidone` (world-readable).
    etc_pidone: PathBuf,
    /// Host files mounted over `/etc/resolv.conf`, `/etc/hosts`, `/etc/nsswitch.conf`.
    etc_files: Vec<(PathBuf, &'static str)>,
}

impl Root {
    fn new(image: &str, nameserver: &str) -> Root {
        let dir = tempfile::tempdir().expect("temp dir");
        let rootfs = unpack(image, dir.path());
        for mount_point in ["proc", "dev", "tmp", "etc/pidone"] {
            std::fs::create_dir_all(rootfs.join(mount_point)).expect("mount point");
        }
        let etc_pidone = dir.path().join("etc-pidone");
        std::fs::create_dir_all(etc_pidone.join("tls")).expect("etc-pidone");
        let mut etc_files = Vec::new();
        for (name, text) in [
            ("resolv.conf", format!("nameserver {nameserver}\n")),
            ("hosts", "127.0.0.1 localhost\n".to_string()),
            ("nsswitch.conf", "hosts: files\n".to_string()),
        ] {
            let host = dir.path().join(name);
            std::fs::write(&host, text).expect("etc file");
            std::fs::write(rootfs.join("etc").join(name), "").expect("mount point");
            let target: &'static str = match name {
                "resolv.conf" => "/etc/resolv.conf",
                "hosts" => "/etc/hosts",
                _ => "/etc/nsswitch.conf",
            };
            etc_files.push((host, target));
        }
        // The temp dir is 0700; the image's user must reach /etc/pidone.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        Root {
            dir,
            rootfs,
            etc_pidone,
            etc_files,
        }
    }

    /// Writes `/etc/pidone/<name>` (readable by the image's user, as the chart's projected
    /// volume makes it through fsGroup).
    fn put(&self, name: &str, text: &str) {
        let path = self.etc_pidone.join(name);
        std::fs::write(&path, text).expect("write /etc/pidone file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }

    /// `argv` run as the image's user in the prepared root: new mount and PID namespaces (the
    /// command is PID 1), the root read-only, no new privileges, only `env` in the
    /// environment.
    fn command(&self, env: &[(&str, &str)], argv: &[&str]) -> Command {
        let q = |s: &str| shell_words::quote(s).into_owned();
        let root = q(&self.rootfs.display().to_string());
        let mut script = String::from("set -eu\n");
        script.push_str(&format!("mount --bind {root} {root}\n"));
        script.push_str(&format!("mount -t proc proc {root}/proc\n"));
        script.push_str(&format!("mount --rbind /dev {root}/dev\n"));
        script.push_str(&format!(
            "mount -t tmpfs -o mode=1777,size=16m tmpfs {root}/tmp\n"
        ));
        let mut binds = vec![(self.etc_pidone.clone(), "/etc/pidone")];
        binds.extend(self.etc_files.iter().cloned());
        for (host, target) in binds {
            let host = q(&host.display().to_string());
            script.push_str(&format!(
                "mount --bind {host} {root}{target}\nmount -o remount,bind,ro {root}{target}\n"
            ));
        }
        script.push_str(&format!("mount -o remount,bind,ro {root}\n"));
        let chroot = skips::which("chroot").expect("chroot");
        let mut exec = vec![
            "exec".to_string(),
            "setpriv".into(),
            "--no-new-privs".into(),
            "--".into(),
            "env".into(),
            "-i".into(),
        ];
        exec.extend(env.iter().map(|(k, v)| q(&format!("{k}={v}"))));
        exec.extend([
            q(&chroot.display().to_string()),
            format!("--userspec={USER}"),
            "--groups=65532".into(),
            root.clone(),
        ]);
        exec.extend(argv.iter().map(|a| q(a)));
        script.push_str(&exec.join(" "));
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "--",
            "sh",
            "-c",
        ])
        .arg(script)
        .stdin(Stdio::null());
        cmd
    }

    fn output(&self, env: &[(&str, &str)], argv: &[&str]) -> Output {
        self.command(env, argv)
            .output()
            .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"))
    }
}

#[test]
fn the_binaries_run_as_65532_from_a_read_only_root_without_a_shell() {
    let Some(image) = image() else {
        return;
    };
    let root = Root::new(&image, "127.0.0.1");
    let version = format!("{}\n", env!("CARGO_PKG_VERSION"));
    let out = root.output(&[], &["/pidone", "--version"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("pidone {version}")
    );
    let out = root.output(&[], &["/pidone-init", "--version"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("pidone-init {version}")
    );
    // No shell to fall back on: chroot cannot find one (127), and the root is read-only.
    let out = root.output(&[], &["/bin/sh", "-c", "true"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    let out = root.output(&[], &["/pidone-init", "--install", "/copy"]);
    assert!(!out.status.success(), "the root is not writable: {out:?}");
    assert!(!root.rootfs.join("copy").exists());
    // pidone-init installs into a writable volume, as init injection's init container does.
    let out = root.output(&[], &["/pidone-init", "--install", "/tmp/pidone-init"]);
    assert!(out.status.success(), "{out:?}");
}

/// A DNS server on a loopback address of its own, answering `REGISTRY_NAME` with 127.0.0.1.
struct Dns {
    child: Child,
    address: String,
}

impl Dns {
    fn start() -> Dns {
        // 127.0.53.x: port 53 of one loopback address per test process.
        let address = format!("127.0.53.{}", 1 + std::process::id() % 250);
        let child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--pid-file=",
                "--bind-interfaces",
                "--port=53",
            ])
            .arg(format!("--listen-address={address}"))
            .arg(format!("--address=/{REGISTRY_NAME}/127.0.0.1"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnsmasq");
        let dns = Dns { child, address };
        // dnsmasq answers TCP too: wait until it listens.
        let addr: SocketAddr = format!("{}:53", dns.address).parse().expect("address");
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                start.elapsed() < PATIENCE,
                "dnsmasq did not start on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        dns
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pod with one container and no command: the image's ENTRYPOINT runs.
fn pod_of_image(name: &str, image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop"},
        "spec": {"containers": [{"name": "app", "image": image}]}})
}

fn warnings(response: &Value) -> Vec<String> {
    strings(&response["warnings"])
}

/// The host pid of the namespace's PID 1 (the child of `unshare`).
fn pid1(unshare: &Child) -> Option<u32> {
    let pid = unshare.id();
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn status_field(pid: u32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

/// The chart rendered with `repository:tag` as its image, as YAML.
fn render_chart(repository: &str, tag: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = run(&mut Command::new(root.join("tests/chart/venv.sh")));
    let script = "import sys, yaml\n\
                  sys.path.insert(0, 'tests/chart')\n\
                  import chartlib\n\
                  objs = chartlib.render({'image': {'repository': sys.argv[1], 'tag': sys.argv[2]}})\n\
                  print(yaml.safe_dump_all(objs, sort_keys=False))\n";
    run(Command::new(python.trim())
        .args(["-c", script, repository, tag])
        .current_dir(root))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_serves_reviews_resolves_registries_and_passes_its_own_audit() {
    let Some(image) = image() else {
        return;
    };
    let registry = Registry::start_named(None, &[REGISTRY_NAME]);
    let port = registry
        .host
        .rsplit_once(':')
        .expect("host:port")
        .1
        .to_string();
    let by_name = |repo: &str| format!("{REGISTRY_NAME}:{port}/{repo}");
    // The image itself, and one whose ENTRYPOINT is a wrapper shell.
    run(Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{image}"))
        .arg(format!("docker://{}/pidone/pidone:ci", registry.host)));
    let layout = Layout::new();
    layout.image(
        "wrapped",
        "amd64",
        Some(&["/bin/sh", "-c", "setup; /app/server"]),
        None,
    );
    layout.push("wrapped", &registry, "shop/wrapped:1");
    let dns = Dns::start();

    let root = Root::new(&image, &dns.address);
    let pki = Pki::new();
    let serving = pki.serving();
    root.put("tls/tls.crt", &serving.cert_pem);
    root.put("tls/tls.key", &serving.key_pem);
    root.put(
        "registry-ca.pem",
        &std::fs::read_to_string(&registry.ca_path).expect("registry CA"),
    );
    // The test registry answers on loopback, which pidone refuses for registries a pod names
    // unless the configuration trusts them.
    root.put(
        "config.yaml",
        &format!(
            "mode: enforce\nimages:\n  resolve: true\n  deadline: 10s\n  caBundle: /etc/pidone/registry-ca.pem\n  trustedRegistries: [\"{REGISTRY_NAME}:{port}\"]\n"
        ),
    );

    // `pidone serve`, the chart's arguments but on loopback ports.
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let metrics = format!("127.0.0.1:{}", free_port());
    let log = root.dir.path().join("serve.log");
    let listen_arg = listen.to_string();
    let mut serve = root
        .command(
            &[],
            &[
                "/pidone",
                "serve",
                "--config",
                "/etc/pidone/config.yaml",
                "--tls-cert",
                "/etc/pidone/tls/tls.crt",
                "--tls-key",
                "/etc/pidone/tls/tls.key",
                "--listen",
                &listen_arg,
                "--metrics-listen",
                &metrics,
            ],
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start pidone serve");
    let serve_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let start = Instant::now();
    while TcpStream::connect(listen).is_err() {
        if let Ok(Some(status)) = serve.try_wait() {
            panic!("pidone serve exited: {status}\n{}", serve_log());
        }
        assert!(
            start.elapsed() < PATIENCE,
            "serve did not listen\n{}",
            serve_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = pid1(&serve).expect("the container's PID 1");
    assert!(
        status_field(pid, "Uid").starts_with("65532\t65532"),
        "{}",
        status_field(pid, "Uid")
    );
    assert!(status_field(pid, "Gid").starts_with("65532\t65532"));
    assert!(
        status_field(pid, "NSpid").ends_with("\t1"),
        "pidone is PID 1 of its namespace"
    );
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");

    let api = ApiServer::new(&pki.ca_pem(), listen);
    // A wrapper shell: patched with exec.
    let wrapper = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w", "namespace": "shop"},
        "spec": {"containers": [{"name": "app", "image": "example/app:1",
            "command": ["sh", "-c", "envsubst < /etc/app.tmpl > /etc/app.conf; app --port 80"]}]}});
    let answer = api
        .review("/mutate", &review("CREATE", &wrapper, None))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", serve_log()));
    assert_eq!(answer["allowed"], true, "{answer}");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(answer["patch"].as_str().expect("a patch"))
        .expect("base64 patch");
    let patch = String::from_utf8_lossy(&patch);
    assert!(patch.contains("exec app --port 80"), "{patch}");

    // The pidone image, by the registry's DNS name: its ENTRYPOINT (/pidone) is read back, a
    // direct launch with nothing to say. Unresolved, the launch would get a warning.
    let own = pod_of_image("own", &by_name("pidone/pidone:ci"));
    for path in ["/mutate", "/validate"] {
        let answer = api
            .review(path, &review("CREATE", &own, None))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", serve_log()));
        assert_eq!(answer["allowed"], true, "{answer}");
        assert!(answer.get("patch").is_none(), "{answer}");
        assert!(
            warnings(&answer).is_empty(),
            "{path}: {answer}\n{}",
            serve_log()
        );
    }
    // An image whose ENTRYPOINT is a wrapper shell: found through the same resolver.
    let wrapped = pod_of_image("wrapped", &by_name("shop/wrapped:1"));
    let answer = api
        .review("/validate", &review("CREATE", &wrapped, None))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", serve_log()));
    let w = warnings(&answer);
    assert!(w.iter().any(|x| x.contains("shell-no-exec")), "{w:?}");

    // SIGTERM to PID 1 (as the kubelet stops a container): drains and exits 0.
    drop(api);
    let pid = libc::pid_t::try_from(pid).expect("pid");
    // SAFETY: kill has no memory preconditions; `pid` is the container's PID 1.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = serve.try_wait().expect("wait") {
            break status;
        }
        assert!(start.elapsed() < PATIENCE, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}\n{}", serve_log());

    // The chart rendered with this image, audited by the image's own pidone, with image
    // look-ups: the chart's containers and a pod that runs the image's ENTRYPOINT.
    let mut manifests = render_chart(&by_name("pidone/pidone"), "ci");
    assert!(
        manifests.contains(&format!("image: {}", by_name("pidone/pidone:ci"))),
        "{manifests}"
    );
    manifests.push_str("---\n");
    manifests.push_str(&serde_json::to_string(&own).expect("pod JSON"));
    manifests.push('\n');
    let mut audit = root
        .command(
            &[("XDG_CACHE_HOME", "/tmp")],
            &[
                "/pidone",
                "audit",
                "--config",
                "/etc/pidone/config.yaml",
                "--resolve-images",
                "--fail-on",
                "warn",
                "--format",
                "json",
                "-",
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pidone audit");
    audit
        .stdin
        .take()
        .expect("stdin")
        .write_all(manifests.as_bytes())
        .expect("write manifests");
    let out = audit.wait_with_output().expect("pidone audit");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["findings"], json!([]), "{report}");
    let containers = report["containers"].as_array().expect("containers");
    let launch_of = |object: &str| {
        containers
            .iter()
            .find(|c| c["object"]["name"] == object)
            .map(|c| c["launch"].clone())
    };
    assert_eq!(launch_of("own"), Some(json!("direct")), "{report}");
    assert_eq!(launch_of("pidone"), Some(json!("direct")), "{report}");
    drop(dns);
}

/// Run by `a_missing_tool_fails_under_ci_and_is_reported_as_skipped_otherwise` with an empty
/// `PATH`.
#[test]
#[ignore = "run by a_missing_tool_fails_under_ci_and_is_reported_as_skipped_otherwise"]
fn image_checks_without_their_tools() {
    assert!(image().is_none(), "the tools were expected to be missing");
}

#[test]
fn a_missing_tool_fails_under_ci_and_is_reported_as_skipped_otherwise() {
    let exe = std::env::current_exe().expect("test binary");
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("skipped.txt");
    let probe = |ci: Option<&str>| {
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--exact",
            "image_checks_without_their_tools",
            "--ignored",
            "--test-threads=1",
        ])
        .env("PATH", dir.path())
        .env("PIDONE_SKIP_LOG", &log)
        .env_remove("CI");
        if let Some(ci) = ci {
            cmd.env("CI", ci);
        }
        cmd.output().expect("run the probe")
    };

    let out = probe(Some("true"));
    // libtest prints a failed test's panic with its captured output, on stdout.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("image checks: missing umoci, skopeo, docker-registry")
            && said.contains("CI must run every test"),
        "{said}"
    );
    assert!(!log.exists(), "a failure is not a skip");

    let out = probe(None);
    assert!(out.status.success(), "{out:?}");
    let logged = std::fs::read_to_string(&log).expect("the skip is recorded");
    assert!(
        logged.starts_with("image_checks_without_their_tools\timage checks: missing umoci, "),
        "{logged}"
    );
    assert_eq!(logged.lines().count(), 1);
}
