//! Launches written to dodge detection: each is classified right, or flagged, never clean.
//! "Clean" means a class with no finding for a long-running container (direct or exec with a
//! signal-handling program).

use pidone::engine::Config;
use pidone::engine::evaluate::EvalContext;
use pidone::resolve::Evaluator;
use pidone::resolve::InProcessAnalyzer;
use serde_json::json;
use std::sync::Arc;

/// (case, command, args, expected launch class)
const CASES: &[(&str, &[&str], &[&str], &str)] = &[
    (
        "busybox by absolute path",
        &["/bin/busybox", "sh", "-c", "echo; /app/server"],
        &[],
        "no-exec",
    ),
    (
        "env -S splits a shell command line",
        &["env", "-S", "sh -c 'echo; /app/server'"],
        &[],
        "no-exec",
    ),
    (
        "/usr/bin/env -S",
        &["/usr/bin/env", "-S", "sh -c '/a & /b & wait'"],
        &[],
        "multi",
    ),
    (
        "login shell -lc",
        &["sh", "-lc", "echo; /app/server"],
        &[],
        "no-exec",
    ),
    (
        "bash --posix -c",
        &["bash", "--posix", "-c", "echo; /app/server"],
        &[],
        "no-exec",
    ),
    (
        "bash -O extglob -c",
        &["bash", "-O", "extglob", "-c", "echo; /app/server"],
        &[],
        "no-exec",
    ),
    (
        "script in args, shell in command",
        &["/bin/sh", "-c"],
        &["echo; /app/server"],
        "no-exec",
    ),
    (
        "script in args after --",
        &["sh", "-c", "--"],
        &["/a & /b & wait"],
        "multi",
    ),
    (
        "command substitution as the program",
        &["sh", "-c", "echo; $(which server)"],
        &[],
        "no-exec",
    ),
    (
        "backticks as the program",
        &["sh", "-c", "echo; `which server` --port 80"],
        &[],
        "no-exec",
    ),
    (
        "exec through command substitution",
        &["sh", "-c", "exec $(which server)"],
        &[],
        "exec",
    ),
    (
        "eval hides the command",
        &["sh", "-c", "eval \"$START_CMD\""],
        &[],
        "no-exec",
    ),
    (
        "eval of exec",
        &["sh", "-c", "eval exec /app/server"],
        &[],
        "no-exec",
    ),
    (
        "exec with only redirects, then the app",
        &["sh", "-c", "exec >/var/log/app.log 2>&1; /app/server"],
        &[],
        "no-exec",
    ),
    (
        "exec redirect then exec app",
        &["sh", "-c", "exec 2>&1\nexec /app/server"],
        &[],
        "exec",
    ),
    (
        "function that calls exec",
        &[
            "sh",
            "-c",
            "run() { exec /app/server \"$@\"; }\nrun --port 80",
        ],
        &[],
        "exec",
    ),
    (
        "function without exec",
        &["sh", "-c", "run() { /app/server \"$@\"; }\nrun --port 80"],
        &[],
        "no-exec",
    ),
    (
        "exec behind ||",
        &["sh", "-c", "test -f /ready || exec /app/server"],
        &[],
        "no-exec",
    ),
    (
        "exec behind && after the app",
        &["sh", "-c", "/app/server && exec echo done"],
        &[],
        "resident",
    ),
    (
        "exec after && setup",
        &["sh", "-c", "mkdir -p /run && exec /app/server || exit 1"],
        &[],
        "exec",
    ),
    (
        "exec inside a subshell",
        &["sh", "-c", "(exec /app/server)"],
        &[],
        "no-exec",
    ),
    (
        "quoted exec",
        &["sh", "-c", "'exec' /app/server"],
        &[],
        "exec",
    ),
    (
        "backslash-escaped exec",
        &["sh", "-c", "\\exec /app/server"],
        &[],
        "exec",
    ),
    (
        "quoted program",
        &["sh", "-c", "echo; \"/app/server\" --port 80"],
        &[],
        "no-exec",
    ),
    (
        "background hidden by line continuation",
        &["sh", "-c", "/app/agent \\\n  & /app/server"],
        &[],
        "multi",
    ),
    (
        "background in a brace group",
        &["sh", "-c", "{ /app/agent & } ; exec /app/server"],
        &[],
        "multi",
    ),
    (
        "nohup without &",
        &["sh", "-c", "nohup /app/server"],
        &[],
        "no-exec",
    ),
    (
        "setsid",
        &["setsid", "sh", "-c", "echo; /app/server"],
        &[],
        "no-exec",
    ),
    (
        "gosu in front",
        &["gosu", "app", "sh", "-c", "/a & /b & wait"],
        &[],
        "multi",
    ),
    (
        "a shell running a shell (the exec hand-off is analysed again)",
        &["sh", "-c", "exec bash -c 'echo; /app/server'"],
        &[],
        "no-exec",
    ),
    ("here-doc fed to a shell", &["sh", "-s"], &[], "resident"),
    (
        "unterminated quote",
        &["sh", "-c", "echo 'oops; /app/server"],
        &[],
        "unparsed",
    ),
    (
        "supervisor by path in a shell",
        &["sh", "-c", "exec /usr/bin/supervisord -n"],
        &[],
        "multi",
    ),
    (
        "pipeline disguised with stdbuf",
        &["sh", "-c", "stdbuf -oL /app/server | tee /log"],
        &[],
        "multi",
    ),
    (
        "daemon flag",
        &["sh", "-c", "redis-server --daemonize yes; exec /app/server"],
        &[],
        "multi",
    ),
];

/// Classes that are clean for a long-running container when no finding accompanies them.
fn is_clean(class: &str, findings: usize) -> bool {
    matches!(class, "direct" | "exec") && findings == 0
}

#[test]
fn evasions_are_caught() {
    let engine = Evaluator::new(Arc::new(Config::default()), Arc::new(InProcessAnalyzer)).unwrap();
    let mut failures = Vec::new();
    for (case, command, args, want) in CASES {
        let mut container = json!({"name": "app", "image": "x", "command": command});
        if !args.is_empty() {
            container["args"] = json!(args);
        }
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [container]}});
        let eval = engine
            .evaluate(&pod, &EvalContext::default())
            .unwrap()
            .unwrap();
        let got = eval.containers[0].launch.as_str();
        if got != *want {
            failures.push(format!(
                "{case}: got {got}, want {want} ({})",
                eval.containers[0].analysis.detail
            ));
        }
        // A wrong guess must still never look clean when the launch is not.
        if *want != "exec" && *want != "direct" && is_clean(got, eval.findings.len()) {
            failures.push(format!("{case}: classified clean"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// The same dodges against the real server: `pidone serve` in enforce mode over TLS, with the
// webhook's own script analyzer (pre-screen, cache, parser worker processes).

mod support;

use pidone::engine::config::ParserConfig;
use pidone::engine::script::{Dialect, ScriptVerdict, UnparsedReason};
use pidone::resolve::ScriptAnalyzer;
use pidone::sandbox::{ContainedAnalyzer, ContainmentConfig, PoolConfig};
use serde_json::Value;
use std::path::PathBuf;
use support::{Options, TestServer, review};

/// What enforce mode must do with a launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Several long-running programs: `/validate` denies with `multi-process`.
    Deny,
    /// A shell (or script) at PID 1 the pod hides: some finding is reported.
    Flag,
    /// An honest launch: allowed with no warning and no patch.
    Allow,
}

/// Several long-running programs in one script.
const MULTI: &str = "/app/server & /app/agent & wait";
/// Setup, then the app in the foreground without exec.
const NO_EXEC: &str = "cp /cfg/app.conf /etc/; /app/server --port 8080";

struct Dodge {
    family: &'static str,
    case: &'static str,
    command: Vec<String>,
    args: Vec<String>,
    /// `(name, value)`; a value of `None` is set through `valueFrom`.
    env: Vec<(&'static str, Option<String>)>,
    want: Want,
}

fn w(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

fn dodge(family: &'static str, case: &'static str, command: Vec<String>, want: Want) -> Dodge {
    Dodge {
        family,
        case,
        command,
        args: Vec::new(),
        env: Vec::new(),
        want,
    }
}

fn dodges() -> Vec<Dodge> {
    use Want::{Allow, Deny, Flag};
    let paren_comment = format!("{MULTI}\n# {}", "(".repeat(40));
    let big_comment = format!("{MULTI}\n#{}", "x".repeat(64 * 1024));
    let huge_fd = format!("echo starting 99999999999>/dev/null\n{MULTI}");
    let heredoc = format!("cat <<$(x)\nhello\n$(x)\n{MULTI}");
    let deep = format!("{}true{}\n{MULTI}", "{ ".repeat(100), " ; }".repeat(100));
    let daemon_padded = format!("/usr/sbin/sshd\n# {}\nexec /app/server", "(".repeat(40));
    let mut list = vec![
        // Launchers with their own option grammar.
        dodge(
            "launcher",
            "su -c with the user after",
            w(&["su", "nobody", "-s", "/bin/sh", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "launcher",
            "su - user -c",
            w(&["su", "-", "nobody", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "launcher",
            "runuser -u user -- sh -c",
            w(&["runuser", "-u", "nobody", "--", "sh", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "launcher",
            "runuser -l user --command=",
            w(&["runuser", "-l", "nobody", &format!("--command={MULTI}")]),
            Deny,
        ),
        dodge(
            "launcher",
            "sudo -u user -E sh -c",
            w(&["sudo", "-u", "nobody", "-E", "sh", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "launcher",
            "sudo -s joins its arguments",
            w(&["sudo", "-s", "/app/server", "&", "/app/agent", "&", "wait"]),
            Deny,
        ),
        dodge(
            "launcher",
            "nsenter -t 1 -m -u -n -i --",
            w(&[
                "nsenter", "-t", "1", "-m", "-u", "-n", "-i", "--", "sh", "-c", MULTI,
            ]),
            Deny,
        ),
        dodge(
            "launcher",
            "nsenter clustered options",
            w(&["nsenter", "-t1", "-mun", "bash", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "launcher",
            "chroot DIR",
            w(&[
                "chroot",
                "--userspec=1000:1000",
                "/newroot",
                "sh",
                "-c",
                MULTI,
            ]),
            Deny,
        ),
        dodge(
            "launcher",
            "timeout DURATION",
            w(&["timeout", "30d", "sh", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "launcher",
            "timeout -s SIG -k DUR DURATION",
            w(&["timeout", "-s", "KILL", "-k5", "1h", "sh", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "launcher",
            "flock FILE command",
            w(&["flock", "-w", "5", "/run/app.lock", "sh", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "launcher",
            "flock FILE -c script",
            w(&["flock", "-x", "/run/app.lock", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "launcher",
            "setpriv long options",
            w(&[
                "setpriv",
                "--reuid=1000",
                "--regid",
                "1000",
                "--init-groups",
                "sh",
                "-c",
                MULTI,
            ]),
            Deny,
        ),
        dodge(
            "launcher",
            "taskset MASK",
            w(&["taskset", "0x3", "sh", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "launcher",
            "taskset -c LIST",
            w(&["taskset", "-c", "0-1", "sh", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "launcher",
            "busybox env",
            w(&["busybox", "env", "A=1", "sh", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "launcher",
            "env -vS clustered",
            w(&["env", "-vS", &format!("sh -c '{MULTI}'")]),
            Deny,
        ),
        dodge(
            "launcher",
            "a chain of launchers",
            w(&[
                "env",
                "-i",
                "PATH=/bin",
                "nice",
                "-n",
                "10",
                "ionice",
                "-c2",
                "-n7",
                "stdbuf",
                "-oL",
                "sh",
                "-c",
                MULTI,
            ]),
            Deny,
        ),
        dodge(
            "launcher",
            "prlimit numactl chrt",
            w(&[
                "prlimit",
                "--nofile=1024",
                "numactl",
                "--interleave=all",
                "chrt",
                "-o",
                "0",
                "sh",
                "-c",
                MULTI,
            ]),
            Deny,
        ),
        dodge(
            "launcher",
            "nice with an abbreviated long option",
            w(&["nice", "--adj", "5", "setsid", "-w", "sh", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "launcher",
            "su -c with no-exec script",
            w(&["su", "nobody", "-c", NO_EXEC]),
            Flag,
        ),
        // Inits: several programs stay several under any init.
        dodge(
            "init",
            "tini without -g",
            w(&["tini", "--", "sh", "-c", MULTI]),
            Deny,
        ),
        // Group forwarding is the stopgap (DESIGN section 2): still several programs in one
        // container, so warned with multi-process, not denied.
        dodge(
            "init",
            "tini -g",
            w(&["tini", "-g", "--", "sh", "-c", MULTI]),
            Flag,
        ),
        dodge(
            "init",
            "dumb-init (group by default)",
            w(&["dumb-init", "sh", "-c", MULTI]),
            Flag,
        ),
        dodge(
            "init",
            "dumb-init --single-child",
            w(&["dumb-init", "--single-child", "sh", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "init",
            "catatonit",
            w(&["catatonit", "--", "sh", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "init",
            "tini without -g over a no-exec shell",
            w(&["tini", "--", "sh", "-c", NO_EXEC]),
            Flag,
        ),
        // exec hand-offs.
        dodge(
            "exec",
            "exec sh -c",
            w(&["sh", "-c", &format!("exec sh -c '{MULTI}'")]),
            Deny,
        ),
        dodge(
            "exec",
            "exec \"$@\" with the script in the operands",
            w(&["sh", "-c", "exec \"$@\"", "sh", "sh", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "exec",
            "setup then exec \"$@\" into tini",
            w(&[
                "sh",
                "-c",
                "cd /srv; exec \"$@\"",
                "--",
                "tini",
                "--",
                "sh",
                "-c",
                MULTI,
            ]),
            Deny,
        ),
        dodge(
            "exec",
            "exec su -c",
            w(&["bash", "-c", &format!("exec su -c '{MULTI}' nobody")]),
            Deny,
        ),
        dodge(
            "exec",
            "exec timeout sh -c",
            w(&["sh", "-c", &format!("exec timeout 1h sh -c '{MULTI}'")]),
            Deny,
        ),
        dodge(
            "exec",
            "exec sh -c with a no-exec script",
            w(&["sh", "-c", &format!("exec sh -c '{NO_EXEC}'")]),
            Flag,
        ),
        // Shells not on a name list, or named through the kubelet.
        dodge("shell", "ksh93", w(&["ksh93", "-c", MULTI]), Deny),
        dodge(
            "shell",
            "busybox hush",
            w(&["/bin/busybox", "hush", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "shell",
            "mksh-static",
            w(&["/bin/mksh-static", "-c", MULTI]),
            Deny,
        ),
        dodge(
            "shell",
            "ksh93 no-exec",
            w(&["/usr/bin/ksh93", "-c", NO_EXEC]),
            Flag,
        ),
        Dodge {
            env: vec![("SH", Some("/bin/sh".into()))],
            ..dodge("kubelet", "$(SH) -c", w(&["$(SH)", "-c", MULTI]), Deny)
        },
        Dodge {
            env: vec![("SCRIPT", Some(MULTI.into()))],
            ..dodge(
                "kubelet",
                "the script in $(SCRIPT)",
                w(&["sh", "-c", "$(SCRIPT)"]),
                Deny,
            )
        },
        Dodge {
            env: vec![("SH", Some("/bin/bash".into()))],
            ..dodge(
                "kubelet",
                "$(SH) no-exec",
                w(&["$(SH)", "-c", NO_EXEC]),
                Flag,
            )
        },
        Dodge {
            env: vec![("SH", None)],
            ..dodge(
                "kubelet",
                "$(SH) from valueFrom",
                w(&["$(SH)", "-c", MULTI]),
                Flag,
            )
        },
        Dodge {
            env: vec![("SCRIPT", Some(MULTI.into()))],
            ..dodge(
                "kubelet",
                "exec sh -c \"$SCRIPT\" from a literal env value",
                w(&["sh", "-c", "exec sh -c \"$SCRIPT\""]),
                Deny,
            )
        },
        Dodge {
            args: w(&[
                "bash", "-o", "errexit", "-o", "pipefail", "-o", "nounset", "-x", "-c", MULTI,
            ]),
            ..dodge(
                "args",
                "args-only shell with options before -c",
                Vec::new(),
                Deny,
            )
        },
        // Padding that trips the pre-screen: the lexical scan still sees the jobs.
        dodge(
            "padding",
            "a trailing comment full of (",
            w(&["sh", "-c", &paren_comment]),
            Deny,
        ),
        dodge(
            "padding",
            "a 64 KiB comment",
            w(&["sh", "-c", &big_comment]),
            Deny,
        ),
        dodge(
            "padding",
            "a huge fd number in a harmless redirect",
            w(&["sh", "-c", &huge_fd]),
            Deny,
        ),
        dodge(
            "padding",
            "a here-document with a substituted delimiter",
            w(&["sh", "-c", &heredoc]),
            Deny,
        ),
        dodge(
            "padding",
            "nesting deeper than the parser is allowed",
            w(&["sh", "-c", &deep]),
            Deny,
        ),
        dodge(
            "padding",
            "a daemon behind padding",
            w(&["sh", "-c", &daemon_padded]),
            Deny,
        ),
        // Daemonising programs: a second process with no `&`.
        dodge(
            "daemon",
            "sshd without -D",
            w(&["sh", "-c", "/usr/sbin/sshd; exec /app/server"]),
            Deny,
        ),
        dodge(
            "daemon",
            "crond without -f",
            w(&["sh", "-c", "crond -l 2; exec /app/server"]),
            Deny,
        ),
        dodge(
            "daemon",
            "redis-server --daemonize yes",
            w(&["sh", "-c", "redis-server --daemonize yes; exec /app/server"]),
            Deny,
        ),
        dodge(
            "daemon",
            "service X start",
            w(&["sh", "-c", "service nginx start && exec /app/server"]),
            Deny,
        ),
        dodge(
            "daemon",
            "pg_ctl start",
            w(&["sh", "-c", "pg_ctl -D /data start; exec /app/server"]),
            Deny,
        ),
        // Scripts pidone cannot see.
        dodge(
            "source",
            "the script sources a file last",
            w(&["sh", "-c", "cd /srv; . /opt/start.sh"]),
            Flag,
        ),
        dodge(
            "eval",
            "eval as the final command",
            w(&["sh", "-c", "cd /srv; eval \"$START\""]),
            Flag,
        ),
        // Honest launches.
        dodge(
            "control",
            "tini -- app",
            w(&["tini", "--", "/app/server"]),
            Allow,
        ),
        dodge(
            "control",
            "su-exec nobody app",
            w(&["su-exec", "nobody", "/app/server"]),
            Allow,
        ),
        dodge(
            "control",
            "(((( in a comment, then exec app",
            w(&["sh", "-c", "# ((((\nexec /app/server"]),
            Allow,
        ),
        dodge(
            "control",
            "tini -g over a no-exec shell",
            w(&["tini", "-g", "--", "sh", "-c", NO_EXEC]),
            Allow,
        ),
        dodge(
            "control",
            "dumb-init over a no-exec shell",
            w(&["dumb-init", "sh", "-c", NO_EXEC]),
            Allow,
        ),
        dodge(
            "control",
            "nsenter -- app",
            w(&["nsenter", "-t", "1", "-m", "--", "/app/server"]),
            Allow,
        ),
        dodge(
            "control",
            "exec tini -- app",
            w(&["sh", "-c", "cd /srv && exec tini -- /app/server"]),
            Allow,
        ),
        dodge(
            "control",
            "launcher chain to app",
            w(&["env", "-i", "PATH=/bin", "nice", "-n", "5", "/app/server"]),
            Allow,
        ),
        Dodge {
            env: vec![("APP", Some("/app/server".into()))],
            ..dodge(
                "control",
                "$(APP) from a literal env value",
                w(&["$(APP)", "--port", "80"]),
                Allow,
            )
        },
        dodge(
            "control",
            "exec \"$@\" with the app in the operands",
            w(&[
                "sh",
                "-c",
                "exec \"$@\"",
                "sh",
                "/app/server",
                "--port",
                "80",
            ]),
            Allow,
        ),
        dodge(
            "control",
            "sshd in the foreground",
            w(&["sh", "-c", "ssh-keygen -A && exec /usr/sbin/sshd -D -e"]),
            Allow,
        ),
        dodge(
            "control",
            "setpriv to app",
            w(&[
                "setpriv",
                "--reuid=1000",
                "--regid=1000",
                "--init-groups",
                "--",
                "/app/server",
            ]),
            Allow,
        ),
        dodge(
            "control",
            "a here-document that mentions &",
            w(&[
                "sh",
                "-c",
                "cat <<EOF >/etc/app.conf\nrun a & b | c\nEOF\nexec /app/server",
            ]),
            Allow,
        ),
        dodge(
            "control",
            "tini over crond -f",
            w(&["tini", "--", "crond", "-f", "-l", "2"]),
            Allow,
        ),
    ];
    list.retain(|d| !d.case.is_empty());
    list
}

fn pod(d: &Dodge) -> Value {
    let mut container = json!({"name": "app", "image": "registry.example/app:1"});
    if !d.command.is_empty() {
        container["command"] = json!(d.command);
    }
    if !d.args.is_empty() {
        container["args"] = json!(d.args);
    }
    if !d.env.is_empty() {
        container["env"] = Value::Array(
            d.env
                .iter()
                .map(|(name, value)| match value {
                    Some(v) => json!({"name": name, "value": v}),
                    None => json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})})
                .collect(),
        );
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "dodge", "namespace": "apps"},
        "spec": {"containers": [container]}
    })
}

fn warnings_of(response: &Value) -> Vec<String> {
    response["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn contained() -> Arc<dyn ScriptAnalyzer> {
    let config = ContainmentConfig {
        pool: PoolConfig {
            workers: 2,
            executable: Some(PathBuf::from(env!("CARGO_BIN_EXE_pidone"))),
            ..PoolConfig::default()
        },
        ..ContainmentConfig::default()
    };
    Arc::new(
        ContainedAnalyzer::new(&ParserConfig::default(), config).expect("parser workers start"),
    )
}

/// Sends every dodge to `/mutate` and `/validate` and checks the outcome; returns failures.
async fn run_suite(api: &support::ApiServer, list: &[Dodge], label: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for d in list {
        let r = review("CREATE", &pod(d), None);
        let v = match api.review("/validate", &r).await {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{label} {}: {}: /validate: {e}", d.family, d.case));
                continue;
            }
        };
        let m = match api.review("/mutate", &r).await {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{label} {}: {}: /mutate: {e}", d.family, d.case));
                continue;
            }
        };
        let denied = v["allowed"] == false;
        let message = v["status"]["message"].as_str().unwrap_or("");
        let said: Vec<String> = warnings_of(&v).into_iter().chain(warnings_of(&m)).collect();
        let flagged = denied || !said.is_empty() || m.get("patch").is_some();
        let ok = match d.want {
            Want::Deny => denied && message.contains("[multi-process]"),
            Want::Flag => flagged,
            Want::Allow => !flagged && m["allowed"] == true,
        };
        if !ok {
            failures.push(format!(
                "{label} {}: {}: want {:?}, got allowed={} message={message:?} warnings={said:?}",
                d.family, d.case, d.want, v["allowed"]
            ));
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_mode_over_tls_sees_through_every_dodge() {
    let list = dodges();
    let count = |want: Want| list.iter().filter(|d| d.want == want).count();
    let families: std::collections::BTreeSet<&str> = list
        .iter()
        .filter(|d| d.want != Want::Allow)
        .map(|d| d.family)
        .collect();
    assert!(
        count(Want::Deny) + count(Want::Flag) >= 40,
        "too few dodges"
    );
    assert!(count(Want::Allow) >= 10, "too few honest controls");
    for family in [
        "launcher", "init", "exec", "shell", "kubelet", "padding", "daemon", "args",
    ] {
        assert!(families.contains(family), "no dodge of family {family}");
    }
    let server = TestServer::start_with(Options {
        analyzer: contained(),
        ..Options::default()
    })
    .await;
    let api = server.apiserver();
    let failures = run_suite(&api, &list, "contained").await;
    server.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        list.len(),
        failures.join("\n")
    );
}

/// A parser that never answers, as when every worker is busy for the whole queue timeout or
/// a parse runs out of time: every script comes back `unparsed`.
struct BusyParser;

impl ScriptAnalyzer for BusyParser {
    fn analyze(&self, _: Dialect, _: &str) -> Arc<ScriptVerdict> {
        Arc::new(ScriptVerdict::Unparsed(UnparsedReason::GaveUp {
            what: "no parser worker available within the queue timeout".into(),
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_parser_never_admits_a_multi_launch() {
    let list: Vec<Dodge> = dodges()
        .into_iter()
        .filter(|d| d.want == Want::Deny)
        .collect();
    assert!(list.len() >= 30, "{}", list.len());
    let server = TestServer::start_with(Options {
        analyzer: Arc::new(BusyParser),
        ..Options::default()
    })
    .await;
    let api = server.apiserver();
    let failures = run_suite(&api, &list, "busy").await;
    server.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        list.len(),
        failures.join("\n")
    );
}
