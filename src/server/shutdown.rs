//! Termination signals.
//!
//! pidone runs as PID 1 in its container, where the kernel ignores signals that have no
//! handler: SIGTERM must be handled here or the pod waits out its grace period. The handlers
//! are installed at start, before anything else can take time. The first SIGTERM or SIGINT
//! starts the drain; a second one means "now", and the caller aborts.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Installed SIGTERM and SIGINT handlers.
#[derive(Debug)]
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT and names it.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
