//! Thin wrappers over the libc calls the init needs. Every `unsafe` block of the binary
//! lives here, each with the reason it is sound.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::raw::c_int;

/// A set of signals.
pub struct SigSet(libc::sigset_t);

impl SigSet {
    /// The set holding exactly `signals`.
    pub fn of(signals: &[c_int]) -> io::Result<SigSet> {
        let mut raw = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the sigset_t that `raw` points to; it is valid,
        // writable memory of the right type.
        if unsafe { libc::sigemptyset(raw.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sigemptyset succeeded, so the set is initialised.
        let mut set = SigSet(unsafe { raw.assume_init() });
        for &signal in signals {
            // SAFETY: `set.0` is an initialised sigset_t owned by us.
            if unsafe { libc::sigaddset(&mut set.0, signal) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(set)
    }
}

/// Blocks `set` for this thread and returns the mask that was in force before.
pub fn block_signals(set: &SigSet) -> io::Result<SigSet> {
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: both pointers are valid; the kernel fills `old` on success.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set.0, old.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: pthread_sigmask succeeded and wrote the old mask.
    Ok(SigSet(unsafe { old.assume_init() }))
}

/// A signal disposition saved to be restored later.
pub struct SavedAction {
    signal: c_int,
    action: libc::sigaction,
}

/// Sets `signal` to be ignored, returning the previous disposition.
pub fn ignore_signal(signal: c_int) -> io::Result<SavedAction> {
    let mut new = MaybeUninit::<libc::sigaction>::zeroed();
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: an all-zero sigaction is valid (no flags, empty mask); we then set the
    // handler field to SIG_IGN through a pointer to that initialised memory.
    let new = unsafe {
        let ptr = new.as_mut_ptr();
        (*ptr).sa_sigaction = libc::SIG_IGN;
        new.assume_init()
    };
    // SAFETY: valid pointers to a sigaction and to writable memory for the old one.
    if unsafe { libc::sigaction(signal, &new, old.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(SavedAction {
        signal,
        // SAFETY: sigaction succeeded and wrote the old disposition.
        action: unsafe { old.assume_init() },
    })
}

/// The default disposition of `signal`, to be installed in the child. The init ignores
/// SIGPIPE from its first line, and an ignored signal stays ignored across `exec`: the
/// child gets SIG_DFL back, as `std::process::Command` does.
pub fn default_action(signal: c_int) -> SavedAction {
    // SAFETY: an all-zero sigaction is valid: SIG_DFL (0), no flags, an empty mask.
    let action = unsafe { MaybeUninit::<libc::sigaction>::zeroed().assume_init() };
    SavedAction { signal, action }
}

/// Waits for one signal of `set` (which must be blocked) and returns its number.
pub fn wait_signal(set: &SigSet) -> io::Result<c_int> {
    loop {
        // SAFETY: `set.0` is an initialised sigset_t; a null siginfo pointer is allowed.
        let signal = unsafe { libc::sigwaitinfo(&set.0, std::ptr::null_mut()) };
        if signal >= 0 {
            return Ok(signal);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Like `wait_signal`, but gives up after `timeout`: `Ok(None)` when it expired.
pub fn wait_signal_timeout(
    set: &SigSet,
    timeout: std::time::Duration,
) -> io::Result<Option<c_int>> {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below 1e9, so it fits a c_long on every target.
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set.0` and `ts` are initialised; a null siginfo pointer is allowed.
    let signal = unsafe { libc::sigtimedwait(&set.0, std::ptr::null_mut(), &ts) };
    if signal >= 0 {
        return Ok(Some(signal));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
        _ => Err(err),
    }
}

/// Sends `signal` to `pid` (a negative pid names a process group).
pub fn send_signal(pid: libc::pid_t, signal: c_int) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The result of a non-blocking reap.
pub enum Reaped {
    /// A child terminated: `(pid, wait status)`.
    Child(libc::pid_t, c_int),
    /// Children exist but none has terminated.
    NoneExited,
    /// There are no children at all.
    NoChildren,
}

/// Reaps one terminated child if there is one, without blocking.
pub fn try_reap() -> Reaped {
    loop {
        let mut status: c_int = 0;
        // SAFETY: `status` is a valid, writable c_int.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            return Reaped::Child(pid, status);
        }
        if pid == 0 {
            return Reaped::NoneExited;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            // ECHILD; nothing else is possible with these arguments.
            return Reaped::NoChildren;
        }
    }
}

/// Blocks until some child terminates and reaps it: `(pid, wait status)`.
pub fn reap_blocking() -> io::Result<(libc::pid_t, c_int)> {
    loop {
        let mut status: c_int = 0;
        // SAFETY: `status` is a valid, writable c_int.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid > 0 {
            return Ok((pid, status));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Makes this process the reaper of orphaned descendants (`PR_SET_CHILD_SUBREAPER`).
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer argument, no pointers.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// This process's id.
pub fn getpid() -> libc::pid_t {
    // SAFETY: getpid cannot fail and has no preconditions.
    unsafe { libc::getpid() }
}

/// Everything the child needs between `fork` and `exec`, prepared beforehand so that the
/// child only makes async-signal-safe calls and never allocates.
pub struct ExecPlan {
    /// Paths to try in order (one per `PATH` entry, or the command itself if it has a `/`).
    candidates: Vec<CString>,
    /// Owns the argument strings that `argv` points into.
    _args: Vec<CString>,
    /// Null-terminated argument vector.
    argv: Vec<*const libc::c_char>,
}

impl ExecPlan {
    /// Prepares to run `args[0]` with `args`, searching `path` like `execvp` does when the
    /// command has no `/`.
    pub fn new(args: Vec<CString>, path: &[u8]) -> ExecPlan {
        let command = args.first().map(|c| c.as_bytes()).unwrap_or_default();
        let mut candidates = Vec::new();
        if command.contains(&b'/') {
            candidates.extend(CString::new(command).ok());
        } else if !command.is_empty() {
            for dir in path.split(|&b| b == b':') {
                let mut full = Vec::with_capacity(dir.len() + 1 + command.len());
                // An empty entry means the current directory, as for execvp.
                full.extend_from_slice(if dir.is_empty() { b"." } else { dir });
                full.push(b'/');
                full.extend_from_slice(command);
                candidates.extend(CString::new(full).ok());
            }
        }
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        ExecPlan {
            candidates,
            _args: args,
            argv,
        }
    }
}

/// Why the child could not be started.
pub enum SpawnError {
    /// `fork` or `pipe` failed in the init itself.
    Setup(io::Error),
    /// The command could not be executed; the child has been reaped.
    Exec(io::Error),
}

/// What the child restores before `exec`.
pub struct ChildRestore<'a> {
    pub mask: &'a SigSet,
    pub actions: &'a [SavedAction],
}

/// Forks and execs `plan` in a new process group that gets the terminal if stdin is one.
/// Returns once the child has successfully called `exec` (so its process group exists).
pub fn spawn(plan: &ExecPlan, restore: &ChildRestore<'_>) -> Result<libc::pid_t, SpawnError> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` is a valid array of two c_ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SpawnError::Setup(io::Error::last_os_error()));
    }
    let [read_fd, write_fd] = fds;

    // SAFETY: this process is single-threaded (the init never starts threads), so the child
    // may run any code; it still sticks to async-signal-safe calls and does not allocate.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let err = io::Error::last_os_error();
        close(read_fd);
        close(write_fd);
        return Err(SpawnError::Setup(err));
    }
    if pid == 0 {
        exec_child(plan, restore, write_fd);
    }

    close(write_fd);
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`.
        let n = unsafe {
            libc::read(
                read_fd,
                buf[got..].as_mut_ptr().cast::<libc::c_void>(),
                buf.len() - got,
            )
        };
        if n > 0 {
            got += n as usize;
        } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break;
        }
    }
    close(read_fd);
    if got < buf.len() {
        // End of file: the pipe was closed by a successful exec.
        return Ok(pid);
    }
    // The child reported why exec failed and exits right after; reap it.
    loop {
        let mut status: c_int = 0;
        // SAFETY: `status` is a valid, writable c_int.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break;
        }
    }
    Err(SpawnError::Exec(io::Error::from_raw_os_error(
        i32::from_ne_bytes(buf),
    )))
}

/// The child side of `spawn`: never returns.
fn exec_child(plan: &ExecPlan, restore: &ChildRestore<'_>, report_fd: c_int) -> ! {
    // SAFETY: only async-signal-safe calls follow (setpgid, isatty, tcsetpgrp, getpid,
    // sigaction, pthread_sigmask, execv, write, _exit) on memory prepared before fork.
    unsafe {
        libc::setpgid(0, 0);
        if libc::isatty(libc::STDIN_FILENO) == 1 {
            // Failure (no controlling terminal in this session) is harmless: ignore it.
            libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid());
        }
        for saved in restore.actions {
            libc::sigaction(saved.signal, &saved.action, std::ptr::null_mut());
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &restore.mask.0, std::ptr::null_mut());

        // Search like execvp: remember EACCES, go on after ENOENT/ENOTDIR, stop otherwise.
        let mut errno = libc::ENOENT;
        let mut saw_eacces = false;
        for candidate in &plan.candidates {
            libc::execv(candidate.as_ptr(), plan.argv.as_ptr());
            let err = *libc::__errno_location();
            match err {
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => saw_eacces = true,
                other => {
                    errno = other;
                    saw_eacces = false;
                    break;
                }
            }
        }
        if saw_eacces {
            errno = libc::EACCES;
        }
        let bytes = errno.to_ne_bytes();
        libc::write(
            report_fd,
            bytes.as_ptr().cast::<libc::c_void>(),
            bytes.len(),
        );
        libc::_exit(127)
    }
}

fn close(fd: c_int) {
    // SAFETY: `fd` is a descriptor this module opened and closes exactly once.
    unsafe {
        libc::close(fd);
    }
}
