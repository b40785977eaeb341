//! pidone's one bounded cache type, for everything it remembers between reviews (script
//! verdicts; look-ups other modules make).
//!
//! Built on moka (already in the dependency tree through hickory-resolver): bounded by the
//! bytes its entries hold and, through a minimum charge per entry, by their number. Its
//! TinyLFU admission keeps entries that are used often when someone floods the cache with
//! one-off keys (a tenant creating pods with unique scripts), which a plain LRU would let flush
//! everyone else's entries.

use std::borrow::Borrow;
use std::hash::Hash;

/// Size bounds of a [`BoundedCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub max_entries: usize,
    /// What the entries hold, as their weigher counts it.
    pub max_bytes: usize,
}

/// A concurrent cache bounded by [`Bounds`]. Cheap to clone (shared).
#[derive(Clone)]
pub struct BoundedCache<K, V> {
    inner: moka::sync::Cache<K, V>,
    bounds: Bounds,
    weigh: fn(&K, &V) -> usize,
}

impl<K, V> std::fmt::Debug for BoundedCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedCache")
            .field("bounds", &self.bounds)
            .finish_non_exhaustive()
    }
}

impl<K, V> BoundedCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// `weigh` gives an entry's size in bytes (its key and value, bookkeeping included).
    pub fn new(bounds: Bounds, weigh: fn(&K, &V) -> usize) -> BoundedCache<K, V> {
        // Every entry is charged at least its share of the bytes, so the byte bound is also a
        // bound on the number of entries.
        let floor = bounds.max_bytes / bounds.max_entries.max(1);
        let inner = moka::sync::Cache::builder()
            .max_capacity(bounds.max_bytes as u64)
            .weigher(move |k: &K, v: &V| {
                u32::try_from(weigh(k, v).max(floor).max(1)).unwrap_or(u32::MAX)
            })
            .build();
        BoundedCache {
            inner,
            bounds,
            weigh,
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.get(key)
    }

    /// Stores an entry; one larger than the whole cache, or any in a cache bounded to no
    /// entries, is not kept.
    pub fn insert(&self, key: K, value: V) {
        let fits = self.bounds.max_entries > 0
            && (self.weigh)(&key, &value) <= self.bounds.max_bytes
            && (self.weigh)(&key, &value) <= u32::MAX as usize;
        if fits {
            self.inner.insert(key, value);
        }
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.invalidate(key);
    }

    pub fn clear(&self) {
        self.inner.invalidate_all();
        self.inner.run_pending_tasks();
    }

    /// (entries, bytes as charged) held now, after pending evictions ran.
    pub fn usage(&self) -> (usize, usize) {
        self.inner.run_pending_tasks();
        (
            self.inner.entry_count() as usize,
            self.inner.weighted_size() as usize,
        )
    }

    /// Every entry (for saving a cache between runs).
    pub fn entries(&self) -> Vec<(std::sync::Arc<K>, V)> {
        self.inner.iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::ptr_arg)] // the cache's weigher signature
    fn weigh(k: &String, v: &String) -> usize {
        k.len() + v.len()
    }

    #[test]
    fn hits_misses_and_replacement() {
        let c = BoundedCache::new(
            Bounds {
                max_entries: 10,
                max_bytes: 1000,
            },
            weigh,
        );
        assert_eq!(c.get("a"), None);
        c.insert("a".to_string(), "1".to_string());
        assert_eq!(c.get("a").as_deref(), Some("1"));
        c.insert("a".to_string(), "2".to_string());
        assert_eq!(c.get("a").as_deref(), Some("2"));
        assert_eq!(c.usage().0, 1);
        c.remove("a");
        assert_eq!(c.get("a"), None);
    }

    #[test]
    fn bounded_by_entries_and_bytes_and_skips_what_cannot_fit() {
        let by_entries = BoundedCache::new(
            Bounds {
                max_entries: 8,
                max_bytes: 8000,
            },
            weigh,
        );
        for i in 0..500 {
            by_entries.insert(format!("{i}"), String::new());
        }
        let (entries, bytes) = by_entries.usage();
        assert!(entries <= 8, "{entries}");
        assert!(bytes <= 8000, "{bytes}");

        let by_bytes = BoundedCache::new(
            Bounds {
                max_entries: 1000,
                max_bytes: 3000,
            },
            weigh,
        );
        for i in 0..50 {
            by_bytes.insert(format!("{i:01000}"), String::new());
        }
        let (entries, bytes) = by_bytes.usage();
        assert!(entries <= 3 && bytes <= 3000, "{entries} {bytes}");
        by_bytes.insert("x".repeat(5000), String::new());
        assert_eq!(by_bytes.get(&"x".repeat(5000)), None);
        by_bytes.clear();
        assert_eq!(by_bytes.usage(), (0, 0));

        let none = BoundedCache::new(
            Bounds {
                max_entries: 0,
                max_bytes: 3000,
            },
            weigh,
        );
        none.insert("a".into(), "b".into());
        assert_eq!(none.get("a"), None);
    }

    #[test]
    fn a_flood_of_one_off_keys_does_not_flush_entries_in_use() {
        let c = BoundedCache::new(
            Bounds {
                max_entries: 64,
                max_bytes: 64 * 100,
            },
            weigh,
        );
        for _ in 0..5 {
            for i in 0..32 {
                c.insert(format!("popular-{i}"), String::new());
                let _ = c.get(&format!("popular-{i}"));
            }
        }
        for i in 0..10_000 {
            c.insert(format!("one-off-{i}"), String::new());
        }
        c.usage();
        let kept = (0..32)
            .filter(|i| c.get(&format!("popular-{i}")).is_some())
            .count();
        assert!(
            kept >= 24,
            "only {kept} of 32 popular entries survived the flood"
        );
    }
}
