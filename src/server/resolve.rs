//! The scripts a review's evaluation needs, resolved without blocking the async threads.
//!
//! The engine names them ([`crate::engine::Engine::needs`]); verdicts the analyzer knows
//! without a parse (pre-screen, cache) are taken at once; the others are parsed together on
//! the blocking pool, where they wait for a parse worker, after the review takes one of its
//! namespace's places there ([`crate::server::namespace_share`]). A review whose namespace
//! has no place free in time gets no new parses: those scripts are `unparsed` (the lexical
//! scan and the rules decide), and `parser.failClosed` turns that into a 429. Rounds repeat
//! while verdicts reveal further scripts (`exec` hand-offs, chains of script files).

use crate::engine::Dialect;
use crate::engine::script::{ScriptVerdict, UnparsedReason};
use crate::engine::script_verdicts::{ScriptKey, ScriptVerdicts, unresolved};
use crate::resolve::ScriptAnalyzer;
use crate::sandbox::{Ticket, with_ticket};
use crate::server::state::App;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

/// Where a review's parses run.
#[derive(Debug, Clone)]
pub enum Parsing {
    /// In the calling thread: it may block (a blocking-pool thread with the review's ticket
    /// set), or the analyzer never blocks.
    Here,
    /// On the blocking pool, within the namespace's share, before `deadline` (the
    /// apiserver's timeout minus the margin); a place is waited for at most `queue_wait`.
    Pool {
        deadline: Instant,
        queue_wait: Duration,
        /// What the parses keep held until they end, even when the review is answered or
        /// shed first: its analysis slot, so no more reviews are analysed at once than
        /// `--max-inflight` (the verdicts the parses cache serve the apiserver's retry).
        slot: Arc<OwnedSemaphorePermit>,
    },
}

/// The review could not be answered in time: shed with 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shed;

/// A review's verdicts so far.
#[derive(Debug, Default)]
pub struct Resolution {
    /// The review's namespace (its share of the blocking pool and the parse workers).
    pub namespace: String,
    pub verdicts: ScriptVerdicts,
    /// The pool gave up on a script for reasons of its own (no place for the namespace, busy
    /// workers): the verdict says nothing about the script.
    pub pool_gave_up: bool,
}

impl Resolution {
    /// Verdicts for `keys`: known ones at once, the others parsed as `parsing` says.
    pub async fn resolve(
        &mut self,
        app: &App,
        keys: Vec<ScriptKey>,
        parsing: &Parsing,
    ) -> Result<(), Shed> {
        let analyzer = app.analyzer();
        let mut misses = Vec::new();
        for key in keys {
            match analyzer.known(key.dialect, &key.script) {
                Some(verdict) => self.verdicts.insert(key.dialect, key.script, verdict),
                None => misses.push(key),
            }
        }
        if misses.is_empty() {
            return Ok(());
        }
        let parsed = match parsing {
            Parsing::Here => {
                let parsed = misses
                    .into_iter()
                    .map(|k| {
                        let verdict = analyzer.analyze(k.dialect, &k.script);
                        (k, verdict)
                    })
                    .collect();
                // The caller's ticket (a large review's) says whether the pool gave up.
                self.pool_gave_up |=
                    crate::sandbox::ticket::current().is_some_and(|t| t.pool_gave_up());
                parsed
            }
            Parsing::Pool {
                deadline,
                queue_wait,
                slot,
            } => {
                let namespace = self.namespace.clone();
                let place = Place {
                    namespace: &namespace,
                    deadline: *deadline,
                    queue_wait: *queue_wait,
                    slot: Arc::clone(slot),
                };
                self.on_pool(app, misses, place).await?
            }
        };
        for (key, verdict) in parsed {
            self.verdicts.insert(key.dialect, key.script, verdict);
        }
        Ok(())
    }

    async fn on_pool(
        &mut self,
        app: &App,
        misses: Vec<ScriptKey>,
        place: Place<'_>,
    ) -> Result<Vec<(ScriptKey, Arc<ScriptVerdict>)>, Shed> {
        let Place {
            namespace,
            deadline,
            queue_wait,
            slot,
        } = place;
        let Some(share) = app.namespace_shares().take(namespace, queue_wait).await else {
            app.metrics.limits.limit_hit("namespace-parses");
            tracing::warn!(
                namespace,
                "the namespace's reviews hold all their places on the analysis threads: answered without parsing new scripts"
            );
            self.pool_gave_up = true;
            let verdict = Arc::new(ScriptVerdict::Unparsed(UnparsedReason::GaveUp {
                what: "no parser worker available to the namespace".into(),
            }));
            return Ok(misses
                .into_iter()
                .map(|k| (k, Arc::clone(&verdict)))
                .collect());
        };
        // The parses stop when the review is shed or its client leaves (this future is
        // dropped), or its time is up.
        let ticket = Ticket::new(deadline.max(Instant::now()));
        let _cancel_on_exit = CancelOnDrop(Arc::clone(&ticket));
        let analyzer = app.analyzer_arc();
        let namespace = namespace.to_string();
        let parse_ticket = Arc::clone(&ticket);
        let parses = tokio::task::spawn_blocking(move || {
            let _share = share;
            let _slot = slot;
            with_ticket(parse_ticket, || {
                crate::sandbox::ticket::set_namespace(&namespace);
                misses
                    .into_iter()
                    .map(|k| {
                        let verdict = analyzer.analyze(k.dialect, &k.script);
                        (k, verdict)
                    })
                    .collect::<Vec<_>>()
            })
        });
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, parses).await {
            Ok(Ok(parsed)) => {
                self.pool_gave_up |= ticket.pool_gave_up();
                Ok(parsed)
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the parse task failed");
                Err(Shed)
            }
            Err(_) => {
                app.metrics.shed();
                tracing::warn!(
                    namespace = ticket.namespace(),
                    "overloaded: the review's scripts were not parsed in time; review shed with 429"
                );
                Err(Shed)
            }
        }
    }
}

/// Where and until when a review's parses may run on the pool.
struct Place<'a> {
    namespace: &'a str,
    deadline: Instant,
    queue_wait: Duration,
    slot: Arc<OwnedSemaphorePermit>,
}

/// Cancels a ticket when dropped, however the review ends.
struct CancelOnDrop(Arc<Ticket>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// An analyzer for code that calls one synchronously on an async thread (the mutation
/// planner's re-checks): answers from the review's verdicts and what the real analyzer knows
/// without a parse, and notes the rest, which the caller resolves before asking again.
pub struct KnownOnly<'a> {
    analyzer: &'a dyn ScriptAnalyzer,
    verdicts: &'a ScriptVerdicts,
    missing: Mutex<Vec<ScriptKey>>,
}

impl<'a> KnownOnly<'a> {
    pub fn new(analyzer: &'a dyn ScriptAnalyzer, verdicts: &'a ScriptVerdicts) -> KnownOnly<'a> {
        KnownOnly {
            analyzer,
            verdicts,
            missing: Mutex::new(Vec::new()),
        }
    }

    /// The scripts asked for that needed a parse, each once.
    pub fn into_missing(self) -> Vec<ScriptKey> {
        let mut missing = self
            .missing
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        missing.sort_unstable();
        missing.dedup();
        missing
    }
}

impl ScriptAnalyzer for KnownOnly<'_> {
    fn analyze(&self, dialect: Dialect, script: &str) -> Arc<ScriptVerdict> {
        if let Some(v) = self.verdicts.get(dialect, script) {
            return Arc::clone(v);
        }
        if let Some(v) = self.analyzer.known(dialect, script) {
            return v;
        }
        self.missing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ScriptKey {
                dialect,
                script: script.to_string(),
            });
        Arc::new(unresolved())
    }

    fn known(&self, dialect: Dialect, script: &str) -> Option<Arc<ScriptVerdict>> {
        self.verdicts
            .get(dialect, script)
            .map(Arc::clone)
            .or_else(|| self.analyzer.known(dialect, script))
    }
}
