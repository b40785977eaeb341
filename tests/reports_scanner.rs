//! The report scanner against a fake apiserver over HTTPS: a generic in-memory object store
//! with lists, watches (JSON lines from a resourceVersion), create, replace (with
//! resourceVersion preconditions), server-side apply and delete. Shows that the reports follow
//! creations and deletions, and that only the Lease holder writes them, also after a takeover.

#[path = "reports_support/crd_schema.rs"]
#[allow(dead_code)]
mod crd_schema;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pidone::engine::Config;
use pidone::engine::config::ParserConfig;
use pidone::engine::evaluate::{EvalContext, Evaluation};
use pidone::reports::lease::LeaseOptions;
use pidone::reports::scanner::{self, Evaluator, ScanStats, ScannerOptions};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_rustls::TlsAcceptor;

// ---------------------------------------------------------------------------------------------
// The fake apiserver

/// One write as the apiserver saw it.
#[derive(Debug, Clone)]
struct Write {
    method: String,
    /// `group/version/plural`.
    resource: String,
    namespace: Option<String>,
    name: String,
    replica: String,
    query: String,
    content_type: String,
}

#[derive(Default)]
struct Store {
    /// resource -> (namespace or "", name) -> object.
    objects: BTreeMap<String, BTreeMap<(String, String), Value>>,
    rv: u64,
    log: Vec<(u64, String, String, String)>,
    writes: Vec<Write>,
}

struct Shared {
    store: Mutex<Store>,
    events: broadcast::Sender<(u64, String, String, String)>,
}

impl Shared {
    /// Stores `object` (or removes it) and records the watch event.
    fn put(
        &self,
        st: &mut Store,
        resource: &str,
        ns: &str,
        name: &str,
        object: Option<Value>,
    ) -> Option<Value> {
        st.rv += 1;
        let rv = st.rv;
        let coll = st.objects.entry(resource.to_string()).or_default();
        let key = (ns.to_string(), name.to_string());
        let (kind, stored) = match object {
            Some(mut o) => {
                o["metadata"]["resourceVersion"] = json!(rv.to_string());
                if o["metadata"].get("uid").is_none() {
                    o["metadata"]["uid"] =
                        json!(format!("uid-{resource}-{ns}-{name}").replace('/', "-"));
                }
                let kind = if coll.contains_key(&key) {
                    "MODIFIED"
                } else {
                    "ADDED"
                };
                coll.insert(key, o.clone());
                (kind, o)
            }
            None => {
                let mut o = coll.remove(&key)?;
                o["metadata"]["resourceVersion"] = json!(rv.to_string());
                ("DELETED", o)
            }
        };
        let line = json!({"type": kind, "object": stored}).to_string() + "\n";
        st.log
            .push((rv, resource.to_string(), ns.to_string(), line.clone()));
        let _ = self
            .events
            .send((rv, resource.to_string(), ns.to_string(), line));
        Some(stored)
    }
}

struct Fake {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca_der: Vec<u8>,
    _server: tokio::task::JoinHandle<()>,
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

/// `/api/v1/...` or `/apis/<group>/<version>/...` -> (group/version/plural, namespace, name).
fn parse(path: &str) -> Option<(String, Option<String>, Option<String>)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (gv, rest) = match *segs.first()? {
        "api" => (segs.get(1)?.to_string(), &segs[2..]),
        "apis" => (format!("{}/{}", segs.get(1)?, segs.get(2)?), &segs[3..]),
        _ => return None,
    };
    let (ns, plural, name) = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        (Some(rest[1].to_string()), rest[2], rest.get(3))
    } else {
        (None, *rest.first()?, rest.get(1))
    };
    Some((format!("{gv}/{plural}"), ns, name.map(|n| n.to_string())))
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((resource, ns, name)) = parse(uri.path()) else {
        return status(404, "NotFound", "no such path");
    };
    let query: HashMap<String, String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let header = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let replica = header("x-replica");
    let mut st = shared.store.lock().unwrap();
    if method != Method::GET {
        st.writes.push(Write {
            method: method.to_string(),
            resource: resource.clone(),
            namespace: ns.clone(),
            name: name.clone().unwrap_or_default(),
            replica: replica.clone(),
            query: uri.query().unwrap_or_default().to_string(),
            content_type: header("content-type"),
        });
    }
    let ns_key = ns.clone().unwrap_or_default();
    match (method.as_str(), name) {
        ("GET", None) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            let from: u64 = query
                .get("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let matches = {
                let resource = resource.clone();
                let ns = ns.clone();
                move |r: &str, n: &str| r == resource && ns.as_deref().is_none_or(|want| want == n)
            };
            let backlog: Vec<String> = st
                .log
                .iter()
                .filter(|(rv, r, n, _)| *rv > from && matches(r, n))
                .map(|(_, _, _, l)| l.clone())
                .collect();
            let rx = shared.events.subscribe();
            drop(st);
            let live = futures::stream::unfold(rx, move |mut rx| {
                let matches = matches.clone();
                async move {
                    loop {
                        match rx.recv().await {
                            Ok((rv, r, n, line)) if rv > from && matches(&r, &n) => {
                                return Some((line, rx));
                            }
                            Ok(_) => continue,
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => return None,
                        }
                    }
                }
            });
            let body = futures::stream::iter(backlog)
                .chain(live)
                .map(|l| Ok::<_, std::io::Error>(Bytes::from(l)));
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from_stream(body))
                .unwrap()
        }
        ("GET", None) => {
            let items: Vec<Value> = st
                .objects
                .get(&resource)
                .map(|c| {
                    c.iter()
                        .filter(|((n, _), _)| ns.as_deref().is_none_or(|want| want == n))
                        .map(|(_, o)| o.clone())
                        .collect()
                })
                .unwrap_or_default();
            axum::Json(json!({"apiVersion": "v1", "kind": "List",
                              "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}))
            .into_response()
        }
        ("GET", Some(name)) => match st
            .objects
            .get(&resource)
            .and_then(|c| c.get(&(ns_key, name.clone())))
        {
            Some(o) => axum::Json(o.clone()).into_response(),
            None => status(404, "NotFound", &format!("{resource} {name:?} not found")),
        },
        ("POST", None) => {
            let Ok(object) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "not JSON");
            };
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if st
                .objects
                .get(&resource)
                .is_some_and(|c| c.contains_key(&(ns_key.clone(), name.clone())))
            {
                return status(409, "AlreadyExists", "already exists");
            }
            let stored = shared.put(&mut st, &resource, &ns_key, &name, Some(object));
            (StatusCode::CREATED, axum::Json(stored)).into_response()
        }
        ("PUT", Some(name)) => {
            let Ok(object) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "not JSON");
            };
            let current = st
                .objects
                .get(&resource)
                .and_then(|c| c.get(&(ns_key.clone(), name.clone())));
            let Some(current) = current else {
                return status(404, "NotFound", "not found");
            };
            if object["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                return status(409, "Conflict", "the object has been modified");
            }
            let stored = shared.put(&mut st, &resource, &ns_key, &name, Some(object));
            axum::Json(stored).into_response()
        }
        ("PATCH", Some(name)) => {
            if header("content-type") != "application/apply-patch+yaml" {
                return status(415, "UnsupportedMediaType", "only server-side apply here");
            }
            let Ok(object) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "not JSON");
            };
            let stored = shared.put(&mut st, &resource, &ns_key, &name, Some(object));
            axum::Json(stored).into_response()
        }
        ("DELETE", Some(name)) => match shared.put(&mut st, &resource, &ns_key, &name, None) {
            Some(o) => axum::Json(o).into_response(),
            None => status(404, "NotFound", "not found"),
        },
        _ => status(405, "MethodNotAllowed", "not here"),
    }
}

impl Fake {
    async fn start() -> Fake {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let mut tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (events, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            events,
        });
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
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
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Fake {
            shared,
            addr,
            ca_der: ca.der().to_vec(),
            _server: server,
        }
    }

    fn client(&self, replica: &str) -> kube::Client {
        let mut config = kube::Config::new(format!("https://{}", self.addr).parse().unwrap());
        config.root_cert = Some(vec![self.ca_der.clone()]);
        config.connect_timeout = Some(Duration::from_secs(2));
        config.headers = vec![("x-replica".parse().unwrap(), replica.parse().unwrap())];
        kube::Client::try_from(config).unwrap()
    }

    fn apply(&self, resource: &str, object: Value) {
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let mut st = self.shared.store.lock().unwrap();
        self.shared.put(&mut st, resource, &ns, &name, Some(object));
    }

    fn delete(&self, resource: &str, ns: &str, name: &str) {
        let mut st = self.shared.store.lock().unwrap();
        self.shared.put(&mut st, resource, ns, name, None);
    }

    fn get(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let st = self.shared.store.lock().unwrap();
        st.objects
            .get(resource)?
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    fn writes(&self) -> Vec<Write> {
        self.shared.store.lock().unwrap().writes.clone()
    }
}

const REPORTS: &str = "wgpolicyk8s.io/v1alpha2/policyreports";
const CLUSTER_REPORTS: &str = "wgpolicyk8s.io/v1alpha2/clusterpolicyreports";
const LEASES: &str = "coordination.k8s.io/v1/leases";

fn namespace(name: &str, mode: Option<&str>) -> Value {
    let mut ns = json!({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": name, "uid": format!("ns-uid-{name}"), "labels": {"kubernetes.io/metadata.name": name}}});
    if let Some(mode) = mode {
        ns["metadata"]["labels"]["pidone.io/mode"] = json!(mode);
    }
    ns
}

fn deployment(ns: &str, name: &str, script: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": ns, "generation": 1},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": "example/app:1",
                                                          "command": ["sh", "-c", script]}]}}}})
}

fn pod(ns: &str, name: &str, script: &str, owner: Option<&str>) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
                       "spec": {"containers": [{"name": "main", "image": "example/app:1",
                                                "command": ["sh", "-c", script]}]},
                       "status": {"phase": "Running"}});
    if let Some(owner) = owner {
        p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                    "name": owner, "uid": "rs-uid", "controller": true}]);
    }
    p
}

struct TestEvaluator {
    engine: pidone::resolve::Evaluator,
    config: Arc<Config>,
}

impl Evaluator for TestEvaluator {
    fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }
    fn evaluate(&self, object: &Value) -> Option<Evaluation> {
        let ctx = EvalContext {
            namespace: object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str),
            ..EvalContext::default()
        };
        self.engine.evaluate(object, &ctx).ok().flatten()
    }
}

fn evaluator() -> Arc<dyn Evaluator> {
    let config = Config::from_yaml(
        "mode: audit\nreports: {enabled: true, minInterval: 200ms, maxWritesPerSecond: 50}\n",
    )
    .unwrap();
    let config = Arc::new(config);
    let engine = pidone::resolve::Evaluator::new(
        Arc::clone(&config),
        pidone::cli::analyzer(&ParserConfig::default()),
    )
    .unwrap();
    Arc::new(TestEvaluator { engine, config })
}

fn options(identity: &str) -> ScannerOptions {
    let mut lease = LeaseOptions::new("pidone-reports", "pidone", identity);
    lease.lease_duration = Duration::from_millis(1500);
    lease.renew_deadline = Duration::from_millis(1000);
    lease.retry_period = Duration::from_millis(200);
    ScannerOptions {
        lease,
        tick: Duration::from_millis(100),
    }
}

fn start_replica(fake: &Fake, identity: &str) -> (tokio::task::JoinHandle<()>, Arc<ScanStats>) {
    let stats = Arc::new(ScanStats::default());
    let task = tokio::spawn(scanner::run(
        fake.client(identity),
        evaluator(),
        options(identity),
        Arc::clone(&stats),
    ));
    (task, stats)
}

/// Polls until `pred` holds (20 s at most).
async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rules_for(report: &Value, object: &str) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resources"][0]["name"] == object)
        .map(|r| r["rule"].as_str().unwrap().to_string())
        .collect()
}

/// Validates what pidone applied (the fields the apiserver adds are set aside).
fn assert_valid(stored: &Value) {
    let mut report = stored.clone();
    if let Some(meta) = report["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
        meta.remove("uid");
    }
    let report = &report;
    let file = match report["kind"].as_str().unwrap() {
        "PolicyReport" => "wgpolicyk8s.io_policyreports.yaml",
        _ => "wgpolicyk8s.io_clusterpolicyreports.yaml",
    };
    let text = std::fs::read_to_string(format!("tests/fixtures/crds/{file}")).unwrap();
    let errors = crd_schema::validate(&crd_schema::schema_of(&text, "v1alpha2"), report);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

fn holder(fake: &Fake) -> Option<String> {
    fake.get(LEASES, "pidone", "pidone-reports")?["spec"]["holderIdentity"]
        .as_str()
        .map(str::to_string)
}

fn report_writes(fake: &Fake) -> Vec<Write> {
    fake.writes()
        .into_iter()
        .filter(|w| w.resource == REPORTS || w.resource == CLUSTER_REPORTS)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Cases

#[tokio::test]
async fn reports_follow_creations_and_deletions() {
    let fake = Fake::start().await;
    fake.apply("v1/namespaces", namespace("team-a", None));
    fake.apply("v1/namespaces", namespace("team-b", Some("enforce")));
    fake.apply("v1/namespaces", namespace("quiet", Some("off")));
    fake.apply(
        "apps/v1/deployments",
        deployment("team-a", "web", "envsubst < t > c; nginx -g 'daemon off;'"),
    );
    // Owned by a ReplicaSet: reported through its owner, never itself.
    fake.apply(
        "v1/pods",
        pod(
            "team-a",
            "web-abc12",
            "envsubst < t > c; nginx -g 'daemon off;'",
            Some("web-6d4f"),
        ),
    );
    fake.apply("v1/pods", pod("quiet", "ignored", "a & b & wait", None));
    let (_task, stats) = start_replica(&fake, "replica-a");

    let report = eventually("team-a's report", || fake.get(REPORTS, "team-a", "pidone")).await;
    assert_valid(&report);
    assert_eq!(rules_for(&report, "web"), ["shell-no-exec"]);
    assert!(
        rules_for(&report, "web-abc12").is_empty(),
        "owned pods are left to their owner"
    );
    assert_eq!(
        report["metadata"]["ownerReferences"][0]["uid"],
        "ns-uid-team-a"
    );
    assert_eq!(
        report["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "pidone"
    );
    assert!(
        fake.get(REPORTS, "quiet", "pidone").is_none(),
        "mode off: no report"
    );

    // A bare Pod with several long-running programs appears in team-b.
    fake.apply(
        "v1/pods",
        pod("team-b", "solo", "app & agent & wait -n", None),
    );
    let report = eventually("team-b's report", || {
        fake.get(REPORTS, "team-b", "pidone")
            .filter(|r| !rules_for(r, "solo").is_empty())
    })
    .await;
    assert_valid(&report);
    assert_eq!(rules_for(&report, "solo"), ["multi-process"]);
    assert_eq!(report["summary"]["fail"], 1);

    // A second finding in team-a, then the fix: the report follows.
    fake.apply(
        "apps/v1/deployments",
        deployment("team-a", "worker", "while true; do sync; sleep 60; done"),
    );
    eventually("worker in team-a's report", || {
        fake.get(REPORTS, "team-a", "pidone")
            .filter(|r| !rules_for(r, "worker").is_empty())
    })
    .await;
    fake.apply(
        "apps/v1/deployments",
        deployment(
            "team-a",
            "web",
            "envsubst < t > c; exec nginx -g 'daemon off;'",
        ),
    );
    let report = eventually("web fixed", || {
        fake.get(REPORTS, "team-a", "pidone")
            .filter(|r| rules_for(r, "web").is_empty())
    })
    .await;
    assert!(!rules_for(&report, "worker").is_empty());

    // Deleting the last reported objects of a namespace deletes its report.
    fake.delete("apps/v1/deployments", "team-a", "web");
    fake.delete("apps/v1/deployments", "team-a", "worker");
    eventually("team-a's report deleted", || {
        fake.get(REPORTS, "team-a", "pidone")
            .is_none()
            .then_some(())
    })
    .await;

    // The cluster report has one result per namespace, with its mode.
    let cluster = eventually("the cluster report", || {
        // Settled: team-a has nothing left to fix.
        fake.get(CLUSTER_REPORTS, "", "pidone").filter(|c| {
            c["results"].as_array().is_some_and(|r| {
                r.len() == 3
                    && r.iter().any(|x| {
                        x["resources"][0]["name"] == "team-a"
                            && x["properties"]["mutate"] == "0"
                            && x["properties"]["warn"] == "0"
                    })
            })
        })
    })
    .await;
    assert_valid(&cluster);
    let modes: BTreeMap<String, String> = cluster["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["resources"][0]["name"].as_str().unwrap().to_string(),
                r["properties"]["mode"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(modes["team-a"], "audit");
    assert_eq!(modes["team-b"], "enforce");
    assert_eq!(modes["quiet"], "off");

    // Every report write is a server-side apply by the field manager, or a delete.
    for w in report_writes(&fake) {
        match w.method.as_str() {
            "PATCH" => {
                assert_eq!(w.content_type, "application/apply-patch+yaml");
                assert!(w.query.contains("fieldManager=pidone"), "{w:?}");
                assert!(w.query.contains("force=true"), "{w:?}");
            }
            "DELETE" => assert_eq!(
                (w.namespace.as_deref(), w.name.as_str()),
                (Some("team-a"), "pidone")
            ),
            other => panic!("unexpected {other} on a report: {w:?}"),
        }
    }
    assert!(stats.writes.load(std::sync::atomic::Ordering::Relaxed) >= 4);
    assert_eq!(stats.deletes.load(std::sync::atomic::Ordering::Relaxed), 1);
    // Unchanged reports are not rewritten: the writes settle (after any write still held back
    // by the 200 ms minimum interval).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let settled = report_writes(&fake).len();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        report_writes(&fake).len(),
        settled,
        "rewrites without a change"
    );
}

#[tokio::test]
async fn only_the_lease_holder_writes_and_a_successor_takes_over() {
    let fake = Fake::start().await;
    fake.apply("v1/namespaces", namespace("team-a", None));
    fake.apply(
        "apps/v1/deployments",
        deployment("team-a", "web", "setup; app --port 80"),
    );
    let (task_a, _) = start_replica(&fake, "replica-a");
    let (task_b, _) = start_replica(&fake, "replica-b");

    eventually("a report", || fake.get(REPORTS, "team-a", "pidone")).await;
    let first = holder(&fake).expect("a holder");
    // Let both run a while: the other one never writes a report.
    fake.apply(
        "apps/v1/deployments",
        deployment("team-a", "api", "app & agent & wait"),
    );
    eventually("api reported", || {
        fake.get(REPORTS, "team-a", "pidone")
            .filter(|r| !rules_for(r, "api").is_empty())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        holder(&fake).as_deref(),
        Some(first.as_str()),
        "the holder renews"
    );
    let writers: Vec<String> = report_writes(&fake)
        .into_iter()
        .map(|w| w.replica)
        .collect();
    assert!(!writers.is_empty());
    assert!(
        writers.iter().all(|w| *w == first),
        "report writes by {writers:?}; holder {first}"
    );

    // The holder stops (its pod is gone, the Lease is not released): the other takes over
    // once the Lease has expired, and writes what changed meanwhile.
    let (stopped, survivor) = if first == "replica-a" {
        task_a.abort();
        ("replica-a", task_b)
    } else {
        task_b.abort();
        ("replica-b", task_a)
    };
    let writes_before = report_writes(&fake).len();
    fake.apply(
        "apps/v1/deployments",
        deployment("team-a", "cron", "while true; do sync; sleep 60; done"),
    );
    eventually("the takeover", || holder(&fake).filter(|h| h != stopped)).await;
    eventually("cron reported by the successor", || {
        fake.get(REPORTS, "team-a", "pidone")
            .filter(|r| !rules_for(r, "cron").is_empty())
    })
    .await;
    let after: Vec<Write> = report_writes(&fake)
        .into_iter()
        .skip(writes_before)
        .collect();
    assert!(!after.is_empty());
    assert!(after.iter().all(|w| w.replica != stopped), "{after:?}");
    let lease = fake.get(LEASES, "pidone", "pidone-reports").unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    // The Lease is only ever written by the replicas, with preconditions (PUT) or create (POST).
    for w in fake.writes().iter().filter(|w| w.resource == LEASES) {
        assert!(matches!(w.method.as_str(), "POST" | "PUT"), "{w:?}");
    }
    survivor.abort();
}
