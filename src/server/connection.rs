//! Serving one accepted connection, on either port: the HTTP builders and the loop that runs
//! a connection until it ends, is told to close, or runs past a limit of its clock.

use crate::server::conn_clock::{ClockLimits, ConnClock, Overdue};
use crate::server::connections::{Admission, Port};
use crate::server::state::App;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use std::net::SocketAddr;
use std::time::Duration;

/// Builders for the two protocols; ALPN picks one per connection (the admin port speaks
/// HTTP/1 only).
pub(crate) struct Protocols {
    pub(crate) h1: auto::Builder<TokioExecutor>,
    pub(crate) h2: auto::Builder<TokioExecutor>,
}

impl Protocols {
    pub(crate) fn new(idle_timeout: Duration) -> Protocols {
        let mut h1 = auto::Builder::new(TokioExecutor::new()).http1_only();
        // hyper's header read timeout runs from the end of one request to the head of the
        // next: it is the idle limit here; slow heads are cut by `conn_clock`.
        // At most 64 KiB buffered per connection (headers of the apiserver's requests are a
        // few hundred bytes); body bytes beyond it wait in the socket until the handler reads.
        h1.http1()
            .timer(TokioTimer::new())
            .keep_alive(true)
            .header_read_timeout(idle_timeout)
            .max_buf_size(64 * 1024);
        let mut h2 = auto::Builder::new(TokioExecutor::new()).http2_only();
        // Small flow-control windows: a client can make pidone buffer at most this much per
        // stream and per connection before the handler reads (the defaults are 1 MiB and more).
        h2.http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .initial_stream_window_size(64 * 1024)
            .initial_connection_window_size(256 * 1024)
            .max_header_list_size(64 * 1024)
            .max_concurrent_streams(64);
        Protocols { h1, h2 }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) header_read: Duration,
    pub(crate) idle: Duration,
}

/// Serves one connection of `port` until it ends, is told to close (cap or drain: gracefully,
/// at most `close_within`), or runs past a limit of its clock.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn drive<C>(
    port: Port,
    conn: C,
    clock: &ConnClock,
    limits: ClockLimits,
    admission: &Admission,
    close_within: Duration,
    app: &App,
    peer: SocketAddr,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    tokio::pin!(conn);
    let mut closing: Option<tokio::time::Instant> = None;
    loop {
        let hard_stop = closing.unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = admission.close.notified(), if closing.is_none() => {
                if admission.evicted() && clock.head_pending() {
                    // Evicted while a head trickles in: nothing to finish.
                    tracing::debug!(%peer, "connection with a trickling request head dropped");
                    return;
                }
                conn.as_mut().graceful_shutdown();
                closing = Some(tokio::time::Instant::now() + close_within);
            }
            overdue = clock.deadline(limits), if closing.is_none() => match overdue {
                Overdue::Head => {
                    // Dropping the connection closes it.
                    app.metrics.limits.connection_closed(port, "slow-head");
                    tracing::debug!(%peer, "request head too slow; connection closed");
                    return;
                }
                Overdue::FirstRequest | Overdue::Idle => {
                    let reason = if overdue == Overdue::Idle { "idle" } else { "silent" };
                    app.metrics.limits.connection_closed(port, reason);
                    tracing::debug!(%peer, reason, "connection closed");
                    conn.as_mut().graceful_shutdown();
                    closing = Some(tokio::time::Instant::now() + limits.first_request);
                }
            },
            () = tokio::time::sleep_until(hard_stop), if closing.is_some() => {
                tracing::debug!(%peer, "connection did not close in time; dropped");
                return;
            }
        }
    }
}
