//! Test support: certificates, a Secret-volume directory, the real server in-process, and a
//! client that calls it the way kube-apiserver does (see docs/apiserver.md), with a validator for
//! the responses that applies the apiserver's rules.
#![allow(dead_code)]

pub mod served;

use base64::Engine as _;
use pidone::resolve::{InProcessAnalyzer, ScriptAnalyzer};
use pidone::server::plan::{NoMutations, Planner};
use pidone::server::{Drained, Running, ServerConfig};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The service name the apiserver verifies: `<svc>.<ns>.svc`.
pub const SERVICE_NAME: &str = "pidone.pidone.svc";

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A CA and the serving certificates it signs.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A PEM certificate and key.
#[derive(Clone)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "pidone test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki { ca }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A fresh serving certificate for [`SERVICE_NAME`] with a fresh key.
    pub fn serving(&self) -> Pair {
        let mut params = CertificateParams::new(vec![SERVICE_NAME.to_string()]).unwrap();
        // The apiserver ignores the CN; make it something else to prove the SAN is used.
        params
            .distinguished_name
            .push(DnType::CommonName, "not-the-service-name");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        }
    }
}

/// A directory laid out like a Kubernetes Secret volume:
/// `..<timestamp>/tls.crt`, `..data -> ..<timestamp>`, `tls.crt -> ..data/tls.crt`.
pub struct SecretDir {
    pub dir: PathBuf,
    generation: u32,
    current: PathBuf,
}

impl SecretDir {
    pub fn new(dir: &Path, pair: &Pair) -> SecretDir {
        std::fs::create_dir_all(dir).unwrap();
        let mut s = SecretDir {
            dir: dir.to_path_buf(),
            generation: 0,
            current: PathBuf::new(),
        };
        let data = s.write_generation(pair);
        std::os::unix::fs::symlink(&data, dir.join("..data")).unwrap();
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
        s.current = data;
        s
    }

    fn write_generation(&mut self, pair: &Pair) -> PathBuf {
        self.generation += 1;
        let name = PathBuf::from(format!("..2026_01_01_00_00_00.{:09}", self.generation));
        let path = self.dir.join(&name);
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("tls.crt"), &pair.cert_pem).unwrap();
        std::fs::write(path.join("tls.key"), &pair.key_pem).unwrap();
        name
    }

    /// Swaps in a new pair the way the kubelet's atomic writer does: a new timestamped
    /// directory, a `..data_tmp` symlink renamed over `..data`, the old directory removed.
    pub fn swap(&mut self, pair: &Pair) {
        let data = self.write_generation(pair);
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&data, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        let old = std::mem::replace(&mut self.current, data);
        std::fs::remove_dir_all(self.dir.join(old)).unwrap();
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.join("tls.key")
    }
}

/// Options of a test server.
pub struct Options {
    pub config: String,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub drain_timeout: Duration,
    pub reload_interval: Duration,
    pub planner: Arc<dyn Planner>,
    pub analyzer_blocks: bool,
    pub analyzer: Arc<dyn ScriptAnalyzer>,
    pub max_inflight: usize,
    pub limits: pidone::server::Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: "mode: enforce\n".into(),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            drain_timeout: Duration::from_secs(5),
            reload_interval: Duration::from_millis(100),
            planner: Arc::new(NoMutations),
            analyzer_blocks: false,
            analyzer: Arc::new(InProcessAnalyzer),
            max_inflight: pidone::server::state::DEFAULT_MAX_INFLIGHT,
            limits: pidone::server::Limits::default(),
        }
    }
}

/// The real server, in-process, on ephemeral ports.
pub struct TestServer {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub app: Arc<pidone::server::state::App>,
    pub pki: Pki,
    pub pair: Pair,
    pub secret: SecretDir,
    pub config_path: PathBuf,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<Running>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> TestServer {
        install_crypto();
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let pair = pki.serving();
        let secret = SecretDir::new(&dir.path().join("certs"), &pair);
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, &options.config).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = pidone::server::start(
            ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                metrics_listen: "127.0.0.1:0".parse().unwrap(),
                config_path: config_path.clone(),
                tls_cert: secret.cert(),
                tls_key: secret.key(),
                drain_timeout: options.drain_timeout,
                header_read_timeout: options.header_read_timeout,
                idle_timeout: options.idle_timeout,
                reload_interval: options.reload_interval,
                analyzer: options.analyzer,
                analyzer_blocks: options.analyzer_blocks,
                planner: options.planner,
                max_inflight: options.max_inflight,
                limits: options.limits,
            },
            async move {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
        TestServer {
            addr: running.addr,
            admin_addr: running.admin_addr,
            app: Arc::clone(&running.app),
            pki,
            pair,
            secret,
            config_path,
            dir,
            stop: Some(stop),
            running: Some(running),
        }
    }

    pub fn apiserver(&self) -> ApiServer {
        ApiServer::new(&self.pki.ca_pem(), self.addr)
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn stop(mut self) -> Drained {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.running.take().unwrap().wait().await.unwrap()
    }
}

/// Calls the webhook like kube-apiserver: the CA bundle as the only root, SNI and hostname
/// check on the service name, HTTP/1.1 with keep-alive, `?timeout=10s` (the webhook's
/// `timeoutSeconds`; see [`ApiServer::with_webhook_timeout`]), its headers.
#[derive(Clone)]
pub struct ApiServer {
    pub http: reqwest::Client,
    pub base: String,
    /// The `?timeout=` the apiserver sends: the webhook configuration's `timeoutSeconds`.
    pub webhook_timeout: &'static str,
}

impl ApiServer {
    pub fn new(ca_pem: &str, addr: SocketAddr) -> ApiServer {
        ApiServer::with_idle_connections(ca_pem, addr, 25)
    }

    /// Like [`ApiServer::new`] but keeping up to `idle` connections open (the apiserver keeps
    /// 25 idle per host; several apiservers keep more between them).
    pub fn with_idle_connections(ca_pem: &str, addr: SocketAddr, idle: usize) -> ApiServer {
        install_crypto();
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .resolve(SERVICE_NAME, addr)
            .http1_only()
            .pool_max_idle_per_host(idle)
            .pool_idle_timeout(Duration::from_secs(90))
            .timeout(Duration::from_secs(10))
            .user_agent("kube-apiserver-admission")
            .tls_info(true)
            .build()
            .unwrap();
        ApiServer {
            http,
            base: format!("https://{SERVICE_NAME}:{}", addr.port()),
            webhook_timeout: "10s",
        }
    }

    /// The same client for a webhook configured with another `timeoutSeconds` (`"1s"`).
    pub fn with_webhook_timeout(mut self, timeout: &'static str) -> ApiServer {
        self.webhook_timeout = timeout;
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}?timeout={}", self.base, self.webhook_timeout)
    }

    /// POSTs a body with the apiserver's headers.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(self.url(path))
            .header("Content-Type", content_type)
            .header("Accept", "application/json, */*")
            .header("Accept-Encoding", "gzip")
            .body(body)
            .send()
            .await
    }

    /// Sends a review, its members in the apiserver's order ([`wire`]), and validates the
    /// answer as the apiserver would; returns `response`.
    pub async fn review(&self, path: &str, review: &Value) -> Result<Value, String> {
        self.review_as(path, review, wire(review)).await
    }

    /// [`ApiServer::review`] with the review's members sorted, an order no apiserver writes
    /// (`operation` after the objects): the body the webhook cannot cut env lists from.
    pub async fn review_sorted(&self, path: &str, review: &Value) -> Result<Value, String> {
        self.review_as(path, review, review.to_string().into_bytes())
            .await
    }

    /// Sends `body`, the text of `review`, and validates the answer.
    pub async fn review_as(
        &self,
        path: &str,
        review: &Value,
        body: Vec<u8>,
    ) -> Result<Value, String> {
        let res = self
            .post(path, "application/json", body)
            .await
            .map_err(|e| format!("call error: {e}"))?;
        if res.status() != 200 {
            return Err(format!("call error: HTTP {}", res.status()));
        }
        let body = res.bytes().await.map_err(|e| format!("call error: {e}"))?;
        validate_response(review, &body, path.starts_with("/mutate"))
    }
}

/// The apiserver's checks on a webhook response (docs/apiserver.md, "The response"), plus
/// pidone's own promises (warnings of at most 120 characters).
pub fn validate_response(request: &Value, body: &[u8], mutating: bool) -> Result<Value, String> {
    let review: Value =
        serde_json::from_slice(body).map_err(|e| format!("undecodable response: {e}"))?;
    if review["apiVersion"] != "admission.k8s.io/v1" || review["kind"] != "AdmissionReview" {
        return Err(format!("wrong apiVersion/kind: {review}"));
    }
    let response = review
        .get("response")
        .filter(|r| r.is_object())
        .ok_or("missing response")?
        .clone();
    let want_uid = request
        .pointer("/request/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    if response["uid"] != want_uid {
        return Err(format!(
            "uid {} does not match request uid {want_uid}",
            response["uid"]
        ));
    }
    let allowed = response["allowed"]
        .as_bool()
        .ok_or("response.allowed is not a boolean")?;
    let patch = response.get("patch");
    let patch_type = response.get("patchType");
    if patch.is_some() != patch_type.is_some() {
        return Err("patch without patchType or the reverse".into());
    }
    if let Some(patch) = patch {
        if !mutating {
            return Err("a validating webhook returned a patch".into());
        }
        if patch_type != Some(&json!("JSONPatch")) {
            return Err(format!("patchType {patch_type:?}"));
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(patch.as_str().ok_or("patch is not a base64 string")?)
            .map_err(|e| format!("patch is not base64: {e}"))?;
        let ops: json_patch::Patch =
            serde_json::from_slice(&raw).map_err(|e| format!("patch is not JSON Patch: {e}"))?;
        let mut object = request
            .pointer("/request/object")
            .cloned()
            .unwrap_or(Value::Null);
        json_patch::patch(&mut object, &ops).map_err(|e| format!("patch does not apply: {e}"))?;
    }
    if !allowed {
        let status = response.get("status").ok_or("denial without status")?;
        let code = status["code"]
            .as_u64()
            .ok_or("denial without status.code")?;
        if !(400..600).contains(&code) {
            return Err(format!("denial with status.code {code}"));
        }
        if status["message"].as_str().is_none_or(str::is_empty) {
            return Err("denial without a message".into());
        }
    }
    if let Some(warnings) = response.get("warnings") {
        let warnings = warnings.as_array().ok_or("warnings is not an array")?;
        let mut total = 0;
        for w in warnings {
            let w = w.as_str().ok_or("a warning is not a string")?;
            if w.chars().any(char::is_control) {
                return Err(format!("warning with control characters: {w:?}"));
            }
            if w.chars().count() > 120 {
                return Err(format!("warning longer than 120 characters: {w}"));
            }
            total += w.len();
        }
        if total > 4096 {
            return Err(format!(
                "warnings total {total} bytes, over the 4096 budget"
            ));
        }
    }
    if let Some(annotations) = response.get("auditAnnotations") {
        let annotations = annotations
            .as_object()
            .ok_or("auditAnnotations is not an object")?;
        for (key, value) in annotations {
            if !pidone::server::decision::valid_annotation_key(key) {
                return Err(format!("audit annotation key {key:?} would be dropped"));
            }
            if !value.is_string() {
                return Err(format!("audit annotation {key} is not a string"));
            }
        }
    }
    Ok(response)
}

static UID: AtomicU64 = AtomicU64::new(1);

/// A fresh request uid, as the apiserver sends on every call.
pub fn uid() -> String {
    let n = UID.fetch_add(1, Ordering::Relaxed);
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// `(group, version, resource)` of the kinds in the fixtures.
pub fn resource_of(kind: &str) -> (&'static str, &'static str, &'static str) {
    match kind {
        "Pod" => ("", "v1", "pods"),
        "Deployment" => ("apps", "v1", "deployments"),
        "StatefulSet" => ("apps", "v1", "statefulsets"),
        "DaemonSet" => ("apps", "v1", "daemonsets"),
        "ReplicaSet" => ("apps", "v1", "replicasets"),
        "Job" => ("batch", "v1", "jobs"),
        "CronJob" => ("batch", "v1", "cronjobs"),
        "ConfigMap" => ("", "v1", "configmaps"),
        _ => ("", "v1", "unknown"),
    }
}

/// Wraps an object into an AdmissionReview the way the apiserver does.
pub fn review(operation: &str, object: &Value, old_object: Option<&Value>) -> Value {
    let kind = object["kind"].as_str().unwrap_or("Pod");
    let (group, version, resource) = resource_of(kind);
    let namespace = object
        .pointer("/metadata/namespace")
        .cloned()
        .unwrap_or(json!("default"));
    let name = object
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(json!(""));
    let options = match operation {
        "CREATE" => json!({"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}),
        "UPDATE" => json!({"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"}),
        "DELETE" => json!({"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions"}),
        _ => Value::Null,
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid(),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": name,
            "namespace": namespace,
            "operation": operation,
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "5b2d2f0c-4d9a-4d4b-8f55-3a1f0f1b2c3d",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
            },
            "object": if operation == "DELETE" { Value::Null } else { object.clone() },
            "oldObject": match old_object { Some(o) => o.clone(), None => Value::Null },
            "dryRun": false,
            "options": options
        }
    })
}

/// The objects of `tests/fixtures/examples/launches.yaml`.
pub fn fixture_objects() -> Vec<Value> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/examples/launches.yaml"),
    )
    .unwrap();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap()
        .into_iter()
        .filter(|v| v.is_object())
        .collect()
}

/// A Pod as the apiserver passes it to webhooks on CREATE: defaulted, with the
/// service-account volume, managed fields and a realistic amount of configuration
/// (about 15 KiB as a review). The `app` container's shell runs its server without `exec`,
/// and a log forwarder runs next to it.
pub fn realistic_pod() -> Value {
    let env: Vec<Value> = (0..75)
        .map(|i| json!({"name": format!("APP_SETTING_{i:02}"), "value": format!("value-{i}-{}", "x".repeat(24))}))
        .collect();
    let probe = |path: &str| {
        json!({"httpGet": {"path": path, "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 5,
               "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    };
    let mounts = json!([
        {"name": "config", "mountPath": "/etc/app", "readOnly": true},
        {"name": "logs", "mountPath": "/var/log/app"},
        {"name": "kube-api-access-7xk2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}
    ]);
    let container_defaults = json!({
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    });
    let mut app = json!({
        "name": "app",
        "image": "registry.example/shop/checkout:7.3.1",
        "command": ["/bin/sh", "-c", "set -e\nenvsubst < /etc/app/config.tmpl > /tmp/config.yaml\n/app/checkout --config /tmp/config.yaml --port 8080"],
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"name": "metrics", "containerPort": 9102, "protocol": "TCP"}],
        "env": env,
        "resources": {"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}},
        "livenessProbe": probe("/healthz"),
        "readinessProbe": probe("/readyz"),
        "volumeMounts": mounts,
        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}}
    });
    let mut agent = json!({
        "name": "log-forwarder",
        "image": "fluent/fluent-bit:3.1.4",
        "args": ["--config=/fluent-bit/etc/fluent-bit.yaml"],
        "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}, "requests": {"cpu": "10m", "memory": "32Mi"}},
        "volumeMounts": [{"name": "logs", "mountPath": "/var/log/app", "readOnly": true}]
    });
    for c in [&mut app, &mut agent] {
        for (k, v) in container_defaults.as_object().unwrap() {
            c[k] = v.clone();
        }
    }
    let managed = json!([{
        "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
        "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
                     "f:ownerReferences": {".": {}, "k:{\"uid\":\"0f7a9e0e-5b5c-4a7e-9d3f-2b6f1c9f7a11\"}": {}}},
                     "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:command": {}, "f:env": {".": {}}, "f:image": {}, "f:name": {}},
                                                 "k:{\"name\":\"log-forwarder\"}": {".": {}, "f:args": {}, "f:image": {}, "f:name": {}}}}}
    }]);
    let mut managed = managed;
    let env_fields =
        &mut managed[0]["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["f:env"];
    for i in 0..75 {
        env_fields[format!("k:{{\"name\":\"APP_SETTING_{i:02}\"}}")] =
            json!({".": {}, "f:name": {}, "f:value": {}});
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "checkout-7d9c8b6f5-",
            "namespace": "shop",
            "labels": {"app": "checkout", "pod-template-hash": "7d9c8b6f5", "app.kubernetes.io/part-of": "shop", "app.kubernetes.io/version": "7.3.1"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9102", "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-7d9c8b6f5",
                                 "uid": "0f7a9e0e-5b5c-4a7e-9d3f-2b6f1c9f7a11", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": managed
        },
        "spec": {
            "containers": [app, agent],
            "volumes": [
                {"name": "config", "configMap": {"name": "checkout-config", "defaultMode": 420}},
                {"name": "logs", "emptyDir": {}},
                {"name": "kube-api-access-7xk2p", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ]}}
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "checkout",
            "serviceAccount": "checkout",
            "securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "schedulerName": "default-scheduler",
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ],
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
                "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "checkout"}}, "topologyKey": "kubernetes.io/hostname"}}]}}
        }
    })
}

/// A raw TLS connection to the server, verifying the service name; with `sni: false` the
/// client sends no SNI extension (the name is still verified).
pub async fn raw_tls(
    addr: SocketAddr,
    ca_pem: &str,
    sni: bool,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    install_crypto();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(std::io::Error::other)?)
            .map_err(std::io::Error::other)?;
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.enable_sni = sni;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name =
        rustls::pki_types::ServerName::try_from(SERVICE_NAME).map_err(std::io::Error::other)?;
    connector.connect(name, tcp).await
}

/// Sends one HTTP/1.1 request with `Connection: close` over a stream and returns the whole
/// response text.
pub async fn raw_request<S>(stream: &mut S, request: &[u8]) -> std::io::Result<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request).await?;
    stream.flush().await?;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Serialises a review with the apiserver's field order (Go struct order: `uid` first), which
/// matters for bodies that only partly decode.
pub fn wire(review: &Value) -> Vec<u8> {
    const TOP: [&str; 3] = ["kind", "apiVersion", "request"];
    const REQUEST: [&str; 15] = [
        "uid",
        "kind",
        "resource",
        "subResource",
        "requestKind",
        "requestResource",
        "requestSubResource",
        "name",
        "namespace",
        "operation",
        "userInfo",
        "object",
        "oldObject",
        "dryRun",
        "options",
    ];
    fn ordered(
        map: &serde_json::Map<String, Value>,
        order: &[&str],
        out: &mut Vec<u8>,
        nested: Option<(&str, &[&str])>,
    ) {
        out.push(b'{');
        let mut first = true;
        let keys = order
            .iter()
            .map(|k| k.to_string())
            .filter(|k| map.contains_key(k))
            .chain(map.keys().filter(|k| !order.contains(&k.as_str())).cloned());
        for key in keys {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend(serde_json::to_vec(&key).unwrap());
            out.push(b':');
            match (&map[&key], nested) {
                (Value::Object(inner), Some((name, order))) if key == name => {
                    ordered(inner, order, out, None)
                }
                (value, _) => out.extend(serde_json::to_vec(value).unwrap()),
            }
        }
        out.push(b'}');
    }
    match review {
        Value::Object(map) => {
            let mut out = Vec::with_capacity(16 * 1024);
            ordered(map, &TOP, &mut out, Some(("request", &REQUEST)));
            out
        }
        other => serde_json::to_vec(other).unwrap(),
    }
}
