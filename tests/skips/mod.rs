//! Tests that cannot run here say so where it is seen: libtest hides a passing test's
//! stderr, so a test that returns early would pass silently. A skip is appended to the file
//! named by `PIDONE_SKIP_LOG` (one `test<TAB>reason` line), which `scripts/test.sh` sums up
//! in its last line; under `CI=true` a skip is a failure instead, since CI installs every
//! tool the tests need (`.ci/apt-packages.txt`).
#![allow(dead_code)]

use std::io::Write as _;
use std::path::PathBuf;

/// True on CI, where nothing may be skipped.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Records that the running test cannot run here, or fails it on CI. The caller returns
/// right after.
pub fn skip(reason: &str) {
    // libtest runs each test on a thread named after it.
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    assert!(
        !on_ci(),
        "{test} cannot run: {reason}; CI must run every test (see .ci/apt-packages.txt)"
    );
    eprintln!("skipped {test}: {reason}");
    if let Some(log) = std::env::var_os("PIDONE_SKIP_LOG") {
        let line = format!("{test}\t{}\n", reason.replace(['\n', '\t'], " "));
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(err) = written {
            panic!("cannot record the skip of {test} in {log:?}: {err}");
        }
    }
}

/// The programs of `tools` that are not on `PATH`.
pub fn missing(tools: &[&str]) -> Vec<String> {
    tools
        .iter()
        .filter(|tool| which(tool).is_none())
        .map(|tool| tool.to_string())
        .collect()
}

/// Where `name` is on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// True when this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
