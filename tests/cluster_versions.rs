//! `nativeSidecars: auto` against a fake apiserver over HTTPS: `/version`, node lists (paged,
//! with a resourceVersion) and node watches (JSON lines), restarts and refusals.

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pidone::cluster::{SidecarSupport, WatchOptions, start};
use pidone::engine::config::NativeSidecars;
use pidone::engine::evaluate::NativeSidecarSupport;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

// ---------------------------------------------------------------------------------------------
// The fake apiserver

#[derive(Default)]
struct ClusterState {
    git_version: String,
    nodes: BTreeMap<String, String>,
    rv: u64,
    /// Every watch event so far, with its resourceVersion, for watches that start behind.
    log: Vec<(u64, String)>,
    forbid_nodes: bool,
    version_requests: usize,
    list_requests: usize,
    watch_requests: usize,
    /// Watches from before this resourceVersion get `410 Gone` (history compacted).
    oldest_rv: u64,
}

/// Sent to live watches to end them.
const END_WATCHES: u64 = u64::MAX;

struct Shared {
    state: Mutex<ClusterState>,
    events: broadcast::Sender<(u64, String)>,
}

fn node_json(name: &str, kubelet: &str, rv: u64) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "resourceVersion": rv.to_string(), "labels": {"kubernetes.io/hostname": name}},
        "spec": {"podCIDR": "10.244.0.0/24"},
        "status": {
            "nodeInfo": {
                "architecture": "amd64", "bootID": "b", "containerRuntimeVersion": "containerd://1.7.0",
                "kernelVersion": "6.1.0", "kubeProxyVersion": kubelet, "kubeletVersion": kubelet,
                "machineID": "m", "operatingSystem": "linux", "osImage": "Linux", "systemUUID": "u"
            },
            "images": [{"names": ["registry.k8s.io/pause:3.9"], "sizeBytes": 1}]
        }
    })
}

impl Shared {
    fn record(&self, st: &mut ClusterState, kind: &str, name: &str, kubelet: &str) {
        st.rv += 1;
        let line =
            json!({"type": kind, "object": node_json(name, kubelet, st.rv)}).to_string() + "\n";
        st.log.push((st.rv, line.clone()));
        let _ = self.events.send((st.rv, line));
    }
}

struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: TlsAcceptor,
    ca_der: Vec<u8>,
    server: Option<JoinHandle<()>>,
}

impl FakeApiServer {
    /// Generates a CA and a certificate for 127.0.0.1, and picks a free port (not serving yet).
    async fn new(git_version: &str, nodes: &[(&str, &str)]) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "fake kubernetes CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();

        let certs = vec![leaf.der().clone()];
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let mut tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);

        let (events, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            state: Mutex::new(ClusterState {
                git_version: git_version.to_string(),
                ..ClusterState::default()
            }),
            events,
        });
        {
            let mut st = shared.state.lock().unwrap();
            for (name, kubelet) in nodes {
                st.rv += 1;
                st.nodes.insert(name.to_string(), kubelet.to_string());
            }
        }
        FakeApiServer {
            shared,
            addr,
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            ca_der: ca.der().to_vec(),
            server: None,
        }
    }

    async fn started(git_version: &str, nodes: &[(&str, &str)]) -> Self {
        let mut fake = Self::new(git_version, nodes).await;
        fake.start().await;
        fake
    }

    /// Serves on the port; every connection is dropped by [`stop`](Self::stop).
    async fn start(&mut self) {
        let listener = bind_retrying(self.addr).await;
        let router = Router::new()
            .route("/version", get(version))
            .route("/api/v1/nodes", get(nodes))
            .with_state(Arc::clone(&self.shared));
        let acceptor = self.acceptor.clone();
        self.server = Some(tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let router = router.clone();
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        }));
    }

    /// Stops listening and drops every open connection (watches included).
    async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    fn client_config(&self) -> kube::Config {
        let mut config = kube::Config::new(format!("https://{}", self.addr).parse().unwrap());
        config.root_cert = Some(vec![self.ca_der.clone()]);
        config.connect_timeout = Some(Duration::from_secs(2));
        config
    }

    fn set_node(&self, name: &str, kubelet: &str) {
        let mut st = self.shared.state.lock().unwrap();
        let kind = if st.nodes.contains_key(name) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        st.nodes.insert(name.to_string(), kubelet.to_string());
        self.shared.record(&mut st, kind, name, kubelet);
    }

    fn delete_node(&self, name: &str) {
        let mut st = self.shared.state.lock().unwrap();
        if let Some(kubelet) = st.nodes.remove(name) {
            self.shared.record(&mut st, "DELETED", name, &kubelet);
        }
    }

    fn set_git_version(&self, v: &str) {
        self.shared.state.lock().unwrap().git_version = v.to_string();
    }

    fn version_requests(&self) -> usize {
        self.shared.state.lock().unwrap().version_requests
    }

    /// Changes a node without a watch event, forgets the history (so resuming watches get
    /// `410 Gone`) and ends the open watches: only a relist can see the change.
    fn compact_with_unseen_change(&self, name: &str, kubelet: &str) {
        let mut st = self.shared.state.lock().unwrap();
        st.nodes.insert(name.to_string(), kubelet.to_string());
        st.rv += 1;
        st.oldest_rv = st.rv;
        st.log.clear();
        let _ = self.shared.events.send((END_WATCHES, String::new()));
    }

    /// (list requests, watch requests) so far.
    fn node_requests(&self) -> (usize, usize) {
        let st = self.shared.state.lock().unwrap();
        (st.list_requests, st.watch_requests)
    }

    fn forbid_nodes(&self, forbid: bool) {
        self.shared.state.lock().unwrap().forbid_nodes = forbid;
    }
}

async fn bind_retrying(addr: SocketAddr) -> TcpListener {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot bind {addr} again");
}

async fn version(State(shared): State<Arc<Shared>>) -> Response {
    let mut st = shared.state.lock().unwrap();
    st.version_requests += 1;
    let git = st.git_version.clone();
    let (major, minor) = git
        .trim_start_matches('v')
        .split_once('.')
        .map(|(a, b)| {
            let minor: String = b.chars().take_while(|c| c.is_ascii_digit()).collect();
            (a.to_string(), format!("{minor}+"))
        })
        .unwrap_or_default();
    axum::Json(json!({
        "major": major, "minor": minor, "gitVersion": git,
        "gitCommit": "0000", "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0", "compiler": "gc", "platform": "linux/amd64"
    }))
    .into_response()
}

async fn nodes(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = shared.state.lock().unwrap();
    if q.get("watch").map(String::as_str) == Some("true") {
        st.watch_requests += 1;
    } else {
        st.list_requests += 1;
    }
    // Lists only: a resumed watch still works, as with a Role that grants `watch` but not `list`.
    if st.forbid_nodes && q.get("watch").map(String::as_str) != Some("true") {
        let status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "nodes is forbidden: User \"system:serviceaccount:pidone:pidone\" cannot list resource \"nodes\"",
            "reason": "Forbidden", "details": {"kind": "nodes"}, "code": 403
        });
        return (StatusCode::FORBIDDEN, axum::Json(status)).into_response();
    }
    if q.get("watch").map(String::as_str) == Some("true") {
        let from: u64 = q
            .get("resourceVersion")
            .and_then(|rv| rv.parse().ok())
            .unwrap_or(0);
        if from < st.oldest_rv {
            let gone = json!({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {from} ({})", st.oldest_rv),
                "reason": "Expired", "code": 410
            }});
            return Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(gone.to_string() + "\n"))
                .unwrap();
        }
        let backlog: Vec<(u64, String)> = st
            .log
            .iter()
            .filter(|(rv, _)| *rv > from)
            .cloned()
            .collect();
        let last = backlog.last().map(|(rv, _)| *rv).unwrap_or(from);
        let rx = shared.events.subscribe();
        drop(st);
        let live = futures::stream::unfold((rx, last), |(mut rx, last)| async move {
            loop {
                match rx.recv().await {
                    Ok((END_WATCHES, _)) => return None,
                    Ok((rv, line)) if rv > last => return Some((line, (rx, rv))),
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
        });
        let body = futures::stream::iter(backlog.into_iter().map(|(_, line)| line))
            .chain(live)
            .map(|line| Ok::<_, std::io::Error>(Bytes::from(line)));
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from_stream(body))
            .unwrap();
    }
    // Paged list: `continue` is the index of the next node.
    let all: Vec<(&String, &String)> = st.nodes.iter().collect();
    let start: usize = q.get("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let end = start.saturating_add(limit).min(all.len());
    let items: Vec<Value> = all[start.min(end)..end]
        .iter()
        .map(|(name, kubelet)| node_json(name, kubelet, st.rv))
        .collect();
    let mut metadata = json!({"resourceVersion": st.rv.to_string()});
    if end < all.len() {
        metadata["continue"] = json!(end.to_string());
    }
    axum::Json(
        json!({"apiVersion": "v1", "kind": "NodeList", "metadata": metadata, "items": items}),
    )
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn fast() -> WatchOptions {
    WatchOptions {
        version_refresh: Duration::from_secs(600),
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(300),
        initial_wait: Duration::from_secs(10),
        page_size: 2,
        ..WatchOptions::default()
    }
}

async fn auto(config: kube::Config, options: WatchOptions) -> SidecarSupport {
    start(
        NativeSidecars::Auto,
        move || {
            let config = config.clone();
            async move { kube::Client::try_from(config) }
        },
        options,
    )
    .await
}

/// Polls until `pred` holds (20 s at most); returns the answer that satisfied it.
async fn eventually(
    support: &SidecarSupport,
    what: &str,
    pred: impl Fn(&NativeSidecarSupport) -> bool,
) -> NativeSidecarSupport {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = support.current();
        if pred(&now) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; still {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_supported(s: &NativeSidecarSupport) -> bool {
    *s == NativeSidecarSupport::Supported
}

fn reason(s: &NativeSidecarSupport) -> &str {
    match s {
        NativeSidecarSupport::Unsupported(why) => why,
        NativeSidecarSupport::Supported => "",
    }
}

fn unsupported_with(needle: &'static str) -> impl Fn(&NativeSidecarSupport) -> bool {
    move |s| reason(s).contains(needle)
}

// ---------------------------------------------------------------------------------------------
// Cases

#[tokio::test]
async fn apiserver_and_every_node_at_1_29_or_newer_is_supported() {
    // Five nodes with pages of two: the list needs three requests.
    let fake = FakeApiServer::started(
        "v1.30.2-eks-1234",
        &[
            ("ip-10-0-1-1", "v1.29.0-eks-5e0fdde"),
            ("ip-10-0-1-2", "v1.30.2-eks-1234"),
            ("ip-10-0-1-3", "v1.30.2-eks-1234"),
            ("ip-10-0-1-4", "v1.29.15"),
            ("ip-10-0-1-5", "v1.30.0+k3s1"),
        ],
    )
    .await;
    let support = auto(fake.client_config(), fast()).await;
    // `start` waits for the first decision, so no polling here.
    assert_eq!(support.current(), NativeSidecarSupport::Supported);
    assert!(support.is_watching());
    assert_eq!(fake.node_requests().0, 3, "five nodes in pages of two");
}

#[tokio::test]
async fn an_old_kubelet_makes_it_unsupported_and_is_named() {
    let fake = FakeApiServer::started(
        "v1.30.2",
        &[
            ("ip-10-0-1-4", "v1.30.2"),
            ("ip-10-0-1-5", "v1.28.9"),
            ("ip-10-0-1-6", "v1.30.2"),
        ],
    )
    .await;
    let support = auto(fake.client_config(), fast()).await;
    assert_eq!(
        support.current(),
        NativeSidecarSupport::Unsupported(
            "node ip-10-0-1-5 runs kubelet v1.28.9; native sidecars need kubelet 1.29 or newer on every node".into()
        )
    );
}

#[tokio::test]
async fn watch_events_flip_the_answer_both_ways() {
    let fake = FakeApiServer::started("v1.31.0", &[("a", "v1.31.0"), ("b", "v1.30.1")]).await;
    let support = auto(fake.client_config(), fast()).await;
    assert_eq!(support.current(), NativeSidecarSupport::Supported);
    let (lists_before, _) = fake.node_requests();

    // A node joins with an old kubelet.
    fake.set_node("old-1", "v1.28.12");
    let now = eventually(&support, "the 1.28 node", unsupported_with("node old-1")).await;
    assert!(reason(&now).contains("runs kubelet v1.28.12"), "{now:?}");

    // It is upgraded in place.
    fake.set_node("old-1", "v1.29.3");
    eventually(&support, "the upgrade", is_supported).await;

    // Another old one joins, then is deleted.
    fake.set_node("old-2", "v1.27.3");
    eventually(&support, "the 1.27 node", unsupported_with("node old-2")).await;
    fake.delete_node("old-2");
    eventually(&support, "the deletion", is_supported).await;

    // All of it came through one watch: no relist, no second watch.
    let (lists, watches) = fake.node_requests();
    assert_eq!(
        lists, lists_before,
        "the watch broke and the nodes were listed again"
    );
    assert_eq!(watches, 1);
}

#[tokio::test]
async fn an_old_apiserver_is_unsupported_until_its_upgrade_is_read() {
    let fake = FakeApiServer::started("v1.28.3", &[("a", "v1.28.3")]).await;
    let options = WatchOptions {
        version_refresh: Duration::from_millis(200),
        ..fast()
    };
    let support = auto(fake.client_config(), options).await;
    assert_eq!(
        support.current(),
        NativeSidecarSupport::Unsupported(
            "the apiserver is v1.28.3; native sidecars need Kubernetes 1.29 or newer".into()
        )
    );

    // The control plane is upgraded; the kubelet still lags.
    fake.set_git_version("v1.29.1");
    let now = eventually(
        &support,
        "the new apiserver version",
        unsupported_with("node a"),
    )
    .await;
    assert!(reason(&now).contains("runs kubelet v1.28.3"), "{now:?}");
    assert!(fake.version_requests() >= 2);

    fake.set_node("a", "v1.29.1");
    eventually(&support, "the kubelet upgrade", is_supported).await;
}

#[tokio::test]
async fn unreachable_at_start_then_recovers() {
    // Nothing listens on the port yet.
    let mut fake = FakeApiServer::new("v1.30.0", &[("a", "v1.30.0")]).await;
    let options = WatchOptions {
        initial_wait: Duration::from_secs(5),
        ..fast()
    };
    let support = auto(fake.client_config(), options).await;
    let now = eventually(
        &support,
        "the connection error",
        unsupported_with("cannot reach the Kubernetes API to check versions"),
    )
    .await;
    assert!(!is_supported(&now));

    fake.start().await;
    eventually(&support, "recovery", is_supported).await;
}

#[tokio::test]
async fn server_going_away_keeps_the_node_set_and_coming_back_catches_up() {
    let mut fake = FakeApiServer::started("v1.30.0", &[("a", "v1.30.0")]).await;
    let support = auto(fake.client_config(), fast()).await;
    assert_eq!(support.current(), NativeSidecarSupport::Supported);
    let (lists_before, watches_before) = fake.node_requests();

    // A broken watch is resumed, not a reason to forget the nodes: the answer stays.
    fake.stop().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(support.current(), NativeSidecarSupport::Supported);

    // A node that joined during the outage is replayed by the resumed watch.
    fake.set_node("late", "v1.28.0");
    fake.start().await;
    eventually(&support, "the replay", unsupported_with("node late")).await;
    fake.delete_node("late");
    eventually(&support, "recovery", is_supported).await;
    let (lists, watches) = fake.node_requests();
    assert_eq!(
        lists, lists_before,
        "resuming from the resourceVersion needs no list"
    );
    assert!(watches > watches_before);
}

#[tokio::test]
async fn a_failed_relist_is_unsupported_until_it_succeeds() {
    let fake = FakeApiServer::started("v1.30.0", &[("a", "v1.30.0")]).await;
    let support = auto(fake.client_config(), fast()).await;
    assert_eq!(support.current(), NativeSidecarSupport::Supported);
    // History compacted (the resumed watch gets 410 Gone) and the list is refused.
    fake.forbid_nodes(true);
    fake.compact_with_unseen_change("hidden", "v1.30.1");
    eventually(
        &support,
        "the refused relist",
        unsupported_with("the Kubernetes API refused to list nodes (HTTP 403"),
    )
    .await;
    fake.forbid_nodes(false);
    eventually(&support, "the relist", is_supported).await;
}

#[tokio::test]
async fn refused_node_list_names_the_http_status() {
    let fake = FakeApiServer::started("v1.30.0", &[("a", "v1.30.0")]).await;
    fake.forbid_nodes(true);
    let support = auto(fake.client_config(), fast()).await;
    let now = support.current();
    assert!(
        reason(&now)
            .starts_with("the Kubernetes API refused to list nodes (HTTP 403: nodes is forbidden"),
        "{now:?}"
    );
    // Granted later (the ClusterRole was applied): the retry picks it up.
    fake.forbid_nodes(false);
    eventually(&support, "the grant", is_supported).await;
}

#[tokio::test]
async fn no_nodes_yet_depends_on_the_apiserver_version() {
    let fake = FakeApiServer::started("v1.33.0", &[]).await;
    let support = auto(fake.client_config(), fast()).await;
    assert_eq!(support.current(), NativeSidecarSupport::Supported);

    let fake = FakeApiServer::started("v1.30.0", &[]).await;
    let support = auto(fake.client_config(), fast()).await;
    assert!(
        reason(&support.current()).starts_with("no node has reported a kubelet version yet"),
        "{:?}",
        support.current()
    );
    fake.set_node("first", "v1.30.0");
    eventually(&support, "the first node", is_supported).await;
}

#[tokio::test]
async fn an_expired_watch_relists() {
    let fake = FakeApiServer::started("v1.30.0", &[("a", "v1.30.0")]).await;
    let support = auto(fake.client_config(), fast()).await;
    assert_eq!(support.current(), NativeSidecarSupport::Supported);
    let (lists_before, watches_before) = fake.node_requests();

    fake.compact_with_unseen_change("hidden", "v1.28.1");
    eventually(&support, "the relist", unsupported_with("node hidden")).await;
    let (lists, watches) = fake.node_requests();
    assert!(lists > lists_before, "no relist");
    // The ended watch was resumed (and got 410 Gone) before the relist.
    assert!(watches > watches_before);
}

#[tokio::test]
async fn dropping_the_handle_stops_the_watch() {
    let fake = FakeApiServer::started("v1.30.0", &[("a", "v1.30.0")]).await;
    let support = auto(fake.client_config(), fast()).await;
    assert_eq!(support.current(), NativeSidecarSupport::Supported);
    let copy = support.clone();
    drop(support);
    // A clone keeps it alive.
    fake.set_node("b", "v1.28.0");
    eventually(
        &copy,
        "the event through the clone",
        unsupported_with("node b"),
    )
    .await;
    drop(copy);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = fake.node_requests();
    let versions_before = fake.version_requests();
    // Were the task alive, this would make it relist (and the refresh would keep asking).
    fake.compact_with_unseen_change("c", "v1.30.0");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(fake.node_requests(), before);
    assert_eq!(fake.version_requests(), versions_before);
}
