//! A stand-in application for pidone's process tests (`tests/init_pid_namespace.rs` and
//! `scripts/compare-inits.sh`).
//!
//! `cargo test` builds it like every example (it lands in `target/<profile>/examples/`);
//! the tests find it there and build it with `cargo build --example fake_app` if it is
//! missing.
//!
//! Usage: `fake_app --marker PATH [--ready PATH] [--orphans N]`
//! - waits for SIGTERM or SIGINT, then writes `flushed` to the marker file and exits 0, like
//!   an application that flushes its state on stop;
//! - `--ready PATH`: writes its pid there once it is ready for signals;
//! - `--started PATH`: first thing, writes the CLOCK_MONOTONIC time in nanoseconds there
//!   (used to measure how long an init takes to start its child);
//! - `--orphans N`: starts N short-lived children that each start a grandchild and exit at
//!   once, so the grandchildren are re-parented to PID 1 (or the nearest subreaper); each
//!   grandchild touches `<marker>.orphan.<pid>` and exits 100 ms later. Under a PID 1 that
//!   does not reap, they stay zombies.
//!
//! Internal: `fake_app --orphaner MARKER` and `fake_app --grandchild MARKER` are the
//! processes described above.

use std::ffi::OsString;
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

fn main() -> ExitCode {
    match run(std::env::args_os().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fake_app: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Vec<OsString>) -> Result<(), String> {
    let mut marker: Option<PathBuf> = None;
    let mut ready: Option<PathBuf> = None;
    let mut orphans = 0u32;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg:?} needs a value"));
        match arg.to_str() {
            Some("--marker") => marker = Some(value()?.into()),
            Some("--ready") => ready = Some(value()?.into()),
            Some("--started") => {
                let path = PathBuf::from(value()?);
                std::fs::write(&path, monotonic_ns().to_string())
                    .map_err(|e| format!("write {}: {e}", path.display()))?;
            }
            Some("--orphans") => {
                orphans = value()?
                    .to_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--orphans needs a number")?
            }
            Some("--orphaner") => return orphaner(value()?.into()),
            Some("--grandchild") => return grandchild(value()?.into()),
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    let marker = marker.ok_or("--marker is required")?;

    let set = block_stop_signals()?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    for _ in 0..orphans {
        // Reap the direct child like a well-behaved program; the grandchild is orphaned.
        Command::new(&exe)
            .arg("--orphaner")
            .arg(&marker)
            .status()
            .map_err(|e| format!("spawn orphaner: {e}"))?;
    }
    if let Some(ready) = ready {
        std::fs::write(&ready, std::process::id().to_string())
            .map_err(|e| format!("write {}: {e}", ready.display()))?;
    }
    loop {
        // SAFETY: `set` is an initialised sigset_t; a null siginfo pointer is allowed.
        let signal = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
        if signal == libc::SIGTERM || signal == libc::SIGINT {
            break;
        }
    }
    std::fs::write(&marker, "flushed").map_err(|e| format!("write {}: {e}", marker.display()))
}

/// Blocks SIGTERM and SIGINT so that they are received with `sigwaitinfo`. Blocked signals
/// are delivered even to a PID 1, like signals with a handler.
fn block_stop_signals() -> Result<libc::sigset_t, String> {
    let mut raw = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: the pointers refer to valid memory; sigemptyset initialises the set before
    // sigaddset and pthread_sigmask read it.
    unsafe {
        libc::sigemptyset(raw.as_mut_ptr());
        libc::sigaddset(raw.as_mut_ptr(), libc::SIGTERM);
        libc::sigaddset(raw.as_mut_ptr(), libc::SIGINT);
        if libc::pthread_sigmask(libc::SIG_BLOCK, raw.as_ptr(), std::ptr::null_mut()) != 0 {
            return Err("pthread_sigmask failed".into());
        }
        Ok(raw.assume_init())
    }
}

/// CLOCK_MONOTONIC in nanoseconds, comparable across processes.
fn monotonic_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

fn orphaner(marker: PathBuf) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // Started and not waited for: exiting now orphans it.
    Command::new(exe)
        .arg("--grandchild")
        .arg(&marker)
        .spawn()
        .map_err(|e| format!("spawn grandchild: {e}"))?;
    Ok(())
}

fn grandchild(marker: PathBuf) -> Result<(), String> {
    let mut name = marker.into_os_string();
    name.push(format!(".orphan.{}", std::process::id()));
    std::fs::write(&name, "").map_err(|e| format!("write orphan file: {e}"))?;
    std::thread::sleep(Duration::from_millis(100));
    Ok(())
}
