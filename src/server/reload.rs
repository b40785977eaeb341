//! Hot reload by polling file contents.
//!
//! Every interval the files are read again through their paths, so a Kubernetes Secret or
//! ConfigMap volume's `..data` symlink swap is seen like any other change (watching inodes or
//! paths with inotify misses it). Contents count as changed only when two reads in a row agree,
//! so a swap between reading the certificate and the key is not mistaken for a bad pair.
//! Changed contents go to `apply`; what it rejects is logged and counted once, and the last
//! good state keeps serving.

use std::path::PathBuf;
use std::time::Duration;

/// What one poll saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    Unchanged,
    Changed(Vec<Vec<u8>>),
    /// A file could not be read, or changed between two reads.
    Unreadable(String),
}

/// The files of one reloadable thing and the contents last handled.
#[derive(Debug)]
pub struct FileWatch {
    paths: Vec<PathBuf>,
    seen: Vec<Vec<u8>>,
    last_error: Option<String>,
}

impl FileWatch {
    /// `initial` are the contents already in use.
    pub fn new(paths: Vec<PathBuf>, initial: Vec<Vec<u8>>) -> FileWatch {
        FileWatch {
            paths,
            seen: initial,
            last_error: None,
        }
    }

    /// Reads the files now. Blocking; call from a blocking context.
    pub fn poll(&mut self) -> Poll {
        let first = match read_all(&self.paths) {
            Ok(c) => c,
            Err(e) => return self.unreadable(e),
        };
        if first == self.seen {
            self.last_error = None;
            return Poll::Unchanged;
        }
        match read_all(&self.paths) {
            Ok(second) if second == first => {
                self.last_error = None;
                self.seen = first.clone();
                Poll::Changed(first)
            }
            // Changing under our feet: look again next time.
            Ok(_) => Poll::Unchanged,
            Err(e) => self.unreadable(e),
        }
    }

    /// Reports a read failure once until it changes or clears.
    fn unreadable(&mut self, e: String) -> Poll {
        if self.last_error.as_deref() == Some(e.as_str()) {
            return Poll::Unchanged;
        }
        self.last_error = Some(e.clone());
        Poll::Unreadable(e)
    }
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<Vec<u8>>, String> {
    paths
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display())))
        .collect()
}

/// Polls `watch` every `interval` forever, handing changes to `apply` and reporting each
/// outcome to `count` (`true` for a successful reload).
pub async fn run<A, C>(
    what: &'static str,
    mut watch: FileWatch,
    interval: Duration,
    mut apply: A,
    count: C,
) where
    A: FnMut(&[Vec<u8>]) -> Result<(), String> + Send,
    C: Fn(bool) + Send,
{
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let polled = tokio::task::spawn_blocking(move || {
            let poll = watch.poll();
            (watch, poll)
        })
        .await;
        let poll = match polled {
            Ok((w, poll)) => {
                watch = w;
                poll
            }
            Err(e) => {
                tracing::error!(what, error = %e, "reload poll failed; reloading stops");
                return;
            }
        };
        match poll {
            Poll::Unchanged => {}
            Poll::Unreadable(error) => {
                tracing::warn!(what, %error, "cannot read files for reload; keeping the current ones");
                count(false);
            }
            Poll::Changed(contents) => match apply(&contents) {
                Ok(()) => {
                    tracing::info!(what, "reloaded");
                    count(true);
                }
                Err(error) => {
                    tracing::error!(what, %error, "rejected new files; keeping the current ones");
                    count(false);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_changes_through_paths_and_reports_errors_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "one").unwrap();
        let mut w = FileWatch::new(vec![a.clone()], vec![b"one".to_vec()]);
        assert_eq!(w.poll(), Poll::Unchanged);
        std::fs::write(&a, "two").unwrap();
        assert_eq!(w.poll(), Poll::Changed(vec![b"two".to_vec()]));
        assert_eq!(w.poll(), Poll::Unchanged);
        std::fs::remove_file(&a).unwrap();
        assert!(matches!(w.poll(), Poll::Unreadable(e) if e.contains("reading")));
        assert_eq!(
            w.poll(),
            Poll::Unchanged,
            "the same failure is reported once"
        );
        std::fs::write(&a, "two").unwrap();
        assert_eq!(w.poll(), Poll::Unchanged, "back to what is in use");
        std::fs::write(&a, "three").unwrap();
        assert_eq!(w.poll(), Poll::Changed(vec![b"three".to_vec()]));
    }
}
