//! A real registry on loopback for tests: Distribution's `docker-registry` with TLS from a CA
//! made here (optionally htpasswd auth), images built without a daemon by `umoci` and pushed by
//! `skopeo`. A test without the tools is reported as skipped (`tests/skips/`; a failure under
//! `CI=true`): the crate that includes this module also declares `mod skips;`.

use sha2::{Digest, Sha256};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOOLS: &[&str] = &["docker-registry", "umoci", "skopeo", "htpasswd"];

/// The missing tools, or `None` when all are there.
pub fn missing_tools() -> Option<String> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
        })
        .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// Returns early from a test, reported as skipped, when the tools are missing.
#[macro_export]
macro_rules! require_tools {
    () => {
        if let Some(missing) = $crate::images_support::registry::missing_tools() {
            $crate::skips::skip(&format!(
                "registry tools missing: {missing} (see .ci/apt-packages.txt)"
            ));
            return;
        }
    };
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`
    pub host: String,
    /// PEM of the CA that signed the registry's certificate.
    pub ca_path: PathBuf,
    pub creds: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// A TLS registry; with `creds`, every request needs them (htpasswd).
    pub fn start(creds: Option<(&str, &str)>) -> Registry {
        Registry::start_named(creds, &[])
    }

    /// [`Registry::start`] with a certificate that also names `names` (host names a test
    /// resolves to loopback).
    pub fn start_named(creds: Option<(&str, &str)>, names: &[&str]) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pidone test registry CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        sans.extend(names.iter().map(|n| n.to_string()));
        let mut params = rcgen::CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "127.0.0.1");
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(d.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(d.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(d.join("key.pem"), key.serialize_pem()).unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {store}\n\
             http:\n  addr: {host}\n  secret: pidone-test\n  tls:\n    certificate: {cert}\n    key: {key}\n",
            store = d.join("store").display(),
            cert = d.join("cert.pem").display(),
            key = d.join("key.pem").display(),
        );
        if let Some((user, pass)) = creds {
            let line = run(Command::new("htpasswd").args(["-Bbn", user, pass]));
            std::fs::write(d.join("htpasswd"), line.trim()).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: pidone-test\n    path: {}\n",
                d.join("htpasswd").display()
            ));
        }
        std::fs::write(d.join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("registry.log")).unwrap())
            .spawn()
            .unwrap();
        let registry = Registry {
            child,
            host,
            ca_path: d.join("ca.pem"),
            creds: creds.map(|(u, p)| (u.to_string(), p.to_string())),
            _dir: dir,
        };
        let start = Instant::now();
        while TcpStream::connect(&registry.host).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "registry did not start: {}",
                std::fs::read_to_string(registry._dir.path().join("registry.log"))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        registry
    }

    /// The digest of what `repo:tag` (or `repo@digest`) points at, as served (sha256 of the
    /// raw manifest, computed here, not by the code under test).
    pub fn digest(&self, name: &str) -> String {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "--insecure-policy",
            "inspect",
            "--raw",
            "--tls-verify=false",
        ]);
        if let Some((u, p)) = &self.creds {
            cmd.arg(format!("--creds={u}:{p}"));
        }
        cmd.arg(format!("docker://{}/{name}", self.host));
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("sha256:{}", hex(&Sha256::digest(&out.stdout)))
    }

    /// A docker config.json with this registry's credentials.
    pub fn docker_config(&self, path: &Path) {
        let (u, p) = self.creds.clone().unwrap();
        let auth = base64_encode(format!("{u}:{p}").as_bytes());
        let text = serde_json::json!({"auths": {self.host.clone(): {"auth": auth}}});
        std::fs::write(path, text.to_string()).unwrap();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An OCI image layout on disk where images are built.
pub struct Layout {
    dir: tempfile::TempDir,
}

impl Default for Layout {
    fn default() -> Self {
        Self::new()
    }
}

impl Layout {
    pub fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("umoci")
            .args(["init", "--layout"])
            .arg(dir.path().join("oci")));
        Layout { dir }
    }

    fn oci(&self) -> PathBuf {
        self.dir.path().join("oci")
    }

    fn image_arg(&self, name: &str) -> String {
        format!("{}:{name}", self.oci().display())
    }

    /// An image without layers (the config is all that matters here).
    pub fn image(&self, name: &str, arch: &str, entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) {
        self.image_with(name, arch, entrypoint, cmd, &[]);
    }

    pub fn image_with(
        &self,
        name: &str,
        arch: &str,
        entrypoint: Option<&[&str]>,
        cmd: Option<&[&str]>,
        extra: &[&str],
    ) {
        run(Command::new("umoci")
            .args(["new", "--image"])
            .arg(self.image_arg(name)));
        let mut config = Command::new("umoci");
        config
            .args(["config", "--image"])
            .arg(self.image_arg(name))
            .arg("--os=linux")
            .arg(format!("--architecture={arch}"));
        for e in entrypoint.unwrap_or(&[]) {
            config.arg(format!("--config.entrypoint={e}"));
        }
        for c in cmd.unwrap_or(&[]) {
            config.arg(format!("--config.cmd={c}"));
        }
        config.args(extra);
        run(&mut config);
    }

    /// An image built layer by layer: each layer is the changes `ops` make to the root
    /// filesystem left by the layers below (`umoci unpack`, change, `umoci repack`, which
    /// writes whiteouts for what was removed), then the config.
    pub fn layered(&self, name: &str, entrypoint: &[&str], cmd: &[&str], layers: &[Vec<FsOp>]) {
        run(Command::new("umoci")
            .args(["new", "--image"])
            .arg(self.image_arg(name)));
        for ops in layers {
            let bundle = self.dir.path().join("bundle");
            run(Command::new("umoci")
                .args(["unpack", "--rootless", "--image"])
                .arg(self.image_arg(name))
                .arg(&bundle));
            let root = bundle.join("rootfs");
            for op in ops {
                op.apply(&root);
            }
            run(Command::new("umoci")
                .args(["repack", "--image"])
                .arg(self.image_arg(name))
                .arg(&bundle));
            std::fs::remove_dir_all(&bundle).unwrap();
        }
        let mut config = Command::new("umoci");
        config
            .args(["config", "--image"])
            .arg(self.image_arg(name))
            .args(["--os=linux", "--architecture=amd64"]);
        for e in entrypoint {
            config.arg(format!("--config.entrypoint={e}"));
        }
        for c in cmd {
            config.arg(format!("--config.cmd={c}"));
        }
        run(&mut config);
    }

    fn read_index(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.oci().join("index.json")).unwrap()).unwrap()
    }

    /// An image index over images already built here, `(name, os, arch)` each.
    pub fn index(&self, name: &str, members: &[(&str, &str, &str)]) {
        let mut index = self.read_index();
        let manifests = index["manifests"].as_array().unwrap().clone();
        let entries: Vec<serde_json::Value> = members
            .iter()
            .map(|(member, os, arch)| {
                let m = manifests
                    .iter()
                    .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == *member)
                    .unwrap_or_else(|| panic!("no image {member} in the layout"));
                serde_json::json!({
                    "mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"],
                    "platform": {"os": os, "architecture": arch}
                })
            })
            .collect();
        let blob = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries
        }))
        .unwrap();
        let digest = hex(&Sha256::digest(&blob));
        std::fs::write(self.oci().join("blobs/sha256").join(&digest), &blob).unwrap();
        index["manifests"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": format!("sha256:{digest}"),
                "size": blob.len(),
                "annotations": {"org.opencontainers.image.ref.name": name}
            }));
        std::fs::write(
            self.oci().join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }

    /// Pushes an image (or index, with all its members) to `registry/dest`.
    pub fn push(&self, name: &str, registry: &Registry, dest: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--all",
            "--dest-tls-verify=false",
        ]);
        if let Some((u, p)) = &registry.creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        cmd.arg(format!("oci:{}", self.image_arg(name)))
            .arg(format!("docker://{}/{dest}", registry.host));
        run(&mut cmd);
    }
}

/// One change to an image's root filesystem (paths absolute inside the image).
#[derive(Debug, Clone)]
pub enum FsOp {
    /// A file with this content and mode.
    File(&'static str, Vec<u8>, u32),
    /// A symbolic link to the target, as written.
    Symlink(&'static str, &'static str),
    /// A hard link to another path of the image.
    HardLink(&'static str, &'static str),
    /// Removes a file or a directory tree.
    Remove(&'static str),
}

impl FsOp {
    /// A script file, mode 0755.
    pub fn script(path: &'static str, text: &str) -> FsOp {
        FsOp::File(path, text.as_bytes().to_vec(), 0o755)
    }

    fn apply(&self, root: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let at = |p: &str| root.join(p.trim_start_matches('/'));
        let parent = |p: &Path| std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        match self {
            FsOp::File(path, bytes, mode) => {
                let p = at(path);
                parent(&p);
                std::fs::write(&p, bytes).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
            }
            FsOp::Symlink(path, target) => {
                let p = at(path);
                parent(&p);
                std::os::unix::fs::symlink(target, &p).unwrap();
            }
            FsOp::HardLink(path, target) => {
                let p = at(path);
                parent(&p);
                std::fs::hard_link(at(target), &p).unwrap();
            }
            FsOp::Remove(path) => {
                let p = at(path);
                if p.is_dir() {
                    std::fs::remove_dir_all(&p).unwrap();
                } else {
                    std::fs::remove_file(&p).unwrap();
                }
            }
        }
    }
}

/// A registry that misbehaves on purpose, over TLS on loopback, one behaviour per repository:
///
/// - `ok/app`: a proper image (config `{"config":{"Entrypoint":["/ok"]}}`);
/// - `stream/app`: the manifest declares a 64-byte config, the blob streams without end;
/// - `big/app`: the manifest is 4 MiB, streamed;
/// - `stall/<any>`: accepts the request and never answers;
/// - `downgrade/app`: the blob redirects to plain HTTP;
/// - `metadata/app`: the blob redirects to the cloud metadata address;
/// - `slowlayer/app`: a proper config (`Entrypoint: ["/entry.sh"]`) over one layer whose blob
///   never comes;
/// - `tampered/app`: the same config over one layer holding `/entry.sh` whose bytes do not
///   match the digest the manifest gives;
/// - `token-http/app`, `token-metadata/app`: the manifest asks for a Bearer token from a plain
///   HTTP realm, or from the metadata address.
///
/// Counts the requests it gets.
pub struct HostileRegistry {
    /// `127.0.0.1:PORT`
    pub host: String,
    pub ca_path: PathBuf,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for HostileRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const OK_CONFIG: &[u8] = br#"{"config":{"Entrypoint":["/ok"]}}"#;
const ENTRY_CONFIG: &[u8] = br#"{"config":{"Entrypoint":["/entry.sh"]}}"#;

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// A gzip layer with a script at `/entry.sh`.
fn tampered_layer() -> Vec<u8> {
    use std::io::Write;
    let script = b"#!/bin/sh\nserver &\nagent &\nwait -n\n";
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(script.len() as u64);
    header.set_mode(0o755);
    tar.append_data(&mut header, "entry.sh", &script[..])
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

fn manifest_for(config: &[u8], declared: usize) -> String {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": declared},
        "layers": []
    })
    .to_string()
}

async fn hostile_answer(
    host: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_start_matches("/v2/").splitn(3, '/').collect();
    let [team, _, rest] = parts.as_slice() else {
        return StatusCode::OK.into_response();
    };
    let manifest = rest.starts_with("manifests/");
    let authorized = req.headers().contains_key(header::AUTHORIZATION);
    match (*team, manifest) {
        ("stall", _) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        ("big", true) => {
            let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
            let stream =
                futures::stream::iter((0..64).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
            Body::from_stream(stream).into_response()
        }
        ("stream", true) => manifest_for(b"{}", 64).into_response(),
        ("stream", false) => {
            let chunk = bytes::Bytes::from(vec![b'{'; 16 * 1024]);
            let stream = futures::stream::unfold((), move |()| {
                let chunk = chunk.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    Some((Ok::<_, std::io::Error>(chunk), ()))
                }
            });
            Body::from_stream(stream).into_response()
        }
        ("slowlayer", true) => serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256(ENTRY_CONFIG), "size": ENTRY_CONFIG.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": sha256(b"never sent"), "size": 1024 * 1024}]
        })
        .to_string()
        .into_response(),
        ("tampered", true) => serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256(ENTRY_CONFIG), "size": ENTRY_CONFIG.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": sha256(b"another layer"), "size": tampered_layer().len()}]
        })
        .to_string()
        .into_response(),
        ("slowlayer" | "tampered", false) if rest.ends_with(&sha256(ENTRY_CONFIG)) => {
            ENTRY_CONFIG.to_vec().into_response()
        }
        ("slowlayer", false) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        ("tampered", false) => tampered_layer().into_response(),
        ("token-http" | "token-metadata", true) if !authorized => {
            let realm = if *team == "token-http" {
                format!("http://{host}/token")
            } else {
                "https://169.254.169.254/latest/meta-data/iam".to_string()
            };
            (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    format!("Bearer realm=\"{realm}\",service=\"hostile\""),
                )],
            )
                .into_response()
        }
        (_, true) => manifest_for(OK_CONFIG, OK_CONFIG.len()).into_response(),
        ("downgrade", false) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, format!("http://{host}/plain/blob"))],
        )
            .into_response(),
        ("metadata", false) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(
                header::LOCATION,
                "https://169.254.169.254/latest/meta-data/".to_string(),
            )],
        )
            .into_response(),
        (_, false) => OK_CONFIG.to_vec().into_response(),
    }
}

impl HostileRegistry {
    /// Starts on the current tokio runtime.
    pub async fn start() -> HostileRegistry {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.pem()).unwrap();
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let router = {
            let host = host.clone();
            let requests = std::sync::Arc::clone(&requests);
            axum::Router::new().fallback(move |req: axum::extract::Request| {
                hostile_answer(host.clone(), std::sync::Arc::clone(&requests), req)
            })
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let router = router.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(tls),
                        hyper_util::service::TowerToHyperService::new(router),
                    )
                    .await;
                });
            }
        });
        HostileRegistry {
            host,
            ca_path,
            requests,
            task,
            _dir: dir,
        }
    }
}
