//! The worker side: `pidone __parse-worker` parses scripts sent over stdin, one at a time,
//! under an address-space limit and on a thread with a large stack.
//!
//! Whatever the parser does on hostile input stays in this process: a panic becomes a
//! `GaveUp` verdict; endless allocation hits `RLIMIT_AS` and aborts; a stack overflow aborts;
//! endless work is killed by the parent at its deadline. The parent then starts a new worker.

use crate::engine::script::{ScriptVerdict, UnparsedReason, analyze_script};
use crate::sandbox::protocol::{self, ProtocolError};
use crate::sandbox::sys;
use std::ffi::OsString;
use std::io::{self, BufReader};
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

/// The hidden subcommand that turns a pidone process into a parse worker.
pub const WORKER_SUBCOMMAND: &str = "__parse-worker";

/// Worker settings, passed on its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerLimits {
    /// `RLIMIT_AS` of the worker, in bytes.
    pub memory_bytes: u64,
    /// Stack size of the parsing thread, in bytes (counts against `memory_bytes`).
    pub stack_bytes: usize,
}

impl Default for WorkerLimits {
    fn default() -> Self {
        WorkerLimits {
            memory_bytes: 512 * 1024 * 1024,
            stack_bytes: 64 * 1024 * 1024,
        }
    }
}

impl WorkerLimits {
    pub fn to_args(self) -> [String; 4] {
        [
            "--memory".into(),
            self.memory_bytes.to_string(),
            "--stack".into(),
            self.stack_bytes.to_string(),
        ]
    }

    fn from_args(args: impl Iterator<Item = OsString>) -> Result<WorkerLimits, String> {
        let mut limits = WorkerLimits::default();
        let mut args = args.map(|a| a.to_string_lossy().into_owned());
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let parse = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
            match flag.as_str() {
                "--memory" => limits.memory_bytes = parse(&value)?,
                "--stack" => {
                    limits.stack_bytes =
                        usize::try_from(parse(&value)?).map_err(|e| format!("{flag}: {e}"))?
                }
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        Ok(limits)
    }
}

/// Runs the worker if this process was started as one (`argv[1] == "__parse-worker"`);
/// otherwise returns at once. Call it first thing in `main`, before parsing the command line.
pub fn run_if_worker() {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == WORKER_SUBCOMMAND)
    {
        worker_main()
    }
}

/// The worker's `main` (`pidone __parse-worker [--memory BYTES] [--stack BYTES]`): serves
/// requests until stdin closes, then exits. Never returns.
pub fn worker_main() -> ! {
    let code = match serve(std::env::args_os().skip(2)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("pidone parse worker: {e}");
            1
        }
    };
    std::process::exit(code)
}

#[derive(Debug, thiserror::Error)]
enum WorkerError {
    #[error("usage: {0}")]
    Usage(String),
    #[error("setting resource limits: {0}")]
    Limits(io::Error),
    #[error("starting the parse thread: {0}")]
    Thread(io::Error),
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    #[error("the parse thread died")]
    Died,
}

fn serve(args: impl Iterator<Item = OsString>) -> Result<(), WorkerError> {
    let limits = WorkerLimits::from_args(args).map_err(WorkerError::Usage)?;
    sys::disable_core_dumps().map_err(WorkerError::Limits)?;
    // Under the container's memory limit, the kernel's OOM killer picks a worker before the
    // server (raising one's own score needs no privilege; best effort where /proc is absent).
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    // The stack is reserved before the limit applies, but it counts against it all the same.
    sys::limit_address_space(limits.memory_bytes).map_err(WorkerError::Limits)?;
    // Panics are answered with a verdict; their default report on stderr is noise.
    panic::set_hook(Box::new(|_| {}));
    let parent = std::os::unix::process::parent_id();
    let handle = std::thread::Builder::new()
        .name("parse".into())
        .stack_size(limits.stack_bytes)
        .spawn(parse_loop)
        .map_err(WorkerError::Thread)?;
    // A worker outlives a parent that was killed only until it notices: stdin closes then too,
    // but a parse that never ends would never read it.
    while !handle.is_finished() {
        std::thread::sleep(Duration::from_millis(200));
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(0);
        }
    }
    handle.join().map_err(|_| WorkerError::Died)?
}

fn parse_loop() -> Result<(), WorkerError> {
    let mut stdout = io::stdout().lock();
    protocol::write_all_flush(&mut stdout, &protocol::encode_hello()).map_err(ProtocolError::Io)?;
    let mut stdin = BufReader::with_capacity(64 * 1024, io::stdin().lock());
    while let Some(payload) = protocol::read_frame(&mut stdin)? {
        let (dialect, script) = protocol::decode_request(payload)?;
        let verdict = panic::catch_unwind(AssertUnwindSafe(|| analyze_script(dialect, &script)))
            .unwrap_or_else(|_| {
                ScriptVerdict::Unparsed(UnparsedReason::GaveUp {
                    what: "parser panicked".into(),
                })
            });
        // The syntax tree is gone by now; free the script before answering.
        drop(script);
        let frame = protocol::encode_verdict(&verdict)?;
        protocol::write_all_flush(&mut stdout, &frame).map_err(ProtocolError::Io)?;
    }
    Ok(())
}
