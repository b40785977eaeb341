//! ConfigMaps read from the API for the webhook (`scripts.configMaps`): one GET per ConfigMap,
//! bounded in size, cached by namespace and name for `scripts.cacheTTL`, and shared: however
//! many reviews ask for a ConfigMap at once (a rollout's pods), one GET is in flight.
//!
//! Staleness: an answer is used for `cacheTTL` after it was read (30 s by default), so a change
//! to a ConfigMap can go unseen for that long; "not found" and "forbidden" are kept for at most
//! [`NEGATIVE_TTL`], so a ConfigMap created just before its pods (or RBAC granted later) is
//! seen soon. Errors without an answer (timeouts, 5xx, transport) are not kept: the next review
//! asks again. Reads are plain GETs (served by the apiserver from etcd, consistent).
//!
//! # RBAC
//!
//! `get` on `configmaps` in every namespace where `scripts.configMaps` is on (the Helm chart
//! grants a Role per listed namespace, or a ClusterRole when all are asked for).

use crate::cache::{BoundedCache, Bounds};
use crate::engine::config::ScriptsConfig;
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// Longest time "not found" and "forbidden" are kept.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// The `data` of one ConfigMap, key to text.
pub type Data = Arc<BTreeMap<String, String>>;

/// What the API said about one ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Found(Data),
    NotFound,
    Failed(LookupError),
}

/// Why a ConfigMap could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("forbidden: grant get configmaps")]
    Forbidden,
    #[error("no answer in time")]
    Timeout,
    #[error("larger than scripts.maxBytes ({0} bytes)")]
    TooLarge(usize),
    #[error("not a valid namespace or ConfigMap name")]
    BadName,
    #[error("the API answered HTTP {0}")]
    Status(u16),
    #[error("the API's answer is not a ConfigMap: {0}")]
    Decode(String),
    #[error("cannot reach the API: {0}")]
    Transport(String),
}

impl LookupError {
    /// The label this error is counted and logged under.
    pub fn metric_label(&self) -> &'static str {
        match self {
            LookupError::Forbidden => "forbidden",
            LookupError::Timeout => "timeout",
            LookupError::TooLarge(_) => "too-large",
            LookupError::BadName => "bad-name",
            LookupError::Status(_) => "status",
            LookupError::Decode(_) => "decode",
            LookupError::Transport(_) => "transport",
        }
    }
}

/// One look-up's result, and whether the cache answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Looked {
    pub name: String,
    pub outcome: Outcome,
    pub cached: bool,
}

/// An answer kept in the cache.
#[derive(Debug, Clone)]
struct Kept {
    outcome: Outcome,
    at: Instant,
    bytes: usize,
}

impl Kept {
    fn fresh(&self, ttl: Duration, now: Instant) -> bool {
        let ttl = match self.outcome {
            Outcome::Found(_) => ttl,
            _ => ttl.min(NEGATIVE_TTL),
        };
        now.saturating_duration_since(self.at) < ttl
    }
}

/// One cache entry: empty while its first GET runs (or after one that got no answer).
#[derive(Debug, Default)]
struct Slot {
    kept: OnceCell<Kept>,
}

type Key = (String, String);

/// Bookkeeping bytes charged per entry on top of its names and data.
const SLOT_OVERHEAD: usize = 200;

/// Reads ConfigMaps through one client with one cache. Cheap to share behind an `Arc`.
pub struct ConfigMapSource {
    client: kube::Client,
    settings: ScriptsConfig,
    cache: BoundedCache<Key, Arc<Slot>>,
}

impl std::fmt::Debug for ConfigMapSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigMapSource")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ConfigMapSource {
    pub fn new(client: kube::Client, settings: &ScriptsConfig) -> ConfigMapSource {
        ConfigMapSource {
            client,
            settings: settings.clone(),
            cache: BoundedCache::new(
                Bounds {
                    max_entries: settings.cache_max_entries,
                    max_bytes: settings.cache_max_bytes,
                },
                |(namespace, name), slot| {
                    SLOT_OVERHEAD
                        + namespace.len()
                        + name.len()
                        + slot.kept.get().map_or(0, |k| k.bytes)
                },
            ),
        }
    }

    /// The settings it was built with (a reload with other settings builds a new source).
    pub fn settings(&self) -> &ScriptsConfig {
        &self.settings
    }

    /// The cached answer for a ConfigMap, if it is fresh. No I/O.
    pub fn cached(&self, namespace: &str, name: &str) -> Option<Outcome> {
        let slot = self.cache.get(&(namespace.to_string(), name.to_string()))?;
        let kept = slot.kept.get()?;
        kept.fresh(self.settings.cache_ttl, Instant::now())
            .then(|| kept.outcome.clone())
    }

    /// Looks each name up in `namespace`, from the cache or the API, all at once, until
    /// `deadline`; names without an answer by then fail with [`LookupError::Timeout`].
    pub async fn look_up(
        &self,
        namespace: &str,
        names: &[String],
        deadline: Instant,
    ) -> Vec<Looked> {
        let lookups = names.iter().map(|name| async move {
            let (outcome, cached) =
                match tokio::time::timeout_at(deadline, self.one(namespace, name)).await {
                    Ok(answer) => answer,
                    Err(_) => (Outcome::Failed(LookupError::Timeout), false),
                };
            Looked {
                name: name.clone(),
                outcome,
                cached,
            }
        });
        futures::future::join_all(lookups).await
    }

    async fn one(&self, namespace: &str, name: &str) -> (Outcome, bool) {
        if !is_dns_subdomain(name) || !is_dns_subdomain(namespace) {
            return (Outcome::Failed(LookupError::BadName), false);
        }
        let slot = self.slot(namespace, name);
        let mut fetched = false;
        let kept = slot
            .kept
            .get_or_try_init(|| {
                fetched = true;
                self.fetch(namespace, name)
            })
            .await;
        match kept {
            Ok(kept) => {
                let outcome = kept.outcome.clone();
                if fetched {
                    // Again, now that it holds the answer: the cache charges it its size.
                    self.cache
                        .insert((namespace.to_string(), name.to_string()), Arc::clone(&slot));
                }
                (outcome, !fetched)
            }
            Err(e) => (Outcome::Failed(e), false),
        }
    }

    /// The entry for a ConfigMap: the current one unless its answer is stale.
    fn slot(&self, namespace: &str, name: &str) -> Arc<Slot> {
        let key = (namespace.to_string(), name.to_string());
        let now = Instant::now();
        if let Some(slot) = self.cache.get(&key)
            && slot
                .kept
                .get()
                .is_none_or(|k| k.fresh(self.settings.cache_ttl, now))
        {
            return slot;
        }
        let slot = Arc::new(Slot::default());
        self.cache.insert(key, Arc::clone(&slot));
        slot
    }

    /// One GET. Answers the cache keeps come back `Ok`; the rest are errors.
    async fn fetch(&self, namespace: &str, name: &str) -> Result<Kept, LookupError> {
        let request =
            hyper::Request::get(format!("/api/v1/namespaces/{namespace}/configmaps/{name}"))
                .header("Accept", "application/json")
                .body(kube::client::Body::from(Vec::new()))
                .map_err(|e| LookupError::Transport(e.to_string()))?;
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| LookupError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let max = self.settings.max_bytes;
        let body = http_body_util::Limited::new(response.into_body(), max)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    LookupError::TooLarge(max)
                } else {
                    LookupError::Transport(e.to_string())
                }
            })?
            .to_bytes();
        let at = Instant::now();
        let outcome = match status {
            200 => Outcome::Found(Arc::new(data_of(&body)?)),
            404 => Outcome::NotFound,
            403 => Outcome::Failed(LookupError::Forbidden),
            code => return Err(LookupError::Status(code)),
        };
        let bytes = match &outcome {
            Outcome::Found(data) => data.iter().map(|(k, v)| k.len() + v.len()).sum(),
            _ => 0,
        };
        Ok(Kept { outcome, at, bytes })
    }

    /// ConfigMaps in the cache (for tests and metrics).
    pub fn cached_entries(&self) -> usize {
        self.cache.usage().0
    }
}

/// The string `data` of a ConfigMap as the API returns it (`binaryData` holds no scripts).
fn data_of(body: &[u8]) -> Result<BTreeMap<String, String>, LookupError> {
    #[derive(serde::Deserialize)]
    struct ConfigMap {
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        data: Option<BTreeMap<String, String>>,
    }
    let map: ConfigMap =
        serde_json::from_slice(body).map_err(|e| LookupError::Decode(e.to_string()))?;
    if map.kind.as_deref().is_some_and(|k| k != "ConfigMap") {
        return Err(LookupError::Decode(format!(
            "kind {}",
            map.kind.unwrap_or_default()
        )));
    }
    Ok(map.data.unwrap_or_default())
}

/// A DNS-1123 subdomain (what ConfigMap and namespace names are): checked before a name
/// from an object goes into a URL path, since the apiserver validates the pod only after
/// the webhooks have seen it.
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_may_go_into_a_path() {
        for good in ["scripts", "a.b-c", "x1", "kube-root-ca.crt"] {
            assert!(is_dns_subdomain(good), "{good}");
        }
        for bad in [
            "",
            "../secrets",
            "A",
            "a/b",
            "a..b",
            "-a",
            "a-",
            "a?b",
            &"a".repeat(254),
        ] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
    }

    #[test]
    fn data_is_the_string_data() {
        let data = data_of(br#"{"kind":"ConfigMap","metadata":{"resourceVersion":"7"},"data":{"run.sh":"exec app"},"binaryData":{"b":"AA=="}}"#).unwrap();
        assert_eq!(data.get("run.sh").map(String::as_str), Some("exec app"));
        assert_eq!(data.len(), 1);
        assert!(data_of(br#"{"kind":"ConfigMap"}"#).unwrap().is_empty());
        assert!(matches!(
            data_of(br#"{"kind":"Secret","data":{}}"#),
            Err(LookupError::Decode(_))
        ));
        assert!(matches!(data_of(b"<html>"), Err(LookupError::Decode(_))));
    }

    #[test]
    fn negative_answers_are_kept_briefly() {
        let now = Instant::now();
        let kept = |outcome| Kept {
            outcome,
            at: now,
            bytes: 0,
        };
        let ttl = Duration::from_secs(30);
        let later = now + Duration::from_secs(10);
        assert!(kept(Outcome::Found(Arc::default())).fresh(ttl, later));
        assert!(!kept(Outcome::NotFound).fresh(ttl, later));
        assert!(!kept(Outcome::Failed(LookupError::Forbidden)).fresh(ttl, later));
        assert!(kept(Outcome::NotFound).fresh(ttl, now + Duration::from_secs(1)));
    }
}
