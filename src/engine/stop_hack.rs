//! `sidecar-stop-hack`: a Job container that stops its sidecar by hand. It takes a real hack: a
//! sidecar in `containers` (a native sidecar is stopped by the kubelet) and a stop signal, that
//! is a quit endpoint, `pkill`/`killall`, `kill` across a shared process namespace, or a file
//! the sidecar's own command watches for. Writing a log file that a sidecar tails is no signal.

use crate::engine::argv::basename;
use crate::engine::script::ScriptFacts;
use crate::engine::side_agents::{Candidate, under_mount};
use crate::engine::workload::Section;

/// Commands that wait for a file to appear: `[ -f F ]`, `test -e F`, `[[ -f F ]]`,
/// `inotifywait F`, `stat F`, `ls F`.
const WATCHERS: &[&str] = &["[", "test", "[[", "inotifywait", "stat", "ls"];

/// The hack container `me` uses to stop a sidecar, described for the message.
pub fn stop_hack(
    me: usize,
    candidates: &[Candidate<'_, '_>],
    facts: Option<&ScriptFacts>,
    share_process_namespace: bool,
) -> Option<String> {
    let facts = facts?;
    let c = candidates.get(me)?;
    let sidecars: Vec<&Candidate<'_, '_>> = candidates
        .iter()
        .enumerate()
        .filter(|(i, s)| *i != me && s.spec.section == Section::Containers)
        .map(|(_, s)| s)
        .collect();
    let first = sidecars.first()?;
    if let Some(hack) = &facts.stop_hack {
        return Some(format!(
            "{hack}, while {:?} runs in containers",
            first.spec.name
        ));
    }
    if share_process_namespace
        && let Some(kill) = facts
            .commands
            .iter()
            .find(|a| a.first().is_some_and(|p| basename(p) == "kill") && a.len() > 1)
    {
        return Some(format!(
            "`{}` across the shared process namespace, while {:?} runs in containers",
            kill.join(" "),
            first.spec.name
        ));
    }
    for path in &facts.touched {
        for &(volume, mount) in &c.spec.mounts {
            if !under_mount(path, mount) {
                continue;
            }
            let rel = &path[mount.trim_end_matches('/').len()..];
            for s in &sidecars {
                for &(_, theirs) in s.spec.mounts.iter().filter(|&&(v, _)| v == volume) {
                    let there = format!("{}{rel}", theirs.trim_end_matches('/'));
                    if let Some(watch) = watches(s.commands, &there, theirs) {
                        return Some(format!(
                            "touches {path} on volume {volume:?}, which container {:?} waits for (`{watch}`)",
                            s.spec.name
                        ));
                    }
                }
            }
        }
    }
    None
}

/// The command among `commands` that watches `path` (or, for `inotifywait`, its mount).
fn watches(commands: &[Vec<String>], path: &str, mount: &str) -> Option<String> {
    commands.iter().find_map(|argv| {
        let program = basename(argv.first()?);
        if !WATCHERS.contains(&program) {
            return None;
        }
        let hit = argv[1..].iter().any(|a| {
            a == path
                || (program == "inotifywait"
                    && (a.trim_end_matches('/') == mount.trim_end_matches('/')))
        });
        hit.then(|| argv.join(" "))
    })
}

#[cfg(test)]
mod tests {
    use crate::engine::RuleId;
    use crate::engine::side_agents::tests::evaluate_with;
    use serde_json::{Value, json};

    fn hacks(object: &Value) -> Vec<String> {
        evaluate_with("", object)
            .findings
            .iter()
            .filter(|f| f.rule == RuleId::SidecarStopHack)
            .map(|f| format!("{}: {}", f.container, f.message))
            .collect()
    }

    fn job(containers: Value, init: Value) -> Value {
        json!({"kind": "Job", "metadata": {"name": "myjob"}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": containers, "initContainers": init,
            "volumes": [{"name": "data", "emptyDir": {}}]}}}})
    }

    /// kubernetes/website content/en/examples/application/job/job-sidecar.yaml: the native
    /// sidecar Job of the Kubernetes docs has no side-agent or stop-hack finding.
    #[test]
    fn the_kubernetes_docs_native_sidecar_job_is_clean() {
        let j = job(
            json!([{"name": "myjob", "image": "alpine:latest",
                "command": ["sh", "-c", "echo \"logging\" > /opt/logs.txt"],
                "volumeMounts": [{"name": "data", "mountPath": "/opt"}]}]),
            json!([{"name": "logshipper", "image": "alpine:latest", "restartPolicy": "Always",
                "command": ["sh", "-c", "tail -F /opt/logs.txt"],
                "volumeMounts": [{"name": "data", "mountPath": "/opt"}]}]),
        );
        let e = evaluate_with("", &j);
        let rules: Vec<RuleId> = e.findings.iter().map(|f| f.rule).collect();
        // (`sh -c 'tail -F ...'` keeps a shell at PID 1: a launch finding, not a sidecar one.)
        assert_eq!(rules, [RuleId::ShellNoExec], "{:?}", e.findings);
    }

    /// kubernetes/website content/en/examples/application/job/job-sidecar-legacy.yaml: the
    /// log shipper in `containers` is a side agent, but writing the log it tails is no stop.
    #[test]
    fn writing_a_file_a_sidecar_tails_is_no_stop_signal() {
        let j = job(
            json!([{"name": "myjob", "image": "alpine:latest",
                "command": ["sh", "-c", "echo \"logging\" > /opt/logs.txt"],
                "volumeMounts": [{"name": "data", "mountPath": "/opt"}]},
                {"name": "logshipper", "image": "alpine:latest",
                "command": ["sh", "-c", "tail -F /opt/logs.txt"],
                "volumeMounts": [{"name": "data", "mountPath": "/opt"}]}]),
            json!([]),
        );
        assert_eq!(hacks(&j), Vec::<String>::new());
        let e = evaluate_with("", &j);
        assert_eq!(e.findings.len(), 1, "{:?}", e.findings);
        assert_eq!(e.findings[0].rule, RuleId::SideAgent);
        assert_eq!(e.findings[0].container, "logshipper");
    }

    fn main_touching(script: &str) -> Value {
        json!({"name": "main", "image": "registry.example/batch:1", "command": ["sh", "-c", script],
               "volumeMounts": [{"name": "data", "mountPath": "/signal"}]})
    }

    fn sidecar_waiting(script: &str, mount: &str) -> Value {
        json!({"name": "proxy", "image": "registry.example/proxy:1", "command": ["sh", "-c", script],
               "volumeMounts": [{"name": "data", "mountPath": mount}]})
    }

    #[test]
    fn a_file_the_sidecar_waits_for_is_a_stop_signal() {
        for (watch, mount) in [
            (
                "/proxy & while [ ! -f /signal/done ]; do sleep 1; done; kill %1",
                "/signal",
            ),
            (
                "/proxy & until test -e /lifecycle/done; do sleep 1; done; kill %1",
                "/lifecycle",
            ),
            (
                "/proxy & while [[ ! -f /lifecycle/done ]]; do sleep 1; done; kill %1",
                "/lifecycle",
            ),
            (
                "/proxy & inotifywait -e create /lifecycle; kill %1",
                "/lifecycle",
            ),
        ] {
            let j = job(
                json!([
                    main_touching("/app/run; touch /signal/done"),
                    sidecar_waiting(watch, mount)
                ]),
                json!([]),
            );
            let got = hacks(&j);
            assert_eq!(got.len(), 1, "{watch}: {got:?}");
            assert!(got[0].starts_with("main: "), "{got:?}");
            assert!(
                got[0].contains("which container \"proxy\" waits for"),
                "{got:?}"
            );
        }
    }

    #[test]
    fn touching_a_file_nobody_watches_is_no_stop_signal() {
        for sidecar in [
            sidecar_waiting("/proxy --port 5432", "/signal"),
            // Watches another file.
            sidecar_waiting(
                "/proxy & while [ ! -f /signal/other ]; do sleep 1; done",
                "/signal",
            ),
            // Does not share the volume.
            json!({"name": "proxy", "image": "registry.example/proxy:1",
                   "command": ["sh", "-c", "while [ ! -f /signal/done ]; do sleep 1; done"]}),
        ] {
            let j = job(
                json!([main_touching("/app/run; touch /signal/done"), sidecar]),
                json!([]),
            );
            assert_eq!(hacks(&j), Vec::<String>::new());
        }
    }

    #[test]
    fn quit_endpoints_and_kills_need_a_sidecar_in_containers() {
        let quit = main_touching("/app/run; curl -X POST localhost:15020/quitquitquit");
        let proxy = json!({"name": "istio-proxy", "image": "istio/proxyv2:1.22", "args": ["proxy", "sidecar"]});
        // Alone: nothing to stop in the pod as written.
        assert!(hacks(&job(json!([quit.clone()]), json!([]))).is_empty());
        // The sidecar is native: the kubelet stops it, the curl is harmless.
        let mut native = proxy.clone();
        native["restartPolicy"] = json!("Always");
        assert!(hacks(&job(json!([quit.clone()]), json!([native]))).is_empty());
        // A sidecar in containers: a hack.
        assert_eq!(
            hacks(&job(json!([quit, proxy.clone()]), json!([]))).len(),
            1
        );
        // `kill` reaches another container only across a shared process namespace.
        let kill = main_touching("/app/run; kill -TERM $(cat /signal/proxy.pid)");
        let mut j = job(json!([kill, proxy]), json!([]));
        assert!(hacks(&j).is_empty());
        j["spec"]["template"]["spec"]["shareProcessNamespace"] = json!(true);
        let got = hacks(&j);
        assert_eq!(got.len(), 1);
        assert!(got[0].contains("shared process namespace"), "{got:?}");
    }

    #[test]
    fn long_running_pods_have_no_stop_hacks() {
        let mut j = job(
            json!([main_touching("/app/run; curl -X POST localhost:15020/quitquitquit"),
                   {"name": "istio-proxy", "image": "istio/proxyv2:1.22"}]),
            json!([]),
        );
        j["kind"] = json!("Deployment");
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        assert!(hacks(&j).is_empty());
    }
}
