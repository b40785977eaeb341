//! `pidone-init`: a small init for containers.
//!
//! It runs one command as its child and stays PID 1 (or a child subreaper when it is not
//! PID 1) to do the two jobs a program started as PID 1 usually does not do:
//!
//! - forward SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to the child
//!   (or, with `-g`, to the child's whole process group): the kernel drops signals sent to
//!   a PID 1 that has no handler for them, so a shell or `sleep` at PID 1 never stops;
//! - reap every zombie, including orphans re-parented to it.
//!
//! When the main child exits, the init exits with the child's exit code (128+N if it died of
//! signal N; `-e CODE` maps CODE to 0). Before that it lingers briefly, at most
//! [`LINGER`], while descendants are left: it keeps reaping them (and forwarding signals to
//! the process group) and exits as soon as none is left. It never SIGKILLs them: with `-g`
//! they already got the stop signal and usually need only milliseconds to finish (a shell
//! running `app & agent & wait -n` dies of SIGTERM as fast as the programs it started, and
//! exiting at once would make the kernel kill those mid-flush); after the linger, as PID 1
//! its exit makes the kernel kill everything left in the PID namespace, and as a subreaper
//! the leftovers are re-parented to the next reaper. A program that never exits therefore
//! delays the init's exit by [`LINGER`] at most.
//!
//! The binary uses nothing but `std` and `libc`, is built statically (see
//! `scripts/build-init.sh`), and `--install PATH` copies it elsewhere without a shell.

#![deny(unsafe_op_in_unsafe_fn)]
// No Rust runtime start-up: `main` below is the C entry point. This keeps std's start-up and
// its panic-catching shim out of the binary (about 140 KB of a static build); std still
// reads the arguments and environment itself on glibc.
#![cfg_attr(not(test), no_main)]

mod args;
mod install;
mod status;
mod sys;

use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::{Duration, Instant};

use args::{Action, RunOptions};

/// Prints a line to stderr. Unlike `eprintln!` it never panics: an init must not die
/// because its stderr went away.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
use status::Ended;

/// How long the init waits for descendants left behind by the main child.
const LINGER: Duration = Duration::from_millis(500);

/// Signals forwarded to the child.
const FORWARDED: [libc::c_int; 7] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// The C entry point (see `no_main` above).
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    init_main()
}

/// Under the test harness, which brings its own entry point.
#[cfg(test)]
fn main() {
    std::process::exit(init_main());
}

fn init_main() -> i32 {
    // What std's start-up would have done: a write to a closed pipe returns EPIPE instead of
    // killing the init (the child gets the default disposition back, see `run`).
    let _ = sys::ignore_signal(libc::SIGPIPE);
    let code = match args::parse(std::env::args_os().skip(1)) {
        Ok(Action::Run(opts)) => run(opts),
        Ok(Action::Install(path)) => match install::install(&path) {
            Ok(()) => 0,
            Err(err) => {
                say!("pidone-init: cannot install to {}: {err}", path.display());
                1
            }
        },
        Ok(Action::Version) => {
            let _ = writeln!(
                std::io::stdout(),
                "pidone-init {}",
                env!("CARGO_PKG_VERSION")
            );
            0
        }
        Ok(Action::Help) => {
            let _ = std::io::stdout().write_all(args::USAGE.as_bytes());
            0
        }
        Err(err) => {
            say!("pidone-init: {err}\nTry 'pidone-init --help' for more information.");
            2
        }
    };
    let _ = std::io::stdout().flush();
    code
}

/// Runs the command and returns the exit code of the init.
fn run(opts: RunOptions) -> i32 {
    if sys::getpid() != 1
        && let Err(err) = sys::set_child_subreaper()
    {
        say!(
            "pidone-init: warning: not PID 1 and cannot become a child subreaper ({err}): \
             orphaned processes will not be reaped by pidone-init"
        );
    }

    let mut waited: Vec<libc::c_int> = FORWARDED.to_vec();
    waited.push(libc::SIGCHLD);
    let set = match sys::SigSet::of(&waited) {
        Ok(set) => set,
        Err(err) => return fatal("cannot build the signal set", &err),
    };
    let old_mask = match sys::block_signals(&set) {
        Ok(mask) => mask,
        Err(err) => return fatal("cannot block signals", &err),
    };
    // Ignored in the init so that the child can take the terminal (tcsetpgrp) without
    // stopping either of them; the child restores the previous dispositions.
    let mut saved = Vec::new();
    for signal in [libc::SIGTTIN, libc::SIGTTOU] {
        match sys::ignore_signal(signal) {
            Ok(action) => saved.push(action),
            Err(err) => return fatal("cannot set signal dispositions", &err),
        }
    }
    saved.push(sys::default_action(libc::SIGPIPE));

    let display = opts.command[0].to_string_lossy().into_owned();
    let mut c_args = Vec::with_capacity(opts.command.len());
    for arg in opts.command {
        match CString::new(arg.into_vec()) {
            Ok(c) => c_args.push(c),
            Err(_) => {
                say!("pidone-init: cannot run {display}: argument contains a NUL byte");
                return 126;
            }
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    let plan = sys::ExecPlan::new(c_args, path.as_bytes());
    let restore = sys::ChildRestore {
        mask: &old_mask,
        actions: &saved,
    };

    let child = match sys::spawn(&plan, &restore) {
        Ok(pid) => pid,
        Err(sys::SpawnError::Setup(err)) => return fatal("cannot start the child", &err),
        Err(sys::SpawnError::Exec(err)) => {
            say!("pidone-init: cannot run {display}: {err}");
            return status::exec_failure_code(err.raw_os_error().unwrap_or(libc::ENOENT));
        }
    };
    let target = if opts.group { -child } else { child };

    loop {
        let signal = match sys::wait_signal(&set) {
            Ok(signal) => signal,
            Err(err) => {
                say!("pidone-init: cannot wait for signals ({err}); reaping without forwarding");
                return reap_until_exit(child, &opts.remap_to_zero);
            }
        };
        if signal != libc::SIGCHLD {
            // ESRCH: the child is already gone; its SIGCHLD is pending and handled next.
            let _ = sys::send_signal(target, signal);
        }
        let mut main_ended = None;
        while let sys::Reaped::Child(pid, raw) = sys::try_reap() {
            if pid == child {
                main_ended = Ended::from_wait_status(raw);
            }
        }
        if let Some(ended) = main_ended {
            linger(&set, target);
            return status::exit_code(ended, &opts.remap_to_zero);
        }
    }
}

/// After the main child exited: reap descendants until none is left or [`LINGER`] passed.
fn linger(set: &sys::SigSet, target: libc::pid_t) {
    let deadline = Instant::now() + LINGER;
    loop {
        match sys::try_reap() {
            sys::Reaped::Child(..) => continue,
            sys::Reaped::NoChildren => return,
            sys::Reaped::NoneExited => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        match sys::wait_signal_timeout(set, deadline - now) {
            Ok(Some(signal)) if signal != libc::SIGCHLD => {
                let _ = sys::send_signal(target, signal);
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// Fallback when signals cannot be waited for: keep reaping until the main child exits.
fn reap_until_exit(child: libc::pid_t, remap: &[u8]) -> i32 {
    loop {
        match sys::reap_blocking() {
            Ok((pid, raw)) if pid == child => {
                if let Some(ended) = Ended::from_wait_status(raw) {
                    while let sys::Reaped::Child(..) = sys::try_reap() {}
                    return status::exit_code(ended, remap);
                }
            }
            Ok(_) => {}
            Err(err) => return fatal("cannot wait for the child", &err),
        }
    }
}

fn fatal(what: &str, err: &std::io::Error) -> i32 {
    say!("pidone-init: {what}: {err}");
    1
}
