//! Whether pidone may turn side agents into native sidecars, kept current from the cluster.
//!
//! `nativeSidecars: always` and `never` need no cluster access. `auto` starts a background task
//! that reads the apiserver's `/version` (again every [`WatchOptions::version_refresh`], since
//! control planes are upgraded in place), lists the nodes and then watches them, and decides with
//! [`versions::decide`] after every change. Admission requests read the latest decision from an
//! [`ArcSwap`]: a load, no lock, no I/O. The nodes are followed with kube's runtime
//! [`watcher`], which lists in pages, resumes broken watches from their resourceVersion and lists
//! again after `410 Gone`.
//!
//! When the API cannot be reached (or refuses), the answer is `Unsupported` with the reason, so
//! the side-agent rule falls back to `warn`, and the task keeps retrying with exponential
//! backoff. Only a failed node list turns the answer to `Unsupported`: a watch that breaks keeps
//! the node set it had while it is resumed. A `/version` refresh that fails after an earlier
//! success keeps the last version.
//!
//! # RBAC
//!
//! The service account needs (the Helm chart grants these in a ClusterRole):
//!
//! ```yaml
//! rules:
//!   - nonResourceURLs: ["/version"]
//!     verbs: ["get"]
//!   - apiGroups: [""]
//!     resources: ["nodes"]
//!     verbs: ["list", "watch"]
//! ```
//!
//! (`/version` is also readable by every authenticated user through the default
//! `system:public-info-viewer` binding.)
//!
//! # Use
//!
//! - Server: `let support = start(config.native_sidecars, kube::Client::try_default,
//!   WatchOptions::default()).await;` then per request
//!   `EvalContext { native_sidecars: support.current(), .. }`. When a reload changes
//!   `nativeSidecars`, call [`start`] again and replace the handle; dropping the last clone of a
//!   handle stops its task.
//! - Offline CLI (`fix`, `audit` of files): [`offline`]: `auto` counts as supported.

use crate::cluster::versions::{self, ApiServerVersion, NodeKubelet};
use crate::engine::config::NativeSidecars;
use crate::engine::evaluate::NativeSidecarSupport;
use arc_swap::ArcSwap;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The reason given when the config turns native sidecars off.
pub const NEVER_REASON: &str = "nativeSidecars is never in the config";
/// The reason given before the first check has finished.
pub const NOT_CHECKED_REASON: &str = "the Kubernetes versions have not been checked yet";

/// The answer for the offline CLI (`pidone fix`, `pidone audit` of files): there is no cluster to
/// ask, so `auto` counts as supported; only `never` says no.
pub fn offline(mode: NativeSidecars) -> NativeSidecarSupport {
    match mode {
        NativeSidecars::Auto | NativeSidecars::Always => NativeSidecarSupport::Supported,
        NativeSidecars::Never => NativeSidecarSupport::Unsupported(NEVER_REASON.into()),
    }
}

/// Timings of the `auto` watcher.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// How often `/version` is read again after a success.
    pub version_refresh: Duration,
    /// First retry delay after a failure; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// `timeoutSeconds` asked of each node watch (the apiserver allows up to 295 s). A watch
    /// that delivers nothing for this long plus 5 s is considered dead.
    pub watch_timeout: Duration,
    /// How long [`start`] waits for the first decision before returning (the handle answers
    /// [`NOT_CHECKED_REASON`] until then).
    pub initial_wait: Duration,
    /// Page size of node lists.
    pub page_size: u32,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            version_refresh: Duration::from_secs(600),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            watch_timeout: Duration::from_secs(290),
            initial_wait: Duration::from_secs(5),
            page_size: 500,
        }
    }
}

/// Why a check failed; its `Display` is the reason users see.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot reach the Kubernetes API to check versions: cannot build a client: {0}")]
    Client(String),
    #[error("the Kubernetes API refused to {action} (HTTP {code}: {message})")]
    Refused {
        action: &'static str,
        code: u16,
        message: String,
    },
    #[error("cannot reach the Kubernetes API to check versions: {action}: {source}")]
    Unreachable {
        action: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("cannot read the apiserver version: {0}")]
    BadVersion(#[from] versions::VersionError),
}

impl CheckError {
    fn from_kube(action: &'static str, e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => CheckError::Refused {
                action,
                code: status.code,
                message: status.message,
            },
            source => CheckError::Unreachable { action, source },
        }
    }
}

/// The current answer to "may side agents become native sidecars?". Cheap to clone; the
/// background task (mode `auto`) stops when the last clone is dropped.
#[derive(Clone)]
pub struct SidecarSupport {
    inner: Arc<Inner>,
}

struct Inner {
    current: Arc<ArcSwap<NativeSidecarSupport>>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl std::fmt::Debug for SidecarSupport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidecarSupport")
            .field("current", &*self.load())
            .field("watching", &self.inner.task.is_some())
            .finish()
    }
}

impl SidecarSupport {
    /// A fixed answer, with no cluster access.
    pub fn fixed(support: NativeSidecarSupport) -> Self {
        SidecarSupport {
            inner: Arc::new(Inner {
                current: Arc::new(ArcSwap::from_pointee(support)),
                task: None,
            }),
        }
    }

    /// The latest decision, shared.
    pub fn load(&self) -> Arc<NativeSidecarSupport> {
        self.inner.current.load_full()
    }

    /// The latest decision, owned (what `EvalContext::native_sidecars` takes).
    pub fn current(&self) -> NativeSidecarSupport {
        NativeSidecarSupport::clone(&self.inner.current.load())
    }

    /// True when a background task keeps the answer current (mode `auto`).
    pub fn is_watching(&self) -> bool {
        self.inner.task.is_some()
    }
}

/// Starts answering for `mode`. `always` and `never` answer at once and never call
/// `client_factory`. `auto` spawns the watcher (on the current Tokio runtime), which calls
/// `client_factory` until it yields a client (`kube::Client::try_default` in the server), and
/// waits up to [`WatchOptions::initial_wait`] for the first decision.
pub async fn start<F, Fut, E>(
    mode: NativeSidecars,
    client_factory: F,
    options: WatchOptions,
) -> SidecarSupport
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<kube::Client, E>> + Send + 'static,
    E: Display + Send + 'static,
{
    match mode {
        NativeSidecars::Always => return SidecarSupport::fixed(NativeSidecarSupport::Supported),
        NativeSidecars::Never => {
            return SidecarSupport::fixed(NativeSidecarSupport::Unsupported(NEVER_REASON.into()));
        }
        NativeSidecars::Auto => {}
    }
    let current = Arc::new(ArcSwap::from_pointee(NativeSidecarSupport::Unsupported(
        NOT_CHECKED_REASON.into(),
    )));
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let publisher = Publisher {
        current: Arc::clone(&current),
        facts: Mutex::new(Facts::default()),
        first: Mutex::new(Some(first_tx)),
    };
    let initial_wait = options.initial_wait;
    let task = tokio::spawn(run(publisher, client_factory, options));
    // Either outcome is fine: on timeout the handle says "not checked yet" until the task decides.
    let _ = tokio::time::timeout(initial_wait, first_rx).await;
    SidecarSupport {
        inner: Arc::new(Inner {
            current,
            task: Some(task),
        }),
    }
}

/// What the task knows.
struct Facts {
    /// The last apiserver version read, or why there is none.
    apiserver: Result<ApiServerVersion, String>,
    /// Kubelet version by node name, or why the node list is not known.
    nodes: Result<BTreeMap<String, String>, String>,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            apiserver: Err(NOT_CHECKED_REASON.into()),
            nodes: Err(NOT_CHECKED_REASON.into()),
        }
    }
}

impl Facts {
    fn decide(&self) -> NativeSidecarSupport {
        // A node error is fresher news about connectivity than a remembered apiserver version.
        let nodes = match &self.nodes {
            Ok(nodes) => nodes,
            Err(why) => return NativeSidecarSupport::Unsupported(why.clone()),
        };
        let apiserver = match &self.apiserver {
            Ok(apiserver) => apiserver,
            Err(why) => return NativeSidecarSupport::Unsupported(why.clone()),
        };
        let kubelets: Vec<NodeKubelet> = nodes
            .iter()
            .map(|(name, version)| NodeKubelet::new(name.clone(), version.clone()))
            .collect();
        versions::decide(apiserver, &kubelets)
    }

    /// Whether both halves have been answered once (successfully or not, but not "not yet").
    fn settled(&self) -> bool {
        fn answered<T>(r: &Result<T, String>) -> bool {
            !matches!(r, Err(why) if why == NOT_CHECKED_REASON)
        }
        answered(&self.apiserver) && answered(&self.nodes)
    }
}

struct Publisher {
    current: Arc<ArcSwap<NativeSidecarSupport>>,
    facts: Mutex<Facts>,
    first: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl Publisher {
    /// Changes the facts, decides again, and publishes (and logs) the answer when it changed.
    fn update(&self, change: impl FnOnce(&mut Facts)) {
        self.update_if(|facts| {
            change(facts);
            true
        });
    }

    /// Like [`update`](Self::update), but decides again only when `change` returns true (most
    /// node events are status heartbeats that leave the kubelet version as it was).
    fn update_if(&self, change: impl FnOnce(&mut Facts) -> bool) {
        let (decision, settled, node_count) = {
            let Ok(mut facts) = self.facts.lock() else {
                return;
            };
            if !change(&mut facts) {
                return;
            }
            let count = facts.nodes.as_ref().map(|n| n.len()).unwrap_or(0);
            (facts.decide(), facts.settled(), count)
        };
        let previous = self.current.load();
        if **previous != decision {
            match &decision {
                NativeSidecarSupport::Supported => tracing::info!(
                    nodes = node_count,
                    "native sidecars are supported: the apiserver and every kubelet are 1.29 or newer"
                ),
                NativeSidecarSupport::Unsupported(why) => {
                    tracing::warn!(reason = %why, "native sidecars are not available; side agents get a warning instead")
                }
            }
            self.current.store(Arc::new(decision));
        }
        if settled
            && let Ok(mut first) = self.first.lock()
            && let Some(tx) = first.take()
        {
            let _ = tx.send(());
        }
    }

    fn set_nodes_error(&self, e: CheckError) {
        tracing::debug!(error = %e, "node check failed");
        self.update(|f| f.nodes = Err(e.to_string()));
    }
}

/// Doubling delay between `min` and `max`.
struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            next: min,
            min,
            max: max.max(min),
        }
    }
    fn reset(&mut self) {
        self.next = self.min;
    }
    fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
}

impl Iterator for Backoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(self.next_delay())
    }
}

/// What kube's [`watcher`] pauses for after an error; reset by the next event.
impl kube::runtime::utils::Backoff for Backoff {
    fn reset(&mut self) {
        Backoff::reset(self);
    }
}

async fn run<F, Fut, E>(publisher: Publisher, client_factory: F, options: WatchOptions)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<kube::Client, E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let mut backoff = Backoff::new(options.min_backoff, options.max_backoff);
    let client = loop {
        match client_factory().await {
            Ok(client) => break client,
            Err(e) => {
                let why = CheckError::Client(e.to_string()).to_string();
                publisher.update(|f| {
                    f.apiserver = Err(why.clone());
                    f.nodes = Err(why);
                });
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    };
    futures::join!(
        refresh_version(&publisher, &client, &options),
        watch_nodes(&publisher, &client, &options),
    );
}

async fn refresh_version(publisher: &Publisher, client: &kube::Client, options: &WatchOptions) {
    let mut backoff = Backoff::new(
        options.min_backoff,
        options.max_backoff.min(options.version_refresh),
    );
    loop {
        let result = client
            .apiserver_version()
            .await
            .map_err(|e| CheckError::from_kube("get /version", e))
            .and_then(|info| ApiServerVersion::from_info(&info).map_err(CheckError::from));
        let delay = match result {
            Ok(version) => {
                backoff.reset();
                publisher.update(|f| f.apiserver = Ok(version));
                options.version_refresh
            }
            Err(e @ CheckError::BadVersion(_)) => {
                // The server answered; asking again soon will not change what it says.
                publisher.update(|f| f.apiserver = Err(e.to_string()));
                options.version_refresh
            }
            Err(e) => {
                tracing::debug!(error = %e, "apiserver version check failed");
                publisher.update(|f| {
                    // A version read earlier stays valid; the node watch reports connectivity.
                    if f.apiserver.is_err() {
                        f.apiserver = Err(e.to_string());
                    }
                });
                backoff.next_delay()
            }
        };
        tokio::time::sleep(delay).await;
    }
}

fn kubelet_version(node: &Node) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .map(|i| i.kubelet_version.clone())
        .unwrap_or_default()
}

/// Follows the nodes with kube's [`watcher`]: a paged list, then a watch resumed from the last
/// resourceVersion; a `410 Gone` (or a watch without a resourceVersion) lists again. Errors pause
/// the stream with [`Backoff`]. A list that fails turns the answer to `Unsupported`; a watch
/// that breaks keeps the node set it had (the resumed watch replays what it missed).
async fn watch_nodes(publisher: &Publisher, client: &kube::Client, options: &WatchOptions) {
    let api: Api<Node> = Api::all(client.clone());
    let timeout_secs = u32::try_from(options.watch_timeout.as_secs())
        .unwrap_or(290)
        .clamp(1, 290);
    let config = watcher::Config::default()
        .timeout(timeout_secs)
        .page_size(options.page_size.max(1));
    let stream =
        watcher(api, config).backoff(Backoff::new(options.min_backoff, options.max_backoff));
    futures::pin_mut!(stream);
    // The nodes of a list in progress: they replace the known set only once the list is complete.
    let mut listing: Option<BTreeMap<String, String>> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init) => listing = Some(BTreeMap::new()),
            Ok(watcher::Event::InitApply(node)) => {
                if let (Some(nodes), Some(name)) = (listing.as_mut(), node.metadata.name.clone()) {
                    nodes.insert(name, kubelet_version(&node));
                }
            }
            Ok(watcher::Event::InitDone) => {
                let nodes = listing.take().unwrap_or_default();
                publisher.update(|f| f.nodes = Ok(nodes));
            }
            Ok(watcher::Event::Apply(node)) => {
                if let Some(name) = node.metadata.name.clone() {
                    let version = kubelet_version(&node);
                    // Most node events are status heartbeats that leave the version as it was.
                    publisher.update_if(|f| match &mut f.nodes {
                        Ok(nodes) => nodes.insert(name, version.clone()).as_ref() != Some(&version),
                        Err(_) => false,
                    });
                }
            }
            Ok(watcher::Event::Delete(node)) => {
                if let Some(name) = &node.metadata.name {
                    publisher.update_if(|f| match &mut f.nodes {
                        Ok(nodes) => nodes.remove(name).is_some(),
                        Err(_) => false,
                    });
                }
            }
            Err(watcher::Error::InitialListFailed(e)) => {
                listing = None;
                publisher.set_nodes_error(CheckError::from_kube("list nodes", e));
            }
            Err(e) => tracing::debug!(error = %e, "node watch interrupted; resuming"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(git: &str) -> ApiServerVersion {
        ApiServerVersion::from_info(&k8s_openapi::apimachinery::pkg::version::Info {
            git_version: git.into(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn offline_counts_auto_as_supported() {
        assert_eq!(
            offline(NativeSidecars::Auto),
            NativeSidecarSupport::Supported
        );
        assert_eq!(
            offline(NativeSidecars::Always),
            NativeSidecarSupport::Supported
        );
        assert_eq!(
            offline(NativeSidecars::Never),
            NativeSidecarSupport::Unsupported(NEVER_REASON.into())
        );
    }

    #[tokio::test]
    async fn always_and_never_do_not_touch_the_api() {
        let factory = || async { Err::<kube::Client, _>("must not be called") };
        let s = start(NativeSidecars::Always, factory, WatchOptions::default()).await;
        assert_eq!(s.current(), NativeSidecarSupport::Supported);
        assert!(!s.is_watching());
        let factory = || async { Err::<kube::Client, _>("must not be called") };
        let s = start(NativeSidecars::Never, factory, WatchOptions::default()).await;
        assert_eq!(
            s.current(),
            NativeSidecarSupport::Unsupported("nativeSidecars is never in the config".into())
        );
    }

    #[tokio::test]
    async fn the_default_client_is_a_valid_factory() {
        // Type-checks the server's call; `always` never invokes the factory.
        let s = start(
            NativeSidecars::Always,
            kube::Client::try_default,
            WatchOptions::default(),
        )
        .await;
        assert_eq!(s.current(), NativeSidecarSupport::Supported);
    }

    #[tokio::test]
    async fn auto_without_a_client_is_unsupported_and_retries() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let factory = move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err::<kube::Client, _>("no kubeconfig and not in a cluster") }
        };
        let options = WatchOptions {
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            initial_wait: Duration::from_secs(5),
            ..WatchOptions::default()
        };
        let s = start(NativeSidecars::Auto, factory, options).await;
        assert!(s.is_watching());
        assert_eq!(
            s.current(),
            NativeSidecarSupport::Unsupported(
                "cannot reach the Kubernetes API to check versions: cannot build a client: no kubeconfig and not in a cluster".into()
            )
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while calls.load(std::sync::atomic::Ordering::SeqCst) < 3 {
            assert!(tokio::time::Instant::now() < deadline, "no retries");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Dropping the handle stops the task: the count settles.
        drop(s);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let after = calls.load(std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), after);
    }

    #[test]
    fn facts_decide_in_order() {
        let mut f = Facts::default();
        assert_eq!(
            f.decide(),
            NativeSidecarSupport::Unsupported(NOT_CHECKED_REASON.into())
        );
        assert!(!f.settled());
        f.apiserver = Ok(api("v1.30.0"));
        assert!(!f.settled());
        f.nodes = Err("cannot reach".into());
        assert!(f.settled());
        assert_eq!(
            f.decide(),
            NativeSidecarSupport::Unsupported("cannot reach".into())
        );
        f.nodes = Ok(BTreeMap::from([("n1".to_string(), "v1.30.0".to_string())]));
        assert_eq!(f.decide(), NativeSidecarSupport::Supported);
        f.nodes
            .as_mut()
            .unwrap()
            .insert("n2".into(), "v1.28.1".into());
        assert!(matches!(
            f.decide(),
            NativeSidecarSupport::Unsupported(why) if why.starts_with("node n2 runs kubelet v1.28.1")
        ));
        f.apiserver = Err("the Kubernetes API refused to get /version (HTTP 403: no)".into());
        assert!(matches!(
            f.decide(),
            NativeSidecarSupport::Unsupported(why) if why.contains("HTTP 403")
        ));
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let seq: Vec<u64> = (0..5).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(seq, [1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }
}
