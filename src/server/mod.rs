//! `pidone serve`: the HTTPS admission server around the engine.
//!
//! [`start`] loads the configuration and the certificate (failing fast if either is bad),
//! binds both ports, and returns the bound addresses; the server runs until the shutdown
//! future resolves, then drains: it stops accepting, answers `/readyz` with 503, lets in-flight
//! requests finish (idle keep-alive connections are closed at once) for at most the drain
//! timeout, and stops.
//!
//! Connections: rustls (TLS 1.2+, ring), ALPN `h2`/`http/1.1`; the protocol follows ALPN (no
//! protocol sniffing, so a silent client cannot hold a connection open before the HTTP/1
//! header read timeout starts); the TLS handshake is bounded by the same timeout.
//!
//! Budgets against clients that hold resources without using them (SECURITY.md): at most
//! `max_connections` connections (an idle one makes room for a newcomer, see [`connections`]);
//! a connection must finish its first request head within the header read timeout of being
//! accepted, and an HTTP/2 connection with nothing in flight is closed after the idle limit;
//! hyper buffers at most 64 KiB per HTTP/1 connection and HTTP/2 flow-control windows are
//! small, so unread bytes stay in the client's socket; request bodies are read only once an
//! analysis slot is held, within a global byte budget (see [`routes`]). The admin port has the
//! same connection budgets under its own, smaller cap (see [`admin`]).

pub mod accept;
pub mod admin;
pub mod admission;
#[cfg(test)]
mod arbitrary_json;
pub mod config_maps;
pub mod conn_clock;
pub mod connection;
pub mod connections;
pub mod decision;
pub mod json_blocks;
pub mod json_scan;
pub mod lean_scan;
pub mod limit_metrics;
pub mod metrics;
pub mod namespace_share;
pub mod object;
pub mod object_limits;
pub mod plan;
pub mod pod_read;
pub mod reload;
pub mod resolve;
pub mod review;
pub mod review_cuts;
pub mod review_log;
pub mod routes;
pub mod shutdown;
pub mod state;
pub mod template_compare;
pub mod tls;

use crate::engine::{Config, ConfigError, Engine};
use crate::resolve::ScriptAnalyzer;
use crate::server::accept::Accepted;
use crate::server::conn_clock::{ClockLimits, Clocked, ClockedIo};
use crate::server::connection::{Protocols, Timeouts, drive};
use crate::server::connections::{Connections, Port};
use crate::server::plan::Planner;
use crate::server::reload::FileWatch;
use crate::server::state::App;
use crate::server::tls::{CertResolver, TlsError};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// Bytes read from a client's socket at once. rustls asks for at most 4 KiB per read, so a
/// 15 KiB review took four `recvfrom` calls (each may also send the client a window update);
/// read through this buffer it takes one. 32 KiB per connection, 8 MiB at the default cap of
/// 256 connections.
const SOCKET_READ_BYTES: usize = 32 * 1024;

/// Everything `start` needs.
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub config_path: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Longest time in-flight requests get after the shutdown signal.
    pub drain_timeout: Duration,
    /// HTTP/1 request headers must arrive within this, from their first byte; it also bounds
    /// the TLS handshake.
    pub header_read_timeout: Duration,
    /// How long an HTTP/1 keep-alive connection may wait for its next request (and a new
    /// connection for its first). Above the apiserver's 90 s, so that the apiserver is always
    /// the side that closes an idle connection (see [`conn_clock`]).
    pub idle_timeout: Duration,
    /// How often certificate and configuration files are re-read.
    pub reload_interval: Duration,
    pub analyzer: Arc<dyn ScriptAnalyzer>,
    /// Whether analysis may block (an analyzer that waits for worker processes): then a
    /// review's scripts that are neither pre-screened away nor in the verdict cache are parsed
    /// on tokio's blocking pool, within the namespace's share (see [`resolve`]); everything
    /// else is answered on the connection's thread. The in-process analyzer is CPU-bound and
    /// bounded by the parser limits: it parses inline.
    pub analyzer_blocks: bool,
    pub planner: Arc<dyn Planner>,
    /// Most admission reviews analysed at once; beyond it reviews wait briefly for a slot,
    /// then get 429 with `Retry-After: 1` (see [`routes`]).
    pub max_inflight: usize,
    /// Connection and byte budgets.
    pub limits: Limits,
}

/// Budgets of both ports against clients that hold resources (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once on the TLS port.
    pub max_connections: usize,
    /// Most connections open at once on the admin port.
    pub max_admin_connections: usize,
    /// Bytes of request bodies held at once across all requests, beyond the first
    /// [`routes::FREE_BODY_BYTES`] of each (which the analysis slots bound).
    pub max_buffered_bytes: usize,
}

/// Default of [`Limits::max_buffered_bytes`] (`--max-buffered-bytes`): two of the largest
/// bodies, or hundreds of ordinary ones.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: connections::DEFAULT_MAX_CONNECTIONS,
            max_admin_connections: connections::DEFAULT_MAX_ADMIN_CONNECTIONS,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("metrics_listen", &self.metrics_listen)
            .field("config_path", &self.config_path)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("drain_timeout", &self.drain_timeout)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("reload_interval", &self.reload_interval)
            .field("analyzer_blocks", &self.analyzer_blocks)
            .field("max_inflight", &self.max_inflight)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("reading the configuration {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Config { path: PathBuf, source: ConfigError },
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A started server.
#[derive(Debug)]
pub struct Running {
    /// The TLS port's address (useful with port 0).
    pub addr: SocketAddr,
    /// The admin port's address.
    pub admin_addr: SocketAddr,
    pub app: Arc<App>,
    task: JoinHandle<Drained>,
}

/// How the drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every in-flight request finished.
    Clean,
    /// The drain timeout passed with connections still open; they were dropped.
    TimedOut,
}

impl Running {
    /// Waits until the server has drained and stopped.
    pub async fn wait(self) -> Result<Drained, ServerError> {
        Ok(self.task.await?)
    }
}

/// Loads configuration and certificate, binds both ports and starts serving until `shutdown`
/// resolves.
pub async fn start(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, ServerError> {
    let config_text =
        std::fs::read(&config.config_path).map_err(|source| ServerError::ReadConfig {
            path: config.config_path.clone(),
            source,
        })?;
    let engine = engine_from(&config_text).map_err(|source| ServerError::Config {
        path: config.config_path.clone(),
        source,
    })?;
    let provider = tls::provider();
    let cert_pem = tls::read(&config.tls_cert)?;
    let key_pem = tls::read(&config.tls_key)?;
    let certs = Arc::new(CertResolver::new(tls::certified_key(
        &cert_pem, &key_pem, &provider,
    )?));
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(
        Arc::clone(&certs),
        Arc::clone(&provider),
    )?));
    let app = Arc::new(
        App::new(
            engine,
            Arc::clone(&config.analyzer),
            Arc::clone(&config.planner),
            Arc::clone(&certs),
            config.analyzer_blocks,
        )
        .with_max_inflight(config.max_inflight)
        .with_max_buffered_bytes(config.limits.max_buffered_bytes),
    );

    let listener = bind(config.listen).await?;
    let admin_listener = bind(config.metrics_listen).await?;
    let addr = local_addr(&listener, config.listen)?;
    let admin_addr = local_addr(&admin_listener, config.metrics_listen)?;

    let mut background = Vec::new();
    background.push(tokio::spawn(reload::run(
        "tls",
        FileWatch::new(
            vec![config.tls_cert.clone(), config.tls_key.clone()],
            vec![cert_pem, key_pem],
        ),
        config.reload_interval,
        {
            let certs = Arc::clone(&certs);
            move |files: &[Vec<u8>]| match files {
                [cert, key] => tls::certified_key(cert, key, &provider)
                    .map(|k| certs.swap(k))
                    .map_err(|e| e.to_string()),
                _ => Err("expected a certificate and a key".to_string()),
            }
        },
        {
            let app = Arc::clone(&app);
            move |ok| app.metrics.tls_reload(ok)
        },
    )));
    background.push(tokio::spawn(reload::run(
        "config",
        FileWatch::new(vec![config.config_path.clone()], vec![config_text]),
        config.reload_interval,
        {
            let app = Arc::clone(&app);
            move |files: &[Vec<u8>]| {
                let text = files
                    .first()
                    .map(|b| String::from_utf8_lossy(b))
                    .unwrap_or_default();
                app.reload_config(&text).map_err(|e| e.to_string())
            }
        },
        {
            let app = Arc::clone(&app);
            move |ok| app.metrics.config_reload(ok)
        },
    )));

    let timeouts = Timeouts {
        header_read: config.header_read_timeout,
        idle: config.idle_timeout,
    };
    let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = tokio::spawn(admin::serve(
        admin_listener,
        Arc::clone(&app),
        timeouts,
        Connections::new(config.limits.max_admin_connections),
        async move {
            let _ = admin_stopped.await;
        },
    ));

    tracing::info!(%addr, %admin_addr, "serving");
    let task = tokio::spawn(serve(
        listener,
        acceptor,
        Arc::clone(&app),
        timeouts,
        Connections::new(config.limits.max_connections),
        config.drain_timeout,
        shutdown,
        move || {
            for task in background {
                task.abort();
            }
            let _ = admin_stop.send(());
            admin
        },
    ));
    Ok(Running {
        addr,
        admin_addr,
        app,
        task,
    })
}

fn engine_from(text: &[u8]) -> Result<Engine, ConfigError> {
    let text = std::str::from_utf8(text)
        .map_err(|e| ConfigError::Yaml(format!("the file is not UTF-8: {e}")))?;
    let config = Config::from_yaml(text)?;
    Engine::new(Arc::new(config))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, ServerError> {
    listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })
}

/// The accept loop of the TLS port, then the drain.
#[allow(clippy::too_many_arguments)]
async fn serve<F>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Arc<App>,
    timeouts: Timeouts,
    connections: Arc<Connections>,
    drain_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stop_rest: F,
) -> Drained
where
    F: FnOnce() -> JoinHandle<()> + Send,
{
    let router = routes::router(Arc::clone(&app));
    let protocols = Arc::new(Protocols::new(timeouts.idle));
    tokio::pin!(shutdown);
    while let Some(Accepted {
        tcp,
        peer,
        clock,
        admission,
    }) = accept::next(&listener, &mut shutdown, &connections, &app, Port::Webhook).await
    {
        let acceptor = acceptor.clone();
        let router = router.clone();
        let protocols = Arc::clone(&protocols);
        let app = Arc::clone(&app);
        let connections = Arc::clone(&connections);
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let tcp = BufReader::with_capacity(SOCKET_READ_BYTES, tcp);
            let handshake = tokio::time::timeout(timeouts.header_read, acceptor.accept(tcp));
            let tls = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        app.metrics.limits.connection_closed(Port::Webhook, "handshake");
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
                () = admission.close.notified() => return,
            };
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let builder = if h2 { &protocols.h2 } else { &protocols.h1 };
            let conn = builder
                .serve_connection(
                    TokioIo::new(ClockedIo::new(tls, Arc::clone(&clock), !h2)),
                    TowerToHyperService::new(Clocked::new(router, Arc::clone(&clock))),
                )
                .into_owned();
            // HTTP/1: hyper closes idle keep-alive connections itself; the clock cuts slow
            // heads. HTTP/2: the clock closes a connection idle for the idle limit. Both: the
            // first request head must be complete within the header read timeout.
            let limits = ClockLimits {
                head: (!h2).then_some(timeouts.header_read),
                first_request: timeouts.header_read,
                idle: h2.then_some(timeouts.idle),
            };
            drive(
                Port::Webhook,
                conn,
                &clock,
                limits,
                &admission,
                timeouts.header_read.max(drain_timeout),
                &app,
                peer,
            )
            .await;
            drop(admission);
            app.metrics
                .limits
                .connections_open(Port::Webhook, connections.count());
        });
        // Let the new connection read what its client sent before the next accept: a
        // connection counts as silent (first to make room at the cap) only if it is.
        tokio::task::yield_now().await;
    }

    drop(listener);
    app.start_draining();
    tracing::info!(
        connections = connections.count(),
        "draining: no new connections, finishing in-flight requests"
    );
    connections.close_all();
    let drained = match tokio::time::timeout(drain_timeout, connections.drained()).await {
        Ok(()) => {
            tracing::info!("drained");
            Drained::Clean
        }
        Err(_) => {
            tracing::warn!(
                timeout = ?drain_timeout,
                "drain timeout passed with requests in flight; stopping anyway"
            );
            Drained::TimedOut
        }
    };
    let admin = stop_rest();
    let _ = tokio::time::timeout(Duration::from_secs(1), admin).await;
    drained
}
