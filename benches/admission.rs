//! One admission review from body bytes to response bytes, without the transport: what
//! `pidone serve` spends per request on top of TLS and HTTP, stage by stage, with the
//! realistic review of `benches/fixtures/pod-review.json` (the one `benches/load.sh` sends).
//!
//! - `floor: scan the body` is serde_json skipping over the whole body (`IgnoredAny`): no
//!   webhook that reads the review can cost less.
//! - `kube-rs: decode into DynamicObject` is the decoding of kube-rs's admission example.
//! - `decode review, ...` is pidone's one-pass decoding, with the object cut for planning
//!   patches or for evaluation only (see `pidone::server::object`).
//! - `answer /validate` and `answer /mutate` are the whole handler, with the production
//!   analyzer set-up on a verdict-cache hit (what every review after the first of a script
//!   sees) and a JSON log line per review written to a sink.
//!
//! Run: cargo bench --bench admission

use criterion::{Criterion, criterion_group, criterion_main};
use pidone::engine::Config;
use pidone::engine::Engine;
use pidone::sandbox::{CacheLimits, PrescreenedAnalyzer};
use pidone::server::admission::{self, Reply};
use pidone::server::decision::Endpoint;
use pidone::server::plan::Mutations;
use pidone::server::state::App;
use pidone::server::tls::{self, CertResolver};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

// The allocator of the `pidone` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REVIEW: &[u8] = include_bytes!("fixtures/pod-review.json");

fn app() -> App {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["pidone.pidone.svc".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let provider = tls::provider();
    let certs = Arc::new(CertResolver::new(
        tls::certified_key(
            cert.pem().as_bytes(),
            key.serialize_pem().as_bytes(),
            &provider,
        )
        .expect("certified key"),
    ));
    let config = Config::from_yaml("mode: enforce\n").expect("config");
    let analyzer = Arc::new(PrescreenedAnalyzer::new(
        &config.parser,
        CacheLimits::default(),
    ));
    let engine = Engine::new(Arc::new(config)).expect("engine");
    App::new(engine, analyzer, Arc::new(Mutations), certs, false)
}

fn review_bytes(reply: Reply) -> usize {
    match reply {
        Reply::Review(body) => body.len(),
        Reply::Plain(code, message) => panic!("plain {code}: {message}"),
        Reply::Shed => panic!("shed"),
    }
}

fn bench(c: &mut Criterion) {
    // As in production with `--log-format json`, to a sink.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(std::io::sink)
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .try_init();
    let app = app();
    // Warm the verdict cache.
    review_bytes(admission::answer(
        &app,
        Endpoint::Validate,
        None,
        REVIEW,
        Instant::now(),
    ));

    c.bench_function("floor: scan the body", |b| {
        b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(REVIEW)).is_ok())
    });
    c.bench_function("floor: parse the body into a Value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(REVIEW)).is_ok())
    });
    c.bench_function("kube-rs: decode into DynamicObject", |b| {
        b.iter(|| {
            serde_json::from_slice::<
                kube::core::admission::AdmissionReview<kube::core::DynamicObject>,
            >(black_box(REVIEW))
            .is_ok()
        })
    });
    c.bench_function("decode review, whole object", |b| {
        b.iter(|| pidone::server::review::decode(black_box(REVIEW)).is_ok())
    });
    c.bench_function("decode review, lean object", |b| {
        b.iter(|| pidone::server::review::decode_lean(black_box(REVIEW)).is_ok())
    });
    c.bench_function("decode review, lean object without env", |b| {
        b.iter(|| {
            pidone::server::review::decode_cut::<pidone::server::object::LeanWithoutEnv>(black_box(
                REVIEW,
            ))
            .is_ok()
        })
    });
    c.bench_function("answer /validate", |b| {
        b.iter(|| {
            review_bytes(admission::answer(
                &app,
                Endpoint::Validate,
                None,
                black_box(REVIEW),
                Instant::now(),
            ))
        })
    });
    c.bench_function("answer /mutate", |b| {
        b.iter(|| {
            review_bytes(admission::answer(
                &app,
                Endpoint::Mutate,
                None,
                black_box(REVIEW),
                Instant::now(),
            ))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
