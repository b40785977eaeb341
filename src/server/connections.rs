//! The open connections of a port, under a cap.
//!
//! Anyone who can reach a port can open connections; each costs a TLS session (webhook port),
//! hyper's buffers and a task. At most `max` are open at once. A connection beyond the cap
//! takes the place of one with no request in flight, which is closed: one that has not
//! completed a request yet first, then the one unproductive the longest (idle since its last
//! answer, or trickling a request head: the apiserver and the kubelet send a head at once, so
//! a client that trickles heads cannot hold the port until the header read timeout). When every open
//! connection is busy with a request, the newcomer is closed at once. The apiserver's kept-alive connections are idle most of the time, and it
//! reconnects when one is closed, so the cap costs it a handshake at worst.
//!
//! The registry also replaces hyper-util's graceful shutdown: [`Connections::close_all`] asks
//! every connection to finish its requests and close, and [`Connections::drained`] waits until
//! they have.

use crate::server::conn_clock::ConnClock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// Default cap on open connections of the TLS port (`--max-connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// Default cap on open connections of the admin port (`--metrics-max-connections`): the
/// kubelet's probes (a connection each) and a few Prometheus scrapers need a handful.
pub const DEFAULT_MAX_ADMIN_CONNECTIONS: usize = 32;

/// The two ports, each with its own registry and cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// HTTPS, for the apiserver.
    Webhook,
    /// Plain HTTP: probes and metrics.
    Admin,
}

impl Port {
    pub fn as_str(self) -> &'static str {
        match self {
            Port::Webhook => "webhook",
            Port::Admin => "admin",
        }
    }
}

struct Entry {
    clock: Arc<ConnClock>,
    close: Arc<Notify>,
    evicted: Arc<AtomicBool>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    open: HashMap<u64, Entry>,
}

/// What happened to a connection that asked to be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// Under the cap.
    Free,
    /// At the cap: an idle connection was asked to close to make room.
    Evicted,
}

/// The open connections (see the module documentation).
pub struct Connections {
    max: usize,
    registry: Mutex<Registry>,
    /// Notified whenever a connection leaves.
    left: Notify,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("max", &self.max)
            .field("open", &self.count())
            .finish()
    }
}

/// A connection's place in the registry; dropping it frees the place.
pub struct Admission {
    connections: Arc<Connections>,
    id: u64,
    /// Notified when the connection should finish its requests and close.
    pub close: Arc<Notify>,
    evicted: Arc<AtomicBool>,
}

impl Admission {
    /// Whether the connection was closed to make room for another (not for the drain).
    pub fn evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.connections.lock().open.remove(&self.id);
        self.connections.left.notify_waiters();
    }
}

impl Connections {
    /// A registry for at most `max` connections (at least 1).
    pub fn new(max: usize) -> Arc<Connections> {
        Arc::new(Connections {
            max: max.max(1),
            registry: Mutex::new(Registry::default()),
            left: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open now.
    pub fn count(&self) -> usize {
        self.lock().open.len()
    }

    /// Admits a new connection with its clock, making room by closing one with no request in
    /// flight when at the cap; `None` when every open connection is serving a request (the
    /// caller closes the newcomer).
    pub fn admit(self: &Arc<Self>, clock: Arc<ConnClock>) -> Option<(Admission, Admitted)> {
        let mut registry = self.lock();
        let mut how = Admitted::Free;
        if registry.open.len() >= self.max {
            // One pass over at most `max` entries, only when at the cap.
            let victim = registry
                .open
                .iter()
                .filter(|(_, e)| !e.clock.serving())
                .max_by_key(|(_, e)| (e.clock.never_served(), e.clock.unproductive_for()))
                .map(|(id, _)| *id)?;
            if let Some(entry) = registry.open.remove(&victim) {
                // Taken out of the registry now, so the cap holds for the next accept; the
                // connection closes as soon as its task sees the notification.
                entry.evicted.store(true, Ordering::Release);
                entry.close.notify_one();
            }
            how = Admitted::Evicted;
        }
        let id = registry.next_id;
        registry.next_id += 1;
        let close = Arc::new(Notify::new());
        let evicted = Arc::new(AtomicBool::new(false));
        registry.open.insert(
            id,
            Entry {
                clock,
                close: Arc::clone(&close),
                evicted: Arc::clone(&evicted),
            },
        );
        Some((
            Admission {
                connections: Arc::clone(self),
                id,
                close,
                evicted,
            },
            how,
        ))
    }

    /// Asks every open connection to finish its requests and close.
    pub fn close_all(&self) {
        for entry in self.lock().open.values() {
            entry.close.notify_one();
        }
    }

    /// Resolves once no connection is open.
    pub async fn drained(&self) {
        loop {
            let left = self.left.notified();
            tokio::pin!(left);
            left.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            left.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_cap_an_idle_connection_makes_room_and_busy_ones_do_not() {
        let connections = Connections::new(2);
        let a = ConnClock::new();
        let b = ConnClock::new();
        let (first, how) = connections.admit(Arc::clone(&a)).unwrap();
        assert_eq!(how, Admitted::Free);
        let (_second, _) = connections.admit(Arc::clone(&b)).unwrap();
        assert_eq!(connections.count(), 2);
        // Both idle: the third takes the place of one of them, which is told to close.
        let (third, how) = connections.admit(ConnClock::new()).unwrap();
        assert_eq!(how, Admitted::Evicted);
        assert_eq!(connections.count(), 2);
        drop(third);
        drop(first);
        assert!(connections.count() <= 1);
        connections.close_all();
        drop(_second);
        tokio::time::timeout(std::time::Duration::from_secs(1), connections.drained())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_newcomer_is_refused_when_every_connection_is_busy() {
        let connections = Connections::new(1);
        let busy = ConnClock::new();
        busy.bytes_read();
        busy.request_started();
        let (_held, _) = connections.admit(Arc::clone(&busy)).unwrap();
        assert!(connections.admit(ConnClock::new()).is_none());
        assert_eq!(connections.count(), 1);
    }

    #[tokio::test]
    async fn the_oldest_trickling_head_makes_room_before_a_fresh_one() {
        let ms = std::time::Duration::from_millis;
        let connections = Connections::new(2);
        let (old, fresh) = (ConnClock::new(), ConnClock::new());
        old.bytes_read();
        let (old_place, _) = connections.admit(Arc::clone(&old)).unwrap();
        std::thread::sleep(ms(30));
        fresh.bytes_read();
        let (fresh_place, _) = connections.admit(Arc::clone(&fresh)).unwrap();
        let (_newcomer, how) = connections.admit(ConnClock::new()).unwrap();
        assert_eq!(how, Admitted::Evicted);
        assert!(old_place.evicted() && !fresh_place.evicted());
        // One that has been served goes after those that have not.
        fresh.request_started();
        fresh.request_ended();
        let (_silent, _) = connections.admit(ConnClock::new()).unwrap();
        assert!(!fresh_place.evicted());
    }

    #[tokio::test]
    async fn the_victim_is_notified() {
        let connections = Connections::new(1);
        let (victim, _) = connections.admit(ConnClock::new()).unwrap();
        let (_newcomer, how) = connections.admit(ConnClock::new()).unwrap();
        assert_eq!(how, Admitted::Evicted);
        tokio::time::timeout(std::time::Duration::from_secs(1), victim.close.notified())
            .await
            .unwrap();
    }
}
