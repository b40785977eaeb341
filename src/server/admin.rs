//! The plain-HTTP admin port: `/metrics`, `/healthz`, `/readyz`. Not exposed outside the pod
//! network; the kubelet probes it and Prometheus scrapes it.
//!
//! Whoever reaches the port must not be able to starve the kubelet's probes (a failed liveness
//! probe restarts pidone): connections are held to the same budgets as on the webhook port, in
//! a registry of their own with a smaller cap (`--metrics-max-connections`): at the cap a
//! newcomer takes the place of an idle connection; a connection must finish its first request
//! head within the header read timeout, every head within it from its first byte, and an idle
//! keep-alive connection is closed after the idle timeout. HTTP/1 only: the kubelet and
//! Prometheus speak it.

use crate::server::accept::{self, Accepted};
use crate::server::conn_clock::{ClockLimits, Clocked, ClockedIo};
use crate::server::connection::{Protocols, Timeouts, drive};
use crate::server::connections::{Connections, Port};
use crate::server::metrics::CONTENT_TYPE;
use crate::server::routes::{plain, readiness};
use crate::server::state::App;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { plain(StatusCode::OK, "ok\n") }))
        .route(
            "/readyz",
            get(|State(app): State<Arc<App>>| async move { readiness(&app) }),
        )
        .fallback(|| async { plain(StatusCode::NOT_FOUND, "not found\n") })
        .with_state(app)
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    match app.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics could not be encoded\n",
        ),
    }
}

/// The admin port's accept loop, until `stop` resolves; then open connections get a second to
/// finish their requests.
pub(super) async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    timeouts: Timeouts,
    connections: Arc<Connections>,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let router = router(Arc::clone(&app));
    let protocols = Arc::new(Protocols::new(timeouts.idle));
    tokio::pin!(stop);
    while let Some(Accepted {
        tcp,
        peer,
        clock,
        admission,
    }) = accept::next(&listener, &mut stop, &connections, &app, Port::Admin).await
    {
        let router = router.clone();
        let protocols = Arc::clone(&protocols);
        let app = Arc::clone(&app);
        let connections = Arc::clone(&connections);
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let conn = protocols
                .h1
                .serve_connection(
                    TokioIo::new(ClockedIo::new(tcp, Arc::clone(&clock), true)),
                    TowerToHyperService::new(Clocked::new(router, Arc::clone(&clock))),
                )
                .into_owned();
            // hyper closes idle keep-alive connections (its header read timeout is the idle
            // limit); the clock cuts slow heads and connections that never speak.
            let limits = ClockLimits {
                head: Some(timeouts.header_read),
                first_request: timeouts.header_read,
                idle: None,
            };
            drive(
                Port::Admin,
                conn,
                &clock,
                limits,
                &admission,
                timeouts.header_read,
                &app,
                peer,
            )
            .await;
            drop(admission);
            app.metrics
                .limits
                .connections_open(Port::Admin, connections.count());
        });
        // Let the new connection read what its client sent before the next accept: a
        // connection counts as silent (first to make room at the cap) only if it is.
        tokio::task::yield_now().await;
    }
    drop(listener);
    connections.close_all();
    let _ = tokio::time::timeout(Duration::from_secs(1), connections.drained()).await;
}
