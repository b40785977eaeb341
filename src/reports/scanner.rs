//! Keeps the reports current from the cluster (`reports.enabled` in `pidone serve`).
//!
//! - kube's runtime watchers with reflector stores follow every pod-bearing kind and the
//!   namespaces (status and managed fields are dropped before they are stored). An event marks
//!   its namespace dirty; nothing is written before every kind has been listed once.
//! - Only the replica holding the Lease ([`super::lease`]) writes. Every replica keeps its
//!   stores warm, so a new holder writes at once.
//! - A dirty namespace's report is rebuilt from the stores, evaluating only objects whose
//!   content changed (a cache keyed by a hash of the object), and written with server-side
//!   apply under the field manager `pidone`, only when it differs from what was last written,
//!   at most once per `reports.minInterval` per report and `reports.maxWritesPerSecond` overall.
//! - A namespace whose last reported object is gone, or whose mode turned `off`, has its report
//!   deleted; a deleted namespace takes its report with it (owner reference).

use crate::cluster::kinds;
use crate::engine::config::{Config, ReportsApi};
use crate::engine::evaluate::Evaluation;
use crate::engine::pod_bearing::PodBearingKind;
use crate::reports::build::{self, MODE_LABEL, NamespaceInfo, NamespaceMode};
use crate::reports::lease::{self, LeaseOptions};
use crate::reports::shape::{ApiNames, MANAGED_BY, REPORT_NAME, Report, ReportResult, Timestamp};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The field manager of every report write.
pub const FIELD_MANAGER: &str = "pidone";

/// What the scanner needs from the server: the current configuration and an evaluation.
pub trait Evaluator: Send + Sync + 'static {
    fn config(&self) -> Arc<Config>;
    /// Evaluates one object as admission would (it may block: it runs on the blocking pool).
    fn evaluate(&self, object: &Value) -> Option<Evaluation>;
}

/// Names and timings.
#[derive(Debug, Clone)]
pub struct ScannerOptions {
    pub lease: LeaseOptions,
    /// How often dirty reports are looked at.
    pub tick: Duration,
}

impl ScannerOptions {
    pub fn new(lease: LeaseOptions) -> ScannerOptions {
        ScannerOptions {
            lease,
            tick: Duration::from_millis(500),
        }
    }
}

/// Counters and the current findings, for the metrics.
#[derive(Debug, Default)]
pub struct ScanStats {
    pub writes: AtomicU64,
    pub deletes: AtomicU64,
    pub write_errors: AtomicU64,
    /// Current results by (namespace, rule, result), over the written reports.
    findings: Mutex<BTreeMap<(String, String, String), i64>>,
}

impl ScanStats {
    /// A copy of the current result counts by (namespace, rule, result).
    pub fn findings(&self) -> BTreeMap<(String, String, String), i64> {
        self.findings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_namespace(&self, namespace: &str, results: &[ReportResult]) {
        let mut f = self.findings.lock().unwrap_or_else(PoisonError::into_inner);
        f.retain(|(ns, _, _), _| ns != namespace);
        for r in results {
            let result = serde_json::to_value(r.result)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            *f.entry((namespace.to_string(), r.rule.clone(), result))
                .or_default() += 1;
        }
    }
}

type Event = (usize, Result<watcher::Event<DynamicObject>, watcher::Error>);
type NsEvent = Result<watcher::Event<Namespace>, watcher::Error>;

/// Drops what the reports never read, so the stores stay small.
fn strip(object: &mut DynamicObject) {
    object.metadata.managed_fields = None;
    if let Some(map) = object.data.as_object_mut() {
        map.remove("status");
    }
}

/// The object as the engine reads it (kind and apiVersion filled in).
fn as_value(kind: &PodBearingKind, object: &DynamicObject) -> Option<Value> {
    let mut value = serde_json::to_value(object).ok()?;
    let map = value.as_object_mut()?;
    map.insert("kind".into(), Value::String(kind.kind.into()));
    map.insert("apiVersion".into(), Value::String(kind.api_version()));
    Some(value)
}

/// A hash of what evaluation reads: the object without its resourceVersion.
fn content_hash(value: &Value) -> u64 {
    let mut v = value.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    let mut h = DefaultHasher::new();
    v.to_string().hash(&mut h);
    h.finish()
}

struct Cached {
    hash: u64,
    results: Vec<ReportResult>,
}

/// The scanner's state between ticks.
struct Scanner {
    client: kube::Client,
    evaluator: Arc<dyn Evaluator>,
    stats: Arc<ScanStats>,
    /// A reflector store per kind read from the cluster ([`kinds::live`]), indexed as the
    /// watch events are.
    stores: Vec<(&'static PodBearingKind, Store<DynamicObject>)>,
    namespaces: Store<Namespace>,
    listed: Vec<bool>,
    namespaces_listed: bool,
    dirty: BTreeSet<String>,
    resync: bool,
    cluster_dirty: bool,
    /// Evaluations by (kind index, namespace, name).
    cache: HashMap<(usize, String, String), Cached>,
    config: Option<Arc<Config>>,
    /// When each (object uid or name, container, rule) was first seen: stable timestamps, so
    /// an unchanged report is not rewritten.
    first_seen: HashMap<(String, String, String), Timestamp>,
    /// Results of every namespace last built, for the cluster report.
    ns_results: BTreeMap<String, Vec<ReportResult>>,
    /// What was last written (`None`: a report found in the cluster, content unknown) and when.
    written: BTreeMap<Option<String>, (Option<Report>, Instant)>,
    next_write: Instant,
    api: Option<ReportsApi>,
    leading: bool,
    cleanup_due: bool,
    missing_crd_logged: bool,
}

/// Runs until dropped (abort the task to stop it).
pub async fn run(
    client: kube::Client,
    evaluator: Arc<dyn Evaluator>,
    options: ScannerOptions,
    stats: Arc<ScanStats>,
) {
    let (leading_tx, mut leading_rx) = watch::channel(false);
    let election = tokio::spawn(lease::run(
        client.clone(),
        options.lease.clone(),
        leading_tx,
    ));
    let _stop_election = AbortOnDrop(election);

    let mut streams: Vec<Pin<Box<dyn Stream<Item = Event> + Send>>> = Vec::new();
    let mut stores = Vec::new();
    for (index, kind) in kinds::live().enumerate() {
        let resource = kinds::api_resource(kind);
        let writer = reflector::store::Writer::<DynamicObject>::new(resource.clone());
        stores.push((kind, writer.as_reader()));
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(strip)
            .reflect(writer)
            .map(move |event| (index, event));
        streams.push(Box::pin(stream));
    }
    let mut objects = futures::stream::select_all(streams);
    let ns_writer = reflector::store::Writer::<Namespace>::default();
    let ns_store = ns_writer.as_reader();
    let mut namespace_events: Pin<Box<dyn Stream<Item = NsEvent> + Send>> = Box::pin(
        watcher(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .modify(|ns: &mut Namespace| {
            ns.metadata.managed_fields = None;
        })
        .reflect(ns_writer),
    );

    let mut scanner = Scanner {
        client,
        evaluator,
        stats,
        listed: vec![false; stores.len()],
        stores,
        namespaces: ns_store,
        namespaces_listed: false,
        dirty: BTreeSet::new(),
        resync: true,
        cluster_dirty: true,
        cache: HashMap::new(),
        config: None,
        first_seen: HashMap::new(),
        ns_results: BTreeMap::new(),
        written: BTreeMap::new(),
        next_write: Instant::now(),
        api: None,
        leading: false,
        cleanup_due: false,
        missing_crd_logged: false,
    };
    let mut ticker = tokio::time::interval(options.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some((index, event)) = objects.next() => scanner.on_object_event(index, event),
            Some(event) = namespace_events.next() => scanner.on_namespace_event(event),
            changed = leading_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let leading = *leading_rx.borrow_and_update();
                if leading && !scanner.leading {
                    // A new holder does not know what the last one wrote: look, then write all.
                    scanner.written.clear();
                    scanner.cleanup_due = true;
                    scanner.resync = true;
                }
                scanner.leading = leading;
            }
            _ = ticker.tick() => scanner.flush().await,
        }
    }
}

/// Where a report API call goes.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
    Namespace(&'a str),
    AllNamespaces,
    Cluster,
}

impl<'a> Scope<'a> {
    fn of(namespace: Option<&'a str>) -> Scope<'a> {
        match namespace {
            Some(ns) => Scope::Namespace(ns),
            None => Scope::Cluster,
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Scanner {
    fn on_object_event(
        &mut self,
        index: usize,
        event: Result<watcher::Event<DynamicObject>, watcher::Error>,
    ) {
        match event {
            Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) => {
                if let Some(ns) = o.namespace() {
                    self.dirty.insert(ns);
                }
            }
            Ok(watcher::Event::InitDone) => {
                if let Some(l) = self.listed.get_mut(index) {
                    *l = true;
                }
                self.resync = true;
            }
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Err(e) => {
                let kind = self.stores.get(index).map_or("?", |(k, _)| k.plural);
                tracing::warn!(error = %e, kind, "reports: watch failed; retrying");
            }
        }
    }

    fn on_namespace_event(&mut self, event: NsEvent) {
        match event {
            Ok(watcher::Event::Apply(ns) | watcher::Event::Delete(ns)) => {
                self.dirty.insert(ns.name_any());
                self.cluster_dirty = true;
            }
            Ok(watcher::Event::InitDone) => {
                self.namespaces_listed = true;
                self.resync = true;
            }
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Err(e) => tracing::warn!(error = %e, "reports: namespace watch failed; retrying"),
        }
    }

    /// The report API: in one namespace, across all namespaces, or the cluster-scoped kind.
    fn report_api(&self, api: ReportsApi, scope: Scope<'_>) -> Api<DynamicObject> {
        let names = ApiNames::of(api);
        let (kind, plural) = match scope {
            Scope::Namespace(_) | Scope::AllNamespaces => (names.kind, names.plural),
            Scope::Cluster => (names.cluster_kind, names.cluster_plural),
        };
        let resource = ApiResource {
            group: names.group.into(),
            version: names.version.into(),
            api_version: names.api_version(),
            kind: kind.into(),
            plural: plural.into(),
        };
        match scope {
            Scope::Namespace(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            Scope::AllNamespaces | Scope::Cluster => Api::all_with(self.client.clone(), &resource),
        }
    }

    fn namespace_info(&self, name: &str) -> NamespaceInfo {
        let key = reflector::ObjectRef::<Namespace>::new(name);
        match self.namespaces.get(&key) {
            Some(ns) => NamespaceInfo {
                name: name.to_string(),
                uid: ns.metadata.uid.clone(),
                mode_label: ns.labels().get(MODE_LABEL).cloned(),
            },
            None => NamespaceInfo {
                name: name.to_string(),
                uid: None,
                mode_label: None,
            },
        }
    }

    async fn flush(&mut self) {
        if !self.leading || !self.namespaces_listed || self.listed.iter().any(|listed| !listed) {
            return;
        }
        let config = self.evaluator.config();
        let api = config.reports.api;
        let config_changed = self
            .config
            .as_ref()
            .is_none_or(|c| !Arc::ptr_eq(c, &config));
        if config_changed {
            self.cache.clear();
            self.resync = true;
            self.config = Some(Arc::clone(&config));
        }
        if self.api != Some(api) {
            // Reports of the other API are left as they are; this one starts from what it finds.
            self.written.clear();
            self.cleanup_due = true;
            self.api = Some(api);
        }
        if self.cleanup_due {
            self.find_existing(api).await;
        }
        if self.resync {
            self.resync = false;
            self.cluster_dirty = true;
            for ns in self.namespaces.state() {
                self.dirty.insert(ns.name_any());
            }
            for (_, store) in &self.stores {
                for o in store.state() {
                    if let Some(ns) = o.namespace() {
                        self.dirty.insert(ns);
                    }
                }
            }
            self.dirty
                .extend(self.written.keys().filter_map(|k| k.clone()));
        }
        if self.dirty.is_empty() && !self.cluster_dirty {
            return;
        }
        let min_interval = config.reports.min_interval;
        let now = Instant::now();
        let due: Vec<String> = self
            .dirty
            .iter()
            .filter(|ns| {
                self.written
                    .get(&Some((*ns).clone()))
                    .is_none_or(|(_, at)| now.duration_since(*at) >= min_interval)
            })
            .cloned()
            .collect();
        if !due.is_empty() {
            self.cluster_dirty = true;
        }
        let results = self.build_results(&due).await;
        for (ns, (reported, results)) in results {
            self.dirty.remove(&ns);
            let info = self.namespace_info(&ns);
            let mode = NamespaceMode::of(&config, &ns, info.mode_label.as_deref());
            if reported && mode.reported() {
                self.stats.set_namespace(&ns, &results);
                let report = build::namespace_report(api, &info, results.clone());
                self.ns_results.insert(ns.clone(), results);
                if !self.write(api, Some(&ns), report, &config).await {
                    self.dirty.insert(ns);
                }
            } else {
                self.stats.set_namespace(&ns, &[]);
                self.ns_results.remove(&ns);
                if self.written.contains_key(&Some(ns.clone()))
                    && !self.delete(api, &ns, &config).await
                {
                    self.dirty.insert(ns);
                }
            }
        }
        // Forget first-seen times of results that are gone (bounded memory).
        let live: usize = self.ns_results.values().map(Vec::len).sum();
        if self.first_seen.len() > 2 * live + 1024 {
            let keep: BTreeSet<(String, String, String)> = self
                .ns_results
                .values()
                .flatten()
                .map(|r| {
                    let object = r
                        .resources
                        .first()
                        .map(|res| res.uid.clone().unwrap_or_else(|| res.name.clone()))
                        .unwrap_or_default();
                    let container = r.properties.get("container").cloned().unwrap_or_default();
                    (object, container, r.rule.clone())
                })
                .collect();
            self.first_seen.retain(|k, _| keep.contains(k));
        }
        let cluster_due = self
            .written
            .get(&None)
            .is_none_or(|(_, at)| now.duration_since(*at) >= min_interval);
        if self.cluster_dirty && cluster_due {
            let stamp = Timestamp::now();
            let mut cluster_results = Vec::new();
            let mut names: BTreeSet<String> = self
                .namespaces
                .state()
                .iter()
                .map(|n| n.name_any())
                .collect();
            names.extend(self.ns_results.keys().cloned());
            for name in names {
                let info = self.namespace_info(&name);
                let mode = NamespaceMode::of(&config, &name, info.mode_label.as_deref());
                let results = self.ns_results.get(&name).map(Vec::as_slice).unwrap_or(&[]);
                let mut result = build::namespace_result(&info, mode, results, stamp);
                let key = (name.clone(), String::new(), result.message.clone());
                result.timestamp = *self.first_seen.entry(key).or_insert(stamp);
                cluster_results.push(result);
            }
            let report = build::cluster_report(api, cluster_results);
            if self.write(api, None, report, &config).await {
                self.cluster_dirty = false;
            }
        }
    }

    /// Lists the reports already in the cluster (a previous holder's), so that those no longer
    /// wanted are deleted and the others rewritten.
    async fn find_existing(&mut self, api: ReportsApi) {
        let lp = ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
        let listed = self.report_api(api, Scope::AllNamespaces).list(&lp).await;
        match listed {
            Ok(list) => {
                for item in list.items {
                    if item.name_any() == REPORT_NAME
                        && let Some(ns) = item.namespace()
                    {
                        // Due at once: its content is unknown.
                        let long_ago = Instant::now()
                            .checked_sub(Duration::from_secs(3600))
                            .unwrap_or_else(Instant::now);
                        self.written.entry(Some(ns)).or_insert((None, long_ago));
                    }
                }
                self.cleanup_due = false;
            }
            Err(e) => tracing::debug!(error = %e, "reports: cannot list existing reports yet"),
        }
    }

    /// Builds the results of each namespace in `due`: (has reported objects, results).
    async fn build_results(
        &mut self,
        due: &[String],
    ) -> BTreeMap<String, (bool, Vec<ReportResult>)> {
        let due_set: BTreeSet<&String> = due.iter().collect();
        let mut out: BTreeMap<String, (bool, Vec<ReportResult>)> = due
            .iter()
            .map(|ns| (ns.clone(), (false, Vec::new())))
            .collect();
        let mut misses: Vec<((usize, String, String), u64, Value)> = Vec::new();
        let mut present: BTreeSet<(usize, String, String)> = BTreeSet::new();
        for (index, &(kind, ref store)) in self.stores.iter().enumerate() {
            for object in store.state() {
                let Some(ns) = object.namespace() else {
                    continue;
                };
                if !due_set.contains(&ns) {
                    continue;
                }
                let Some(value) = as_value(kind, &object) else {
                    continue;
                };
                if !kinds::reported(kind.kind, &value) {
                    continue;
                }
                let key = (index, ns.clone(), object.name_any());
                present.insert(key.clone());
                if let Some(entry) = out.get_mut(&ns) {
                    entry.0 = true;
                }
                let hash = content_hash(&value);
                match self.cache.get(&key) {
                    Some(c) if c.hash == hash => {}
                    _ => misses.push((key, hash, value)),
                }
            }
        }
        // Objects gone from a due namespace leave the cache.
        self.cache
            .retain(|k, _| !due_set.contains(&k.1) || present.contains(k));
        if !misses.is_empty() {
            let evaluator = Arc::clone(&self.evaluator);
            let stamp = Timestamp::now();
            let evaluated = tokio::task::spawn_blocking(move || {
                misses
                    .into_iter()
                    .map(|(key, hash, value)| {
                        let results =
                            match (evaluator.evaluate(&value), build::resource_ref(&value)) {
                                (Some(eval), Some(resource)) => {
                                    build::object_results(&resource, &value, &eval, stamp)
                                }
                                _ => Vec::new(),
                            };
                        (key, hash, results)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for (key, hash, results) in evaluated {
                self.cache.insert(key, Cached { hash, results });
            }
        }
        for ((_, ns, name), cached) in self.cache.iter() {
            if let Some(entry) = out.get_mut(ns) {
                for r in &cached.results {
                    let mut r = r.clone();
                    let object = r
                        .resources
                        .first()
                        .map(|res| res.uid.clone().unwrap_or_else(|| res.name.clone()))
                        .unwrap_or_else(|| name.clone());
                    let container = r.properties.get("container").cloned().unwrap_or_default();
                    let key = (object, container, r.rule.clone());
                    r.timestamp = *self.first_seen.entry(key).or_insert(r.timestamp);
                    entry.1.push(r);
                }
            }
        }
        out
    }

    /// Waits for the write budget.
    async fn pace(&mut self, config: &Config) {
        let per_write = Duration::from_secs(1) / config.reports.max_writes_per_second.max(1);
        let now = Instant::now();
        if self.next_write > now {
            tokio::time::sleep_until(self.next_write).await;
        }
        self.next_write = self.next_write.max(now) + per_write;
    }

    /// Applies `report` unless it is what was last written. False when the write failed.
    async fn write(
        &mut self,
        api: ReportsApi,
        namespace: Option<&str>,
        report: Report,
        config: &Config,
    ) -> bool {
        let key = namespace.map(str::to_string);
        if let Some((Some(last), _)) = self.written.get(&key)
            && *last == report
        {
            return true;
        }
        let Ok(body) = serde_json::to_value(&report) else {
            return false;
        };
        self.pace(config).await;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match self
            .report_api(api, Scope::of(namespace))
            .patch(REPORT_NAME, &params, &Patch::Apply(&body))
            .await
        {
            Ok(_) => {
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
                self.written.insert(key, (Some(report), Instant::now()));
                true
            }
            Err(e) => {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                let missing = matches!(&e, kube::Error::Api(s) if s.code == 404);
                if missing && !self.missing_crd_logged {
                    self.missing_crd_logged = true;
                    let names = ApiNames::of(api);
                    tracing::warn!(
                        error = %e,
                        "reports: cannot write {}.{}: is its CRD installed?",
                        names.plural,
                        names.group
                    );
                } else {
                    tracing::debug!(error = %e, namespace = ?namespace, "reports: write failed");
                }
                // Retry after the interval.
                self.written
                    .entry(key)
                    .and_modify(|(_, at)| *at = Instant::now())
                    .or_insert((None, Instant::now()));
                false
            }
        }
    }

    /// Deletes a namespace's report. False when the delete failed (other than not found).
    async fn delete(&mut self, api: ReportsApi, namespace: &str, config: &Config) -> bool {
        self.pace(config).await;
        match self
            .report_api(api, Scope::Namespace(namespace))
            .delete(REPORT_NAME, &DeleteParams::default())
            .await
        {
            Ok(_) => {
                self.stats.deletes.fetch_add(1, Ordering::Relaxed);
                self.written.remove(&Some(namespace.to_string()));
                true
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                self.written.remove(&Some(namespace.to_string()));
                true
            }
            Err(e) => {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, namespace, "reports: delete failed");
                false
            }
        }
    }
}
