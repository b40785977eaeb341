//! Counters of the parse guard, read by the server's metrics exporter.
//!
//! Exported as (see docs/parser-containment.md):
//! `pidone_parser_parses_total`, `pidone_parser_cache_hits_total`,
//! `pidone_parser_prescreen_rejections_total{reason}`, `pidone_parser_worker_restarts_total`,
//! `pidone_parser_deadline_overruns_total`, `pidone_parser_worker_crashes_total`.

use crate::engine::prescreen::PrescreenCheck;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct ParserStats {
    parses: AtomicU64,
    cache_hits: AtomicU64,
    prescreen_rejections: [AtomicU64; PrescreenCheck::ALL.len()],
    worker_restarts: AtomicU64,
    deadline_overruns: AtomicU64,
    worker_crashes: AtomicU64,
}

/// A copy of the counters at one moment. Every counter only grows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParserStatsSnapshot {
    /// Scripts handed to the parser (cache misses that passed the pre-screen).
    pub parses: u64,
    pub cache_hits: u64,
    /// Per check, in [`PrescreenCheck::ALL`] order; label with [`PrescreenCheck::as_str`].
    pub prescreen_rejections: Vec<(PrescreenCheck, u64)>,
    /// Workers started to replace one that was killed, crashed or found dead.
    pub worker_restarts: u64,
    /// Parses killed at their deadline.
    pub deadline_overruns: u64,
    /// Workers that died during a parse (abort on stack overflow or memory limit, signal).
    pub worker_crashes: u64,
}

impl ParserStatsSnapshot {
    pub fn prescreen_rejections_total(&self) -> u64 {
        self.prescreen_rejections.iter().map(|(_, n)| n).sum()
    }

    pub fn prescreen_rejected(&self, check: PrescreenCheck) -> u64 {
        self.prescreen_rejections
            .iter()
            .find(|(c, _)| *c == check)
            .map_or(0, |(_, n)| *n)
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl ParserStats {
    pub(crate) fn parse(&self) {
        bump(&self.parses)
    }
    pub(crate) fn cache_hit(&self) {
        bump(&self.cache_hits)
    }
    pub(crate) fn rejected(&self, check: PrescreenCheck) {
        bump(&self.prescreen_rejections[check.index()])
    }
    pub(crate) fn worker_restart(&self) {
        bump(&self.worker_restarts)
    }
    pub(crate) fn deadline_overrun(&self) {
        bump(&self.deadline_overruns)
    }
    pub(crate) fn worker_crash(&self) {
        bump(&self.worker_crashes)
    }

    pub fn snapshot(&self) -> ParserStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ParserStatsSnapshot {
            parses: get(&self.parses),
            cache_hits: get(&self.cache_hits),
            prescreen_rejections: PrescreenCheck::ALL
                .iter()
                .map(|&c| (c, get(&self.prescreen_rejections[c.index()])))
                .collect(),
            worker_restarts: get(&self.worker_restarts),
            deadline_overruns: get(&self.deadline_overruns),
            worker_crashes: get(&self.worker_crashes),
        }
    }
}
