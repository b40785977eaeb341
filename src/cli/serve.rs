//! `pidone serve`: run the admission webhook.

use crate::cli::logging::{self, LogFormat};
use crate::sandbox::reaper::{self, ChildRegistry};
use crate::sandbox::{ContainedAnalyzer, ContainmentConfig, PoolConfig};
use crate::server::plan::Mutations;
use crate::server::shutdown::Signals;
use crate::server::{self, Drained, ServerConfig, ServerError};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Serve the admission webhook over HTTPS, with metrics and probes on a plain port.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (YAML); re-read when it changes.
    #[arg(long, env = "PIDONE_CONFIG")]
    pub config: PathBuf,
    /// PEM certificate chain served on the TLS port; re-read when it changes.
    #[arg(long, env = "PIDONE_TLS_CERT")]
    pub tls_cert: PathBuf,
    /// PEM private key of the certificate; re-read when it changes.
    #[arg(long, env = "PIDONE_TLS_KEY")]
    pub tls_key: PathBuf,
    /// Address of the HTTPS admission port.
    #[arg(long, env = "PIDONE_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Address of the plain-HTTP port for /metrics, /healthz and /readyz.
    #[arg(long, env = "PIDONE_METRICS_LISTEN", default_value = "0.0.0.0:9090")]
    pub metrics_listen: SocketAddr,
    /// Log output format.
    #[arg(long, env = "PIDONE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Longest time in-flight requests get to finish after SIGTERM.
    #[arg(long, env = "PIDONE_DRAIN_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// Time a client gets to send a request's headers, from their first byte (and to finish
    /// the TLS handshake).
    #[arg(long, env = "PIDONE_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// Time an HTTP/1 keep-alive connection may wait for its next request. Keep it above the
    /// apiserver's 90 s, so that the apiserver, not pidone, closes idle connections.
    #[arg(long, env = "PIDONE_IDLE_TIMEOUT", default_value = "120s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// How often the certificate, key and configuration files are checked for changes.
    #[arg(long, env = "PIDONE_RELOAD_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub reload_interval: Duration,
    /// Most admission reviews analysed at once. Beyond it a review waits briefly for a slot
    /// (bounded by the apiserver's timeout), then is answered 429 with `Retry-After: 1`, which
    /// the apiserver retries.
    #[arg(long, env = "PIDONE_MAX_INFLIGHT", default_value_t = crate::server::state::DEFAULT_MAX_INFLIGHT as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_inflight: u32,
    /// Most connections open on the HTTPS port. Beyond it a new connection takes the place of
    /// an idle one, or is closed when all are busy.
    #[arg(long, env = "PIDONE_MAX_CONNECTIONS", default_value_t = crate::server::connections::DEFAULT_MAX_CONNECTIONS as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Most connections open on the admin port (metrics and probes). Beyond it a new
    /// connection takes the place of an idle one, or is closed when all are busy.
    #[arg(long, env = "PIDONE_METRICS_MAX_CONNECTIONS", default_value_t = crate::server::connections::DEFAULT_MAX_ADMIN_CONNECTIONS as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub metrics_max_connections: u32,
    /// Bytes of request bodies held at once across all requests, beyond the first 64 KiB of
    /// each; a body that would overdraw it is answered 429.
    #[arg(long, env = "PIDONE_MAX_BUFFERED_BYTES", default_value_t = crate::server::DEFAULT_MAX_BUFFERED_BYTES as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_buffered_bytes: u64,
    /// With `reports.enabled`: the Lease that elects the one replica that writes reports.
    #[arg(long, env = "PIDONE_REPORTS_LEASE", default_value = "pidone-reports")]
    pub reports_lease: String,
    /// This replica's name in the Lease (default: the host name).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// The namespace of the Lease (the pod's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub pod_namespace: String,
}

/// Keeps the server's view of `nativeSidecars: auto` current: the apiserver's and every
/// node's kubelet version, read through the in-cluster (or kubeconfig) client. Until the first
/// answer, auto counts as unsupported (side agents are warned about, not moved). The cluster is
/// read only while the configuration says `auto` (it may change on reload); each setting is
/// logged once, as it is.
fn watch_native_sidecar_support(app: Arc<crate::server::state::App>) {
    use crate::engine::config::NativeSidecars;
    tokio::spawn(async move {
        let mut watching: Option<crate::cluster::SidecarSupport> = None;
        let mut logged: Option<NativeSidecars> = None;
        loop {
            let mode = app.engine().config().native_sidecars;
            if logged != Some(mode) {
                match mode {
                    NativeSidecars::Auto => tracing::info!(
                        "nativeSidecars: auto: side agents become native sidecars once the apiserver and every kubelet are known to be 1.29 or newer"
                    ),
                    NativeSidecars::Always => tracing::info!(
                        "nativeSidecars: always: side agents become native sidecars; the cluster's versions are not checked"
                    ),
                    NativeSidecars::Never => tracing::info!(
                        "nativeSidecars: never: side agents are warned about and never moved"
                    ),
                }
                logged = Some(mode);
            }
            if mode == NativeSidecars::Auto {
                let support = match &watching {
                    Some(support) => support.clone(),
                    None => {
                        let support = crate::cluster::start(
                            NativeSidecars::Auto,
                            kube::Client::try_default,
                            crate::cluster::WatchOptions::default(),
                        )
                        .await;
                        watching = Some(support.clone());
                        support
                    }
                };
                app.set_cluster_native_sidecars(support.current());
            } else {
                // Dropping the handle stops its watch.
                watching = None;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("starting the parse workers: {0}")]
    Parser(crate::sandbox::SandboxError),
}

/// Threads of tokio's blocking pool. Reviews with a script missing from the verdict cache run
/// there and wait for one of the parse workers (2); file polling and reaping run there too.
/// More threads would only wait on the workers, each with its own stack and allocator heap.
const MAX_BLOCKING_THREADS: usize = 8;

/// Runs the server until SIGTERM or SIGINT and the drain that follows. A second signal exits
/// at once with status 1.
pub fn run(args: ServeArgs) -> Result<(), ServeError> {
    logging::init(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> Result<(), ServeError> {
    let mut signals = Signals::install().map_err(ServeError::Signals)?;
    // Children owned by someone (the contained parser's workers) are registered here so the
    // reaper leaves them to their owner.
    let children = ChildRegistry::new();
    if reaper::is_pid1() {
        tracing::info!("running as PID 1: reaping orphaned processes");
        let children = Arc::clone(&children);
        tokio::spawn(async move {
            if let Err(e) = reaper::run(children).await {
                tracing::error!(error = %e, "the zombie reaper could not start");
            }
        });
    }

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let first = signals.recv().await;
        tracing::info!(signal = first, "shutting down");
        let _ = stop.send(());
        let second = signals.recv().await;
        tracing::error!(signal = second, "second signal: exiting without draining");
        std::process::exit(1);
    });

    let args_reports = (
        args.reports_lease.clone(),
        args.pod_namespace.clone(),
        args.pod_name
            .clone()
            .unwrap_or_else(crate::cli::serve_reports::hostname),
    );
    let limits = match std::fs::read_to_string(&args.config)
        .ok()
        .and_then(|text| crate::engine::Config::from_yaml(&text).ok())
    {
        Some(config) => config.parser,
        // The server reports the configuration error itself when it loads the file.
        None => crate::engine::config::ParserConfig::default(),
    };
    let containment = ContainmentConfig {
        pool: PoolConfig {
            registry: Some(Arc::clone(&children)),
            ..PoolConfig::default()
        },
        ..ContainmentConfig::default()
    };
    let analyzer =
        Arc::new(ContainedAnalyzer::new(&limits, containment).map_err(ServeError::Parser)?);
    let config = ServerConfig {
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        config_path: args.config,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        drain_timeout: args.drain_timeout,
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        reload_interval: args.reload_interval,
        // Scripts are parsed in worker processes (pre-screen, cache, deadline, memory limit);
        // the workers are registered with `children` so the reaper leaves them to the pool.
        analyzer: Arc::clone(&analyzer) as Arc<dyn crate::resolve::ScriptAnalyzer>,
        analyzer_blocks: true,
        planner: Arc::new(Mutations),
        max_inflight: args.max_inflight as usize,
        limits: server::Limits {
            max_connections: args.max_connections as usize,
            max_admin_connections: args.metrics_max_connections as usize,
            max_buffered_bytes: usize::try_from(args.max_buffered_bytes).unwrap_or(usize::MAX),
        },
    };
    let running = server::start(config, async move {
        let _ = stopped.await;
    })
    .await?;
    // The client reviews read ConfigMap scripts with (`scripts.configMaps`).
    let client = kube::Client::try_default().await.map_err(|e| {
        let why = format!("cannot build a Kubernetes client: {e}");
        if running.app.engine().config().scripts.config_maps.any() {
            tracing::warn!(error = %e, "scripts.configMaps is on but ConfigMaps cannot be read");
        }
        why
    });
    running.app.set_kube_client(client);
    watch_native_sidecar_support(Arc::clone(&running.app));
    crate::cli::serve_reports::keep_reports_current(
        Arc::clone(&running.app),
        crate::cli::serve_reports::Identity {
            lease: args_reports.0,
            namespace: args_reports.1,
            pod: args_reports.2,
        },
    );
    {
        let app = Arc::clone(&running.app);
        tokio::spawn(async move {
            loop {
                app.metrics.observe_parser(&analyzer.stats());
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
    }
    match running.wait().await? {
        Drained::Clean | Drained::TimedOut => Ok(()),
    }
}
