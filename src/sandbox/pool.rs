//! A warm pool of parse workers: one pipe round trip per script, a deadline per parse, and a
//! fresh worker for every one that was killed or died.
//!
//! Every worker is a child process owned by a [`Worker`]; dropping a `Worker` kills it and
//! waits for it, so no path leaves a zombie behind (pidone is PID 1 in its container and
//! nobody else would reap them).
//!
//! Tenants: a parse on behalf of a review (a [`Ticket`](crate::sandbox::Ticket) on the thread)
//! stops when the review is abandoned (shed, or past its deadline): while it waits for a
//! worker, and mid-parse, where the worker is killed and replaced. One namespace holds at most
//! all workers but one at a time, so one tenant cannot occupy every worker; callers without a
//! ticket (the CLI) are not limited.

use crate::engine::script::{Dialect, ScriptVerdict, UnparsedReason};
use crate::sandbox::protocol::{self, FrameBuf, ProtocolError};
use crate::sandbox::reaper::ChildRegistry;
use crate::sandbox::stats::ParserStats;
use crate::sandbox::sys;
use crate::sandbox::ticket::{self, Ticket};
use crate::sandbox::worker::{WORKER_SUBCOMMAND, WorkerLimits};
use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How the pool starts and runs its workers.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Workers kept running (each parses one script at a time).
    pub workers: usize,
    /// The pidone binary to run as worker. `None`: this very binary (see [`own_executable`]).
    pub executable: Option<PathBuf>,
    pub limits: WorkerLimits,
    /// How long a caller waits for a free worker before giving up on its script.
    pub queue_timeout: Duration,
    /// How long a new worker may take to start and greet.
    pub spawn_timeout: Duration,
    /// Where workers are registered while the pool owns them, so that a process-wide
    /// reaper (pidone as PID 1) leaves them to the pool's own `wait`.
    pub registry: Option<Arc<ChildRegistry>>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            workers: 2,
            executable: None,
            limits: WorkerLimits::default(),
            queue_timeout: Duration::from_secs(1),
            spawn_timeout: Duration::from_secs(5),
            registry: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("starting a parse worker ({exe}): {source}")]
    Spawn { exe: String, source: io::Error },
    #[error("parse worker {exe} did not start: {reason}")]
    Handshake { exe: String, reason: String },
    #[error("no parse worker free after {0:?}")]
    Busy(Duration),
    #[error("the review was abandoned")]
    Abandoned,
    #[error("the pool needs at least one worker")]
    NoWorkers,
}

/// Why a round trip failed.
#[derive(Debug)]
enum TripError {
    /// The worker was already gone before it got the request.
    DeadBeforeRequest,
    Timeout,
    /// The review the parse was for was abandoned.
    Abandoned,
    Crashed,
    Protocol(ProtocolError),
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    frames: FrameBuf,
    registry: Option<Arc<ChildRegistry>>,
}

impl Worker {
    fn spawn(config: &PoolConfig) -> Result<Worker, SandboxError> {
        let exe = config.executable.clone().unwrap_or_else(own_executable);
        let name = exe.display().to_string();
        let mut command = Command::new(&exe);
        command
            .arg0("pidone")
            .arg(WORKER_SUBCOMMAND)
            .args(config.limits.to_args())
            .env_clear()
            // The allocator (mimalloc) would otherwise reserve a 1 GiB arena up front, before
            // the worker lowers RLIMIT_AS: allocations inside it would not meet the limit.
            .env("MIMALLOC_ARENA_RESERVE", "0")
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let spawned = match &config.registry {
            Some(registry) => registry.spawn_owned(|| command.spawn(), |c| Some(c.id())),
            None => command.spawn(),
        };
        let mut child = spawned.map_err(|source| SandboxError::Spawn {
            exe: name.clone(),
            source,
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            if let Some(registry) = &config.registry {
                registry.release(child.id());
            }
            return Err(SandboxError::Handshake {
                exe: name,
                reason: "no pipes".into(),
            });
        };
        let mut worker = Worker {
            child,
            stdin,
            stdout,
            frames: FrameBuf::default(),
            registry: config.registry.clone(),
        };
        match worker.read_frame(Instant::now() + config.spawn_timeout, None) {
            Ok(hello) if hello == protocol::HELLO => Ok(worker),
            Ok(_) => Err(SandboxError::Handshake {
                exe: name,
                reason: "not a pidone parse worker (wrong greeting)".into(),
            }),
            Err(e) => Err(SandboxError::Handshake {
                exe: name,
                reason: format!("{e:?}"),
            }),
        }
    }

    /// Whether the process has exited (and is now reaped).
    fn has_exited(&mut self) -> bool {
        let exited = !matches!(self.child.try_wait(), Ok(None));
        if exited {
            self.release();
        }
        exited
    }

    /// Hands the pid back to the process-wide reaper once this pool has waited for it.
    fn release(&self) {
        if let Some(registry) = &self.registry {
            registry.release(self.child.id());
        }
    }

    fn round_trip(
        &mut self,
        request: &[u8],
        deadline: Instant,
        ticket: Option<&Ticket>,
    ) -> Result<ScriptVerdict, TripError> {
        // The worker reads whole requests before parsing, so this write cannot wait on a parse.
        if let Err(e) = protocol::write_all_flush(&mut self.stdin, request) {
            return Err(if e.kind() == io::ErrorKind::BrokenPipe {
                TripError::DeadBeforeRequest
            } else {
                TripError::Protocol(e.into())
            });
        }
        let payload = self.read_frame(deadline, ticket)?;
        protocol::decode_verdict(&payload).map_err(TripError::Protocol)
    }

    fn read_frame(
        &mut self,
        deadline: Instant,
        ticket: Option<&Ticket>,
    ) -> Result<Vec<u8>, TripError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(frame) = self.frames.take_frame().map_err(TripError::Protocol)? {
                return Ok(frame);
            }
            if ticket.is_some_and(Ticket::is_abandoned) {
                return Err(TripError::Abandoned);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(TripError::Timeout);
            }
            // In slices, so an abandoned review is noticed within one.
            let slice = (deadline - now).min(ABANDON_CHECK);
            let ready = sys::wait_readable(self.stdout.as_fd(), slice)
                .map_err(|e| TripError::Protocol(e.into()))?;
            if !ready {
                continue;
            }
            match self.stdout.read(&mut chunk) {
                Ok(0) => return Err(TripError::Crashed),
                Ok(n) => self.frames.extend(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(TripError::Crashed),
            }
        }
    }

    /// Kills the worker (if still running) and reaps it; returns how it ended, for the log.
    fn end(mut self) -> String {
        let _ = self.child.kill();
        let ended = match self.child.wait() {
            Ok(status) => status.to_string(),
            // Someone else reaped it (a process-wide reaper): nothing is left to wait for.
            Err(e) => format!("not waited for: {e}"),
        };
        self.release();
        ended
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A no-op once `end` or `try_wait` has reaped the child.
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.release();
    }
}

struct PoolState {
    idle: Vec<Worker>,
    /// Workers alive: idle, checked out, or being started.
    live: usize,
    /// Workers checked out per namespace (reviews with a ticket only).
    busy: HashMap<String, usize>,
}

/// How often a parse or a wait for a worker checks whether its review was abandoned.
const ABANDON_CHECK: Duration = Duration::from_millis(20);

/// A worker held for a namespace: given back to the count when dropped.
struct Lease<'a> {
    pool: &'a WorkerPool,
    namespace: Option<String>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(ns) = self.namespace.take() {
            let mut state = self.pool.lock();
            if let Some(n) = state.busy.get_mut(&ns) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    state.busy.remove(&ns);
                }
            }
            drop(state);
            self.pool.freed.notify_all();
        }
    }
}

/// This very binary, through a descriptor of `/proc/self/exe` opened once: like the link, it
/// stays valid even if the file was replaced since start, and it is also right under a
/// program that runs pidone in an emulator (valgrind), which answers the open with pidone
/// where an exec of the link itself would start the emulator's own binary.
fn own_executable() -> PathBuf {
    static OWN: OnceLock<Option<std::fs::File>> = OnceLock::new();
    match OWN.get_or_init(|| std::fs::File::open("/proc/self/exe").ok()) {
        Some(file) => PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())),
        None => PathBuf::from("/proc/self/exe"),
    }
}

/// A fixed-size pool of parse workers, safe to use from many threads at once. Calls block
/// (for at most `queue_timeout` + the parse deadline + a worker start): from async code, call
/// through `tokio::task::spawn_blocking`.
pub struct WorkerPool {
    config: PoolConfig,
    state: Mutex<PoolState>,
    freed: Condvar,
    stats: Arc<ParserStats>,
}

impl WorkerPool {
    /// Starts `config.workers` workers now, so a broken setup fails at start, not per request.
    pub fn start(config: PoolConfig, stats: Arc<ParserStats>) -> Result<WorkerPool, SandboxError> {
        if config.workers == 0 {
            return Err(SandboxError::NoWorkers);
        }
        let mut idle = Vec::with_capacity(config.workers);
        for _ in 0..config.workers {
            idle.push(Worker::spawn(&config)?);
        }
        Ok(WorkerPool {
            state: Mutex::new(PoolState {
                live: idle.len(),
                idle,
                busy: HashMap::new(),
            }),
            config,
            freed: Condvar::new(),
            stats,
        })
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Process ids of the workers now idle (for tests and diagnostics).
    pub fn idle_pids(&self) -> Vec<u32> {
        self.lock().idle.iter().map(|w| w.child.id()).collect()
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Parses one script in a worker. The flag says whether the verdict may be cached: it is
    /// false when the pool itself failed (no worker free, none could start), which says
    /// nothing about the script.
    pub fn analyze(
        &self,
        dialect: Dialect,
        script: &str,
        deadline: Duration,
    ) -> (ScriptVerdict, bool) {
        let gave_up =
            |what: &str| ScriptVerdict::Unparsed(UnparsedReason::GaveUp { what: what.into() });
        let request = match protocol::encode_request(dialect, script) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "script cannot be sent to a parse worker");
                return (gave_up("script too large for a parser worker"), true);
            }
        };
        let ticket = ticket::current();
        let ticket = ticket.as_deref();
        let pool_gave_up = |what: &str| {
            if let Some(t) = ticket {
                t.note_pool_gave_up();
            }
            (gave_up(what), false)
        };
        for attempt in 0..2 {
            let (mut worker, _lease) = match self.checkout(ticket) {
                Ok(w) => w,
                Err(SandboxError::Abandoned) => return pool_gave_up("review abandoned"),
                Err(e) => {
                    tracing::warn!(error = %e, "no parse worker for a script");
                    return pool_gave_up("no parser worker available");
                }
            };
            // Never past the review's own deadline.
            let mut until = Instant::now() + deadline;
            if let Some(t) = ticket {
                until = until.min(t.deadline());
            }
            match worker.round_trip(&request, until, ticket) {
                Ok(verdict) => {
                    self.checkin(worker);
                    return (verdict, true);
                }
                Err(TripError::DeadBeforeRequest) if attempt == 0 => {
                    let status = worker.end();
                    tracing::warn!(%status, "parse worker found dead; retrying with a new one");
                    self.replace();
                }
                Err(TripError::DeadBeforeRequest | TripError::Crashed) => {
                    let status = worker.end();
                    self.stats.worker_crash();
                    tracing::warn!(%status, bytes = script.len(), "parse worker crashed on a script");
                    self.replace();
                    return (gave_up("parser crashed"), true);
                }
                Err(TripError::Abandoned) => {
                    // Nobody waits for this verdict: free the worker for those who do.
                    let status = worker.end();
                    tracing::info!(%status, bytes = script.len(), "review abandoned; its parse stopped and the worker replaced");
                    self.replace();
                    return pool_gave_up("review abandoned");
                }
                Err(TripError::Timeout)
                    if ticket.is_some_and(|t| Instant::now() >= t.deadline()) =>
                {
                    let status = worker.end();
                    tracing::info!(%status, bytes = script.len(), "review deadline reached mid-parse; worker replaced");
                    self.replace();
                    return pool_gave_up("review deadline reached");
                }
                Err(TripError::Timeout) => {
                    let status = worker.end();
                    self.stats.deadline_overrun();
                    tracing::warn!(%status, bytes = script.len(), ?deadline, "parse deadline exceeded; worker killed");
                    self.replace();
                    return (gave_up("deadline exceeded"), true);
                }
                Err(TripError::Protocol(e)) => {
                    let status = worker.end();
                    tracing::warn!(%status, error = %e, "parse worker protocol error; worker killed");
                    self.replace();
                    return (gave_up("parser worker failed"), false);
                }
            }
        }
        (gave_up("parser crashed"), false)
    }

    /// Most workers one namespace may hold at once: all but one, when there are several.
    fn per_namespace(&self) -> usize {
        self.config.workers.saturating_sub(1).max(1)
    }

    fn checkout(&self, ticket: Option<&Ticket>) -> Result<(Worker, Lease<'_>), SandboxError> {
        let mut give_up_at = Instant::now() + self.config.queue_timeout;
        if let Some(t) = ticket {
            give_up_at = give_up_at.min(t.deadline());
        }
        let namespace = ticket.map(|t| t.namespace().to_string());
        let mut state = self.lock();
        loop {
            if ticket.is_some_and(Ticket::is_abandoned) {
                return Err(SandboxError::Abandoned);
            }
            let may_take = namespace
                .as_ref()
                .is_none_or(|ns| state.busy.get(ns).copied().unwrap_or(0) < self.per_namespace());
            if may_take {
                while let Some(mut worker) = state.idle.pop() {
                    if !worker.has_exited() {
                        return Ok((worker, self.lease(&mut state, namespace)));
                    }
                    // Died while idle (killed from outside): reaped by try_wait; start another.
                    state.live -= 1;
                    drop(state);
                    let status = worker.end();
                    tracing::warn!(%status, "idle parse worker died");
                    state = self.lock();
                }
                if state.live < self.config.workers {
                    state.live += 1;
                    let lease = self.lease(&mut state, namespace);
                    drop(state);
                    let spawned = Worker::spawn(&self.config);
                    if spawned.is_err() {
                        self.lock().live -= 1;
                        self.freed.notify_all();
                    } else {
                        self.stats.worker_restart();
                    }
                    return spawned.map(|w| (w, lease));
                }
            }
            let now = Instant::now();
            if now >= give_up_at {
                return Err(SandboxError::Busy(self.config.queue_timeout));
            }
            state = self
                .freed
                .wait_timeout(state, (give_up_at - now).min(ABANDON_CHECK))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Counts a worker for `namespace` until the lease is dropped.
    fn lease(&self, state: &mut PoolState, namespace: Option<String>) -> Lease<'_> {
        if let Some(ns) = &namespace {
            *state.busy.entry(ns.clone()).or_insert(0) += 1;
        }
        Lease {
            pool: self,
            namespace,
        }
    }

    fn checkin(&self, worker: Worker) {
        self.lock().idle.push(worker);
        // Waiters of several namespaces: each checks whether it may take the worker.
        self.freed.notify_all();
    }

    /// Takes the place of a worker that was ended: start a new one now (the caller is already
    /// on a slow path), or free the slot so the next checkout tries again.
    fn replace(&self) {
        match Worker::spawn(&self.config) {
            Ok(worker) => {
                self.stats.worker_restart();
                self.checkin(worker);
            }
            Err(e) => {
                tracing::error!(error = %e, "could not start a parse worker");
                self.lock().live -= 1;
                self.freed.notify_all();
            }
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        // Each Worker's drop kills and reaps it.
        self.lock().idle.clear();
    }
}
