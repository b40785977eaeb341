//! How the main child's wait status becomes the init's exit code.

/// How a process ended, decoded from a `waitpid` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Exited normally with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl Ended {
    /// Decodes a raw `waitpid` status; `None` for stopped/continued reports.
    pub fn from_wait_status(status: libc::c_int) -> Option<Ended> {
        if libc::WIFEXITED(status) {
            Some(Ended::Exited(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(Ended::Signaled(libc::WTERMSIG(status)))
        } else {
            None
        }
    }
}

/// The exit code the init reports: the child's code, or 128+signal like shells, kept within
/// 0..=255, then mapped to 0 when listed in `remap_to_zero` (`-e`).
pub fn exit_code(ended: Ended, remap_to_zero: &[u8]) -> i32 {
    let code = match ended {
        Ended::Exited(code) => code,
        Ended::Signaled(signal) => 128 + signal,
    }
    .rem_euclid(256);
    if remap_to_zero.iter().any(|&c| i32::from(c) == code) {
        0
    } else {
        code
    }
}

/// Exit code for a command that could not be executed, like shells: 127 when it was not
/// found, 126 when it was found but could not be run.
pub fn exec_failure_code(errno: i32) -> i32 {
    if errno == libc::ENOENT || errno == libc::ENOTDIR {
        127
    } else {
        126
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_pass_through() {
        assert_eq!(exit_code(Ended::Exited(0), &[]), 0);
        assert_eq!(exit_code(Ended::Exited(3), &[]), 3);
        assert_eq!(exit_code(Ended::Exited(255), &[]), 255);
    }

    #[test]
    fn signals_become_128_plus_signal() {
        assert_eq!(exit_code(Ended::Signaled(libc::SIGKILL), &[]), 137);
        assert_eq!(exit_code(Ended::Signaled(libc::SIGTERM), &[]), 143);
        assert_eq!(exit_code(Ended::Signaled(libc::SIGINT), &[]), 130);
    }

    #[test]
    fn remap_applies_after_signal_mapping() {
        assert_eq!(exit_code(Ended::Signaled(libc::SIGTERM), &[143]), 0);
        assert_eq!(exit_code(Ended::Exited(143), &[143]), 0);
        assert_eq!(exit_code(Ended::Exited(3), &[143, 3]), 0);
        assert_eq!(exit_code(Ended::Exited(4), &[143, 3]), 4);
        assert_eq!(exit_code(Ended::Signaled(libc::SIGKILL), &[143]), 137);
    }

    #[test]
    fn wait_status_decoding() {
        // Layout of Linux wait statuses: exit code in bits 8..16, signal in the low 7 bits.
        assert_eq!(Ended::from_wait_status(3 << 8), Some(Ended::Exited(3)));
        assert_eq!(Ended::from_wait_status(0), Some(Ended::Exited(0)));
        assert_eq!(
            Ended::from_wait_status(libc::SIGKILL),
            Some(Ended::Signaled(libc::SIGKILL))
        );
        // Stopped by SIGSTOP: 0x7f in the low byte.
        assert_eq!(Ended::from_wait_status((libc::SIGSTOP << 8) | 0x7f), None);
    }

    #[test]
    fn exec_failures_like_shells() {
        assert_eq!(exec_failure_code(libc::ENOENT), 127);
        assert_eq!(exec_failure_code(libc::ENOTDIR), 127);
        assert_eq!(exec_failure_code(libc::EACCES), 126);
        assert_eq!(exec_failure_code(libc::ENOEXEC), 126);
    }
}
