//! One admission review from body bytes to response bytes, without the transport: what
//! `pidone serve` spends per request on top of TLS and HTTP, stage by stage, with the
//! realistic review of `benches/fixtures/pod-review.json` (the one `benches/load.sh` sends).
//!
//! - `floor: scan the body` is serde_json skipping over the whole body (`IgnoredAny`): no
//!   webhook that reads the review can cost less.
//! - `kube-rs: decode into DynamicObject` is the decoding of kube-rs's admission example.
//! - `decode review, ...` is pidone's one-pass decoding, with the object cut for planning
//!   patches or for evaluation only (see `pidone::server::object`).
//! - `lean scan of a CREATE` is what `pidone serve` runs first on such a review: the members
//!   the engine reads, taken in the scan that skips the rest, the env lists included
//!   (`pidone::server::lean_scan`, cut `LeanWithoutEnv`).
//! - `serde, typed and borrowed` decodes the same members into structs of borrowed strings
//!   (`typed` below): the usual way to decode without a DOM, for comparison.
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

    // A decode that failed early would be measured as a fast one.
    assert!(
        pidone::server::lean_scan::scan::<pidone::server::object::LeanWithoutEnv>(REVIEW).is_some()
    );
    assert!(serde_json::from_slice::<typed::Review<'_>>(REVIEW).is_ok());

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
    c.bench_function("lean scan of a CREATE", |b| {
        b.iter(|| {
            pidone::server::lean_scan::scan::<pidone::server::object::LeanWithoutEnv>(black_box(
                REVIEW,
            ))
            .is_some()
        })
    });
    c.bench_function("serde, typed and borrowed", |b| {
        b.iter(|| serde_json::from_slice::<typed::Review<'_>>(black_box(REVIEW)).is_ok())
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

/// The members of a CREATE review that the lean cut `LeanWithoutEnv` keeps, as structs of
/// borrowed strings (values the cut keeps whole as `Value`s, as it does); serde skips every
/// other member (`IgnoredAny`), the env lists included. Decoded to be measured, never read.
#[allow(dead_code)]
mod typed {
    use serde::Deserialize;
    use serde::de::IgnoredAny;
    use serde_json::Value;
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    type Text<'a> = Cow<'a, str>;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Review<'a> {
        #[serde(borrow)]
        pub api_version: Text<'a>,
        #[serde(borrow)]
        pub kind: Text<'a>,
        #[serde(borrow)]
        pub request: Request<'a>,
    }

    #[derive(Deserialize)]
    pub struct Kind<'a> {
        #[serde(borrow)]
        pub group: Text<'a>,
        #[serde(borrow)]
        pub version: Text<'a>,
        #[serde(borrow)]
        pub kind: Text<'a>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Request<'a> {
        #[serde(borrow)]
        pub uid: Text<'a>,
        #[serde(borrow)]
        pub kind: Kind<'a>,
        #[serde(borrow, default)]
        pub name: Option<Text<'a>>,
        #[serde(borrow, default)]
        pub namespace: Option<Text<'a>>,
        #[serde(borrow)]
        pub operation: Text<'a>,
        #[serde(default)]
        pub dry_run: Option<bool>,
        #[serde(borrow)]
        pub object: Object<'a>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Object<'a> {
        #[serde(borrow)]
        pub api_version: Text<'a>,
        #[serde(borrow)]
        pub kind: Text<'a>,
        #[serde(borrow)]
        pub metadata: Metadata<'a>,
        #[serde(borrow)]
        pub spec: Spec<'a>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Metadata<'a> {
        #[serde(borrow, default)]
        pub name: Option<Text<'a>>,
        #[serde(borrow, default)]
        pub generate_name: Option<Text<'a>>,
        #[serde(borrow, default)]
        pub namespace: Option<Text<'a>>,
        #[serde(borrow, default)]
        pub annotations: BTreeMap<Text<'a>, Text<'a>>,
        #[serde(borrow, default)]
        pub labels: BTreeMap<Text<'a>, Text<'a>>,
        #[serde(borrow, default)]
        pub owner_references: Vec<Owner<'a>>,
    }

    #[derive(Deserialize)]
    pub struct Owner<'a> {
        #[serde(borrow)]
        pub kind: Text<'a>,
        #[serde(borrow)]
        pub name: Text<'a>,
        #[serde(default)]
        pub controller: Option<bool>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Spec<'a> {
        #[serde(borrow, default)]
        pub restart_policy: Option<Text<'a>>,
        #[serde(borrow, default)]
        pub containers: Vec<Container<'a>>,
        #[serde(borrow, default)]
        pub init_containers: Vec<Container<'a>>,
        #[serde(borrow, default)]
        pub volumes: Vec<Volume<'a>>,
        #[serde(default)]
        pub share_process_namespace: Option<bool>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Volume<'a> {
        #[serde(borrow)]
        pub name: Text<'a>,
        #[serde(default)]
        pub persistent_volume_claim: Option<Value>,
        #[serde(default)]
        pub ephemeral: Option<Value>,
        #[serde(default)]
        pub config_map: Option<Value>,
        #[serde(default)]
        pub projected: Option<Projected>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Container<'a> {
        #[serde(borrow)]
        pub name: Text<'a>,
        #[serde(borrow, default)]
        pub image: Option<Text<'a>>,
        #[serde(borrow, default)]
        pub command: Option<Vec<Text<'a>>>,
        #[serde(borrow, default)]
        pub args: Option<Vec<Text<'a>>>,
        #[serde(borrow, default)]
        pub restart_policy: Option<Text<'a>>,
        #[serde(borrow, default)]
        pub working_dir: Option<Text<'a>>,
        #[serde(default)]
        pub env_from: Option<Value>,
        #[serde(default)]
        pub env: Option<IgnoredAny>,
        #[serde(borrow, default)]
        pub volume_mounts: Vec<Mount<'a>>,
        #[serde(default)]
        pub ports: Vec<IgnoredAny>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Mount<'a> {
        #[serde(borrow)]
        pub name: Text<'a>,
        #[serde(borrow)]
        pub mount_path: Text<'a>,
        #[serde(borrow, default)]
        pub sub_path: Option<Text<'a>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Projected {
        #[serde(default)]
        pub default_mode: Option<Value>,
        #[serde(default)]
        pub sources: Vec<Source>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Source {
        #[serde(default)]
        pub config_map: Option<Value>,
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
