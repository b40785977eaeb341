//! Each namespace's share of the threads that analyse reviews needing a parse.
//!
//! Such a review's parses run on tokio's blocking pool (8 threads in `pidone serve`), where
//! they wait for a parse worker (see [`crate::server::resolve`]). One namespace holds at most all workers but one (see
//! [`crate::sandbox`]), but its other reviews would still wait for a worker on blocking
//! threads: a flood of slow scripts from one namespace would take every thread, and a review
//! from any other namespace would queue behind it. So a namespace has at most
//! [`PER_NAMESPACE`] reviews on the blocking pool at once; the others wait here, on no thread,
//! and a review that cannot get a place in time is answered without parsing (its new scripts
//! are `unparsed`, which the lexical scan and the rules decide).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// Reviews of one namespace on the blocking pool at once: one whose script is parsed, one
/// ready for the next worker.
pub const PER_NAMESPACE: usize = 2;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct NamespaceShares {
    held: Mutex<HashMap<String, usize>>,
    /// Notified whenever a place is given back.
    freed: Notify,
}

/// A namespace's place; given back when dropped.
#[derive(Debug)]
pub struct Share {
    shares: Arc<NamespaceShares>,
    namespace: String,
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut held = self.shares.lock();
        if let Some(n) = held.get_mut(&self.namespace) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.namespace);
            }
        }
        drop(held);
        self.shares.freed.notify_waiters();
    }
}

impl NamespaceShares {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn try_take(self: &Arc<Self>, namespace: &str) -> Option<Share> {
        let mut held = self.lock();
        let n = held.entry(namespace.to_string()).or_insert(0);
        if *n >= PER_NAMESPACE {
            return None;
        }
        *n += 1;
        Some(Share {
            shares: Arc::clone(self),
            namespace: namespace.to_string(),
        })
    }

    /// A place for `namespace`, waiting at most `wait` for one; `None` when none came free.
    pub async fn take(self: &Arc<Self>, namespace: &str, wait: Duration) -> Option<Share> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(share) = self.try_take(namespace) {
                return Some(share);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return None;
            }
        }
    }

    /// Namespaces holding places now (for tests).
    pub fn held(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_namespace_waits_for_its_own_places_only() {
        let shares = Arc::new(NamespaceShares::default());
        let ms = Duration::from_millis;
        let held: Vec<Share> =
            futures::future::join_all((0..PER_NAMESPACE).map(|_| shares.take("noisy", ms(10))))
                .await
                .into_iter()
                .flatten()
                .collect();
        assert_eq!(held.len(), PER_NAMESPACE);
        assert!(shares.take("noisy", ms(20)).await.is_none());
        assert!(shares.take("quiet", Duration::ZERO).await.is_some());
        // A place given back goes to a waiter.
        let waiter = {
            let shares = Arc::clone(&shares);
            tokio::spawn(
                async move { shares.take("noisy", Duration::from_secs(5)).await.is_some() },
            )
        };
        tokio::time::sleep(ms(20)).await;
        drop(held);
        assert!(waiter.await.unwrap());
        assert_eq!(shares.held(), 0);
    }
}
