//! Parser flooding (SECURITY.md, "Threats and bounds"): parses for a review that was shed stop
//! at once, and one namespace cannot hold every parse worker. Real worker processes.

use pidone::engine::config::ParserConfig;
use pidone::engine::script::{Dialect, ScriptVerdict, UnparsedReason};
use pidone::sandbox::{
    CacheLimits, ContainedAnalyzer, ContainmentConfig, PoolConfig, Ticket, with_ticket,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn analyzer(workers: usize) -> Arc<ContainedAnalyzer> {
    Arc::new(
        ContainedAnalyzer::new(
            &ParserConfig {
                deadline: Duration::from_secs(20),
                ..ParserConfig::default()
            },
            ContainmentConfig {
                pool: PoolConfig {
                    workers,
                    executable: Some(PathBuf::from(env!("CARGO_BIN_EXE_pidone"))),
                    queue_timeout: Duration::from_secs(1),
                    ..PoolConfig::default()
                },
                cache: CacheLimits::default(),
            },
        )
        .unwrap(),
    )
}

/// A script brush-parser takes exponential time over (runs of `(` in bash mode); parsed
/// without the pre-screen, which would refuse it, it keeps a worker busy until its deadline.
fn endless() -> String {
    "(".repeat(40)
}

/// Parses `script` on its own thread on behalf of a review in `namespace`.
fn parse_for(
    a: &Arc<ContainedAnalyzer>,
    namespace: &'static str,
    script: String,
) -> (
    Arc<Ticket>,
    std::thread::JoinHandle<(ScriptVerdict, Duration)>,
) {
    let ticket = Ticket::new(Instant::now() + Duration::from_secs(30));
    let a = Arc::clone(a);
    let t = Arc::clone(&ticket);
    let handle = std::thread::spawn(move || {
        with_ticket(t, || {
            pidone::sandbox::ticket::set_namespace(namespace);
            let started = Instant::now();
            let (verdict, _) = a.analyze_unscreened(Dialect::Bash, &script);
            (verdict, started.elapsed())
        })
    });
    (ticket, handle)
}

fn gave_up(what: &str) -> ScriptVerdict {
    ScriptVerdict::Unparsed(UnparsedReason::GaveUp { what: what.into() })
}

#[test]
fn a_shed_review_stops_its_parse_and_frees_the_worker() {
    let a = analyzer(1);
    let (ticket, handle) = parse_for(&a, "flood", endless());
    std::thread::sleep(Duration::from_millis(300));
    let cancelled = Instant::now();
    ticket.cancel();
    let (verdict, took) = handle.join().unwrap();
    assert_eq!(verdict, gave_up("review abandoned"));
    assert!(cancelled.elapsed() < Duration::from_millis(500), "{took:?}");
    assert!(ticket.pool_gave_up());
    // The replacement worker serves the next review at once.
    let started = Instant::now();
    let (verdict, _) = a.analyze_unscreened(Dialect::Sh, "exec app");
    assert!(matches!(verdict, ScriptVerdict::Parsed(_)), "{verdict:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn one_namespace_cannot_hold_every_worker() {
    let a = analyzer(2);
    let (first_ticket, first) = parse_for(&a, "noisy", endless());
    std::thread::sleep(Duration::from_millis(200));
    // The noisy namespace's second parse does not get the last worker...
    let (second_ticket, second) = parse_for(&a, "noisy", endless());
    std::thread::sleep(Duration::from_millis(100));
    // ...which another namespace's parse gets at once.
    let (quiet_ticket, quiet) = parse_for(&a, "quiet", "exec app".into());
    let (verdict, took) = quiet.join().unwrap();
    assert!(matches!(verdict, ScriptVerdict::Parsed(_)), "{verdict:?}");
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert!(!quiet_ticket.pool_gave_up());
    let (verdict, _) = second.join().unwrap();
    assert_eq!(verdict, gave_up("no parser worker available"));
    assert!(second_ticket.pool_gave_up());
    first_ticket.cancel();
    assert_eq!(first.join().unwrap().0, gave_up("review abandoned"));
}
