//! A no-op admission webhook on the same stack as `pidone serve` (tokio, rustls with ring and
//! the same certificate resolver, hyper-util with the same HTTP/1 settings, axum): it reads the
//! whole body and answers a fixed AdmissionReview. `benches/load.sh` runs it next to pidone to
//! measure what the analysis costs on top of the transport.
//!
//! With `kube` as a fourth argument it decodes each review into kube-rs's
//! `AdmissionReview<DynamicObject>` and answers "allowed" with its uid: a minimal webhook
//! written the usual way, for a second point of comparison.
//!
//! With `spin:N` it answers the fixed review after keeping its core busy for N microseconds:
//! a server as fast as the no-op one in everything but the time it takes to answer, to show
//! what a slower answer costs the transport (see `benches/answer-delay.sh`).
//!
//! Usage: `baseline_server LISTEN_ADDR CERT_PEM KEY_PEM [noop|kube|spin:N]`

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::post;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use pidone::server::tls::{self, CertResolver};
use std::sync::Arc;
use std::time::Duration;

const ANSWER: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"3f0c1e62-7a3b-4c1d-9e5f-0a1b2c3d4e5f","allowed":true}}"#;

async fn answer(req: Request) -> Response {
    let _body = axum::body::to_bytes(req.into_body(), 8 << 20).await;
    let mut response = Response::new(Body::from(ANSWER));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The fixed answer after `busy` of CPU: a spin, not a sleep, so the thread stays on its core
/// as a server doing the work would.
async fn answer_after(req: Request, busy: Duration) -> Response {
    let started = std::time::Instant::now();
    while started.elapsed() < busy {
        std::hint::spin_loop();
    }
    answer(req).await
}

async fn kube_answer(req: Request) -> Response {
    use kube::core::DynamicObject;
    use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
    let body = axum::body::to_bytes(req.into_body(), 8 << 20)
        .await
        .unwrap_or_default();
    let review: Result<AdmissionReview<DynamicObject>, _> = serde_json::from_slice(&body);
    let response = match review.map_err(|e| e.to_string()).and_then(|r| {
        let request: Result<AdmissionRequest<DynamicObject>, _> = r.try_into();
        request.map_err(|e| e.to_string())
    }) {
        Ok(request) => AdmissionResponse::from(&request),
        Err(e) => AdmissionResponse::invalid(e),
    };
    let json = serde_json::to_vec(&response.into_review()).unwrap_or_default();
    let mut response = Response::new(Body::from(json));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (listen, cert, key, mode) = match args.as_slice() {
        [listen, cert, key] => (listen, cert, key, "noop"),
        [listen, cert, key, mode] => (listen, cert, key, mode.as_str()),
        _ => {
            anyhow::bail!("usage: baseline_server LISTEN_ADDR CERT_PEM KEY_PEM [noop|kube|spin:N]")
        }
    };
    let provider = tls::provider();
    let certs = Arc::new(CertResolver::new(tls::certified_key(
        &std::fs::read(cert)?,
        &std::fs::read(key)?,
        &provider,
    )?));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls::server_config(certs, provider)?));
    let router = match mode {
        "noop" => Router::new()
            .route("/validate", post(answer))
            .route("/mutate", post(answer)),
        "kube" => Router::new()
            .route("/validate", post(kube_answer))
            .route("/mutate", post(kube_answer)),
        _ => {
            let busy = mode
                .strip_prefix("spin:")
                .and_then(|us| us.parse().ok())
                .map(Duration::from_micros)
                .ok_or_else(|| anyhow::anyhow!("unknown mode {mode}: noop, kube or spin:N"))?;
            let spin = move |req: Request| answer_after(req, busy);
            Router::new()
                .route("/validate", post(spin))
                .route("/mutate", post(spin))
        }
    };
    let mut h1 = auto::Builder::new(TokioExecutor::new()).http1_only();
    h1.http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(Duration::from_secs(10));
    let h1 = Arc::new(h1);

    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(listen.as_str()).await?;
            println!("listening on {}", listener.local_addr()?);
            loop {
                let (tcp, _) = listener.accept().await?;
                let (acceptor, router, h1) = (acceptor.clone(), router.clone(), h1.clone());
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = h1
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router))
                        .await;
                });
            }
        })
}
