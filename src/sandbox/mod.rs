//! Containment of the shell parser: scripts come from anyone who may create a Pod, and
//! brush-parser can be made to hang, exhaust memory, overflow its stack or panic.
//!
//! Layers, cheapest first (docs/parser-containment.md has the whole story):
//! 1. [`prescreen`](crate::engine::prescreen): a linear scan that turns away the known hazards
//!    (size, nesting depth, `(` runs, hostile here-document delimiters, huge fd numbers);
//! 2. [`VerdictCache`]: a bounded LRU of verdicts, so a retried pod costs nothing;
//! 3. [`WorkerPool`]: parsing in `pidone __parse-worker` processes under a memory limit, a big
//!    stack and a deadline; a worker that is killed or dies is replaced.
//!
//! [`ContainedAnalyzer`] stacks all three for the webhook. [`PrescreenedAnalyzer`] parses in
//! the calling process after the pre-screen, for trusted offline input (the CLI).

mod cache;
mod pool;
mod protocol;
pub mod reaper;
mod stats;
pub mod ticket;
// The crate denies unsafe code; this module alone holds the libc calls (each with its SAFETY).
#[allow(unsafe_code)]
mod sys;
mod worker;

pub use crate::engine::prescreen::{PrescreenCheck, Rejection, prescreen};
pub use cache::{CacheLimits, VerdictCache};
pub use pool::{PoolConfig, SandboxError, WorkerPool};
pub use stats::{ParserStats, ParserStatsSnapshot};
pub use ticket::{Ticket, with_ticket};
pub use worker::{WORKER_SUBCOMMAND, WorkerLimits, run_if_worker, worker_main};

use crate::engine::config::ParserConfig;
use crate::engine::script::{Dialect, ScriptVerdict, UnparsedReason, analyze_script};
use crate::resolve::ScriptAnalyzer;
use arc_swap::ArcSwap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

/// Everything [`ContainedAnalyzer`] needs besides the `parser:` section of the config.
#[derive(Debug, Clone, Default)]
pub struct ContainmentConfig {
    pub pool: PoolConfig,
    pub cache: CacheLimits,
}

/// Pre-screen and cache around any parse backend, with the counters.
struct Guard {
    limits: ArcSwap<ParserConfig>,
    cache: VerdictCache,
    stats: Arc<ParserStats>,
}

impl Guard {
    fn new(limits: &ParserConfig, cache: CacheLimits, stats: Arc<ParserStats>) -> Guard {
        Guard {
            limits: ArcSwap::from_pointee(limits.clone()),
            cache: VerdictCache::new(cache),
            stats,
        }
    }

    /// The verdict without a parse: the cached one or the pre-screen's refusal. The cache is
    /// asked first: it holds only scripts that passed the pre-screen under the current limits
    /// (a change of limits empties it), so a hit needs no second scan.
    fn known(&self, dialect: Dialect, script: &str) -> Option<Arc<ScriptVerdict>> {
        if let Some(verdict) = self.cache.get(dialect, script) {
            self.stats.cache_hit();
            return Some(verdict);
        }
        let limits = self.limits.load();
        if let Err(rejection) = prescreen(dialect, script, &limits) {
            self.stats.rejected(rejection.check);
            return Some(Arc::new(ScriptVerdict::Unparsed(rejection.reason)));
        }
        None
    }

    fn analyze(
        &self,
        dialect: Dialect,
        script: &str,
        parse: impl FnOnce(&ParserConfig) -> (ScriptVerdict, bool),
    ) -> Arc<ScriptVerdict> {
        if let Some(verdict) = self.known(dialect, script) {
            return verdict;
        }
        let limits = self.limits.load();
        self.stats.parse();
        let (verdict, cacheable) = parse(&limits);
        let verdict = Arc::new(verdict);
        if cacheable {
            self.cache.insert(dialect, script, Arc::clone(&verdict));
        }
        verdict
    }

    fn update_limits(&self, limits: &ParserConfig) {
        if **self.limits.load() != *limits {
            self.limits.store(Arc::new(limits.clone()));
            // Verdicts that ran into the old deadline may not run into the new one.
            self.cache.clear();
        }
    }
}

/// The webhook's script analyzer: pre-screen, then cache, then a worker process.
///
/// `analyze` blocks the calling thread for up to `queue_timeout` + the parse deadline (+ a
/// worker start after a kill); call the engine through `tokio::task::spawn_blocking`. Safe to
/// share across threads (`Arc<ContainedAnalyzer>`).
pub struct ContainedAnalyzer {
    guard: Guard,
    pool: WorkerPool,
}

impl ContainedAnalyzer {
    /// Starts the worker pool. Fails if the workers cannot start (wrong executable, no fork).
    pub fn new(
        limits: &ParserConfig,
        config: ContainmentConfig,
    ) -> Result<ContainedAnalyzer, SandboxError> {
        let stats = Arc::new(ParserStats::default());
        Ok(ContainedAnalyzer {
            pool: WorkerPool::start(config.pool, Arc::clone(&stats))?,
            guard: Guard::new(limits, config.cache, stats),
        })
    }

    /// The counters, for `/metrics`.
    pub fn stats(&self) -> ParserStatsSnapshot {
        self.guard.stats.snapshot()
    }

    /// Applies a reloaded `parser:` section (clears the cache when it changed).
    pub fn update_limits(&self, limits: &ParserConfig) {
        self.guard.update_limits(limits)
    }

    /// Parses in a worker without the pre-screen or the cache: for tests of the containment
    /// itself. Returns the verdict and whether it would be cached.
    pub fn analyze_unscreened(&self, dialect: Dialect, script: &str) -> (ScriptVerdict, bool) {
        self.guard.stats.parse();
        let deadline = self.guard.limits.load().deadline;
        self.pool.analyze(dialect, script, deadline)
    }

    pub fn pool(&self) -> &WorkerPool {
        &self.pool
    }
}

impl ScriptAnalyzer for ContainedAnalyzer {
    fn known(&self, dialect: Dialect, script: &str) -> Option<Arc<ScriptVerdict>> {
        self.guard.known(dialect, script)
    }

    fn analyze(&self, dialect: Dialect, script: &str) -> Arc<ScriptVerdict> {
        self.guard.analyze(dialect, script, |limits| {
            self.pool.analyze(dialect, script, limits.deadline)
        })
    }

    fn apply_limits(&self, limits: &ParserConfig) {
        self.guard.update_limits(limits)
    }
}

/// Pre-screen, cache and an in-process parse: for trusted offline input (`pidone audit`,
/// `pidone fix` over one's own manifests), where a worker round trip buys nothing.
///
/// The pre-screen caps nesting at `max_depth` (64 by default), which keeps the parser's stack
/// use far below the 2 MiB of a spawned thread; but a script the pre-screen does not know to
/// be hostile can still make this process hang, run out of memory or abort. Never use it on
/// input from the cluster's users: that is what [`ContainedAnalyzer`] is for.
pub struct PrescreenedAnalyzer {
    guard: Guard,
}

impl PrescreenedAnalyzer {
    pub fn new(limits: &ParserConfig, cache: CacheLimits) -> PrescreenedAnalyzer {
        PrescreenedAnalyzer {
            guard: Guard::new(limits, cache, Arc::new(ParserStats::default())),
        }
    }

    pub fn stats(&self) -> ParserStatsSnapshot {
        self.guard.stats.snapshot()
    }
}

impl ScriptAnalyzer for PrescreenedAnalyzer {
    fn known(&self, dialect: Dialect, script: &str) -> Option<Arc<ScriptVerdict>> {
        self.guard.known(dialect, script)
    }

    fn apply_limits(&self, limits: &ParserConfig) {
        self.guard.update_limits(limits)
    }

    fn analyze(&self, dialect: Dialect, script: &str) -> Arc<ScriptVerdict> {
        self.guard.analyze(dialect, script, |_| {
            // The tokenizer has panics of its own (an `unwrap` on some unterminated nested
            // constructs); the engine's analyzers must not panic.
            let verdict = panic::catch_unwind(AssertUnwindSafe(|| analyze_script(dialect, script)))
                .unwrap_or_else(|_| {
                    ScriptVerdict::Unparsed(UnparsedReason::GaveUp {
                        what: "parser panicked".into(),
                    })
                });
            (verdict, true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn known_verdicts_come_from_the_pre_screen_and_the_cache_without_a_parse() {
        let a = PrescreenedAnalyzer::new(&ParserConfig::default(), CacheLimits::default());
        let script = "echo hi; exec sleep 1";
        assert_eq!(a.known(Dialect::Sh, script), None);
        assert_eq!(a.stats().parses, 0);
        let parsed = a.analyze(Dialect::Sh, script);
        assert_eq!(a.stats().parses, 1);
        // Handed out as cached, not copied.
        assert!(
            a.known(Dialect::Sh, script)
                .is_some_and(|v| Arc::ptr_eq(&v, &parsed))
        );
        assert_eq!(a.stats().cache_hits, 1);
        // Another dialect is another script.
        assert_eq!(a.known(Dialect::Bash, script), None);
        // The pre-screen answers without a parse or the cache.
        let deep = format!("{}x{}", "$(".repeat(200), ")".repeat(200));
        assert!(matches!(
            a.known(Dialect::Sh, &deep).as_deref(),
            Some(ScriptVerdict::Unparsed(_))
        ));
        assert_eq!(a.stats().parses, 1);
    }

    #[test]
    fn a_verdict_cached_under_looser_limits_is_not_used_under_tighter_ones() {
        let a = PrescreenedAnalyzer::new(&ParserConfig::default(), CacheLimits::default());
        let script = "a=1; b=2; exec sleep 1";
        let parsed = a.analyze(Dialect::Sh, script);
        assert_eq!(a.known(Dialect::Sh, script), Some(parsed));
        let rejections = |a: &PrescreenedAnalyzer| -> u64 {
            a.stats().prescreen_rejections.iter().map(|(_, n)| n).sum()
        };
        assert_eq!(rejections(&a), 0);
        a.apply_limits(&ParserConfig {
            max_script_bytes: 8,
            ..ParserConfig::default()
        });
        assert!(matches!(
            a.known(Dialect::Sh, script).as_deref(),
            Some(ScriptVerdict::Unparsed(_))
        ));
        assert_eq!(rejections(&a), 1);
        assert_eq!(a.stats().cache_hits, 1);
    }

    /// Inputs the fuzzers found (fuzz/regressions: first byte picks the shell, as in the
    /// fuzz targets). Each must pass the in-process path quickly and without a panic.
    #[test]
    fn fuzz_regressions_are_handled_in_process() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions");
        let a = PrescreenedAnalyzer::new(&ParserConfig::default(), CacheLimits::default());
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            let Some((&pick, script)) = bytes.split_first() else {
                continue;
            };
            let dialect = if pick % 4 == 1 {
                Dialect::Bash
            } else {
                Dialect::Sh
            };
            let script = String::from_utf8_lossy(script);
            let started = Instant::now();
            let verdict = a.analyze(dialect, &script);
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(1),
                "{:?}: {took:?}",
                entry.path()
            );
            assert!(
                matches!(*verdict, ScriptVerdict::Unparsed(_)),
                "{:?}: {verdict:?}",
                entry.path()
            );
            seen += 1;
        }
        assert!(seen >= 2, "regressions not found in {dir}");
    }
}
