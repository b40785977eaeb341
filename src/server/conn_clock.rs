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
}

impl ConnClock {
    pub fn new() -> Arc<ConnClock> {
        Arc::new(ConnClock {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            head_since: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    /// Bytes arrived: between requests they are the start of the next head.
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ = self.head_since.compare_exchange(
                0,
                self.now(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(0, Ordering::Release);
    }

    fn request_ended(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
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

    /// Resolves once a request head has been arriving for longer than `limit` (checked a few
    /// times per `limit`, at most every second).
    pub async fn head_timeout(&self, limit: Duration) {
        let every = (limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            if self.head_overdue(limit) {
                return;
            }
        }
    }
}

/// The connection's byte stream, reporting reads to its [`ConnClock`].
#[derive(Debug)]
pub struct ClockedIo<T> {
    inner: T,
    clock: Arc<ConnClock>,
}

impl<T> ClockedIo<T> {
    pub fn new(inner: T, clock: Arc<ConnClock>) -> ClockedIo<T> {
        ClockedIo { inner, clock }
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
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
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
}
