//! The lexical scan of scripts that are not parsed (`pidone::engine::lexical`): it must never
//! panic and must stay linear in the script's length, whatever the bytes. The time bound is
//! generous (the machine is shared) but far below what a quadratic scan needs on inputs of a
//! few hundred KiB, which the fuzzer reaches by repeating bytes (`-max_len`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pidone::engine::kubelet::Environment;
use pidone::engine::lexical;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let script = String::from_utf8_lossy(data);
    // A literal env value for nested scripts named `$S` (`sh -c "$S"`), from the input itself.
    let env = Environment::from_vars(vec![("S".to_string(), Some(script.to_string()))]);
    // Wall-clock time on a shared machine: a slow run is timed twice more and the fastest of
    // the three counts (preemption only ever makes a run slower).
    let time = || {
        let started = Instant::now();
        let plain = lexical::scan(&script);
        let with_env = lexical::scan_with_env(&script, &env);
        (started.elapsed(), plain, with_env)
    };
    let (mut took, plain, with_env) = time();
    // 1 µs per byte per pass, times the passes nested scripts may add, plus slack.
    let bound = Duration::from_millis(20) + Duration::from_micros(8 * data.len() as u64);
    if took >= bound {
        took = took.min(time().0).min(time().0);
    }
    assert!(took < bound, "{} bytes took {took:?}", data.len());
    // The environment can only add findings.
    assert!(plain.is_none() || with_env.is_some());
});
