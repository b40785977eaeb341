//! A small fake kube-apiserver over plain HTTP: ConfigMaps (GET one, list a namespace's in
//! pages) with per-namespace behaviours (403, a stall), lists of pod-bearing objects, and a
//! count of every request. Tests point a `kube::Client` or a kubeconfig at it.
#![allow(dead_code)]

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Api {
    /// (namespace, name) -> data.
    config_maps: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// Namespaces whose ConfigMaps the service account may not read.
    forbidden: BTreeSet<String>,
    /// Namespaces whose ConfigMap requests never get an answer.
    stalled: BTreeSet<String>,
    /// Namespaces whose ConfigMap requests are answered after a while.
    delayed: BTreeMap<String, Duration>,
    /// Namespaces whose ConfigMap requests get HTTP 500.
    failing: BTreeSet<String>,
    /// Plural -> items of pod-bearing kinds.
    objects: BTreeMap<String, Vec<Value>>,
    gets: HashMap<(String, String), usize>,
    lists: HashMap<String, usize>,
    rv: u64,
}

/// The fake apiserver; it runs until the test's runtime ends.
#[derive(Clone)]
pub struct FakeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<Api>>,
}

impl FakeApi {
    pub async fn start() -> FakeApi {
        let state = Arc::new(Mutex::new(Api::default()));
        let app = Router::new()
            .route(
                "/api/v1/namespaces/{ns}/configmaps/{name}",
                get(get_config_map),
            )
            .route("/api/v1/namespaces/{ns}/configmaps", get(list_config_maps))
            .route("/api/v1/{plural}", get(list_core))
            .route("/apis/{group}/v1/{plural}", get(list_grouped))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeApi { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client as pidone's server builds one, pointed here.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url().parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// A kubeconfig file that points here, for the CLI.
    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: '{}'}}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context: {{cluster: fake, user: u}}\ncurrent-context: c\n",
            self.url()
        )).unwrap();
        path
    }

    pub fn config_map(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let mut api = self.state.lock().unwrap();
        api.rv += 1;
        api.config_maps.insert(
            (namespace.into(), name.into()),
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }

    pub fn forbid(&self, namespace: &str) {
        self.state
            .lock()
            .unwrap()
            .forbidden
            .insert(namespace.into());
    }

    pub fn stall(&self, namespace: &str) {
        self.state.lock().unwrap().stalled.insert(namespace.into());
    }

    pub fn delay(&self, namespace: &str, by: Duration) {
        self.state
            .lock()
            .unwrap()
            .delayed
            .insert(namespace.into(), by);
    }

    pub fn fail(&self, namespace: &str, failing: bool) {
        let mut api = self.state.lock().unwrap();
        if failing {
            api.failing.insert(namespace.into());
        } else {
            api.failing.remove(namespace);
        }
    }

    pub fn objects(&self, plural: &str, items: Vec<Value>) {
        self.state
            .lock()
            .unwrap()
            .objects
            .insert(plural.into(), items);
    }

    /// GETs of one ConfigMap so far.
    pub fn gets(&self, namespace: &str, name: &str) -> usize {
        let api = self.state.lock().unwrap();
        api.gets
            .get(&(namespace.to_string(), name.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// GETs of ConfigMaps so far, all of them.
    pub fn all_gets(&self) -> usize {
        self.state.lock().unwrap().gets.values().sum()
    }

    /// List requests (pages) of a namespace's ConfigMaps so far.
    pub fn lists(&self, namespace: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .lists
            .get(namespace)
            .copied()
            .unwrap_or(0)
    }
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    (
        code,
        axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code.as_u16()})),
    )
        .into_response()
}

fn config_map_json(ns: &str, name: &str, data: &BTreeMap<String, String>, rv: u64) -> Value {
    json!({"kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": rv.to_string()},
        "data": data})
}

/// Answers a stalled namespace never (well past any deadline of a test).
async fn stall_if(state: &Arc<Mutex<Api>>, ns: &str) {
    let wait = {
        let api = state.lock().unwrap();
        if api.stalled.contains(ns) {
            Some(Duration::from_secs(120))
        } else {
            api.delayed.get(ns).copied()
        }
    };
    if let Some(wait) = wait {
        tokio::time::sleep(wait).await;
    }
}

async fn get_config_map(
    State(state): State<Arc<Mutex<Api>>>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    *state
        .lock()
        .unwrap()
        .gets
        .entry((ns.clone(), name.clone()))
        .or_default() += 1;
    stall_if(&state, &ns).await;
    let api = state.lock().unwrap();
    if api.failing.contains(&ns) {
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "etcdserver: request timed out".into(),
        );
    }
    if api.forbidden.contains(&ns) {
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "configmaps \"{name}\" is forbidden: User \"system:serviceaccount:pidone:pidone\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"{ns}\""
            ),
        );
    }
    match api.config_maps.get(&(ns.clone(), name.clone())) {
        Some(data) => axum::Json(config_map_json(&ns, &name, data, api.rv)).into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("configmaps \"{name}\" not found"),
        ),
    }
}

/// Lists in pages of `limit`, the continue token being the offset.
async fn list_config_maps(
    State(state): State<Arc<Mutex<Api>>>,
    Path(ns): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    *state.lock().unwrap().lists.entry(ns.clone()).or_default() += 1;
    stall_if(&state, &ns).await;
    let api = state.lock().unwrap();
    if api.forbidden.contains(&ns) {
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "configmaps is forbidden: User \"u\" cannot list resource \"configmaps\" in the namespace \"{ns}\""
            ),
        );
    }
    let all: Vec<Value> = api
        .config_maps
        .iter()
        .filter(|((n, _), _)| *n == ns)
        .map(|((n, name), data)| config_map_json(n, name, data, api.rv))
        .collect();
    let start: usize = q.get("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let end = start.saturating_add(limit).min(all.len());
    let page = all.get(start..end).unwrap_or_default().to_vec();
    let mut metadata = json!({"resourceVersion": api.rv.to_string()});
    if end < all.len() {
        metadata["continue"] = json!(end.to_string());
    }
    axum::Json(
        json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": metadata, "items": page}),
    )
    .into_response()
}

fn list_of(state: &Arc<Mutex<Api>>, plural: &str) -> Response {
    let items = state
        .lock()
        .unwrap()
        .objects
        .get(plural)
        .cloned()
        .unwrap_or_default();
    axum::Json(json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}))
        .into_response()
}

async fn list_core(State(state): State<Arc<Mutex<Api>>>, Path(plural): Path<String>) -> Response {
    list_of(&state, &plural)
}

async fn list_grouped(
    State(state): State<Arc<Mutex<Api>>>,
    Path((_group, plural)): Path<(String, String)>,
) -> Response {
    list_of(&state, &plural)
}
