//! From image references to their config's ENTRYPOINT, CMD, WorkingDir and User, through the
//! registries (mirrors first), within a deadline, with a shared cache and one request per image
//! however many admissions ask for it at once.

use crate::engine::config::ImagesConfig;
use crate::engine::evaluate::ImageConfig;
use crate::engine::image_files::ImageFile;
use crate::images::cache::{self, Cache, CacheLimits, Cached, DiskCache};
use crate::images::credentials::{Credentials, CredentialsError};
use crate::images::reference::{self, normalize_host};
use crate::images::registry::{self, AddressPolicy, Auth, RegistryError};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use oci_client::Reference;
use oci_client::manifest::ImageIndexEntry;
use reqwest::{StatusCode, Url};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A config blob larger than this is not read (real ones are a few KiB).
pub const MAX_CONFIG_BYTES: i64 = 4 * 1024 * 1024;
/// How long a failed look-up is remembered, so a broken registry costs one deadline per image
/// per this period rather than one per admission.
pub const FAILURE_TTL: Duration = Duration::from_secs(30);
/// Registry requests in flight at once, all registries together.
pub const GLOBAL_LOOKUPS: usize = 16;
/// Registry requests in flight at once to one registry host: a registry that stalls holds at
/// most these, and the look-ups of other registries go on.
pub const PER_REGISTRY_LOOKUPS: usize = 4;
/// Distinct images looked up for one object; the others get a warning and stay image-default.
pub const MAX_IMAGES_PER_OBJECT: usize = 16;

/// On whose behalf a look-up runs, which decides the credentials it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// The operator's own manifests (the CLI): every credential of the configuration.
    Trusted,
    /// A pod in this namespace: a registry's credential only when `images.credentialNamespaces`
    /// lists the namespace for that registry; anonymous otherwise.
    Namespace(&'a str),
}

/// Why one image could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Reference(#[from] reference::ReferenceError),
    #[error("the registry did not answer in time")]
    Timeout,
    #[error("{0}")]
    Registry(String),
    #[error("the image config is {0} bytes, more than pidone reads")]
    ConfigTooLarge(i64),
    #[error("the image config is not valid JSON: {0}")]
    BadConfig(String),
    /// A failure remembered from a recent look-up.
    #[error("{message} (remembered from a look-up less than {}s ago)", FAILURE_TTL.as_secs())]
    Recent { message: String, timeout: bool },
    #[error("the look-up task failed: {0}")]
    Task(String),
}

impl ResolveError {
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ResolveError::Timeout | ResolveError::Recent { timeout: true, .. }
        )
    }
}

/// Why a resolver could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    #[error("images.credentials: {0}")]
    Credentials(#[from] CredentialsError),
    #[error("images.caBundle: {path}: {reason}")]
    CaBundle { path: String, reason: String },
    #[error("images.platform: `{0}` is not os/arch[/variant]")]
    Platform(String),
    #[error("cannot build the registry client: {0}")]
    Client(String),
}

/// A look-up that failed: the container stays `image-default`, and the caller shows this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageWarning {
    /// The image reference as written in the pod.
    pub image: String,
    pub timeout: bool,
    pub message: String,
}

impl std::fmt::Display for ImageWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Counters since start. Every look-up ends as exactly one of `hits`, `fetched`, `errors`,
/// `timeouts`; `coalesced` counts look-ups that joined another's request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageStats {
    pub lookups: u64,
    pub hits: u64,
    pub fetched: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub coalesced: u64,
}

#[derive(Debug, Default)]
struct Counters {
    lookups: AtomicU64,
    hits: AtomicU64,
    fetched: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    coalesced: AtomicU64,
}

/// Picks the digest of the configured platform's manifest from an index's entries.
type PlatformPick = dyn Fn(&[ImageIndexEntry]) -> Option<String> + Send + Sync;

type Flight = Shared<BoxFuture<'static, Result<ImageConfig, ResolveError>>>;

/// A file look-up under way (see `files`), shared by everyone who asks for the same file.
pub(super) type FileFlight = Shared<BoxFuture<'static, ImageFile>>;

pub(super) struct Inner {
    http: reqwest::Client,
    pub(super) policy: Arc<AddressPolicy>,
    /// Picks a platform's manifest from an index.
    platform: Box<PlatformPick>,
    pub(super) credentials: Credentials,
    /// Normalised registry host -> namespaces whose pods may use its credential.
    credential_namespaces: HashMap<String, Vec<String>>,
    global: Arc<Semaphore>,
    per_registry: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Normalised registry host -> mirror hosts in order.
    pub(super) mirrors: HashMap<String, Vec<String>>,
    deadline: Duration,
    pub(super) cache: Mutex<Cache>,
    inflight: Mutex<HashMap<String, Flight>>,
    counters: Counters,
    /// Files read from layers (see `files`), apart from the configs.
    pub(super) files: Mutex<Cache<ImageFile>>,
    /// File look-ups under way, by cache key: one walk per file however many ask.
    pub(super) file_flights: Mutex<HashMap<String, FileFlight>>,
    /// Bounds of reading files from layers.
    pub(super) scripts: crate::engine::config::ImageScriptsConfig,
}

/// Resolves images' configs; cheap to clone (clones share cache, requests and counters).
#[derive(Clone)]
pub struct ImageResolver {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for ImageResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageResolver")
            .field("credentials", &self.inner.credentials)
            .field("mirrors", &self.inner.mirrors)
            .field("deadline", &self.inner.deadline)
            .finish_non_exhaustive()
    }
}

/// The config blob's fields pidone reads (Docker and OCI use the same names).
#[derive(Deserialize)]
struct ConfigBlob {
    #[serde(default)]
    config: Option<ConfigSection>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ConfigSection {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

/// Chooses the index entry for `os/arch[/variant]`; without a variant in the setting, an entry
/// without one (or the first that matches os and arch) wins.
fn platform_resolver(
    platform: &str,
) -> Result<impl Fn(&[ImageIndexEntry]) -> Option<String> + Send + Sync + 'static, ResolverError> {
    let parts: Vec<String> = platform.split('/').map(str::to_string).collect();
    let (os, arch, variant) = match parts.as_slice() {
        [os, arch] if !os.is_empty() && !arch.is_empty() => (os.clone(), arch.clone(), None),
        [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
            (os.clone(), arch.clone(), Some(v.clone()))
        }
        _ => return Err(ResolverError::Platform(platform.to_string())),
    };
    Ok(move |entries: &[ImageIndexEntry]| {
        let matching: Vec<&ImageIndexEntry> = entries
            .iter()
            .filter(|e| {
                e.platform
                    .as_ref()
                    .is_some_and(|p| p.os.to_string() == os && p.architecture.to_string() == arch)
            })
            .collect();
        let variant_of = |e: &&ImageIndexEntry| e.platform.as_ref().and_then(|p| p.variant.clone());
        let chosen = match &variant {
            Some(v) => matching
                .iter()
                .find(|e| variant_of(e).as_deref() == Some(v.as_str()))
                .or_else(|| matching.iter().find(|e| variant_of(e).is_none())),
            None => matching
                .iter()
                .find(|e| variant_of(e).is_none())
                .or_else(|| matching.first()),
        };
        chosen.map(|e| e.digest.clone())
    })
}

fn read_ca_bundle(path: &str) -> Result<Vec<reqwest::Certificate>, ResolverError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let err = |reason: String| ResolverError::CaBundle {
        path: path.to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| err(e.to_string()))?;
        certs.push(reqwest::Certificate::from_der(&cert).map_err(|e| err(e.to_string()))?);
    }
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind: keep using it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ImageResolver {
    /// Builds a resolver from the `images` configuration (reads credentials and the CA bundle).
    pub fn new(config: &ImagesConfig) -> Result<ImageResolver, ResolverError> {
        // TLS uses rustls with ring, as the rest of pidone; install it as the process default
        // unless something else already did.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let credentials = Credentials::load(&config.credentials)?;
        let extra_roots = read_ca_bundle(&config.ca_bundle)?;
        let resolver = platform_resolver(&config.platform)?;
        // The first parse compiles the reference grammar: pay that at start, not in an
        // admission.
        let _ = reference::parse("pidone.invalid/warm-up:1");
        // Registries the configuration names may be reached on any address; the others not on
        // loopback, link-local or metadata ones (see `registry`).
        let named: Vec<&str> = config
            .trusted_registries
            .iter()
            .chain(config.mirrors.keys())
            .chain(config.mirrors.values().flatten())
            .map(String::as_str)
            .chain(credentials.hosts())
            .collect();
        let policy = Arc::new(AddressPolicy::new(
            named,
            config.insecure_registries.iter().map(String::as_str),
        ));
        // Bounds for one connection; the look-up as a whole is bounded by the deadline.
        let per_source = config.deadline.max(Duration::from_millis(100));
        let http = registry::http_client(
            &policy,
            extra_roots,
            per_source,
            per_source,
            concat!("pidone/", env!("CARGO_PKG_VERSION")),
        )
        .map_err(|e| ResolverError::Client(e.to_string()))?;
        let mirrors = config
            .mirrors
            .iter()
            .map(|(registry, list)| (normalize_host(registry), list.clone()))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        let limits = CacheLimits {
            max_entries: config.cache_max_entries.max(1),
            max_bytes: config.cache_max_bytes.max(1),
            tag_ttl: config.tag_ttl,
            failure_ttl: FAILURE_TTL,
        };
        let credential_namespaces = config
            .credential_namespaces
            .iter()
            .map(|(registry, namespaces)| (normalize_host(registry), namespaces.clone()))
            .collect();
        Ok(ImageResolver {
            inner: Arc::new(Inner {
                http,
                policy,
                platform: Box::new(resolver),
                credentials,
                credential_namespaces,
                global: Arc::new(Semaphore::new(GLOBAL_LOOKUPS)),
                per_registry: Mutex::new(HashMap::new()),
                mirrors,
                deadline: config.deadline,
                cache: Mutex::new(Cache::new(limits)),
                inflight: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                files: Mutex::new(Cache::new(limits)),
                file_flights: Mutex::new(HashMap::new()),
                scripts: config.scripts.clone(),
            }),
        })
    }

    /// The configured per-look-up deadline.
    pub fn deadline(&self) -> Duration {
        self.inner.deadline
    }

    pub fn stats(&self) -> ImageStats {
        let c = &self.inner.counters;
        ImageStats {
            lookups: c.lookups.load(Ordering::Relaxed),
            hits: c.hits.load(Ordering::Relaxed),
            fetched: c.fetched.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            coalesced: c.coalesced.load(Ordering::Relaxed),
        }
    }

    /// Entries and approximate bytes in the in-memory cache.
    pub fn cache_size(&self) -> (usize, usize) {
        let cache = lock(&self.inner.cache);
        (cache.len(), cache.bytes())
    }

    /// Forgets every cached answer (requests in flight still land).
    pub fn clear_cache(&self) {
        lock(&self.inner.cache).clear();
        lock(&self.inner.files).clear();
    }

    /// The cache's found entries (configs and files), to save between runs.
    pub fn export_cache(&self) -> DiskCache {
        let mut disk = lock(&self.inner.cache).to_disk();
        disk.files = lock(&self.inner.files).to_entries();
        disk
    }

    /// Loads saved entries (tags older than the TTL are skipped).
    pub fn import_cache(&self, mut disk: DiskCache) {
        if !cache::readable(&disk) {
            return;
        }
        let now = SystemTime::now();
        let files = std::mem::take(&mut disk.files);
        lock(&self.inner.cache).load_disk(disk, now);
        lock(&self.inner.files).load_entries(files, now);
    }

    /// Resolves every distinct reference at once, all within `deadline` from now, with every
    /// credential of the configuration (the CLI, over the operator's own manifests). Images
    /// that could not be resolved are left out of the map and get a warning each.
    pub async fn resolve_all<'a>(
        &self,
        refs: impl IntoIterator<Item = &'a str>,
        deadline: Duration,
    ) -> (HashMap<String, ImageConfig>, Vec<ImageWarning>) {
        self.resolve_all_for(refs, deadline, Scope::Trusted).await
    }

    /// [`ImageResolver::resolve_all`] on behalf of `scope`: at most
    /// [`MAX_IMAGES_PER_OBJECT`] distinct images, and only the credentials the scope may use
    /// (what a credential revealed is cached apart from what anyone may learn).
    pub async fn resolve_all_for<'a>(
        &self,
        refs: impl IntoIterator<Item = &'a str>,
        deadline: Duration,
        scope: Scope<'_>,
    ) -> (HashMap<String, ImageConfig>, Vec<ImageWarning>) {
        let mut distinct: Vec<&str> = refs.into_iter().collect();
        distinct.sort_unstable();
        distinct.dedup();
        let mut warnings = Vec::new();
        if distinct.len() > MAX_IMAGES_PER_OBJECT {
            for image in distinct.split_off(MAX_IMAGES_PER_OBJECT) {
                warnings.push(ImageWarning {
                    image: image.to_string(),
                    timeout: false,
                    message: format!(
                        "image {image} not looked up: pidone looks up at most {MAX_IMAGES_PER_OBJECT} images per object; its launch stays image-default"
                    ),
                });
            }
        }
        let mut found = HashMap::with_capacity(distinct.len());
        // The common case first: every answer is cached, no task, no timer.
        {
            let now = SystemTime::now();
            let mut cache = lock(&self.inner.cache);
            distinct.retain(|image| {
                let key = cache.alias(image).unwrap_or_else(|| image.to_string());
                let key = self.scoped_key(key, scope);
                match cache.get(&key, now) {
                    Some(Cached::Found(config)) => {
                        found.insert(image.to_string(), config);
                        false
                    }
                    _ => true,
                }
            });
        }
        let c = &self.inner.counters;
        c.lookups.fetch_add(found.len() as u64, Ordering::Relaxed);
        c.hits.fetch_add(found.len() as u64, Ordering::Relaxed);
        if distinct.is_empty() {
            return (found, warnings);
        }
        let until = tokio::time::Instant::now() + deadline;
        let results = futures::future::join_all(
            distinct
                .iter()
                .map(|image| self.resolve_until(image, until, scope)),
        )
        .await;
        for (image, result) in distinct.into_iter().zip(results) {
            match result {
                Ok(config) => {
                    found.insert(image.to_string(), config);
                }
                Err(e) => warnings.push(ImageWarning {
                    image: image.to_string(),
                    timeout: e.is_timeout(),
                    message: format!(
                        "could not resolve image {image} within {}: {e}; its launch stays image-default",
                        humantime::format_duration(deadline)
                    ),
                }),
            }
        }
        (found, warnings)
    }

    /// Resolves one reference within `deadline`.
    pub async fn resolve(
        &self,
        image: &str,
        deadline: Duration,
    ) -> Result<ImageConfig, ResolveError> {
        self.resolve_until(
            image,
            tokio::time::Instant::now() + deadline,
            Scope::Trusted,
        )
        .await
    }

    /// Whether look-ups for `scope` use the credential of the registry of a cache key
    /// (`registry/repository...`).
    pub(super) fn uses_credentials(&self, key: &str, scope: Scope<'_>) -> bool {
        let host = key.split('/').next().unwrap_or("");
        if !self.inner.credentials.has(host) {
            return false;
        }
        match scope {
            Scope::Trusted => true,
            Scope::Namespace(ns) => self
                .inner
                .credential_namespaces
                .get(&normalize_host(host))
                .is_some_and(|list| list.iter().any(|n| n == ns || n == "*")),
        }
    }

    /// The cache key for `scope`: answers obtained with a credential live under their own keys,
    /// so that nobody who may not use the credential is told what it revealed.
    pub(super) fn scoped_key(&self, key: String, scope: Scope<'_>) -> String {
        if self.uses_credentials(&key, scope) {
            format!("{CREDENTIALED}{key}")
        } else {
            key
        }
    }

    async fn resolve_until(
        &self,
        image: &str,
        until: tokio::time::Instant,
        scope: Scope<'_>,
    ) -> Result<ImageConfig, ResolveError> {
        let c = &self.inner.counters;
        c.lookups.fetch_add(1, Ordering::Relaxed);
        let result = self.lookup(image, until, scope).await;
        match &result {
            Ok((_, true)) => c.hits.fetch_add(1, Ordering::Relaxed),
            Ok((_, false)) => c.fetched.fetch_add(1, Ordering::Relaxed),
            Err(e) if e.is_timeout() => c.timeouts.fetch_add(1, Ordering::Relaxed),
            Err(_) => c.errors.fetch_add(1, Ordering::Relaxed),
        };
        result.map(|(config, _)| config)
    }

    /// The config and whether it came from the cache.
    async fn lookup(
        &self,
        image: &str,
        until: tokio::time::Instant,
        scope: Scope<'_>,
    ) -> Result<(ImageConfig, bool), ResolveError> {
        let cached_key = lock(&self.inner.cache).alias(image);
        let (r, key) = match cached_key {
            Some(key) => (None, key),
            None => {
                let r = reference::parse(image)?;
                let key = reference::cache_key(&r);
                lock(&self.inner.cache).add_alias(image, &key);
                (Some(r), key)
            }
        };
        let credentialed = self.uses_credentials(&key, scope);
        let key = self.scoped_key(key, scope);
        let flight = {
            // Cache, then in-flight requests, under the in-flight lock: a request finishing
            // stores its result before it leaves the in-flight map, so nothing slips between.
            let mut inflight = lock(&self.inner.inflight);
            match lock(&self.inner.cache).get(&key, SystemTime::now()) {
                Some(Cached::Found(config)) => return Ok((config, true)),
                Some(Cached::Failed { message, timeout }) => {
                    return Err(ResolveError::Recent { message, timeout });
                }
                None => {}
            }
            if let Some(flight) = inflight.get(&key) {
                self.inner
                    .counters
                    .coalesced
                    .fetch_add(1, Ordering::Relaxed);
                flight.clone()
            } else {
                // The request may outlive a caller with a short deadline, up to the
                // configured one, so that its answer is cached for the next admission.
                let task_until = until.max(tokio::time::Instant::now() + self.inner.deadline);
                let r = match r {
                    Some(r) => r,
                    None => reference::parse(image)?,
                };
                let flight = self.start(r, key.clone(), task_until, credentialed);
                inflight.insert(key, flight.clone());
                flight
            }
        };
        match tokio::time::timeout_at(until, flight).await {
            Ok(result) => result.map(|config| (config, false)),
            Err(_) => Err(ResolveError::Timeout),
        }
    }

    /// Starts the registry request on its own task: a caller that gives up does not cancel it,
    /// so its result still lands in the cache for the next admission.
    fn start(
        &self,
        r: Reference,
        key: String,
        until: tokio::time::Instant,
        credentialed: bool,
    ) -> Flight {
        let key_for_cleanup = key.clone();
        let inner = Arc::clone(&self.inner);
        let task = tokio::spawn(async move {
            let fetching = fetch_from_sources(&inner, &r, until, credentialed);
            let result = match tokio::time::timeout_at(until, fetching).await {
                Ok(result) => result,
                Err(_) => Err(ResolveError::Timeout),
            };
            let now = SystemTime::now();
            {
                let mut inflight = lock(&inner.inflight);
                let mut cache = lock(&inner.cache);
                match &result {
                    Ok(config) => {
                        let pinned = reference::is_pinned(&r);
                        cache.insert(key.clone(), Cached::Found(config.clone()), pinned, now);
                        if !pinned {
                            let prefix = if credentialed { CREDENTIALED } else { "" };
                            cache.insert(
                                format!("{prefix}{}", reference::digest_key(&r, &config.digest)),
                                Cached::Found(config.clone()),
                                true,
                                now,
                            );
                        }
                    }
                    Err(e) => cache.insert(
                        key.clone(),
                        Cached::Failed {
                            message: e.to_string(),
                            timeout: e.is_timeout(),
                        },
                        false,
                        now,
                    ),
                }
                inflight.remove(&key);
            }
            result
        });
        let inner = Arc::clone(&self.inner);
        async move {
            match task.await {
                Ok(result) => result,
                Err(e) => {
                    // The task died before clearing its entry: clear it, or the key would
                    // answer this error for good.
                    lock(&inner.inflight).remove(&key_for_cleanup);
                    Err(ResolveError::Task(e.to_string()))
                }
            }
        }
        .boxed()
        .shared()
    }
}

/// Tries the registry's mirrors in order, then the registry itself. A mirror gets half the time
/// left, so one that stalls leaves time for the next source.
async fn fetch_from_sources(
    inner: &Inner,
    r: &Reference,
    until: tokio::time::Instant,
    credentialed: bool,
) -> Result<ImageConfig, ResolveError> {
    let mirrors = inner
        .mirrors
        .get(&normalize_host(r.registry()))
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut failures: Vec<String> = Vec::new();
    for mirror in mirrors {
        let mut via = r.clone();
        via.set_mirror_registry(mirror.clone());
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let attempt = tokio::time::timeout(left / 2, fetch(inner, &via, credentialed));
        match attempt.await.unwrap_or(Err(ResolveError::Timeout)) {
            Ok(config) => return Ok(config),
            Err(e) => {
                tracing::debug!(image = %r, mirror, error = %e, "mirror failed");
                failures.push(format!("mirror {mirror}: {e}"));
            }
        }
    }
    match fetch(inner, r, credentialed).await {
        Ok(config) => Ok(config),
        Err(e) if failures.is_empty() => Err(e),
        Err(e) => {
            failures.push(format!("{}: {e}", r.registry()));
            Err(ResolveError::Registry(failures.join("; ")))
        }
    }
}

/// The prefix of cache keys of answers obtained with a credential.
pub(super) const CREDENTIALED: &str = "credentialed:";

impl Inner {
    /// A request slot for `host`: one of its own, then one of the global ones. Waits (within
    /// the caller's deadline), so a registry that stalls queues its own look-ups only.
    pub(super) async fn permits(&self, host: &str) -> (OwnedSemaphorePermit, OwnedSemaphorePermit) {
        let mine = {
            let mut map = lock(&self.per_registry);
            Arc::clone(
                map.entry(normalize_host(host))
                    .or_insert_with(|| Arc::new(Semaphore::new(PER_REGISTRY_LOOKUPS))),
            )
        };
        // Neither semaphore is ever closed.
        let own = loop {
            if let Ok(p) = Arc::clone(&mine).acquire_owned().await {
                break p;
            }
        };
        let global = loop {
            if let Ok(p) = Arc::clone(&self.global).acquire_owned().await {
                break p;
            }
        };
        (own, global)
    }
}

/// One registry, as one look-up talks to it: its base URL, the repository, the credential and
/// the token obtained on the way.
pub(super) struct Session<'a> {
    inner: &'a Inner,
    base: Url,
    repository: String,
    credentials: Auth,
    token: Option<String>,
}

impl Session<'_> {
    /// GET `/v2/<repository>/<path>`, answering a Bearer challenge once.
    pub(super) async fn get(
        &mut self,
        path: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = self
            .base
            .join(&format!("v2/{}/{path}", self.repository))
            .map_err(|e| RegistryError::Invalid(e.to_string()))?;
        let http = &self.inner.http;
        let policy = &self.inner.policy;
        let auth = match &self.token {
            Some(t) => Auth::Bearer(t.clone()),
            None => self.credentials.clone(),
        };
        let response = registry::get(http, policy, &url, &auth, accept).await?;
        if response.status() != StatusCode::UNAUTHORIZED || self.token.is_some() {
            return Ok(response);
        }
        let Some(challenge) = registry::bearer_challenge(response.headers()) else {
            return Ok(response);
        };
        let scope = format!("repository:{}:pull", self.repository);
        let token =
            registry::fetch_token(http, policy, &url, &challenge, &scope, &self.credentials)
                .await?;
        self.token = Some(token.clone());
        registry::get(http, policy, &url, &Auth::Bearer(token), accept).await
    }

    /// A manifest by tag or digest: its bytes and digest (checked when asked by digest).
    async fn manifest(&mut self, reference: &str) -> Result<(Vec<u8>, String), RegistryError> {
        let response = self
            .get(
                &format!("manifests/{reference}"),
                Some(registry::manifest_accept()),
            )
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(RegistryError::Http(format!(
                "manifest {reference}: {status}"
            )));
        }
        let header = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body =
            registry::read_bounded(response, registry::MAX_MANIFEST_BYTES, "manifest").await?;
        let computed = registry::sha256_digest(&body);
        if reference.contains(':') {
            registry::verify_digest(&body, reference, "manifest")?;
        }
        // The registry's digest header names other algorithms than sha256; ours is sha256.
        let digest = header
            .filter(|h| !h.starts_with("sha256:"))
            .unwrap_or(computed);
        Ok((body, digest))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ManifestDoc {
    #[serde(default)]
    manifests: Option<Vec<ImageIndexEntry>>,
    #[serde(default)]
    config: Option<Descriptor>,
    /// The layers, bottom first.
    #[serde(default)]
    pub(super) layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Descriptor {
    pub(super) digest: String,
    pub(super) size: i64,
    #[serde(default)]
    pub(super) media_type: String,
}

/// The platform manifest of a reference, through an index when there is one: the manifest,
/// the digest the reference names (the index's, for a multi-platform image) and the
/// manifest's own digest.
pub(super) struct PlatformManifest {
    pub(super) doc: ManifestDoc,
    pub(super) named_digest: String,
    pub(super) manifest_digest: String,
}

/// A session with the registry of `r` (permits taken by the caller), and its host.
pub(super) fn session<'a>(
    inner: &'a Inner,
    r: &Reference,
    credentialed: bool,
) -> Result<(Session<'a>, String), ResolveError> {
    let host = r.resolve_registry().to_string();
    let scheme = if inner.policy.is_insecure(&host) {
        "http"
    } else {
        "https"
    };
    let base = Url::parse(&format!("{scheme}://{host}/"))
        .map_err(|e| ResolveError::Registry(format!("{host}: {e}")))?;
    let credentials = if credentialed {
        inner.credentials.for_host(&host)
    } else {
        Auth::Anonymous
    };
    Ok((
        Session {
            inner,
            base,
            repository: r.repository().to_string(),
            credentials,
            token: None,
        },
        host,
    ))
}

/// The registry error of a request to `host`, as a look-up reports it.
pub(super) fn registry_error(host: &str, e: RegistryError) -> ResolveError {
    match e {
        RegistryError::Timeout => ResolveError::Timeout,
        e => ResolveError::Registry(format!("{host}: {e}")),
    }
}

/// The manifest of `r` for the configured platform.
pub(super) async fn platform_manifest(
    inner: &Inner,
    session: &mut Session<'_>,
    host: &str,
    r: &Reference,
) -> Result<PlatformManifest, ResolveError> {
    let reference = r
        .digest()
        .or_else(|| r.tag())
        .unwrap_or("latest")
        .to_string();
    let (body, top_digest) = session
        .manifest(&reference)
        .await
        .map_err(|e| registry_error(host, e))?;
    let doc: ManifestDoc = serde_json::from_slice(&body)
        .map_err(|e| ResolveError::Registry(format!("{host}: manifest: {e}")))?;
    Ok(match doc.manifests {
        Some(entries) => {
            let chosen = (inner.platform)(&entries).ok_or_else(|| {
                ResolveError::Registry(format!(
                    "{host}: the image index has no manifest for the configured platform"
                ))
            })?;
            let (body, digest) = session
                .manifest(&chosen)
                .await
                .map_err(|e| registry_error(host, e))?;
            let doc: ManifestDoc = serde_json::from_slice(&body)
                .map_err(|e| ResolveError::Registry(format!("{host}: manifest: {e}")))?;
            PlatformManifest {
                doc,
                named_digest: top_digest,
                manifest_digest: digest,
            }
        }
        None => PlatformManifest {
            doc,
            named_digest: top_digest.clone(),
            manifest_digest: top_digest,
        },
    })
}

/// One source: the manifest (through an index to the configured platform), then the config.
async fn fetch(
    inner: &Inner,
    r: &Reference,
    credentialed: bool,
) -> Result<ImageConfig, ResolveError> {
    let (mut session, host) = session(inner, r, credentialed)?;
    let _permits = inner.permits(&host).await;
    let PlatformManifest {
        doc, named_digest, ..
    } = platform_manifest(inner, &mut session, &host, r).await?;
    let host = host.as_str();
    let registry_error = |e: RegistryError| registry_error(host, e);
    let config = doc
        .config
        .ok_or_else(|| ResolveError::Registry(format!("{host}: the manifest has no config")))?;
    if config.size > MAX_CONFIG_BYTES || config.size < 0 {
        return Err(ResolveError::ConfigTooLarge(config.size));
    }
    let response = session
        .get(&format!("blobs/{}", config.digest), None)
        .await
        .map_err(registry_error)?;
    if !response.status().is_success() {
        return Err(registry_error(RegistryError::Http(format!(
            "config blob: {}",
            response.status()
        ))));
    }
    // At most the declared size: a registry that streams more is cut off.
    let blob = registry::read_bounded(response, config.size as usize, "config blob")
        .await
        .map_err(registry_error)?;
    registry::verify_digest(&blob, &config.digest, "config blob").map_err(registry_error)?;
    let parsed: ConfigBlob =
        serde_json::from_slice(&blob).map_err(|e| ResolveError::BadConfig(e.to_string()))?;
    let section = parsed.config.unwrap_or_default();
    Ok(ImageConfig {
        entrypoint: section.entrypoint.unwrap_or_default(),
        cmd: section.cmd.unwrap_or_default(),
        // What the reference names: the index for a multi-platform image, as the kubelet
        // reports in `imageID`.
        digest: named_digest,
        working_dir: section.working_dir.unwrap_or_default(),
        user: section.user.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(digest: &str, os: &str, arch: &str, variant: Option<&str>) -> ImageIndexEntry {
        serde_json::from_value(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": 1,
            "platform": {"os": os, "architecture": arch, "variant": variant}
        }))
        .unwrap()
    }

    #[test]
    fn platform_choice() {
        let index = [
            entry("arm", "linux", "arm64", Some("v8")),
            entry("amd", "linux", "amd64", None),
            entry("win", "windows", "amd64", None),
            entry("armv7", "linux", "arm", Some("v7")),
            entry("armv6", "linux", "arm", Some("v6")),
        ];
        let pick = |p: &str| platform_resolver(p).unwrap()(&index);
        assert_eq!(pick("linux/amd64").as_deref(), Some("amd"));
        assert_eq!(pick("windows/amd64").as_deref(), Some("win"));
        assert_eq!(pick("linux/arm64").as_deref(), Some("arm"));
        assert_eq!(pick("linux/arm/v6").as_deref(), Some("armv6"));
        assert_eq!(pick("linux/s390x"), None);
        assert!(platform_resolver("linux").is_err());
        assert!(platform_resolver("linux//v7").is_err());
    }

    #[test]
    fn bad_settings_name_the_field() {
        let dir = std::env::temp_dir();
        let not_pem = dir.join(format!("pidone-not-pem-{}", std::process::id()));
        std::fs::write(&not_pem, "hello").unwrap();
        let cases = [
            (
                ImagesConfig {
                    ca_bundle: not_pem.display().to_string(),
                    ..ImagesConfig::default()
                },
                "images.caBundle",
            ),
            (
                ImagesConfig {
                    credentials: "/nonexistent/config.json".into(),
                    ..ImagesConfig::default()
                },
                "images.credentials",
            ),
            (
                ImagesConfig {
                    platform: "amd64".into(),
                    ..ImagesConfig::default()
                },
                "images.platform",
            ),
        ];
        for (config, field) in cases {
            let e = ImageResolver::new(&config).unwrap_err().to_string();
            assert!(e.starts_with(field), "{e}");
        }
        let _ = std::fs::remove_file(not_pem);
        assert!(ImageResolver::new(&ImagesConfig::default()).is_ok());
    }

    #[test]
    fn config_blob_fields() {
        let blob = br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/docker-entrypoint.sh"],"Cmd":["nginx","-g","daemon off;"],"WorkingDir":"/srv","User":"101","Env":["A=1"]}}"#;
        let parsed: ConfigBlob = serde_json::from_slice(blob).unwrap();
        let s = parsed.config.unwrap();
        assert_eq!(s.entrypoint.unwrap(), ["/docker-entrypoint.sh"]);
        assert_eq!(s.cmd.unwrap(), ["nginx", "-g", "daemon off;"]);
        assert_eq!(s.working_dir.as_deref(), Some("/srv"));
        assert_eq!(s.user.as_deref(), Some("101"));
        let parsed: ConfigBlob =
            serde_json::from_slice(br#"{"config":{"Entrypoint":null,"Cmd":null}}"#).unwrap();
        assert!(parsed.config.unwrap().entrypoint.is_none());
        let parsed: ConfigBlob = serde_json::from_slice(br#"{"os":"linux"}"#).unwrap();
        assert!(parsed.config.is_none());
    }
}
