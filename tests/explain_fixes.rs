//! The fixes `pidone explain` tells people to make by hand must pass `pidone audit` themselves:
//! advice that trades one finding for another (`exec sleep infinity` is still a signal-deaf
//! PID 1; a trap-and-wait shell is a resident shell) is worse than none.

use pidone::engine::RuleId;
use pidone::engine::explain::explain;
use std::process::Command;

/// The `command:` lines of the "Fix by hand" part of a rule's explanation.
fn fix_commands(text: &str) -> Vec<String> {
    let Some(at) = text.find("Fix by hand") else {
        return Vec::new();
    };
    let rest = &text[at..];
    let end = rest.find("\n\n").unwrap_or(rest.len());
    rest[..end]
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("command:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn hand_fixes_pass_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let mut audited = 0;
    for rule in [RuleId::SignalDeafPid1, RuleId::ShellNoExec] {
        let commands = fix_commands(&explain(rule));
        assert!(!commands.is_empty(), "{rule}: no command in its fix");
        for command in commands {
            let manifest = format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: fixed\nspec:\n  containers:\n  - name: app\n    image: registry.example/app:1\n    {command}\n"
            );
            let path = dir.path().join(format!("{rule}-{audited}.yaml"));
            std::fs::write(&path, &manifest).unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_pidone"))
                .args(["audit", "--fail-on", "warn", "--format", "json"])
                .arg(&path)
                .output()
                .expect("pidone runs");
            let report: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                    panic!("{rule}: {e}: {}", String::from_utf8_lossy(&out.stdout))
                });
            assert_eq!(
                report["findings"],
                serde_json::json!([]),
                "{rule}: the fix by hand `{command}` has findings"
            );
            assert!(
                out.status.success(),
                "{rule}: `{command}`: {:?}",
                out.status
            );
            audited += 1;
        }
    }
    assert!(audited >= 2);
}
