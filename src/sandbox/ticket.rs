//! The review on whose behalf the parse workers run: its namespace (per-namespace fairness in
//! the pool), its deadline and whether it was abandoned (a review shed with 429 must not keep
//! workers busy), and whether the pool gave up on one of its scripts for reasons of its own
//! (busy, abandoned), which says nothing about the script.
//!
//! A review's parses run synchronously on a blocking thread, through the analyzer: the ticket
//! travels with them as a thread-local.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// See the module documentation.
#[derive(Debug)]
pub struct Ticket {
    namespace: OnceLock<String>,
    deadline: Instant,
    cancelled: AtomicBool,
    pool_gave_up: AtomicBool,
}

impl Ticket {
    pub fn new(deadline: Instant) -> Arc<Ticket> {
        Arc::new(Ticket {
            namespace: OnceLock::new(),
            deadline,
            cancelled: AtomicBool::new(false),
            pool_gave_up: AtomicBool::new(false),
        })
    }

    /// The review was shed or its client left: its parses stop.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Cancelled, or past its deadline.
    pub fn is_abandoned(&self) -> bool {
        self.cancelled.load(Ordering::Acquire) || Instant::now() >= self.deadline
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The namespace, once the review is decoded (empty before, and for cluster-scoped
    /// objects).
    pub fn namespace(&self) -> &str {
        self.namespace.get().map_or("", String::as_str)
    }

    /// Whether the pool gave up on a script of this review for its own reasons.
    pub fn pool_gave_up(&self) -> bool {
        self.pool_gave_up.load(Ordering::Acquire)
    }

    pub(crate) fn note_pool_gave_up(&self) {
        self.pool_gave_up.store(true, Ordering::Release);
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Ticket>>> = const { RefCell::new(None) };
}

/// Runs `f` with `ticket` as this thread's current ticket.
pub fn with_ticket<R>(ticket: Arc<Ticket>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<Ticket>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with_borrow_mut(|c| *c = previous);
        }
    }
    let previous = CURRENT.with_borrow_mut(|c| c.replace(ticket));
    let _restore = Restore(previous);
    f()
}

/// Names the namespace of the current ticket's review (the first call wins).
pub fn set_namespace(namespace: &str) {
    CURRENT.with_borrow(|c| {
        if let Some(ticket) = c {
            let _ = ticket.namespace.set(namespace.to_string());
        }
    });
}

/// This thread's current ticket.
pub(crate) fn current() -> Option<Arc<Ticket>> {
    CURRENT.with_borrow(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_ticket_is_current_inside_only() {
        let ticket = Ticket::new(Instant::now() + Duration::from_secs(5));
        assert!(current().is_none());
        with_ticket(Arc::clone(&ticket), || {
            set_namespace("team-a");
            set_namespace("team-b");
            assert_eq!(current().unwrap().namespace(), "team-a");
        });
        assert!(current().is_none());
        assert!(!ticket.is_abandoned());
        ticket.cancel();
        assert!(ticket.is_abandoned());
        assert!(
            Ticket::new(Instant::now()).is_abandoned(),
            "past its deadline"
        );
    }
}
