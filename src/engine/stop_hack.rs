//! `sidecar-stop-hack`: a Job container that stops its sidecar by hand. It takes a real hack: a
//! sidecar in `containers` (a native sidecar is stopped by the kubelet) and a stop signal, that
//! is a quit endpoint, `pkill`/`killall`, `kill` across a shared process namespace, or a file
//! the sidecar's own command watches for. Writing a log file that a sidecar tails is no signal.

use crate::engine::argv::basename;
use crate::engine::script::ScriptFacts;
use crate::engine::side_agents::{Candidate, under_mount};
use crate::engine::workload::Section;
use std::collections::HashMap;

/// Commands that wait for a file to appear: `[ -f F ]`, `test -e F`, `[[ -f F ]]`,
/// `inotifywait F`, `stat F`, `ls F`.
const WATCHERS: &[&str] = &["[", "test", "[[", "inotifywait", "stat", "ls"];

/// Where a container of `containers` waits for a file: its position in the pod, the mount the
/// file is seen through and the watching command (each a position in its list). Ordered as
/// the containers, mounts and commands are, so the first watcher found is the one the
/// message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Watch {
    container: usize,
    mount: usize,
    command: usize,
}

/// The first watcher of something, and the first from another container: whichever container
/// asks, the first watcher that is not itself is one of the two.
#[derive(Debug, Default, Clone, Copy)]
struct FirstTwo {
    first: Option<Watch>,
    other: Option<Watch>,
}

impl FirstTwo {
    /// Watches arrive in order.
    fn note(&mut self, w: Watch) {
        match self.first {
            None => self.first = Some(w),
            Some(f) if self.other.is_none() && f.container != w.container => self.other = Some(w),
            Some(_) => {}
        }
    }

    /// The first watch of a container other than `me`.
    fn not_of(&self, me: usize) -> Option<Watch> {
        [self.first, self.other]
            .into_iter()
            .flatten()
            .find(|w| w.container != me)
    }
}

/// The sidecars of a finite pod, indexed once, so that checking every container of the pod
/// costs time linear in the pod's size instead of comparing containers pairwise.
pub struct StopHacks<'x> {
    candidates: &'x [Candidate<'x, 'x>],
    /// The first two containers in `containers`: the first other than any one is among them.
    in_containers: [Option<usize>; 2],
    /// Files watched by `(volume, path below the mount)`; the path starts with `/` or is empty.
    files: HashMap<(&'x str, &'x str), FirstTwo>,
    /// Volumes whose mount point a container watches as a whole (`inotifywait /dir`).
    mounts: HashMap<&'x str, FirstTwo>,
}

impl<'x> StopHacks<'x> {
    pub fn new(candidates: &'x [Candidate<'x, 'x>]) -> StopHacks<'x> {
        let mut index = StopHacks {
            candidates,
            in_containers: [None, None],
            // About one watched file per container, fewer watched mounts.
            files: HashMap::with_capacity(candidates.len()),
            mounts: HashMap::new(),
        };
        let sidecars = candidates
            .iter()
            .enumerate()
            .filter(|(_, s)| s.spec.section == Section::Containers);
        for (container, s) in sidecars {
            if let Some(slot) = index.in_containers.iter_mut().find(|c| c.is_none()) {
                *slot = Some(container);
            }
            for (mount, m) in s.spec.mounts.iter().enumerate() {
                let (volume, theirs) = (m.volume, m.path.trim_end_matches('/'));
                for (command, argv) in s.commands.iter().enumerate() {
                    let Some((program, operands)) = argv.split_first() else {
                        continue;
                    };
                    let program = basename(program);
                    if !WATCHERS.contains(&program) {
                        continue;
                    }
                    let watch = Watch {
                        container,
                        mount,
                        command,
                    };
                    for a in operands {
                        if let Some(below) = a.strip_prefix(theirs) {
                            index.files.entry((volume, below)).or_default().note(watch);
                        }
                        if program == "inotifywait" && a.trim_end_matches('/') == theirs {
                            index.mounts.entry(volume).or_default().note(watch);
                        }
                    }
                }
            }
        }
        index
    }

    /// The first container in `containers` other than `me`.
    fn first_other(&self, me: usize) -> Option<&'x Candidate<'x, 'x>> {
        self.in_containers
            .iter()
            .flatten()
            .find(|&&i| i != me)
            .and_then(|&i| self.candidates.get(i))
    }

    /// The hack container `me` uses to stop a sidecar, described for the message.
    pub fn of(
        &self,
        me: usize,
        facts: Option<&ScriptFacts>,
        share_process_namespace: bool,
    ) -> Option<String> {
        let facts = facts?;
        let c = self.candidates.get(me)?;
        let first = self.first_other(me)?;
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
            for m in &c.spec.mounts {
                let (volume, mount) = (m.volume, m.path);
                if !under_mount(path, mount) {
                    continue;
                }
                let below = &path[mount.trim_end_matches('/').len()..];
                let file = self.files.get(&(volume, below)).and_then(|w| w.not_of(me));
                let whole = self.mounts.get(volume).and_then(|w| w.not_of(me));
                if let Some(w) = file.into_iter().chain(whole).min()
                    && let Some(s) = self.candidates.get(w.container)
                    && let Some(argv) = s.commands.get(w.command)
                {
                    return Some(format!(
                        "touches {path} on volume {volume:?}, which container {:?} waits for (`{}`)",
                        s.spec.name,
                        argv.join(" ")
                    ));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RuleId;
    use crate::engine::script::Ending;
    use crate::engine::side_agents::tests::evaluate_with;
    use crate::engine::workload::{ContainerSpec, VolumeMount};
    use serde_json::{Value, json};
    use std::time::{Duration, Instant};

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

    /// `n` containers of a Job on one shared volume: container `i` touches `/signal/done-i`,
    /// which container `i - 1` waits for (the first container's file nobody watches).
    struct Crowd {
        specs: Vec<ContainerSpec<'static>>,
        commands: Vec<Vec<Vec<String>>>,
        facts: Vec<ScriptFacts>,
    }

    fn crowd(n: usize) -> Crowd {
        let specs = (0..n)
            .map(|i| ContainerSpec {
                // A spec borrows its name from the object; these live as long as the test.
                name: Box::leak(format!("c{i}").into_boxed_str()),
                section: Section::Containers,
                index: i,
                pointer: format!("/spec/template/spec/containers/{i}").into(),
                image: "registry.example/batch:1",
                command: None,
                args: None,
                native_sidecar: false,
                env: Default::default(),
                env_from: false,
                working_dir: None,
                mounts: [("data", "/signal"), ("scratch", "/tmp")]
                    .map(|(volume, path)| VolumeMount {
                        volume,
                        path,
                        sub_path: None,
                    })
                    .to_vec()
                    .into(),
                has_ports: false,
            })
            .collect();
        let commands = (0..n)
            .map(|i| {
                vec![
                    vec!["/app/run".to_string()],
                    ["[", "!", "-f", &format!("/signal/done-{}", i + 1), "]"]
                        .map(String::from)
                        .to_vec(),
                ]
            })
            .collect();
        let facts = (0..n)
            .map(|i| ScriptFacts {
                ending: Ending::Nothing,
                background: Vec::new(),
                endless_loop: false,
                signal_trap: false,
                supervisor: None,
                stop_hack: None,
                touched: vec![format!("/tmp/started-{i}"), format!("/signal/done-{i}")],
                last: None,
                traps: Vec::new(),
                commands: Vec::new(),
            })
            .collect();
        Crowd {
            specs,
            commands,
            facts,
        }
    }

    /// Indexes the crowd and checks every container; returns the time it took and the hacks.
    fn check_all(crowd: &Crowd) -> (Duration, Vec<Option<String>>) {
        let candidates: Vec<Candidate<'_, '_>> = crowd
            .specs
            .iter()
            .zip(&crowd.commands)
            .map(|(spec, commands)| Candidate {
                spec,
                commands,
                endless_loop: false,
                repository: crate::engine::side_agents::RepositoryPath::of(""),
            })
            .collect();
        let started = Instant::now();
        let index = StopHacks::new(&candidates);
        let hacks = (0..candidates.len())
            .map(|i| index.of(i, crowd.facts.get(i), false))
            .collect();
        (started.elapsed(), hacks)
    }

    /// Thousands of containers: every one is checked against every other's watched files, in
    /// time linear in their number (four times the containers, about four times the time; a
    /// pairwise comparison takes sixteen).
    #[test]
    fn thousands_of_containers_are_checked_in_linear_time() {
        const N: usize = 4_000;
        let (small, large) = (crowd(N), crowd(4 * N));
        let (_, hacks) = check_all(&large);
        assert_eq!(hacks[0], None);
        for (i, hack) in hacks.iter().enumerate().skip(1) {
            let hack = hack.as_deref().unwrap_or_default();
            let expected = format!(
                "touches /signal/done-{i} on volume \"data\", which container \"c{}\" waits for (`[ ! -f /signal/done-{i} ]`)",
                i - 1
            );
            assert_eq!(hack, expected);
        }
        // The fastest of a few interleaved runs: the machine is shared.
        let (mut t_small, mut t_large) = (Duration::MAX, Duration::MAX);
        for _ in 0..5 {
            t_small = t_small.min(check_all(&small).0);
            t_large = t_large.min(check_all(&large).0);
        }
        let ratio = t_large.as_secs_f64() / t_small.as_secs_f64().max(1e-9);
        eprintln!(
            "{N} containers: {t_small:?}; {}: {t_large:?}; ratio {ratio:.1}",
            4 * N
        );
        assert!(ratio < 8.0, "{t_small:?} -> {t_large:?}: ratio {ratio:.1}");
    }
}
