//! Launches written to dodge detection: each is classified right, or flagged, never clean.
//! "Clean" means a class with no finding for a long-running container (direct or exec with a
//! signal-handling program).

use pidone::engine::evaluate::EvalContext;
use pidone::engine::script::InProcessAnalyzer;
use pidone::engine::{Config, Engine};
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
        "a shell running a shell",
        &["sh", "-c", "exec bash -c 'echo; /app/server'"],
        &[],
        "exec",
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
    let engine = Engine::new(Arc::new(Config::default()), Arc::new(InProcessAnalyzer)).unwrap();
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
