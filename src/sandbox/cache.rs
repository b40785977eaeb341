//! A bounded cache of verdicts, keyed by the exact (dialect, script), shared across threads.
//!
//! Hostile scripts are cached like any other: a pod retried by its controller costs one parse.

use crate::cache::{BoundedCache, Bounds};
use crate::engine::script::{Dialect, ScriptVerdict};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

/// Bookkeeping charged per entry on top of the script's bytes.
const ENTRY_OVERHEAD: usize = 256;

/// Size limits of a [`VerdictCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    pub max_entries: usize,
    /// Script bytes plus a fixed overhead per entry.
    pub max_bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_entries: 4096,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

struct Slot {
    dialect: Dialect,
    script: Box<str>,
    verdict: Arc<ScriptVerdict>,
}

/// Thread-safe verdict cache, by keyed hash of (dialect, script): the hash is keyed per
/// process (SipHash with a random key), so colliding scripts cannot be crafted, and entries
/// still compare the full script (a collision simply replaces the entry). Lookups copy
/// nothing: the verdict is shared.
pub struct VerdictCache {
    hasher: RandomState,
    cache: BoundedCache<u64, Arc<Slot>>,
}

impl VerdictCache {
    pub fn new(limits: CacheLimits) -> VerdictCache {
        VerdictCache {
            hasher: RandomState::new(),
            cache: BoundedCache::new(
                Bounds {
                    max_entries: limits.max_entries,
                    max_bytes: limits.max_bytes,
                },
                |_, slot| slot.script.len() + ENTRY_OVERHEAD,
            ),
        }
    }

    fn key(&self, dialect: Dialect, script: &str) -> u64 {
        self.hasher.hash_one((dialect, script))
    }

    pub fn get(&self, dialect: Dialect, script: &str) -> Option<Arc<ScriptVerdict>> {
        let slot = self.cache.get(&self.key(dialect, script))?;
        (slot.dialect == dialect && &*slot.script == script).then(|| Arc::clone(&slot.verdict))
    }

    pub fn insert(&self, dialect: Dialect, script: &str, verdict: Arc<ScriptVerdict>) {
        self.cache.insert(
            self.key(dialect, script),
            Arc::new(Slot {
                dialect,
                script: script.into(),
                verdict,
            }),
        );
    }

    /// (entries, bytes) held now.
    pub fn usage(&self) -> (usize, usize) {
        self.cache.usage()
    }

    pub fn clear(&self) {
        self.cache.clear()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::script::UnparsedReason;

    fn v(n: usize) -> Arc<ScriptVerdict> {
        Arc::new(ScriptVerdict::Unparsed(UnparsedReason::TooDeep {
            depth: n,
            limit: 0,
        }))
    }

    #[test]
    fn hit_miss_and_dialect() {
        let c = VerdictCache::new(CacheLimits::default());
        assert_eq!(c.get(Dialect::Sh, "a"), None);
        c.insert(Dialect::Sh, "a", v(1));
        assert_eq!(c.get(Dialect::Sh, "a"), Some(v(1)));
        assert_eq!(c.get(Dialect::Bash, "a"), None);
        c.insert(Dialect::Sh, "a", v(2));
        assert_eq!(c.get(Dialect::Sh, "a"), Some(v(2)));
        let (entries, bytes) = c.usage();
        assert_eq!(entries, 1);
        assert!(bytes > ENTRY_OVERHEAD);
    }

    #[test]
    fn bounded_by_entries() {
        let c = VerdictCache::new(CacheLimits {
            max_entries: 2,
            max_bytes: 1 << 20,
        });
        for (i, script) in ["a", "b", "c", "d"].into_iter().enumerate() {
            c.insert(Dialect::Sh, script, v(i));
        }
        assert!(c.usage().0 <= 2);
    }

    #[test]
    fn evicts_by_bytes_and_skips_huge_entries() {
        let c = VerdictCache::new(CacheLimits {
            max_entries: 100,
            max_bytes: 3 * (1000 + ENTRY_OVERHEAD),
        });
        for i in 0..10 {
            c.insert(Dialect::Sh, &format!("{i:01000}"), v(i));
        }
        let (entries, bytes) = c.usage();
        assert!(entries <= 3, "{entries}");
        assert!(bytes <= 3 * (1000 + ENTRY_OVERHEAD));
        c.insert(Dialect::Sh, &"x".repeat(10_000), v(0));
        assert!(c.get(Dialect::Sh, &"x".repeat(10_000)).is_none());
        c.clear();
        assert_eq!(c.usage(), (0, 0));
    }
}
