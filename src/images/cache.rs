//! The look-up cache: content by digest for good, tags for a TTL, recent failures briefly;
//! bounded in entries and in the bytes its entries hold (pidone's one bounded cache type,
//! `crate::cache`; freshness is checked here, against the caller's clock).
//! It can be saved to and loaded from a JSON file (the CLI keeps it between runs). Image
//! configs and files read from layers are kept in caches of their own, saved to one file.

use crate::cache::{BoundedCache, Bounds};
use crate::engine::evaluate::ImageConfig;
use crate::engine::image_files::ImageFile;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bookkeeping bytes counted for each entry on top of its strings.
const ENTRY_OVERHEAD: usize = 160;
/// Bytes charged for one alias (a reference as written and its key).
const ALIAS_BYTES: usize = 256;
/// Version of the disk format; other versions are ignored when loading.
const DISK_VERSION: u32 = 1;

/// What a cached value costs in bytes, beyond the entry's bookkeeping.
pub trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for ImageConfig {
    fn weight(&self) -> usize {
        self.entrypoint
            .iter()
            .chain(&self.cmd)
            .map(|s| s.len() + 24)
            .sum::<usize>()
            + self.digest.len()
            + self.working_dir.len()
            + self.user.len()
    }
}

impl Weigh for ImageFile {
    fn weight(&self) -> usize {
        ImageFile::weight(self)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cached<V = ImageConfig> {
    Found(V),
    /// A recent failure, kept so a broken registry does not cost every admission the deadline.
    Failed {
        message: String,
        timeout: bool,
    },
}

#[derive(Debug, Clone)]
struct Entry<V> {
    value: Cached<V>,
    stored_at: SystemTime,
    /// Names content by digest: never expires.
    pinned: bool,
    size: usize,
}

/// Cache bounds and lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    pub max_entries: usize,
    pub max_bytes: usize,
    pub tag_ttl: Duration,
    pub failure_ttl: Duration,
}

#[derive(Debug)]
pub struct Cache<V = ImageConfig> {
    entries: BoundedCache<String, Entry<V>>,
    /// Image references as written in pods -> their cache keys, so a hit needs no parsing.
    aliases: BoundedCache<String, String>,
    limits: CacheLimits,
}

/// The on-disk form.
#[derive(Debug, Serialize, Deserialize)]
pub struct DiskCache {
    pub version: u32,
    pub entries: Vec<DiskEntry>,
    /// Files read from layers (absent from files written before they were read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<DiskEntry<ImageFile>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DiskEntry<V = ImageConfig> {
    pub key: String,
    /// The cached value: an image config, or a file read from its layers.
    pub config: V,
    /// Seconds since the Unix epoch.
    pub stored_at: u64,
    pub pinned: bool,
}

fn size_of<V: Weigh>(key: &str, value: &Cached<V>) -> usize {
    let strings = match value {
        Cached::Found(v) => v.weight(),
        Cached::Failed { message, .. } => message.len(),
    };
    ENTRY_OVERHEAD + key.len() + strings
}

impl<V: Clone + Weigh + Send + Sync + 'static> Cache<V> {
    pub fn new(limits: CacheLimits) -> Cache<V> {
        let bounds = Bounds {
            max_entries: limits.max_entries,
            max_bytes: limits.max_bytes,
        };
        Cache {
            entries: BoundedCache::new(bounds, |_, e: &Entry<V>| e.size),
            aliases: BoundedCache::new(
                Bounds {
                    max_entries: limits.max_entries,
                    max_bytes: limits.max_entries.saturating_mul(ALIAS_BYTES),
                },
                |written, key| written.len() + key.len(),
            ),
            limits,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.usage().0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.aliases.clear();
    }

    /// Approximate bytes held by the entries.
    pub fn bytes(&self) -> usize {
        self.entries.usage().1
    }

    fn fresh(&self, e: &Entry<V>, now: SystemTime) -> bool {
        let ttl = match e.value {
            Cached::Failed { .. } => self.limits.failure_ttl,
            Cached::Found(_) if e.pinned => return true,
            Cached::Found(_) => self.limits.tag_ttl,
        };
        // A clock that went backwards counts as fresh: the entry is at most that old.
        now.duration_since(e.stored_at)
            .map_or(true, |age| age <= ttl)
    }

    /// The entry for a key, if still fresh; stale entries are dropped.
    pub fn get(&mut self, key: &str, now: SystemTime) -> Option<Cached<V>> {
        let e = self.entries.get(key)?;
        if !self.fresh(&e, now) {
            self.entries.remove(key);
            return None;
        }
        Some(e.value)
    }

    /// The cache key an image reference as written was parsed to before.
    pub fn alias(&self, written: &str) -> Option<String> {
        self.aliases.get(written)
    }

    /// Remembers what an image reference as written parses to; bounded like the entries.
    pub fn add_alias(&mut self, written: &str, key: &str) {
        if written != key {
            self.aliases.insert(written.to_string(), key.to_string());
        }
    }

    /// Stores an entry; one larger than an eighth of the byte bound is not kept.
    pub fn insert(&mut self, key: String, value: Cached<V>, pinned: bool, stored_at: SystemTime) {
        let size = size_of(&key, &value);
        if size > self.limits.max_bytes / 8 {
            return;
        }
        self.entries.insert(
            key,
            Entry {
                value,
                stored_at,
                pinned,
                size,
            },
        );
    }

    /// The found entries, for saving.
    pub fn to_entries(&self) -> Vec<DiskEntry<V>> {
        let mut entries: Vec<DiskEntry<V>> = self
            .entries
            .entries()
            .into_iter()
            .filter_map(|(key, e)| match &e.value {
                Cached::Found(config) => Some(DiskEntry {
                    key: key.to_string(),
                    config: config.clone(),
                    stored_at: e
                        .stored_at
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                    pinned: e.pinned,
                }),
                Cached::Failed { .. } => None,
            })
            .collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        entries
    }

    /// Loads saved entries that are still fresh.
    pub fn load_entries(&mut self, entries: Vec<DiskEntry<V>>, now: SystemTime) {
        for e in entries {
            let stored_at = UNIX_EPOCH + Duration::from_secs(e.stored_at);
            let entry = Entry {
                value: Cached::Found(e.config),
                stored_at,
                pinned: e.pinned,
                size: 0,
            };
            if self.fresh(&entry, now) {
                self.insert(e.key, entry.value, e.pinned, stored_at);
            }
        }
    }
}

impl Cache<ImageConfig> {
    /// The found entries, for saving (files are added by the caller).
    pub fn to_disk(&self) -> DiskCache {
        DiskCache {
            version: DISK_VERSION,
            entries: self.to_entries(),
            files: Vec::new(),
        }
    }

    /// Loads saved entries that are still fresh; a file of another version is ignored.
    pub fn load_disk(&mut self, disk: DiskCache, now: SystemTime) {
        if disk.version != DISK_VERSION {
            return;
        }
        self.load_entries(disk.entries, now);
    }
}

/// Whether a saved cache is of the version this build reads.
pub fn readable(disk: &DiskCache) -> bool {
    disk.version == DISK_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> CacheLimits {
        CacheLimits {
            max_entries: 10,
            max_bytes: 1 << 20,
            tag_ttl: Duration::from_secs(600),
            failure_ttl: Duration::from_secs(30),
        }
    }

    fn found(d: &str) -> Cached {
        Cached::Found(ImageConfig {
            entrypoint: vec!["/app".into()],
            digest: d.into(),
            ..Default::default()
        })
    }

    #[test]
    fn tags_expire_digests_do_not() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut c = Cache::<ImageConfig>::new(limits());
        c.insert("r/a:1".into(), found("sha256:1"), false, t0);
        c.insert("r/a@sha256:1".into(), found("sha256:1"), true, t0);
        c.insert(
            "r/b:1".into(),
            Cached::Failed {
                message: "x".into(),
                timeout: false,
            },
            false,
            t0,
        );
        let t1 = t0 + Duration::from_secs(60);
        assert!(c.get("r/a:1", t1).is_some());
        assert!(c.get("r/b:1", t1).is_none(), "failures are kept briefly");
        let t2 = t0 + Duration::from_secs(601);
        assert!(c.get("r/a:1", t2).is_none());
        assert_eq!(c.get("r/a@sha256:1", t2), Some(found("sha256:1")));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn bounded_by_entries() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut c = Cache::<ImageConfig>::new(limits());
        for i in 0..100 {
            c.insert(format!("r/a:{i}"), found("d"), false, t0);
        }
        assert!(c.len() <= 10, "{}", c.len());
        c.add_alias("a:1", "r/a:1");
        assert_eq!(c.alias("a:1").as_deref(), Some("r/a:1"));
    }

    #[test]
    fn bounded_by_bytes() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut c = Cache::<ImageConfig>::new(CacheLimits {
            max_entries: 1000,
            max_bytes: 8 * 1024,
            ..limits()
        });
        let big = Cached::Found(ImageConfig {
            entrypoint: vec!["x".repeat(800)],
            ..Default::default()
        });
        for i in 0..50 {
            c.insert(format!("r/a:{i}"), big.clone(), false, t0);
            assert!(c.bytes() <= 8 * 1024, "{}", c.bytes());
        }
        assert!(c.len() < 10);
        let huge = Cached::Found(ImageConfig {
            entrypoint: vec!["x".repeat(2000)],
            ..Default::default()
        });
        c.insert("r/huge:1".into(), huge, false, t0);
        assert!(c.get("r/huge:1", t0).is_none(), "too large to keep");
    }

    #[test]
    fn disk_round_trip_keeps_fresh_found_entries() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut c = Cache::<ImageConfig>::new(limits());
        c.insert("r/a:1".into(), found("sha256:1"), false, t0);
        c.insert("r/a@sha256:1".into(), found("sha256:1"), true, t0);
        c.insert(
            "r/b:1".into(),
            Cached::Failed {
                message: "x".into(),
                timeout: true,
            },
            false,
            t0,
        );
        let text = serde_json::to_string(&c.to_disk()).unwrap();
        let disk: DiskCache = serde_json::from_str(&text).unwrap();
        assert_eq!(disk.entries.len(), 2);
        let mut fresh = Cache::<ImageConfig>::new(limits());
        fresh.load_disk(disk, t0 + Duration::from_secs(700));
        assert_eq!(fresh.len(), 1, "the tag expired, the digest stays");
        assert!(fresh.get("r/a@sha256:1", t0).is_some());
    }
}
