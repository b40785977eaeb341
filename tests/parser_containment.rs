//! The parser's hazards sent straight to worker processes (no pre-screen): each must end in a
//! verdict within the deadline, the pool must recover, no zombie may remain, and the memory
//! blow-ups must happen in the workers, not here.

use pidone::engine::config::ParserConfig;
use pidone::engine::script::{Dialect, Ending, ScriptVerdict, UnparsedReason};
use pidone::resolve::ScriptAnalyzer;
use pidone::sandbox::{ContainedAnalyzer, ContainmentConfig, PoolConfig, PrescreenCheck};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_millis(250);
/// Kill, reap and start a new worker, on a loaded 2-core machine.
const MARGIN: Duration = Duration::from_millis(1500);

/// Tests in this file share the process's children and RSS: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn analyzer(workers: usize) -> ContainedAnalyzer {
    let config = ContainmentConfig {
        pool: PoolConfig {
            workers,
            executable: Some(PathBuf::from(env!("CARGO_BIN_EXE_pidone"))),
            ..PoolConfig::default()
        },
        ..ContainmentConfig::default()
    };
    ContainedAnalyzer::new(
        &ParserConfig {
            deadline: DEADLINE,
            ..ParserConfig::default()
        },
        config,
    )
    .expect("workers start")
}

fn nested(open: &str, close: &str, depth: usize) -> String {
    format!("{}true{}", open.repeat(depth), close.repeat(depth))
}

/// One script per hazard class, none of which the in-process parser survives.
fn hazards() -> Vec<(&'static str, Dialect, String)> {
    vec![
        ("heredoc $[", Dialect::Sh, "cat <<$[  ".to_string()),
        ("heredoc $(", Dialect::Bash, "cat <<$(  ".to_string()),
        ("heredoc $((", Dialect::Sh, "<<-$((\t\t".to_string()),
        ("paren run", Dialect::Bash, "(".repeat(30)),
        ("nested braces", Dialect::Sh, nested("{ ", "; }", 20_000)),
        (
            "nested if",
            Dialect::Bash,
            nested("if true; then ", "; fi", 20_000),
        ),
        (
            "nested while",
            Dialect::Sh,
            nested("while true; do ", "; done", 20_000),
        ),
        ("nested subshells", Dialect::Sh, nested("( ", " )", 20_000)),
        (
            "nested [[ !",
            Dialect::Bash,
            format!("[[ {} a ]]", "! ".repeat(20_000)),
        ),
        (
            "fd overflow",
            Dialect::Sh,
            "echo hi 2147483648>/dev/null".to_string(),
        ),
        (
            "1 MiB",
            Dialect::Sh,
            format!("echo {}", "a".repeat(1 << 20)),
        ),
    ]
}

/// Children of this process in state Z.
fn zombie_children() -> Vec<u32> {
    let me = std::process::id();
    let mut zombies = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return zombies;
    };
    for entry in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
        if state == Some("Z") && ppid == Some(me) {
            zombies.push(entry.file_name().to_string_lossy().parse().unwrap_or(0));
        }
    }
    zombies
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn assert_parses_normally(a: &ContainedAnalyzer) {
    let (verdict, _) = a.analyze_unscreened(Dialect::Sh, "envsubst < t > c; exec app --port 80");
    match verdict {
        ScriptVerdict::Parsed(facts) => assert_eq!(
            facts.ending,
            Ending::Exec {
                program: "app".into()
            }
        ),
        other => panic!("pool did not recover: {other:?}"),
    }
}

#[test]
fn every_hazard_is_contained_and_the_pool_recovers() {
    let _serial = serial();
    let a = analyzer(2);
    assert_parses_normally(&a);
    let rss_before = rss_kib();
    for (name, dialect, script) in hazards() {
        let started = Instant::now();
        let (verdict, _) = a.analyze_unscreened(dialect, &script);
        let took = started.elapsed();
        assert!(
            took < DEADLINE + MARGIN,
            "{name}: took {took:?}, deadline {DEADLINE:?}"
        );
        match &verdict {
            ScriptVerdict::Unparsed(UnparsedReason::GaveUp { what }) => {
                eprintln!("{name}: gave up ({what}) in {took:?}")
            }
            ScriptVerdict::Unparsed(other) => eprintln!("{name}: {other} in {took:?}"),
            ScriptVerdict::Parsed(_) if name == "1 MiB" => {}
            ScriptVerdict::Parsed(facts) => panic!("{name}: parsed?! {facts:?}"),
        }
        assert_parses_normally(&a);
        assert_eq!(zombie_children(), Vec::<u32>::new(), "{name}: zombies");
    }
    let grown = rss_kib().saturating_sub(rss_before);
    // The heredoc hazards allocate without end; here that must not show.
    assert!(grown < 64 * 1024, "test process RSS grew by {grown} KiB");
    let stats = a.stats();
    eprintln!("{stats:?}");
    assert!(stats.worker_restarts >= 5, "{stats:?}");
    assert!(
        stats.deadline_overruns + stats.worker_crashes >= 5,
        "{stats:?}"
    );
}

#[test]
fn hazards_through_the_analyzer_are_turned_away_by_the_prescreen() {
    let _serial = serial();
    let a = analyzer(1);
    for (name, dialect, script) in hazards() {
        let started = Instant::now();
        let verdict = a.analyze(dialect, &script);
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "{name} was parsed"
        );
        assert!(
            matches!(
                *verdict,
                ScriptVerdict::Unparsed(
                    UnparsedReason::Hostile { .. }
                        | UnparsedReason::TooDeep { .. }
                        | UnparsedReason::TooLarge { .. }
                )
            ),
            "{name}: {verdict:?}"
        );
    }
    let stats = a.stats();
    assert_eq!(stats.parses, 0);
    assert_eq!(stats.prescreen_rejections_total(), hazards().len() as u64);
    assert_eq!(
        stats.prescreen_rejected(PrescreenCheck::HereDocDelimiter),
        3
    );
    assert_eq!(stats.prescreen_rejected(PrescreenCheck::ParenRun), 1);
    assert_eq!(stats.prescreen_rejected(PrescreenCheck::FdOverflow), 1);
    // The deep ones are also large: whichever check comes first.
    assert_eq!(
        stats.prescreen_rejected(PrescreenCheck::TooDeep)
            + stats.prescreen_rejected(PrescreenCheck::TooLarge),
        6
    );
    // Within the size cap, depth is what turns them away.
    for script in [
        nested("{ ", "; }", 600),
        nested("if true; then ", "; fi", 600),
        nested("while true; do ", "; done", 600),
        format!("[[ {} a ]]", "! ".repeat(600)),
    ] {
        let verdict = a.analyze(Dialect::Bash, &script);
        assert!(
            matches!(
                *verdict,
                ScriptVerdict::Unparsed(UnparsedReason::TooDeep { .. })
            ),
            "{}: {verdict:?}",
            &script[..12]
        );
    }
    assert_eq!(a.stats().parses, 0);
}

#[test]
fn verdicts_are_cached_hostile_ones_too() {
    let _serial = serial();
    let a = analyzer(1);
    let script = "app & agent & wait -n";
    let first = a.analyze(Dialect::Sh, script);
    let second = a.analyze(Dialect::Sh, script);
    assert_eq!(first, second);
    assert!(matches!(*first, ScriptVerdict::Parsed(_)));
    let stats = a.stats();
    assert_eq!((stats.parses, stats.cache_hits), (1, 1));
    // A script the pre-screen lets through but that outlasts the deadline: with the deadline
    // lowered to 1 ms, a 55 KB script (tens of milliseconds to parse) overruns it every time.
    a.update_limits(&ParserConfig {
        deadline: Duration::from_millis(1),
        ..ParserConfig::default()
    });
    let slow = "echo step; ".repeat(5000);
    let started = Instant::now();
    let first = a.analyze(Dialect::Sh, &slow);
    assert!(started.elapsed() < DEADLINE + MARGIN);
    assert_eq!(
        *first,
        ScriptVerdict::Unparsed(UnparsedReason::GaveUp {
            what: "deadline exceeded".into()
        })
    );
    let started = Instant::now();
    assert_eq!(a.analyze(Dialect::Sh, &slow), first);
    assert!(started.elapsed() < Duration::from_millis(50));
    let stats = a.stats();
    assert_eq!((stats.parses, stats.cache_hits), (2, 2));
    assert_eq!(stats.deadline_overruns, 1);
    assert_eq!(stats.worker_restarts, 1);
}

#[test]
fn concurrent_callers_share_the_pool() {
    let _serial = serial();
    let a = Arc::new(analyzer(2));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let a = Arc::clone(&a);
            std::thread::spawn(move || {
                for i in 0..50 {
                    let script = format!("sleep {t}{i}; exec app{t}");
                    if i % 10 == 0 {
                        // A hazard now and then kills a worker under the others' feet.
                        let _ = a.analyze_unscreened(Dialect::Sh, "cat <<$[ ");
                    }
                    match &*a.analyze(Dialect::Sh, &script) {
                        ScriptVerdict::Parsed(f) => assert_eq!(
                            f.ending,
                            Ending::Exec {
                                program: format!("app{t}")
                            }
                        ),
                        // Allowed only when every worker was busy for the whole queue timeout.
                        ScriptVerdict::Unparsed(UnparsedReason::GaveUp { what })
                            if what.contains("available") => {}
                        other => panic!("{other:?}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(zombie_children(), Vec::<u32>::new());
    assert_parses_normally(&a);
}

#[test]
fn a_worker_killed_while_idle_is_replaced() {
    let _serial = serial();
    let a = analyzer(1);
    let pids = a.pool().idle_pids();
    assert_eq!(pids.len(), 1);
    let status = std::process::Command::new("kill")
        .args(["-9", &pids[0].to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(100));
    assert_parses_normally(&a);
    assert_ne!(a.pool().idle_pids(), pids);
    assert_eq!(zombie_children(), Vec::<u32>::new());
    assert_eq!(a.stats().worker_restarts, 1);
}

#[test]
fn dropping_the_analyzer_reaps_its_workers() {
    let _serial = serial();
    let a = analyzer(2);
    let pids = a.pool().idle_pids();
    drop(a);
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "worker {pid} still exists"
        );
    }
}

#[test]
fn a_missing_executable_fails_at_start() {
    let config = ContainmentConfig {
        pool: PoolConfig {
            executable: Some(PathBuf::from("/nonexistent/pidone")),
            ..PoolConfig::default()
        },
        ..ContainmentConfig::default()
    };
    assert!(ContainedAnalyzer::new(&ParserConfig::default(), config).is_err());
    let config = ContainmentConfig {
        pool: PoolConfig {
            executable: Some(PathBuf::from("/bin/true")),
            spawn_timeout: Duration::from_secs(2),
            ..PoolConfig::default()
        },
        ..ContainmentConfig::default()
    };
    assert!(ContainedAnalyzer::new(&ParserConfig::default(), config).is_err());
}

/// Manual exploration: `PIDONE_EXPLORE=file cargo test --test parser_containment explore --
/// --ignored --nocapture`, one script per line, `\n` for newlines, `sh:`/`bash:` prefix.
#[test]
#[ignore]
fn explore() {
    let Ok(path) = std::env::var("PIDONE_EXPLORE") else {
        return;
    };
    let a = analyzer(2);
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        let (dialect, script) = match line.split_once(':') {
            Some(("bash", s)) => (Dialect::Bash, s),
            Some(("sh", s)) => (Dialect::Sh, s),
            _ => continue,
        };
        let script = script.replace("\\n", "\n").replace("\\t", "\t");
        let started = Instant::now();
        let (v, _) = a.analyze_unscreened(dialect, &script);
        let shown = match v {
            ScriptVerdict::Parsed(_) => "parsed".to_string(),
            ScriptVerdict::Unparsed(r) => r.to_string(),
        };
        let head: String = line.chars().take(40).collect();
        eprintln!("{head:<40} {:>10.1?}  {shown}", started.elapsed());
    }
}

#[test]
fn the_memory_limit_ends_endless_allocation_before_the_deadline() {
    let _serial = serial();
    let config = ContainmentConfig {
        pool: PoolConfig {
            workers: 1,
            executable: Some(PathBuf::from(env!("CARGO_BIN_EXE_pidone"))),
            limits: pidone::sandbox::WorkerLimits {
                memory_bytes: 192 * 1024 * 1024,
                stack_bytes: 16 * 1024 * 1024,
            },
            ..PoolConfig::default()
        },
        ..ContainmentConfig::default()
    };
    let a = ContainedAnalyzer::new(
        &ParserConfig {
            deadline: Duration::from_secs(20),
            ..ParserConfig::default()
        },
        config,
    )
    .expect("workers start");
    assert_parses_normally(&a);
    let started = Instant::now();
    let (verdict, cacheable) = a.analyze_unscreened(Dialect::Bash, "<<$[  ");
    let took = started.elapsed();
    assert_eq!(
        verdict,
        ScriptVerdict::Unparsed(UnparsedReason::GaveUp {
            what: "parser crashed".into()
        }),
        "after {took:?}"
    );
    assert!(cacheable);
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_parses_normally(&a);
    assert_eq!(zombie_children(), Vec::<u32>::new());
    assert_eq!(a.stats().worker_crashes, 1);
}

/// Manual timing of one input: `PIDONE_TIME=file` (first byte picks the dialect as in the
/// fuzz targets): parse alone vs. parse and analysis.
#[test]
#[ignore]
fn time_one() {
    let Ok(path) = std::env::var("PIDONE_TIME") else {
        return;
    };
    let bytes = std::fs::read(path).unwrap_or_default();
    let Some((&pick, script)) = bytes.split_first() else {
        return;
    };
    let dialect = if pick % 4 == 1 {
        Dialect::Bash
    } else {
        Dialect::Sh
    };
    let script = String::from_utf8_lossy(script);
    let started = Instant::now();
    let parsed = pidone::engine::script::parse(dialect, &script).is_ok();
    eprintln!("parse: {:?} ({parsed})", started.elapsed());
    let started = Instant::now();
    let _ = pidone::engine::script::analyze_script(dialect, &script);
    eprintln!("parse + analysis: {:?}", started.elapsed());
}
