//! The few system calls std does not offer: resource limits for workers and a bounded wait
//! for a worker's answer. Every `unsafe` block of the crate is here.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Caps this process's address space at `bytes` (or at the hard limit, if lower). Allocations
/// past it fail, which makes the Rust allocator abort the process.
pub fn limit_address_space(bytes: u64) -> io::Result<()> {
    lower_limit(Resource::As, bytes)
}

/// No core files: a worker that aborts on hostile input must not fill the disk.
pub fn disable_core_dumps() -> io::Result<()> {
    lower_limit(Resource::Core, 0)
}

/// Sets both the soft and the hard limit to `value`, never above the current hard limit.
/// Through rustix rather than libc: libc's resource type differs between glibc and musl.
fn lower_limit(resource: Resource, value: u64) -> io::Result<()> {
    let current = getrlimit(resource);
    // `None` is "unlimited".
    let value = current.maximum.map_or(value, |max| value.min(max));
    setrlimit(
        resource,
        Rlimit {
            current: Some(value),
            maximum: Some(value),
        },
    )?;
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
