//! The plain-HTTP admin port: `/metrics`, `/healthz`, `/readyz`. Not exposed outside the pod
//! network; the kubelet probes it and Prometheus scrapes it.

use crate::server::metrics::CONTENT_TYPE;
use crate::server::routes::{plain, readiness};
use crate::server::state::App;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

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
