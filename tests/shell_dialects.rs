//! What each shell does with a script's final command, by execution: every script runs as
//! PID 1 of a fresh PID namespace (`unshare --pid --fork --mount-proc`) under dash, bash and
//! busybox sh, and the test reads which program PID 1 is once the final command runs. Then it
//! asks pidone about the same launch and fails when its message claims a behaviour the shell
//! does not have: that the shell stays PID 1 when it execs the command, or the other way round.
//!
//! Needs root, `unshare`, dash, bash (5.1 or later: the message names that version) and
//! busybox (`.ci/apt-packages.txt`); without them it is reported as skipped (a failure on CI).

mod skips;

use pidone::engine::argv::LaunchAnalysis;
use pidone::engine::dialect::{self, Fate};
use pidone::engine::evaluate::EvalContext;
use pidone::engine::launchers::ShellFamily;
use pidone::engine::script::ScriptVerdict;
use pidone::engine::{Config, LaunchClass};
use pidone::resolve::Evaluator;
use pidone::resolve::InProcessAnalyzer;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The final command of every script: a program that stays up long enough to be seen.
const FINAL: &str = "sleep 30";

/// Script shapes, each ending in [`FINAL`] run without `exec`.
fn shapes() -> Vec<String> {
    let f = FINAL;
    vec![
        f.to_string(),
        format!("{f}\n"),
        format!("{f}\n\n"),
        format!("{f}\n   "),
        format!("true; {f}"),
        format!("true\n{f}"),
        format!("true\n{f}\n"),
        format!("true\n{f}\n# done"),
        format!("true; {f} # (((("),
        format!("true && {f}"),
        format!("X=1 {f}"),
        format!("cd /; {f}"),
        format!("true; {f} >/dev/null"),
        format!("true; {f} 2>&1"),
        format!("true; {f} </dev/null\n"),
        format!("true; {{ {f}; }}"),
        format!("if true; then {f}; fi"),
        format!("if true; then {f}; fi\n"),
        format!("case x in x) {f};; esac"),
        format!("trap 'echo bye' EXIT; {f}"),
        format!("trap '' EXIT; {f}"),
        format!("trap 'echo usr1' USR1; {f}"),
        format!("trap '' USR1; {f}"),
        format!("trap 'echo int' INT; {f}"),
        format!("f() {{ {f}; }}; f"),
        format!("true; ! {f}"),
        format!("true; ({f})"),
    ]
}

/// The shells measured: how to run one, its family, and the program name PID 1 has while
/// the shell itself runs.
const SHELLS: &[(&[&str], ShellFamily, &str)] = &[
    (&["dash"], ShellFamily::Dash, "dash"),
    (&["bash"], ShellFamily::Bash, "bash"),
    (&["busybox", "sh"], ShellFamily::Busybox, "busybox"),
];

fn missing() -> Option<String> {
    if !skips::is_root() {
        return Some("needs root for unshare --pid".into());
    }
    let absent = skips::missing(&["unshare", "dash", "bash", "busybox", "sleep"]);
    if !absent.is_empty() {
        return Some(format!(
            "{} not installed (see .ci/apt-packages.txt)",
            absent.join(", ")
        ));
    }
    let version = Command::new("bash")
        .args(["-c", "echo ${BASH_VERSINFO[0]}.${BASH_VERSINFO[1]}"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let (major, minor) = text.split_once('.')?;
    let (major, minor): (u32, u32) = (major.parse().ok()?, minor.parse().ok()?);
    if (major, minor) < (5, 1) {
        return Some(format!(
            "bash {text} is older than 5.1, which the messages name"
        ));
    }
    None
}

/// The parent of `pid`, from `/proc/<pid>/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(1)?.parse().ok()
}

/// The namespace's PID 1: the child `unshare --fork` started.
fn pid1_of(unshare: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|&pid| parent_of(pid) == Some(unshare))
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `shell -c script` as PID 1 of a new PID namespace and returns what PID 1 is once the
/// final command runs: the shell (it stays) or `sleep` (it exec'd).
fn observe(shell: &[&str], shell_comm: &str, script: &str) -> Fate {
    let child = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .args(shell)
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("unshare starts");
    let running = Running(child);
    let unshare = running.0.id();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(pid1) = pid1_of(unshare) {
            // The shell is PID 1 either way at first; once `sleep` runs (as PID 1 or as its
            // child), the answer is settled.
            let name = comm(pid1).unwrap_or_default();
            if name == "sleep" {
                return Fate::Execs;
            }
            let sleeping_child = std::fs::read_dir("/proc")
                .ok()
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|s| s.parse::<u32>().ok())
                        .is_some_and(|pid| {
                            parent_of(pid) == Some(pid1) && comm(pid).as_deref() == Some("sleep")
                        })
                });
            if sleeping_child && name == shell_comm {
                return Fate::Stays;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{shell:?} -c {script:?}: sleep never ran");
}

fn analyse(shell: &[&str], script: &str) -> LaunchAnalysis {
    let engine = Evaluator::new(Arc::new(Config::default()), Arc::new(InProcessAnalyzer)).unwrap();
    let mut command: Vec<&str> = shell.to_vec();
    command.extend(["-c", script]);
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app", "image": "x", "command": command}]}});
    let eval = engine
        .evaluate(&pod, &EvalContext::default())
        .unwrap()
        .unwrap();
    eval.containers[0].analysis.clone()
}

#[test]
fn messages_tell_each_shells_truth_about_the_final_command() {
    if let Some(reason) = missing() {
        skips::skip(&reason);
        return;
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut seen = std::collections::BTreeMap::new();
    for script in shapes() {
        for &(shell, family, shell_comm) in SHELLS {
            let observed = observe(shell, shell_comm, &script);
            *seen
                .entry((shell_comm, observed == Fate::Execs))
                .or_insert(0) += 1;
            let analysis = analyse(shell, &script);
            // What pidone claims: the dialect truth behind the message, and the message.
            let claim = match (
                &analysis.class,
                analysis.shell.as_ref().map(|s| &*s.verdict),
            ) {
                (LaunchClass::NoExec, Some(ScriptVerdict::Parsed(facts))) => facts
                    .last
                    .as_ref()
                    .map(|last| dialect::truth(&script, last, &facts.traps)),
                _ => None,
            };
            let Some(truth) = claim else {
                // Classes other than no-exec (resident, for example) make no claim about the
                // final command.
                continue;
            };
            checked += 1;
            let Some(claims_stays) = dialect::claims_stays(family, truth) else {
                continue;
            };
            let detail = &analysis.detail;
            let says_stays = detail.contains("stays PID 1");
            let says_execs = detail.contains("exec this final command themselves")
                || detail.contains("execs this final command itself");
            let wrong = match observed {
                Fate::Execs => claims_stays || says_stays || !says_execs,
                Fate::Stays => !claims_stays || says_execs || !says_stays,
                Fate::Unknown => false,
            };
            if wrong {
                failures.push(format!(
                    "{shell:?} -c {script:?}: the shell {} but pidone says: {detail}",
                    if observed == Fate::Execs {
                        "execs the final command"
                    } else {
                        "stays PID 1"
                    }
                ));
            }
        }
    }
    // Both outcomes must have been seen for bash and busybox, or the shapes prove nothing.
    for shell in ["bash", "busybox"] {
        assert!(
            seen.contains_key(&(shell, true)) && seen.contains_key(&(shell, false)),
            "{seen:?}"
        );
    }
    assert!(
        !seen.contains_key(&("dash", true)),
        "dash exec'd a final command: {seen:?}"
    );
    assert!(checked >= 40, "only {checked} claims checked");
    assert!(
        failures.is_empty(),
        "{} wrong claims:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
