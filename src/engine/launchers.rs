//! The one table of programs that run other programs: launchers that exec what follows
//! (`env`, `timeout`, `su-exec`...), launchers that stay as its parent (`su`, `sudo`), inits
//! and how they forward signals, process supervisors, and shells (docs/design.md section 5.2).
//!
//! Each launcher carries its own option grammar, read the way getopt reads it: clustered short
//! options (`-vS`), values attached or in the next word, long options with `=` or a separate
//! value and unambiguous abbreviations (`--us=root`), and the positional operands that come
//! before the command (`timeout DURATION`, `taskset MASK`, `chroot DIR`).

/// Whether an option takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    None,
    Required,
    /// Only when attached (`-m/path`, `--mount=/path`).
    Optional,
}

/// A launcher's command line grammar.
struct Grammar {
    /// getopt-style short options: a letter followed by `:` takes a value, by `::` an optional
    /// attached one.
    short: &'static str,
    long: &'static [(&'static str, Value)],
    /// Positional operands between the options and the command.
    operands: usize,
    /// GNU permutation: options may follow operands (`su app -c '...'`).
    permute: bool,
    /// `NAME=VALUE` words before the command are skipped (env).
    assignments: bool,
    /// A numeric option (`nice -5`).
    numeric: bool,
}

const fn grammar(short: &'static str, long: &'static [(&'static str, Value)]) -> Grammar {
    Grammar {
        short,
        long,
        operands: 0,
        permute: false,
        assignments: false,
        numeric: false,
    }
}

const fn with_operands(mut g: Grammar, operands: usize) -> Grammar {
    g.operands = operands;
    g
}

/// How an init (or a launcher that stays) passes SIGTERM on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Forwarding {
    /// To the child's whole process group: every process the child started gets it.
    Group,
    /// To its child only: grandchildren (the app under a shell that did not exec) never see it.
    ChildOnly,
    /// Not at all: the launcher is PID 1 with no handler, so the kernel drops SIGTERM.
    Nothing,
}

/// What a launcher does with the rest of its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Execs the command (it replaces the launcher).
    Execs,
    /// Runs the command as its child and stays, forwarding signals as given.
    Stays(Forwarding),
    /// An init: stays, reaps zombies, forwards as given (flags may switch the mode).
    Init(Forwarding),
}

struct Launcher {
    names: &'static [&'static str],
    grammar: Grammar,
    role: Role,
}

use crate::engine::kubelet::Environment;
use Value::{None as N, Optional as O, Required as R};
use std::sync::LazyLock;

const LAUNCHERS: &[Launcher] = &[
    Launcher {
        names: &["env"],
        grammar: Grammar {
            assignments: true,
            ..grammar(
                "+0iu:C:S:v",
                &[
                    ("ignore-environment", N),
                    ("null", N),
                    ("unset", R),
                    ("chdir", R),
                    ("split-string", R),
                    ("debug", N),
                    ("default-signal", O),
                    ("ignore-signal", O),
                    ("block-signal", O),
                    ("list-signal-handling", N),
                ],
            )
        },
        role: Role::Execs,
    },
    Launcher {
        names: &["nice"],
        grammar: Grammar {
            numeric: true,
            ..grammar("+n:", &[("adjustment", R)])
        },
        role: Role::Execs,
    },
    Launcher {
        names: &["nohup"],
        grammar: grammar("+", &[]),
        role: Role::Execs,
    },
    Launcher {
        names: &["setsid"],
        grammar: grammar("+cfw", &[("ctty", N), ("fork", N), ("wait", N)]),
        role: Role::Execs,
    },
    Launcher {
        names: &["stdbuf"],
        grammar: grammar("+i:o:e:", &[("input", R), ("output", R), ("error", R)]),
        role: Role::Execs,
    },
    Launcher {
        names: &["timeout"],
        grammar: with_operands(
            grammar(
                "+s:k:v",
                &[
                    ("signal", R),
                    ("kill-after", R),
                    ("preserve-status", N),
                    ("foreground", N),
                    ("verbose", N),
                ],
            ),
            1,
        ),
        // GNU timeout runs the command as a child and passes the signals it gets to it.
        role: Role::Stays(Forwarding::ChildOnly),
    },
    Launcher {
        names: &["flock"],
        grammar: with_operands(
            grammar(
                "+sexnouFw:E:",
                &[
                    ("shared", N),
                    ("exclusive", N),
                    ("unlock", N),
                    ("nonblock", N),
                    ("nb", N),
                    ("close", N),
                    ("no-fork", N),
                    ("timeout", R),
                    ("wait", R),
                    ("conflict-exit-code", R),
                    ("verbose", N),
                ],
            ),
            1,
        ),
        // flock forks, waits, and installs no SIGTERM handler (unless `-F`: then it execs).
        role: Role::Stays(Forwarding::Nothing),
    },
    Launcher {
        names: &["chroot"],
        grammar: with_operands(
            grammar("+", &[("userspec", R), ("groups", R), ("skip-chdir", N)]),
            1,
        ),
        role: Role::Execs,
    },
    Launcher {
        names: &["nsenter"],
        grammar: grammar(
            "+at:m::u::i::n::p::C::U::T::S:G:r::w::W::FZe",
            &[
                ("all", N),
                ("target", R),
                ("mount", O),
                ("uts", O),
                ("ipc", O),
                ("net", O),
                ("pid", O),
                ("cgroup", O),
                ("user", O),
                ("time", O),
                ("setuid", R),
                ("setgid", R),
                ("preserve-credentials", N),
                ("root", O),
                ("wd", O),
                ("wdns", R),
                ("env", N),
                ("no-fork", N),
                ("follow-context", N),
                ("user-parent", N),
                ("join-cgroup", N),
            ],
        ),
        role: Role::Execs,
    },
    Launcher {
        names: &["setpriv"],
        grammar: grammar(
            "+d",
            &[
                ("dump", N),
                ("nnp", N),
                ("no-new-privs", N),
                ("ambient-caps", R),
                ("inh-caps", R),
                ("bounding-set", R),
                ("ruid", R),
                ("euid", R),
                ("rgid", R),
                ("egid", R),
                ("reuid", R),
                ("regid", R),
                ("clear-groups", N),
                ("keep-groups", N),
                ("init-groups", N),
                ("groups", R),
                ("securebits", R),
                ("pdeathsig", R),
                ("selinux-label", R),
                ("apparmor-profile", R),
                ("landlock-access", R),
                ("landlock-rule", R),
                ("seccomp-filter", R),
                ("reset-env", N),
            ],
        ),
        role: Role::Execs,
    },
    Launcher {
        names: &["prlimit"],
        grammar: grammar(
            "+p:o:c::d::e::f::i::l::m::n::q::r::s::t::u::v::x::y::",
            &[
                ("pid", R),
                ("output", R),
                ("noheadings", N),
                ("raw", N),
                ("verbose", N),
                ("core", O),
                ("data", O),
                ("nice", O),
                ("fsize", O),
                ("sigpending", O),
                ("memlock", O),
                ("rss", O),
                ("nofile", O),
                ("msgqueue", O),
                ("rtprio", O),
                ("stack", O),
                ("cpu", O),
                ("nproc", O),
                ("as", O),
                ("locks", O),
                ("rttime", O),
            ],
        ),
        role: Role::Execs,
    },
    Launcher {
        names: &["taskset"],
        grammar: with_operands(grammar("+acV", &[("all-tasks", N), ("cpu-list", N)]), 1),
        role: Role::Execs,
    },
    Launcher {
        names: &["chrt"],
        grammar: with_operands(
            grammar(
                "+abdefiormRvT:P:D:",
                &[
                    ("all-tasks", N),
                    ("batch", N),
                    ("deadline", N),
                    ("ext", N),
                    ("fifo", N),
                    ("idle", N),
                    ("other", N),
                    ("rr", N),
                    ("reset-on-fork", N),
                    ("verbose", N),
                    ("sched-runtime", R),
                    ("sched-period", R),
                    ("sched-deadline", R),
                ],
            ),
            1,
        ),
        role: Role::Execs,
    },
    Launcher {
        names: &["numactl"],
        grammar: grammar(
            "+aC:Hi:lm:N:p:P:sSw:b:t",
            &[
                ("all", N),
                ("interleave", R),
                ("weighted-interleave", R),
                ("preferred", R),
                ("preferred-many", R),
                ("balancing", N),
                ("physcpubind", R),
                ("cpunodebind", R),
                ("membind", R),
                ("localalloc", N),
                ("show", N),
                ("hardware", N),
            ],
        ),
        role: Role::Execs,
    },
    Launcher {
        names: &["ionice"],
        grammar: grammar(
            "+c:n:tP:p:u:",
            &[("class", R), ("classdata", R), ("ignore", N)],
        ),
        role: Role::Execs,
    },
    Launcher {
        names: &["su-exec", "gosu"],
        grammar: with_operands(grammar("+", &[]), 1),
        role: Role::Execs,
    },
    Launcher {
        names: &["runuser", "su"],
        grammar: Grammar {
            permute: true,
            ..grammar(
                "c:fg:G:lmpPs:u:w:C:",
                &[
                    ("command", R),
                    ("session-command", R),
                    ("fast", N),
                    ("group", R),
                    ("supp-group", R),
                    ("login", N),
                    ("preserve-environment", N),
                    ("pty", N),
                    ("shell", R),
                    ("user", R),
                    ("whitelist-environment", R),
                ],
            )
        },
        // util-linux su and runuser fork the shell and pass SIGTERM to it.
        role: Role::Stays(Forwarding::ChildOnly),
    },
    Launcher {
        names: &["sudo"],
        grammar: grammar(
            "+AbEeHiKklnPSsVvC:D:g:h:p:R:r:t:T:U:u:",
            &[
                ("askpass", N),
                ("background", N),
                ("preserve-env", O),
                ("edit", N),
                ("set-home", N),
                ("login", N),
                ("reset-timestamp", N),
                ("remove-timestamp", N),
                ("list", N),
                ("non-interactive", N),
                ("preserve-groups", N),
                ("stdin", N),
                ("shell", N),
                ("validate", N),
                ("close-from", R),
                ("chdir", R),
                ("group", R),
                ("host", R),
                ("prompt", R),
                ("chroot", R),
                ("role", R),
                ("type", R),
                ("command-timeout", R),
                ("other-user", R),
                ("user", R),
            ],
        ),
        // sudo runs the command as its child and relays signals to it.
        role: Role::Stays(Forwarding::ChildOnly),
    },
    Launcher {
        names: &["tini", "tini-static"],
        grammar: grammar("+hsvgwlp:e:", &[]),
        role: Role::Init(Forwarding::ChildOnly),
    },
    Launcher {
        names: &["dumb-init"],
        grammar: grammar(
            "+hcvVr:",
            &[("single-child", N), ("rewrite", R), ("verbose", N)],
        ),
        role: Role::Init(Forwarding::Group),
    },
    Launcher {
        names: &["catatonit"],
        grammar: grammar("+hgLPv", &[]),
        role: Role::Init(Forwarding::ChildOnly),
    },
    Launcher {
        names: &["pidone-init"],
        grammar: grammar("+g", &[("install", R)]),
        role: Role::Init(Forwarding::ChildOnly),
    },
];

/// The path pidone's init injection installs the init at.
const PIDONE_INIT_PATH: &str = "/.pidone/init";
/// s6-overlay's entrypoint: it brings the whole supervision tree down on SIGTERM.
const S6_OVERLAY_INIT: &str = "/init";

/// Process supervisors: each runs several long-running programs.
pub const SUPERVISORS: &[&str] = &[
    "supervisord",
    "s6-svscan",
    "runsvdir",
    "pm2-runtime",
    "forego",
    "honcho",
    "circusd",
    "overmind",
    "hivemind",
    "foreman",
    "multirun",
    "systemd",
];

/// Programs that install no SIGTERM handler, so the kernel drops SIGTERM sent to them as PID 1.
pub const SIGNAL_DEAF: &[&str] = &["sleep", "tail", "cat", "yes", "read", "pause", "flock"];

pub fn basename(program: &str) -> &str {
    // A byte search: `rsplit('/')` costs a char searcher set-up per call, and this runs for
    // most words of every launch.
    match program.bytes().rposition(|b| b == b'/') {
        Some(slash) => &program[slash + 1..],
        None => program,
    }
}

pub fn is_supervisor(program: &str) -> bool {
    SUPERVISORS.contains(&basename(program))
}

pub fn is_signal_deaf(program: &str) -> bool {
    SIGNAL_DEAF.contains(&basename(program))
}

/// Whether `program` is an init the launcher table knows (tini, dumb-init, catatonit,
/// pidone-init), by its base name.
pub fn is_init(program: &str) -> bool {
    launcher_named(basename(program)).is_some_and(|l| matches!(l.role, Role::Init(_)))
}

/// A shell family, for what each does with the final command of a `-c` script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShellFamily {
    /// `sh`: whatever the image's /bin/sh is (dash, bash or busybox ash).
    Sh,
    Dash,
    Bash,
    /// busybox ash or hush (`busybox sh`, `ash`, `hush`).
    Busybox,
    /// Other Bourne-style shells (ksh, mksh, zsh, yash...): not measured.
    Other,
}

/// Shells by name, after version suffixes are dropped (`ksh93`, `bash5.2`, `mksh-static`).
const SHELLS: &[(&str, ShellFamily)] = &[
    ("sh", ShellFamily::Sh),
    ("dash", ShellFamily::Dash),
    ("bash", ShellFamily::Bash),
    ("rbash", ShellFamily::Bash),
    ("ash", ShellFamily::Busybox),
    ("hush", ShellFamily::Busybox),
    ("zsh", ShellFamily::Other),
    ("ksh", ShellFamily::Other),
    ("rksh", ShellFamily::Other),
    ("mksh", ShellFamily::Other),
    ("lksh", ShellFamily::Other),
    ("oksh", ShellFamily::Other),
    ("pdksh", ShellFamily::Other),
    ("yash", ShellFamily::Other),
    ("posh", ShellFamily::Other),
    ("bosh", ShellFamily::Other),
    ("osh", ShellFamily::Other),
    ("csh", ShellFamily::Other),
    ("tcsh", ShellFamily::Other),
    ("fish", ShellFamily::Other),
];

/// Programs whose names look like a shell's but are not.
const NOT_SHELLS: &[&str] = &["ssh", "mosh", "crash", "flash", "fresh", "push", "refresh"];

/// `ksh93` -> `ksh`, `bash-5.2` -> `bash`, `mksh-static` -> `mksh`, `busybox.static` -> `busybox`.
fn strip_version(base: &str) -> &str {
    let base = base
        .strip_suffix("-static")
        .or_else(|| base.strip_suffix(".static"))
        .unwrap_or(base);
    let trimmed = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    if trimmed.is_empty() { base } else { trimmed }
}

/// The shell family of a program, recognised by what it is rather than a fixed list of
/// names: known shells with any version suffix, and any short `*sh` name.
pub fn shell_family(program: &str) -> Option<ShellFamily> {
    let base = strip_version(basename(program));
    if let Some((_, family)) = SHELLS.iter().find(|(name, _)| *name == base) {
        return Some(*family);
    }
    (base.ends_with("sh")
        && base.len() <= 5
        && base.bytes().all(|b| b.is_ascii_lowercase())
        && !NOT_SHELLS.contains(&base))
    .then_some(ShellFamily::Other)
}

pub fn is_busybox(program: &str) -> bool {
    // Only a name that starts so can be one: most words are told apart without trimming.
    let base = basename(program);
    base.starts_with("busybox") && strip_version(base) == "busybox"
}

/// What a command line starts with, as far as launchers go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peeled {
    /// Not a launcher.
    Program,
    /// A launcher that runs `words[next..]` (exec'ing it, or as its child when `stays`).
    Runs {
        launcher: String,
        next: usize,
        stays: Option<Forwarding>,
    },
    /// An init running `words[next..]`, forwarding as given.
    Init {
        init: String,
        next: usize,
        forwarding: Forwarding,
    },
    /// A launcher that hands a script string to a shell: `su -c S`, `runuser -c S`,
    /// `flock F -c S`, `sudo -s CMD`. `script` is the word that holds it, or the words
    /// `sudo -s` joins with spaces; `operands` start the script's `$0`, `$1`...
    Script {
        launcher: String,
        script: ScriptSource,
        operands: usize,
        stays: Option<Forwarding>,
    },
    /// `env -S STRING`: env splits the word at `index` into words itself; the command line
    /// goes on at `next` after it.
    Split { index: usize, next: usize },
    /// A launcher with no command to run: it runs an interactive shell (`chroot DIR`, `su`
    /// without `-c`) or nothing useful.
    NoCommand { launcher: String, shell: bool },
}

/// Where the script of a [`Peeled::Script`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptSource {
    /// One word.
    Word(usize),
    /// Words from this index on, joined with spaces (`sudo -s CMD ARGS`).
    Joined(usize),
}

/// The options read off a command line, and where the operands start.
struct Options<'w> {
    /// `(short letter or long name, value)`.
    seen: Vec<(&'static str, Option<&'w str>)>,
    /// Indices of the operands (non-options), in order.
    operands: Vec<usize>,
    /// Where the command begins (after the grammar's own operands).
    command: usize,
    /// `-` alone (su's login), for grammars that permute.
    dash: bool,
}

fn short_spec(short: &'static str, letter: char) -> Option<(&'static str, Value)> {
    let at = short
        .char_indices()
        .find(|&(_, c)| c == letter && c != ':' && c != '+')?
        .0;
    let name = short.get(at..at + letter.len_utf8())?;
    let rest = short.get(at + letter.len_utf8()..).unwrap_or("");
    let value = if rest.starts_with("::") {
        Value::Optional
    } else if rest.starts_with(':') {
        Value::Required
    } else {
        Value::None
    };
    Some((name, value))
}

/// A long option by exact name or unambiguous prefix, as getopt_long accepts it.
fn long_spec(g: &Grammar, name: &str) -> Option<(&'static str, Value)> {
    if let Some(&(n, v)) = g.long.iter().find(|(n, _)| *n == name) {
        return Some((n, v));
    }
    let mut found = g.long.iter().filter(|(n, _)| n.starts_with(name));
    let first = found.next()?;
    found.next().is_none().then_some(*first)
}

fn parse_options<'w>(g: &Grammar, words: &[&'w str], start: usize) -> Options<'w> {
    let mut out = Options {
        seen: Vec::new(),
        operands: Vec::new(),
        command: words.len(),
        dash: false,
    };
    let mut i = start;
    let mut no_more_options = false;
    while let Some(&w) = words.get(i) {
        if no_more_options || !w.starts_with('-') || w == "-" {
            if w == "-" && g.permute && !no_more_options {
                out.dash = true;
                i += 1;
                continue;
            }
            if g.assignments && out.operands.is_empty() && is_assignment(w) {
                i += 1;
                continue;
            }
            out.operands.push(i);
            i += 1;
            if !g.permute {
                // getopt with `+`: the first operand ends the options.
                no_more_options = true;
                if out.operands.len() > g.operands {
                    break;
                }
            }
            continue;
        }
        if w == "--" {
            i += 1;
            no_more_options = true;
            continue;
        }
        if let Some(long) = w.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            match long_spec(g, name) {
                Some((n, Value::Required)) if attached.is_none() => {
                    out.seen.push((n, words.get(i + 1).copied()));
                    i += 2;
                }
                Some((n, _)) => {
                    out.seen.push((n, attached));
                    i += 1;
                }
                // Unknown: the program itself would refuse it; read it as a flag.
                None => i += 1,
            }
            continue;
        }
        // A cluster of short options.
        let cluster = &w[1..];
        if g.numeric && cluster.bytes().all(|b| b.is_ascii_digit()) {
            i += 1;
            continue;
        }
        let mut consumed_next = false;
        for (at, letter) in cluster.char_indices() {
            let Some((name, value)) = short_spec(g.short, letter) else {
                continue;
            };
            let rest = &cluster[at + letter.len_utf8()..];
            match value {
                Value::None => out.seen.push((name, None)),
                Value::Optional => {
                    out.seen.push((name, (!rest.is_empty()).then_some(rest)));
                    break;
                }
                Value::Required => {
                    if rest.is_empty() {
                        out.seen.push((name, words.get(i + 1).copied()));
                        consumed_next = true;
                    } else {
                        out.seen.push((name, Some(rest)));
                    }
                    break;
                }
            }
        }
        i += if consumed_next { 2 } else { 1 };
    }
    if !g.permute {
        // Operands beyond the grammar's own start the command.
        out.command = match out.operands.get(g.operands) {
            Some(&at) => at,
            None => words.len(),
        };
        out.operands.truncate(g.operands);
    } else {
        out.command = words.len();
    }
    out
}

fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((name, _)) => !name.is_empty() && !name.starts_with('-'),
        None => false,
    }
}

fn has(opts: &Options<'_>, names: &[&str]) -> bool {
    opts.seen.iter().any(|(n, _)| names.contains(n))
}

fn value_of<'w>(opts: &Options<'w>, names: &[&str]) -> Option<Option<&'w str>> {
    opts.seen
        .iter()
        .rev()
        .find(|(n, _)| names.contains(n))
        .map(|(_, v)| *v)
}

/// Whether [`peel`] may read a launcher off a command line that starts with `first`: when
/// not, it reads none whatever follows (callers skip building the word list it takes).
pub fn may_peel(first: &str) -> bool {
    let base = basename(first);
    first == PIDONE_INIT_PATH
        || first == S6_OVERLAY_INIT
        || launcher_named(base).is_some()
        || is_busybox(first)
}

/// The launcher `name` names (the first in [`LAUNCHERS`] that lists it). Looked up for the
/// first words of every command line: a binary search of the names, not a walk of the table.
fn launcher_named(name: &str) -> Option<&'static Launcher> {
    static BY_NAME: LazyLock<Vec<(&'static str, &'static Launcher)>> = LazyLock::new(|| {
        let mut by_name: Vec<(&'static str, &'static Launcher)> = LAUNCHERS
            .iter()
            .flat_map(|l| l.names.iter().map(move |&n| (n, l)))
            .collect();
        // A stable sort keeps a name's first launcher first; the later ones go.
        by_name.sort_by_key(|&(n, _)| n);
        by_name.dedup_by_key(|&mut (n, _)| n);
        by_name
    });
    BY_NAME
        .binary_search_by(|&(n, _)| n.cmp(name))
        .ok()
        .and_then(|i| BY_NAME.get(i))
        .map(|&(_, l)| l)
}

/// Reads one launcher off the front of `words`. `env` is the container's environment with
/// literal values (tini reads `TINI_KILL_PROCESS_GROUP`).
pub fn peel(words: &[&str], env: &Environment<'_>) -> Peeled {
    let Some(&first) = words.first() else {
        return Peeled::Program;
    };
    if first == PIDONE_INIT_PATH {
        return peel_with(words, 0, "pidone-init", first);
    }
    if first == S6_OVERLAY_INIT {
        return Peeled::Init {
            init: "s6-overlay /init".into(),
            next: 1,
            forwarding: Forwarding::Group,
        };
    }
    let base = basename(first);
    if is_busybox(first) {
        // `busybox APPLET ...`: the applet is what runs (shells are told apart by the caller).
        return match words.get(1) {
            Some(applet) if launcher_named(applet).is_some() => {
                match peel_with(words, 1, applet, applet) {
                    Peeled::Program => Peeled::Program,
                    other => other,
                }
            }
            _ => Peeled::Program,
        };
    }
    match peel_with(words, 0, base, first) {
        Peeled::Init {
            init,
            next,
            forwarding: Forwarding::ChildOnly,
        } if base.starts_with("tini")
            && env
                .value("TINI_KILL_PROCESS_GROUP")
                .is_some_and(|v| !v.is_empty()) =>
        {
            Peeled::Init {
                init,
                next,
                forwarding: Forwarding::Group,
            }
        }
        other => other,
    }
}

/// `words[at]` names launcher `name` (shown as `shown`).
fn peel_with(words: &[&str], at: usize, name: &str, shown: &str) -> Peeled {
    let Some(launcher) = launcher_named(name) else {
        return Peeled::Program;
    };
    let opts = parse_options(&launcher.grammar, words, at + 1);
    let shown = basename(shown).to_string();
    let next = opts.command;
    let name = launcher.names[0];
    match (name, launcher.role) {
        ("env", _) => {
            if let Some(Some(_)) = value_of(&opts, &["S", "split-string"]) {
                // The value's word: attached (`-Sxyz`, `--split-string=x`) or the next one.
                if let Some(index) = split_word(words, at + 1) {
                    return Peeled::Split {
                        index,
                        next: index + 1,
                    };
                }
            }
            runs(words, shown, next, None)
        }
        ("flock", _) => {
            let stays = (!has(&opts, &["F", "no-fork"])).then_some(Forwarding::Nothing);
            match words.get(next) {
                Some(&("-c" | "--command")) => Peeled::Script {
                    launcher: shown,
                    script: ScriptSource::Word(next + 1),
                    operands: words.len(),
                    stays,
                },
                _ => runs(words, shown, next, stays),
            }
        }
        ("runuser", _) => {
            let stays = Some(Forwarding::ChildOnly);
            if let Some(Some(_)) = value_of(&opts, &["c", "command", "C", "session-command"]) {
                let index = script_word(words, at + 1, &launcher.grammar);
                return match index {
                    Some(index) => Peeled::Script {
                        launcher: shown,
                        script: ScriptSource::Word(index),
                        // Words after the user name are `$0`, `$1`... of the script.
                        operands: opts.operands.get(1).copied().unwrap_or(words.len()),
                        stays,
                    },
                    None => Peeled::NoCommand {
                        launcher: shown,
                        shell: true,
                    },
                };
            }
            if has(&opts, &["u", "user"]) && name == "runuser" && shown != "su" {
                // `runuser -u USER [--] COMMAND`: the operands are the command.
                return match opts.operands.first() {
                    Some(&first_operand) => runs(words, shown, first_operand, stays),
                    None => Peeled::NoCommand {
                        launcher: shown,
                        shell: true,
                    },
                };
            }
            Peeled::NoCommand {
                launcher: shown,
                shell: true,
            }
        }
        ("sudo", _) => {
            let stays = if has(&opts, &["b", "background"]) {
                // `sudo -b` puts the command in the background and exits.
                Some(Forwarding::Nothing)
            } else {
                Some(Forwarding::ChildOnly)
            };
            if has(&opts, &["s", "shell", "i", "login"]) && next < words.len() {
                return Peeled::Script {
                    launcher: shown,
                    script: ScriptSource::Joined(next),
                    operands: words.len(),
                    stays,
                };
            }
            runs(words, shown, next, stays)
        }
        ("tini", Role::Init(mode)) | ("catatonit", Role::Init(mode)) => init(
            shown,
            next,
            if has(&opts, &["g"]) {
                Forwarding::Group
            } else {
                mode
            },
            words,
        ),
        ("pidone-init", Role::Init(mode)) => {
            if has(&opts, &["install"]) {
                return Peeled::NoCommand {
                    launcher: shown,
                    shell: false,
                };
            }
            init(
                shown,
                next,
                if has(&opts, &["g"]) {
                    Forwarding::Group
                } else {
                    mode
                },
                words,
            )
        }
        ("dumb-init", Role::Init(mode)) => init(
            shown,
            next,
            if has(&opts, &["c", "single-child"]) {
                Forwarding::ChildOnly
            } else {
                mode
            },
            words,
        ),
        (_, Role::Init(mode)) => init(shown, next, mode, words),
        ("chroot" | "nsenter", _) if next >= words.len() => Peeled::NoCommand {
            launcher: shown,
            shell: true,
        },
        (_, Role::Stays(mode)) => runs(words, shown, next, Some(mode)),
        (_, Role::Execs) => runs(words, shown, next, None),
    }
}

fn runs(words: &[&str], launcher: String, next: usize, stays: Option<Forwarding>) -> Peeled {
    if next >= words.len() {
        return Peeled::NoCommand {
            launcher,
            shell: false,
        };
    }
    Peeled::Runs {
        launcher,
        next,
        stays,
    }
}

fn init(init: String, next: usize, forwarding: Forwarding, words: &[&str]) -> Peeled {
    if next >= words.len() {
        return Peeled::NoCommand {
            launcher: init,
            shell: false,
        };
    }
    Peeled::Init {
        init,
        next,
        forwarding,
    }
}

/// The index of the word that holds env's `-S` value.
fn split_word(words: &[&str], start: usize) -> Option<usize> {
    let mut i = start;
    while let Some(&w) = words.get(i) {
        if w == "--" || !w.starts_with('-') {
            return None;
        }
        if w == "--split-string" || (w.starts_with("--split-string=")) {
            return Some(if w.contains('=') { i } else { i + 1 });
        }
        if let Some(long) = w.strip_prefix("--") {
            // Other long options of env that take a separate value.
            if matches!(long, "unset" | "chdir") {
                i += 2;
                continue;
            }
            i += 1;
            continue;
        }
        let cluster = &w[1..];
        for (at, c) in cluster.char_indices() {
            match c {
                'S' => {
                    return Some(if at + 1 < cluster.len() { i } else { i + 1 });
                }
                'u' | 'C' => {
                    if at + 1 == cluster.len() {
                        i += 1;
                    }
                    break;
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// The text env splits for `-S`, from the word [`split_word`] found.
pub fn split_text(word: &str) -> &str {
    if let Some(v) = word.strip_prefix("--split-string=") {
        return v;
    }
    if word.starts_with('-')
        && !word.starts_with("--")
        && let Some(at) = word.find('S')
    {
        return &word[at + 1..];
    }
    word
}

/// The word that holds the value of su/runuser's `-c`/`--command`.
fn script_word(words: &[&str], start: usize, g: &Grammar) -> Option<usize> {
    let mut i = start;
    let mut found = None;
    while let Some(&w) = words.get(i) {
        if w == "--" {
            break;
        }
        if let Some(long) = w.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            match long_spec(g, name) {
                Some(("command" | "session-command", _)) => {
                    found = Some(if attached.is_some() { i } else { i + 1 });
                    i += if attached.is_some() { 1 } else { 2 };
                }
                Some((_, Value::Required)) if attached.is_none() => i += 2,
                _ => i += 1,
            }
            continue;
        }
        if w.starts_with('-') && w.len() > 1 {
            let cluster = &w[1..];
            let mut step = 1;
            for (at, c) in cluster.char_indices() {
                if let Some((name, Value::Required)) = short_spec(g.short, c) {
                    let attached = at + 1 < cluster.len();
                    if name == "c" || name == "C" {
                        found = Some(if attached { i } else { i + 1 });
                    }
                    if !attached {
                        step = 2;
                    }
                    break;
                }
            }
            i += step;
            continue;
        }
        i += 1;
    }
    found
}

/// The script text of a su/runuser `-c` word (the value may be attached: `-cSCRIPT`,
/// `--command=SCRIPT`).
pub fn command_text(word: &str) -> &str {
    if let Some(v) = word
        .strip_prefix("--command=")
        .or_else(|| word.strip_prefix("--session-command="))
    {
        return v;
    }
    if let Some(rest) = word.strip_prefix('-')
        && !rest.starts_with('-')
        && let Some(at) = rest.find(['c', 'C'])
    {
        return &rest[at + 1..];
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(words: &[&str]) -> Peeled {
        peel(words, &Environment::none())
    }

    /// The command a launcher runs: the word it starts at.
    fn command_of<'w>(words: &[&'w str]) -> Option<&'w str> {
        match p(words) {
            Peeled::Runs { next, .. } | Peeled::Init { next, .. } => words.get(next).copied(),
            _ => None,
        }
    }

    #[test]
    fn launchers_are_found_by_any_of_their_names_as_the_table_lists_them() {
        for l in LAUNCHERS {
            for name in l.names {
                let first = LAUNCHERS
                    .iter()
                    .find(|t| t.names.contains(name))
                    .map(|t| t.names[0]);
                assert_eq!(launcher_named(name).map(|t| t.names[0]), first, "{name}");
            }
        }
        for other in ["", "app", "en", "envx", "zzz", "/usr/bin/env"] {
            assert!(launcher_named(other).is_none(), "{other}");
        }
    }

    #[test]
    fn what_may_not_peel_peels_nothing() {
        let mut firsts: Vec<&str> = LAUNCHERS
            .iter()
            .flat_map(|l| l.names.iter().copied())
            .collect();
        firsts.extend([
            "/app/checkout",
            "fluent-bit",
            "/usr/bin/tini",
            "busybox",
            "/bin/busybox.static",
            "/init",
            "/.pidone/init",
            "init",
            "sh",
            "exec",
            "--",
            "-x",
            "A=b",
            "",
        ]);
        let rests: &[&[&str]] = &[
            &[],
            &["app"],
            &["-g", "--", "app"],
            &["env", "app"],
            &["nice", "app"],
        ];
        for &first in &firsts {
            for rest in rests {
                let words: Vec<&str> = std::iter::once(first).chain(rest.iter().copied()).collect();
                if !may_peel(first) {
                    assert_eq!(p(&words), Peeled::Program, "{words:?}");
                }
            }
        }
        for l in LAUNCHERS {
            for name in l.names {
                assert!(
                    may_peel(name) && may_peel(&format!("/usr/bin/{name}")),
                    "{name}"
                );
            }
        }
        assert!(!may_peel("/app/checkout"));
    }

    #[test]
    fn option_grammars_find_the_command() {
        let cases: &[&[&str]] = &[
            &["env", "-i", "A=b", "app"],
            &["env", "-u", "X", "--chdir=/", "app"],
            &["env", "-iu", "X", "app"],
            &["nice", "-n", "5", "app"],
            &["nice", "-5", "app"],
            &["nice", "--adj", "5", "app"],
            &["timeout", "-s", "KILL", "10m", "app"],
            &["timeout", "--sig=KILL", "10m", "app"],
            &["timeout", "-k5", "10", "app"],
            &["timeout", "--preserve", "10", "app"],
            &["taskset", "-c", "0-3", "app"],
            &["taskset", "0x3", "app"],
            &["chrt", "-f", "10", "app"],
            &["chroot", "--userspec=1:1", "/newroot", "app"],
            &["nsenter", "-t", "1", "-m", "-u", "-n", "-i", "--", "app"],
            &["nsenter", "--target", "1", "--mount", "--", "app"],
            &["nsenter", "-t1", "-mun", "app"],
            &[
                "setpriv",
                "--reuid",
                "1000",
                "--regid=1000",
                "--init-groups",
                "app",
            ],
            &["prlimit", "--nofile=1024", "-n1024", "app"],
            &["numactl", "--interleave=all", "-C", "0", "app"],
            &["ionice", "-c", "2", "-n", "7", "app"],
            &["stdbuf", "-oL", "-e", "0", "app"],
            &["su-exec", "nobody", "app"],
            &["gosu", "1000:1000", "app"],
            &["setsid", "-w", "app"],
            &["flock", "-w", "5", "/run/lock", "app"],
            &["tini", "-s", "-p", "SIGTERM", "--", "app"],
            &["dumb-init", "--rewrite", "15:2", "app"],
            &["catatonit", "-g", "--", "app"],
            &["/.pidone/init", "-g", "--", "app"],
            &["runuser", "-u", "app", "--", "app"],
            &["sudo", "-u", "root", "-E", "app"],
            &["sudo", "--user=root", "--", "app"],
            &["/bin/busybox", "env", "A=1", "app"],
            &["busybox", "nohup", "app"],
        ];
        for words in cases {
            let start = words.len() - 1;
            assert_eq!(
                command_of(words),
                Some(words[start]),
                "{words:?}: {:?}",
                p(words)
            );
            assert!(
                matches!(p(words), Peeled::Runs { next, .. } | Peeled::Init { next, .. } if next == start),
                "{words:?}: {:?}",
                p(words)
            );
        }
    }

    #[test]
    fn script_launchers_point_at_the_script() {
        let su = ["su", "app", "-s", "/bin/sh", "-c", "a & b & wait"];
        assert!(
            matches!(
                p(&su),
                Peeled::Script {
                    script: ScriptSource::Word(5),
                    ..
                }
            ),
            "{:?}",
            p(&su)
        );
        let su = ["su", "-", "app", "-c", "x"];
        assert!(matches!(
            p(&su),
            Peeled::Script {
                script: ScriptSource::Word(4),
                ..
            }
        ));
        let ru = ["runuser", "-l", "app", "--command=x"];
        assert!(matches!(
            p(&ru),
            Peeled::Script {
                script: ScriptSource::Word(3),
                ..
            }
        ));
        assert_eq!(command_text("--command=x"), "x");
        let fl = ["flock", "-x", "/lock", "-c", "a & b"];
        assert!(matches!(
            p(&fl),
            Peeled::Script {
                script: ScriptSource::Word(4),
                stays: Some(Forwarding::Nothing),
                ..
            }
        ));
        let sudo = ["sudo", "-s", "a", "&", "b"];
        assert!(matches!(
            p(&sudo),
            Peeled::Script {
                script: ScriptSource::Joined(2),
                ..
            }
        ));
        let env = ["env", "-vS", "sh -c 'a & b'"];
        assert_eq!(p(&env), Peeled::Split { index: 2, next: 3 });
        let env = ["env", "-S'sh -c x'"];
        assert_eq!(p(&env), Peeled::Split { index: 1, next: 2 });
        assert_eq!(split_text("-S'sh -c x'"), "'sh -c x'");
    }

    #[test]
    fn inits_tell_group_from_child_only_forwarding() {
        let mode = |w: &[&str]| match p(w) {
            Peeled::Init { forwarding, .. } => Some(forwarding),
            _ => None,
        };
        assert_eq!(mode(&["tini", "--", "app"]), Some(Forwarding::ChildOnly));
        assert_eq!(mode(&["tini", "-g", "--", "app"]), Some(Forwarding::Group));
        assert_eq!(mode(&["tini", "-sg", "app"]), Some(Forwarding::Group));
        assert_eq!(mode(&["dumb-init", "app"]), Some(Forwarding::Group));
        assert_eq!(
            mode(&["dumb-init", "--single-child", "app"]),
            Some(Forwarding::ChildOnly)
        );
        assert_eq!(
            mode(&["catatonit", "--", "app"]),
            Some(Forwarding::ChildOnly)
        );
        assert_eq!(mode(&["/init", "app"]), Some(Forwarding::Group));
        let env = vec![("TINI_KILL_PROCESS_GROUP".to_string(), Some("1".to_string()))];
        assert!(matches!(
            peel(&["tini", "--", "app"], &Environment::from_vars(env)),
            Peeled::Init {
                forwarding: Forwarding::Group,
                ..
            }
        ));
    }

    #[test]
    fn shells_are_recognised_by_what_they_are() {
        for s in [
            "sh",
            "/bin/bash",
            "ksh93",
            "hush",
            "mksh-static",
            "bash5.2",
            "zsh",
            "yash",
            "/usr/bin/lksh",
        ] {
            assert!(shell_family(s).is_some(), "{s}");
        }
        for s in [
            "ssh",
            "nginx",
            "finish",
            "/usr/bin/flash",
            "sshd",
            "bashful-app",
        ] {
            assert!(shell_family(s).is_none(), "{s}");
        }
        assert_eq!(shell_family("/bin/dash"), Some(ShellFamily::Dash));
        assert!(is_busybox("/bin/busybox.static"));
    }
}
