//! Raw request bodies into the real admission handler (`server::admission::answer`), on both
//! endpoints and every mode, with the real planner: it must return a reply, never panic, and a
//! review reply must be a JSON AdmissionReview.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pidone::engine::Engine;
use pidone::engine::{Config, Mode};
use pidone::resolve::InProcessAnalyzer;
use pidone::resolve::ScriptAnalyzer;
use pidone::server::admission::{self, Reply};
use pidone::server::decision::Endpoint;
use pidone::server::plan::Mutations;
use pidone::server::state::App;
use pidone::server::tls::{self, CertResolver};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["pidone.pidone.svc".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let certified = tls::certified_key(
            cert.pem().as_bytes(),
            key.serialize_pem().as_bytes(),
            &tls::provider(),
        )
        .expect("certified key");
        let analyzer: Arc<dyn ScriptAnalyzer> = Arc::new(InProcessAnalyzer);
        let engine = Engine::new(Arc::new(Config::default())).expect("engine");
        App::new(
            engine,
            analyzer,
            Arc::new(Mutations),
            Arc::new(CertResolver::new(certified)),
            false,
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let endpoint = if pick & 1 == 0 {
        Endpoint::Mutate
    } else {
        Endpoint::Validate
    };
    let mode = match (pick >> 1) % 4 {
        0 => None,
        1 => Some(Mode::Enforce),
        2 => Some(Mode::Audit),
        _ => Some(Mode::Off),
    };
    match admission::answer(app(), endpoint, mode, body, Instant::now()) {
        Reply::Review(json) => {
            let review: serde_json::Value =
                serde_json::from_slice(&json).expect("the reply is JSON");
            assert_eq!(review["kind"], "AdmissionReview");
            assert!(review["response"]["allowed"].is_boolean());
        }
        Reply::Plain(code, _) => assert!((400..600).contains(&code), "HTTP {code}"),
        Reply::Shed => {}
    }
});
