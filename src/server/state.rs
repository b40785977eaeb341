//! What the handlers share: the current engine, the planner, metrics and health.

use crate::cluster::config_maps::ConfigMapSource;
use crate::engine::config::ImagesConfig;
use crate::engine::config::NativeSidecars;
use crate::engine::config::ScriptsConfig;
use crate::engine::evaluate::NativeSidecarSupport;
use crate::engine::{Config, ConfigError, Engine};
use crate::images::ImageResolver;
use crate::resolve::ScriptAnalyzer;
use crate::server::metrics::Metrics;
use crate::server::namespace_share::NamespaceShares;
use crate::server::plan::Planner;
use crate::server::tls::CertResolver;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long unusable `images:` settings (an unreadable credentials file, say) are left before
/// they are tried again: a Secret mounted late is picked up without a log line per review.
pub const RESOLVER_RETRY: Duration = Duration::from_secs(30);

/// Default bound on admission reviews analysed at once (`--max-inflight`).
pub const DEFAULT_MAX_INFLIGHT: usize = 256;

/// Shared state of one server.
pub struct App {
    engine: ArcSwap<Engine>,
    analyzer: Arc<dyn ScriptAnalyzer>,
    planner: Arc<dyn Planner>,
    /// What the cluster supports, for `nativeSidecars: auto`. Until something checks the
    /// cluster's versions (see [`App::set_cluster_native_sidecars`]), auto counts as
    /// unsupported: converting a side agent on a cluster that drops `restartPolicy` from init
    /// containers would stop its pods from starting.
    cluster_native_sidecars: ArcSwap<NativeSidecarSupport>,
    pub metrics: Metrics,
    pub certs: Arc<CertResolver>,
    /// Analyse on the blocking pool (see `ServerConfig::analyzer_blocks`).
    pub analyzer_blocks: bool,
    /// The registry look-up for `images.resolve`, rebuilt when `images:` changes; `None` with
    /// the time of the failure when these settings could not start one.
    images: Mutex<Option<(ImagesConfig, Result<ImageResolver, Instant>)>>,
    /// The Kubernetes client for reads that reviews make (ConfigMap scripts), or why there is
    /// none.
    kube_client: Mutex<Result<kube::Client, String>>,
    /// The ConfigMap reader for `scripts.configMaps`, rebuilt when `scripts:` changes.
    config_maps: Mutex<Option<Arc<ConfigMapSource>>>,
    draining: AtomicBool,
    /// Slots for reviews being analysed; a review that cannot get one in time is shed (429).
    inflight: Arc<Semaphore>,
    max_inflight: usize,
    /// Bytes of request bodies that may be held beyond each request's free allowance
    /// (see [`crate::server::routes`]).
    body_budget: Arc<Semaphore>,
    /// Slots for analyses of large bodies (see [`LARGE_ANALYSES`]).
    large: Arc<Semaphore>,
    /// Each namespace's places on the analysis threads.
    namespace_shares: Arc<NamespaceShares>,
}

/// Reviews with large bodies analysed at once. Decoding multiplies a body's size several
/// times over (a 3 MiB pod with 30,000 containers is tens of MiB as JSON values), so these
/// few bound the server's memory; ordinary reviews never wait for them.
pub const LARGE_ANALYSES: usize = 2;

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

impl App {
    pub fn new(
        engine: Engine,
        analyzer: Arc<dyn ScriptAnalyzer>,
        planner: Arc<dyn Planner>,
        certs: Arc<CertResolver>,
        analyzer_blocks: bool,
    ) -> App {
        App {
            engine: ArcSwap::from_pointee(engine),
            analyzer,
            planner,
            cluster_native_sidecars: ArcSwap::from_pointee(NativeSidecarSupport::Unsupported(
                "the cluster's Kubernetes versions have not been checked".into(),
            )),
            metrics: Metrics::new(),
            certs,
            analyzer_blocks,
            draining: AtomicBool::new(false),
            images: Mutex::new(None),
            kube_client: Mutex::new(Err("pidone has no Kubernetes client".into())),
            config_maps: Mutex::new(None),
            inflight: Arc::new(Semaphore::new(DEFAULT_MAX_INFLIGHT)),
            max_inflight: DEFAULT_MAX_INFLIGHT,
            body_budget: Arc::new(Semaphore::new(crate::server::DEFAULT_MAX_BUFFERED_BYTES)),
            large: Arc::new(Semaphore::new(LARGE_ANALYSES)),
            namespace_shares: Arc::default(),
        }
    }

    /// Sets the bound on reviews analysed at once (at least 1).
    pub fn with_max_inflight(mut self, max: usize) -> App {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        self.inflight = Arc::new(Semaphore::new(max));
        self.max_inflight = max;
        self
    }

    /// Sets the budget of body bytes held at once (see [`App::body_budget`]).
    pub fn with_max_buffered_bytes(mut self, max: usize) -> App {
        self.body_budget = Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS)));
        self
    }

    /// Bytes of request bodies held at once beyond each request's free allowance: one permit
    /// per byte.
    pub fn body_budget(&self) -> &Arc<Semaphore> {
        &self.body_budget
    }

    /// Slots for analyses of large bodies.
    pub fn large_analyses(&self) -> &Arc<Semaphore> {
        &self.large
    }

    pub fn namespace_shares(&self) -> &Arc<NamespaceShares> {
        &self.namespace_shares
    }

    /// The bound on reviews analysed at once.
    pub fn max_inflight(&self) -> usize {
        self.max_inflight
    }

    /// The slots of reviews being analysed (see [`crate::server::routes`]).
    pub fn inflight(&self) -> &Arc<Semaphore> {
        &self.inflight
    }

    /// The engine for one request. Cheap: an atomic load.
    /// The engine, owned: for a review that awaits look-ups or parses while it holds it.
    pub fn engine_arc(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    pub fn engine(&self) -> arc_swap::Guard<Arc<Engine>> {
        self.engine.load()
    }

    pub fn planner(&self) -> &dyn Planner {
        self.planner.as_ref()
    }

    /// Parses and installs a new configuration; the old one stays on error.
    pub fn reload_config(&self, text: &str) -> Result<(), ConfigError> {
        let config = Config::from_yaml(text)?;
        let engine = Engine::new(Arc::new(config))?;
        // The analyzer outlives engines (its workers and cache); it takes the new limits here.
        self.analyzer.apply_limits(&engine.config().parser);
        self.engine.store(Arc::new(engine));
        Ok(())
    }

    /// Whether native sidecars can be used, after the config's override.
    pub fn native_sidecars(&self, config: &Config) -> NativeSidecarSupport {
        match config.native_sidecars {
            NativeSidecars::Always => NativeSidecarSupport::Supported,
            NativeSidecars::Never => NativeSidecarSupport::Unsupported(
                "the configuration says nativeSidecars: never".into(),
            ),
            NativeSidecars::Auto => {
                NativeSidecarSupport::clone(&self.cluster_native_sidecars.load())
            }
        }
    }

    /// The image resolver for the current `images:` settings (`None` when look-ups are off or
    /// the settings are unusable, e.g. an unreadable credentials file: logged, then tried again
    /// after [`RESOLVER_RETRY`] rather than on every review).
    pub fn image_resolver(&self, config: &ImagesConfig) -> Option<ImageResolver> {
        if !config.resolve {
            return None;
        }
        let mut slot = self.images.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((current, built)) = slot.as_ref()
            && current == config
        {
            match built {
                Ok(resolver) => return Some(resolver.clone()),
                Err(failed) if failed.elapsed() < RESOLVER_RETRY => return None,
                Err(_) => {}
            }
        }
        match ImageResolver::new(config) {
            Ok(resolver) => {
                *slot = Some((config.clone(), Ok(resolver.clone())));
                Some(resolver)
            }
            Err(e) => {
                tracing::error!(error = %e, "image look-ups are configured but cannot start");
                *slot = Some((config.clone(), Err(Instant::now())));
                None
            }
        }
    }

    /// Sets the client that reviews read the API with (or why there is none); the ConfigMap
    /// cache starts over.
    pub fn set_kube_client(&self, client: Result<kube::Client, String>) {
        *self
            .kube_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = client;
        *self
            .config_maps
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The ConfigMap reader for the current `scripts:` settings, or why there is none.
    pub fn config_map_source(
        &self,
        settings: &ScriptsConfig,
    ) -> Result<Arc<ConfigMapSource>, String> {
        let mut slot = self
            .config_maps
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(source) = slot.as_ref()
            && source.settings() == settings
        {
            return Ok(Arc::clone(source));
        }
        let client = self
            .kube_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        let source = Arc::new(ConfigMapSource::new(client, settings));
        *slot = Some(Arc::clone(&source));
        Ok(source)
    }

    /// The script analyzer (pre-screen, cache, parse workers).
    pub fn analyzer(&self) -> &dyn ScriptAnalyzer {
        self.analyzer.as_ref()
    }

    pub fn analyzer_arc(&self) -> Arc<dyn ScriptAnalyzer> {
        Arc::clone(&self.analyzer)
    }

    /// Seam for the cluster version check behind `nativeSidecars: auto`.
    pub fn set_cluster_native_sidecars(&self, support: NativeSidecarSupport) {
        self.cluster_native_sidecars.store(Arc::new(support));
    }

    /// Ready: certificate and configuration are loaded (they are before the server binds) and
    /// the server is not draining.
    pub fn ready(&self) -> bool {
        !self.draining.load(Ordering::Acquire)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }
}
