//! The webhook's path: the full engine with the contained analyzer (pre-screen, cache, worker
//! processes). Whatever the script, evaluation must return, without panicking, with one
//! container analysed. Workers run `$PIDONE_WORKER` (a built `pidone` binary).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use pidone::engine::config::{Config, ParserConfig};
use pidone::engine::evaluate::EvalContext;
use pidone::engine::script::{ScriptVerdict, UnparsedReason};
use pidone::resolve::Evaluator;
use pidone::sandbox::{ContainedAnalyzer, ContainmentConfig, PoolConfig};
use std::sync::{Arc, OnceLock};

fn engine() -> &'static Evaluator {
    static ENGINE: OnceLock<Evaluator> = OnceLock::new();
    ENGINE.get_or_init(|| {
        // SAFETY: called once before any pipe is written; ignoring SIGPIPE turns a write to a
        // dead worker into an EPIPE error, as in the pidone binary (Rust's runtime does that).
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        let worker =
            std::env::var_os("PIDONE_WORKER").expect("set PIDONE_WORKER to a pidone binary");
        let analyzer = ContainedAnalyzer::new(
            &ParserConfig::default(),
            ContainmentConfig {
                pool: PoolConfig {
                    executable: Some(worker.into()),
                    ..PoolConfig::default()
                },
                ..ContainmentConfig::default()
            },
        )
        .expect("workers start");
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
    // The pool must stay healthy: hostile scripts may kill workers, never starve the pool.
    if let Some(shell) = &eval.containers[0].analysis.shell
        && let ScriptVerdict::Unparsed(UnparsedReason::GaveUp { what }) = &*shell.verdict
    {
        assert!(!what.contains("available"), "{what}");
    }
});
