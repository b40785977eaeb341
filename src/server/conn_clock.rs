//! Separate limits for an idle HTTP/1 keep-alive connection and for a slow request head.
//!
//! hyper has one knob for both (`header_read_timeout` also runs while a kept-alive connection
//! waits for its next request). The apiserver keeps idle webhook connections for up to 90 s
//! and reuses them; a server that closes them sooner races the apiserver's next POST on that
//! connection, which then fails with EOF (Go does not retry a POST). So hyper's timeout is set
//! to the idle limit, and the slow-head limit is enforced here instead: [`ClockedIo`] notes
//! when the first byte of a request arrives, [`Clocked`] when hyper hands the parsed request to
//! the service, and [`ConnClock::head_overdue`] tells the connection task when a head has
//! taken too long.
//!
//! The clock also answers two questions the connection cap asks (see
//! [`crate::server::connections`]): has a new connection sent its first request in time (a
//! client that opens connections and never speaks must not hold them), and is the connection
//! idle now, so that it may be closed to make room for another.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where one connection is between requests.
#[derive(Debug)]
pub struct ConnClock {
    epoch: Instant,
    /// Requests handed to the service and not answered yet.
    in_flight: AtomicUsize,
    /// When the first byte of the next request head arrived: microseconds since `epoch`, plus
    /// one; 0 while no head is being read.
    head_since: AtomicU64,
    /// Requests handed to the service since the connection opened.
    requests: AtomicU64,
    /// When the last request was answered (microseconds since `epoch`, plus one); 0 before the
    /// first.
    idle_since: AtomicU64,
}

/// Why a connection's time is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdue {
    /// A request head has been arriving for too long: the connection is dropped.
    Head,
    /// The connection has not completed its first request head in time: closed.
    FirstRequest,
    /// No request in flight for longer than the idle limit: closed gracefully.
    Idle,
}

/// The limits [`ConnClock::overdue`] checks; `None` leaves a check out.
#[derive(Debug, Clone, Copy)]
pub struct ClockLimits {
    pub head: Option<Duration>,
    pub first_request: Duration,
    pub idle: Option<Duration>,
}

impl ConnClock {
    pub fn new() -> Arc<ConnClock> {
        Arc::new(ConnClock {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            head_since: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    /// Bytes arrived: between requests they are the start of the next head.
    pub(crate) fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ = self.head_since.compare_exchange(
                0,
                self.now(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    pub(crate) fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.requests.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(0, Ordering::Release);
    }

    pub(crate) fn request_ended(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle_since.store(self.now(), Ordering::Release);
        }
    }

    /// Whether no request is in flight and no head is arriving: closing the connection now
    /// loses nothing (an HTTP/1 client sees a closed idle connection; HTTP/2 gets GOAWAY).
    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && self.head_since.load(Ordering::Acquire) == 0
    }

    /// Whether a request is being served (handed to the service and not answered yet).
    pub fn serving(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) != 0
    }

    /// Whether a request head has started to arrive and is not complete yet.
    pub fn head_pending(&self) -> bool {
        self.head_since.load(Ordering::Acquire) != 0 && !self.serving()
    }

    /// How long the connection has done nothing useful: the time its pending request head has
    /// been arriving, else the time since its last answer (or since it opened).
    pub fn unproductive_for(&self) -> Duration {
        let since = self.head_since.load(Ordering::Acquire);
        if since != 0 && !self.serving() {
            return Duration::from_micros(self.now().saturating_sub(since));
        }
        self.idle_for()
    }

    /// Whether the connection has never had a request handed to the service.
    pub fn never_served(&self) -> bool {
        self.requests.load(Ordering::Acquire) == 0
    }

    /// Microseconds since the connection last had work: since it opened, or since its last
    /// answer. Larger means a better candidate to close when room is needed.
    pub fn idle_for(&self) -> Duration {
        let since = self.idle_since.load(Ordering::Acquire);
        let since = if since == 0 { 1 } else { since };
        Duration::from_micros(self.now().saturating_sub(since))
    }

    /// Which limit, if any, the connection has run past.
    pub fn overdue(&self, limits: &ClockLimits) -> Option<Overdue> {
        if limits.head.is_some_and(|limit| self.head_overdue(limit)) {
            return Some(Overdue::Head);
        }
        if self.never_served() && self.in_flight.load(Ordering::Acquire) == 0 {
            if self.epoch.elapsed() > limits.first_request {
                return Some(Overdue::FirstRequest);
            }
            return None;
        }
        if let Some(limit) = limits.idle
            && self.in_flight.load(Ordering::Acquire) == 0
            && self.idle_for() > limit
        {
            return Some(Overdue::Idle);
        }
        None
    }

    /// Resolves with the first limit the connection runs past (checked a few times per the
    /// shortest limit, at most every second).
    pub async fn deadline(&self, limits: ClockLimits) -> Overdue {
        let shortest = [Some(limits.first_request), limits.head, limits.idle]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(limits.first_request);
        let every = (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            if let Some(overdue) = self.overdue(&limits) {
                return overdue;
            }
        }
    }

    /// Whether a request head has been arriving for longer than `limit`.
    pub fn head_overdue(&self, limit: Duration) -> bool {
        let since = self.head_since.load(Ordering::Acquire);
        if since == 0 || self.in_flight.load(Ordering::Acquire) != 0 {
            return false;
        }
        let waited = self.now().saturating_sub(since);
        Duration::from_micros(waited) > limit
    }
}

/// The connection's byte stream, reporting reads to its [`ConnClock`].
#[derive(Debug)]
pub struct ClockedIo<T> {
    inner: T,
    clock: Arc<ConnClock>,
    /// Whether bytes between requests start a head (HTTP/1). HTTP/2 frames such as pings
    /// arrive between requests without being one.
    heads: bool,
}

impl<T> ClockedIo<T> {
    pub fn new(inner: T, clock: Arc<ConnClock>, heads: bool) -> ClockedIo<T> {
        ClockedIo {
            inner,
            clock,
            heads,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ClockedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.heads && matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.bytes_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ClockedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A service that reports to the connection's [`ConnClock`] when a request is handed to it
/// and when it is answered (or dropped).
#[derive(Debug, Clone)]
pub struct Clocked<S> {
    inner: S,
    clock: Arc<ConnClock>,
}

impl<S> Clocked<S> {
    pub fn new(inner: S, clock: Arc<ConnClock>) -> Clocked<S> {
        Clocked { inner, clock }
    }
}

/// Ends the request on the clock when the answer is ready or the request is dropped.
struct InFlight(Arc<ConnClock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

impl<S, R> tower::Service<R> for Clocked<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.clock.request_started();
        let in_flight = InFlight(Arc::clone(&self.clock));
        let answer = self.inner.call(req);
        Box::pin(async move {
            let result = answer.await;
            drop(in_flight);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bytes_between_requests_start_the_head_clock() {
        let clock = ConnClock::new();
        let limit = Duration::from_millis(20);
        // Idle: nothing is overdue however long it lasts.
        std::thread::sleep(Duration::from_millis(30));
        assert!(!clock.head_overdue(limit));
        // A head starts and drags on.
        clock.bytes_read();
        assert!(!clock.head_overdue(limit));
        std::thread::sleep(Duration::from_millis(30));
        assert!(clock.head_overdue(limit));
        // The request arrives: its body bytes do not count, and the clock restarts only with
        // the next request's first byte.
        clock.request_started();
        assert!(!clock.head_overdue(limit));
        clock.bytes_read();
        std::thread::sleep(Duration::from_millis(30));
        assert!(!clock.head_overdue(limit));
        clock.request_ended();
        assert!(!clock.head_overdue(limit));
        clock.bytes_read();
        std::thread::sleep(Duration::from_millis(30));
        assert!(clock.head_overdue(limit));
    }

    #[test]
    fn a_silent_connection_is_overdue_for_its_first_request_then_idle() {
        let ms = Duration::from_millis;
        let limits = ClockLimits {
            head: None,
            first_request: ms(20),
            idle: Some(ms(40)),
        };
        let clock = ConnClock::new();
        assert_eq!(clock.overdue(&limits), None);
        assert!(clock.is_idle() && clock.never_served());
        std::thread::sleep(ms(30));
        assert_eq!(clock.overdue(&limits), Some(Overdue::FirstRequest));
        // A request in flight is never overdue, however long it takes.
        clock.request_started();
        assert!(!clock.is_idle());
        std::thread::sleep(ms(50));
        assert_eq!(clock.overdue(&limits), None);
        clock.request_ended();
        assert!(clock.is_idle() && !clock.never_served());
        assert_eq!(clock.overdue(&limits), None);
        std::thread::sleep(ms(50));
        assert_eq!(clock.overdue(&limits), Some(Overdue::Idle));
        assert!(clock.idle_for() >= ms(50));
    }
}
