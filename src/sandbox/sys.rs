//! The few system calls std does not offer: resource limits for workers and a bounded wait
//! for a worker's answer. Every `unsafe` block of the crate is here.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Caps this process's address space at `bytes` (or at the hard limit, if lower). Allocations
/// past it fail, which makes the Rust allocator abort the process.
pub fn limit_address_space(bytes: u64) -> io::Result<()> {
    lower_limit(libc::RLIMIT_AS, bytes)
}

/// No core files: a worker that aborts on hostile input must not fill the disk.
pub fn disable_core_dumps() -> io::Result<()> {
    lower_limit(libc::RLIMIT_CORE, 0)
}

fn lower_limit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `current` is a valid, writable `rlimit` that outlives the call; getrlimit only
    // writes into it.
    if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let value = value.min(current.rlim_max);
    let wanted = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: `wanted` is a valid `rlimit` that outlives the call; setrlimit only reads it.
    if unsafe { libc::setrlimit(resource, &wanted) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits until `fd` is readable (or closed) for at most `timeout`. `Ok(false)` on timeout or
/// interruption: callers loop until their deadline.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // Round up so a wait never ends before the deadline it was asked for.
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    let millis = libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is one valid `pollfd` that outlives the call (nfds = 1), and the
    // descriptor is kept open by the `BorrowedFd` for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, millis) };
    if n >= 0 {
        return Ok(n > 0);
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::Interrupted {
        // The caller loops until its deadline.
        return Ok(false);
    }
    Err(e)
}
