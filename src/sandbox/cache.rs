//! A bounded LRU of verdicts, keyed by the exact (dialect, script), shared across threads.
//!
//! Hostile scripts are cached like any other: a pod retried by its controller costs one parse.

use crate::engine::script::{Dialect, ScriptVerdict};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};

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
    verdict: ScriptVerdict,
    tick: u64,
}

#[derive(Default)]
struct Lru {
    /// By keyed hash of (dialect, script); a colliding script simply replaces the entry.
    slots: HashMap<u64, Slot>,
    /// Last use -> key, oldest first.
    order: BTreeMap<u64, u64>,
    bytes: usize,
    tick: u64,
}

/// Thread-safe verdict cache. The hash is keyed per process (SipHash with a random key), so
/// colliding scripts cannot be crafted; entries still compare the full script.
pub struct VerdictCache {
    limits: CacheLimits,
    hasher: RandomState,
    lru: Mutex<Lru>,
}

impl VerdictCache {
    pub fn new(limits: CacheLimits) -> VerdictCache {
        VerdictCache {
            limits,
            hasher: RandomState::new(),
            lru: Mutex::new(Lru::default()),
        }
    }

    fn key(&self, dialect: Dialect, script: &str) -> u64 {
        self.hasher.hash_one((dialect, script))
    }

    pub fn get(&self, dialect: Dialect, script: &str) -> Option<ScriptVerdict> {
        let key = self.key(dialect, script);
        let mut lru = self.lru.lock().unwrap_or_else(PoisonError::into_inner);
        let lru = &mut *lru;
        lru.tick += 1;
        let tick = lru.tick;
        let slot = lru.slots.get_mut(&key)?;
        if slot.dialect != dialect || &*slot.script != script {
            return None;
        }
        lru.order.remove(&slot.tick);
        lru.order.insert(tick, key);
        slot.tick = tick;
        Some(slot.verdict.clone())
    }

    pub fn insert(&self, dialect: Dialect, script: &str, verdict: ScriptVerdict) {
        let cost = script.len() + ENTRY_OVERHEAD;
        if cost > self.limits.max_bytes || self.limits.max_entries == 0 {
            return;
        }
        let key = self.key(dialect, script);
        let mut lru = self.lru.lock().unwrap_or_else(PoisonError::into_inner);
        let lru = &mut *lru;
        lru.tick += 1;
        let slot = Slot {
            dialect,
            script: script.into(),
            verdict,
            tick: lru.tick,
        };
        if let Some(old) = lru.slots.insert(key, slot) {
            lru.order.remove(&old.tick);
            lru.bytes -= old.script.len() + ENTRY_OVERHEAD;
        }
        lru.order.insert(lru.tick, key);
        lru.bytes += cost;
        while lru.slots.len() > self.limits.max_entries || lru.bytes > self.limits.max_bytes {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            if let Some(old) = lru.slots.remove(&oldest) {
                lru.bytes -= old.script.len() + ENTRY_OVERHEAD;
            }
        }
    }

    /// (entries, bytes) held now.
    pub fn usage(&self) -> (usize, usize) {
        let lru = self.lru.lock().unwrap_or_else(PoisonError::into_inner);
        (lru.slots.len(), lru.bytes)
    }

    pub fn clear(&self) {
        let mut lru = self.lru.lock().unwrap_or_else(PoisonError::into_inner);
        *lru = Lru::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::script::UnparsedReason;

    fn v(n: usize) -> ScriptVerdict {
        ScriptVerdict::Unparsed(UnparsedReason::TooDeep { depth: n, limit: 0 })
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
        assert_eq!(c.usage(), (1, 1 + ENTRY_OVERHEAD));
    }

    #[test]
    fn evicts_least_recently_used_by_entries() {
        let c = VerdictCache::new(CacheLimits {
            max_entries: 2,
            max_bytes: usize::MAX,
        });
        c.insert(Dialect::Sh, "a", v(1));
        c.insert(Dialect::Sh, "b", v(2));
        assert!(c.get(Dialect::Sh, "a").is_some());
        c.insert(Dialect::Sh, "c", v(3));
        assert!(c.get(Dialect::Sh, "a").is_some());
        assert!(c.get(Dialect::Sh, "b").is_none());
        assert!(c.get(Dialect::Sh, "c").is_some());
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
        assert_eq!(entries, 3);
        assert!(bytes <= 3 * (1000 + ENTRY_OVERHEAD));
        assert!(c.get(Dialect::Sh, &format!("{:01000}", 9)).is_some());
        c.insert(Dialect::Sh, &"x".repeat(10_000), v(0));
        assert!(c.get(Dialect::Sh, &"x".repeat(10_000)).is_none());
        c.clear();
        assert_eq!(c.usage(), (0, 0));
    }
}
