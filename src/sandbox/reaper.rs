//! Reaping zombies when pidone is PID 1.
//!
//! In its own container pidone is PID 1, so orphaned processes are re-parented to it and must
//! be reaped, or their zombies pile up until the pod runs out of PIDs. The reaper runs only
//! when `getpid() == 1`; elsewhere an init or the shell does this job.
//!
//! It does not call `waitpid(-1)`: that would steal the exit status of children that their
//! owner waits for (the contained script parser's worker processes, anything spawned with
//! `tokio::process`). Owners spawn through [`ChildRegistry::spawn_owned`], which records the
//! pid while holding the registry lock, so the reaper never sees an owned child unregistered.
//! On every SIGCHLD (and every few seconds, as signals coalesce) the reaper lists its children
//! from `/proc` and calls `waitpid(pid, WNOHANG)` on each one not registered.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Children whose owners wait for them; the reaper leaves them alone.
#[derive(Debug, Default)]
pub struct ChildRegistry {
    owned: Mutex<HashSet<u32>>,
}

impl ChildRegistry {
    pub fn new() -> Arc<ChildRegistry> {
        Arc::new(ChildRegistry::default())
    }

    /// Spawns a child the caller will wait for, and records its pid before the reaper can
    /// look. `pid` reads the pid from what `spawn` returned.
    pub fn spawn_owned<T>(
        &self,
        spawn: impl FnOnce() -> io::Result<T>,
        pid: impl FnOnce(&T) -> Option<u32>,
    ) -> io::Result<T> {
        let mut owned = self.owned.lock().unwrap_or_else(PoisonError::into_inner);
        let child = spawn()?;
        if let Some(pid) = pid(&child) {
            owned.insert(pid);
        }
        Ok(child)
    }

    /// Forgets a child once its owner has waited for it.
    pub fn release(&self, pid: u32) {
        self.owned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&pid);
    }

    /// Reaps every exited child that nobody owns; returns how many.
    pub fn reap(&self) -> usize {
        let owned = self.owned.lock().unwrap_or_else(PoisonError::into_inner);
        let mut reaped = 0;
        for pid in children() {
            if owned.contains(&pid) {
                continue;
            }
            let Some(raw) = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            else {
                continue;
            };
            if let Ok(Some((_, status))) =
                rustix::process::waitpid(Some(raw), rustix::process::WaitOptions::NOHANG)
            {
                reaped += 1;
                tracing::debug!(pid, ?status, "reaped an orphaned process");
            }
        }
        reaped
    }
}

/// Whether this process is PID 1 of its PID namespace.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Reaps on every SIGCHLD, and every few seconds in case signals were merged. Runs forever.
pub async fn run(registry: Arc<ChildRegistry>) -> io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigchld = signal(SignalKind::child())?;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = sigchld.recv() => {}
            _ = tick.tick() => {}
        }
        let registry = Arc::clone(&registry);
        let _ = tokio::task::spawn_blocking(move || registry.reap()).await;
    }
}

/// This process's children, from `/proc/self/task/*/children`, or by scanning `/proc` for
/// processes whose parent is us when the kernel does not provide that file.
fn children() -> Vec<u32> {
    let mut pids = Vec::new();
    let mut listed = false;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                listed = true;
                pids.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
    }
    if listed {
        return pids;
    }
    let me = std::process::id();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
                && parent_of(&stat) == Some(me)
            {
                pids.push(pid);
            }
        }
    }
    pids
}

/// The parent pid from `/proc/<pid>/stat` (`pid (comm) state ppid ...`; `comm` may hold spaces
/// and parentheses, so parse after the last `)`).
fn parent_of(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_parent_from_stat() {
        assert_eq!(parent_of("42 (a) b) c) S 7 42 42 0"), Some(7));
        assert_eq!(parent_of("garbage"), None);
    }

    #[test]
    fn reaps_unowned_children_and_leaves_owned_ones() {
        let registry = ChildRegistry::new();
        let mut owned = registry
            .spawn_owned(
                || std::process::Command::new("true").spawn(),
                |c| Some(c.id()),
            )
            .unwrap();
        let stray = std::process::Command::new("true").spawn().unwrap();
        let stray_pid = stray.id();
        drop(stray);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut reaped = 0;
        while reaped == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            reaped += registry.reap();
        }
        assert_eq!(reaped, 1, "the stray child {stray_pid} is reaped");
        let status = owned
            .wait()
            .expect("the owner still gets its child's status");
        assert!(status.success());
        registry.release(owned.id());
        assert_eq!(registry.reap(), 0);
    }
}
