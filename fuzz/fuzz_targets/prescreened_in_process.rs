//! What slips past the pre-screen: pre-screened scripts parsed in this process, as the CLI's
//! `PrescreenedAnalyzer` does. A crash, timeout or memory blow-up here is a hazard the
//! pre-screen does not know (the webhook's workers would still contain it).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use pidone::engine::config::{Config, ParserConfig};
use pidone::engine::evaluate::EvalContext;
use pidone::resolve::Evaluator;
use pidone::sandbox::{CacheLimits, PrescreenedAnalyzer};
use std::sync::{Arc, OnceLock};

fn engine() -> &'static Evaluator {
    static ENGINE: OnceLock<Evaluator> = OnceLock::new();
    ENGINE.get_or_init(|| {
        // libfuzzer-sys aborts on every panic, even one caught: the analyzer catches the
        // parser's own panics (they become `GaveUp` verdicts), so keep only the report. A
        // panic that escapes the target still aborts (libfuzzer-sys catches it and aborts).
        std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
        // No cache: every input must reach the parser.
        let analyzer = PrescreenedAnalyzer::new(
            &ParserConfig::default(),
            CacheLimits {
                max_entries: 0,
                max_bytes: 0,
            },
        );
        Evaluator::new(Arc::new(Config::default()), Arc::new(analyzer)).expect("engine")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(pod) = common::pod(data) else {
        return;
    };
    let eval = engine()
        .evaluate(&pod, &EvalContext::default())
        .expect("a pod is a workload")
        .expect("a pod has a template");
    assert_eq!(eval.containers.len(), 1);
});
