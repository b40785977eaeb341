//! Rules (docs/design.md section 2): from one container's launch to findings, with the action enforce
//! mode takes and, where a fix cannot apply, the fallback to `warn` and why.

use crate::engine::argv::{ArgvField, LaunchAnalysis, Role, basename, is_signal_deaf};
use crate::engine::config::{Action, Config};
use crate::engine::evaluation::{
    ContainerReport, EvalContext, Evaluation, Finding, NativeSidecarSupport,
};
use crate::engine::launch::LaunchClass;
use crate::engine::rules::RuleId;
use crate::engine::side_agents::Confidence;
use crate::engine::workload::{ContainerSpec, Section, Workload};

/// Adds the findings of one container to `eval`.
pub fn collect(
    config: &Config,
    w: &Workload<'_>,
    c: &ContainerSpec<'_>,
    report: &ContainerReport,
    long_running: bool,
    ctx: &EvalContext<'_>,
    eval: &mut Evaluation,
) {
    let a = &report.analysis;
    let name = &c.name;
    let regular_init = c.section == Section::InitContainers && !c.native_sidecar;
    let assumed = if a.from_args {
        " (the shell is in args: pidone assumed the image has no ENTRYPOINT)"
    } else {
        ""
    };
    // Message and fix are worded only for the findings the caller words (`EvalContext::words`).
    let words = ctx.words;
    let mut push = |rule: RuleId,
                    message: &dyn Fn() -> String,
                    fix: &dyn Fn() -> String,
                    fallback: Option<String>| {
        let mut action = config.action(rule);
        let fallback = if action == Action::Mutate {
            fallback
        } else {
            None
        };
        if fallback.is_some() {
            action = Action::Warn;
        }
        let (message, fix) = if words.cover(action) {
            (message(), fix())
        } else {
            (String::new(), String::new())
        };
        eval.findings.push(Finding {
            container: name.to_string(),
            section: c.section,
            pointer: c.pointer.to_string(),
            rule,
            action,
            message,
            fix,
            fallback,
            confidence: None,
            evidence: Vec::new(),
        });
    };

    if !regular_init {
        match a.class {
            LaunchClass::NoExec if long_running => {
                let from_image = a.from_image.is_some()
                    && a.shell.as_ref().is_some_and(|s| {
                        matches!(
                            s.script_slot.field,
                            ArgvField::ImageEntrypoint | ArgvField::ImageCmd
                        )
                    });
                let in_env_split = a
                    .shell
                    .as_ref()
                    .is_some_and(|s| s.script_slot.field == ArgvField::EnvSplit);
                let from_config_map = report.scripts.last().map(|s| s.source.clone());
                let fallback = if let Some(source) = from_config_map {
                    Some(format!(
                        "the script is in {source}, which pidone does not rewrite"
                    ))
                } else if from_image {
                    Some("the script is in the image's ENTRYPOINT/CMD, which pidone does not rewrite".to_string())
                } else if in_env_split {
                    Some(
                        "the script is inside an `env -S` string, which pidone does not rewrite"
                            .to_string(),
                    )
                } else if let Some(blocker) = &a.exec_blocker {
                    Some(blocker.clone())
                } else {
                    a.exec_insertions.is_empty().then(|| {
                        "the final command runs in a subshell, pipeline or function, where exec cannot be inserted".to_string()
                    })
                };
                let deaf = a.final_program.as_deref().is_some_and(is_signal_deaf);
                let fix = || {
                    if deaf {
                        "exec alone would leave a program with no SIGTERM handler at PID 1: put an init at PID 1 (pidone.io/inject-init: \"true\"), or run a program that handles SIGTERM".to_string()
                    } else {
                        format!(
                            "put `exec` before the final command so the program replaces the shell as PID 1, under every shell{}",
                            parent_fix(a)
                        )
                    }
                };
                push(
                    RuleId::ShellNoExec,
                    &|| format!("container {name:?}: {}{assumed}", a.detail),
                    &fix,
                    fallback,
                );
            }
            LaunchClass::Multi => push(
                RuleId::MultiProcess,
                &|| {
                    format!(
                        "container {name:?}: {}; SIGTERM does not reach all of them{assumed}",
                        a.detail
                    )
                },
                &|| {
                    "run each long-running program in its own container (side agents as native sidecars: initContainers with restartPolicy: Always), or put an init at PID 1 (pidone.io/inject-init: \"true\")".into()
                },
                None,
            ),
            LaunchClass::Resident if long_running => push(
                RuleId::ShellResident,
                &|| {
                    format!(
                        "container {name:?}: {}{}{assumed}",
                        a.detail,
                        if a.through.iter().any(|t| !matches!(t.role, Role::Execs)) {
                            ""
                        } else {
                            "; a shell at PID 1 ignores SIGTERM and reaps no zombies"
                        }
                    )
                },
                &|| {
                    "move the logic into the program or a sidecar, or put an init at PID 1 (pidone.io/inject-init: \"true\")".into()
                },
                None,
            ),
            LaunchClass::Script => push(
                RuleId::ScriptEntrypoint,
                &|| {
                    format!(
                        "container {name:?}: {}, whose text pidone cannot see; if it does not end in exec, its shell stays PID 1",
                        a.detail
                    )
                },
                &|| {
                    "make sure the script ends with `exec \"$@\"` or `exec <program>`, or put an init at PID 1 (pidone.io/inject-init: \"true\")".into()
                },
                None,
            ),
            LaunchClass::Unparsed if long_running => push(
                RuleId::ShellUnparsed,
                &|| format!("container {name:?}: {}", a.detail),
                &|| {
                    "simplify the script (or move it into the image), or put an init at PID 1 (pidone.io/inject-init: \"true\")".into()
                },
                None,
            ),
            _ => {}
        }
        if long_running
            && matches!(a.class, LaunchClass::Direct | LaunchClass::Exec)
            && let Some(pid1) = &a.pid1
            && is_signal_deaf(pid1)
        {
            push(
                RuleId::SignalDeafPid1,
                &|| {
                    format!(
                        "container {name:?}: {} runs as PID 1 and installs no SIGTERM handler, so the kernel drops SIGTERM and the pod waits out its grace period",
                        basename(pid1)
                    )
                },
                &|| {
                    "run a program that handles SIGTERM, or put an init at PID 1 (pidone.io/inject-init: \"true\")".into()
                },
                None,
            );
        }
    }

    if let Some(agent) = &report.side_agent {
        let fallback = match &ctx.native_sidecars {
            NativeSidecarSupport::Supported => match report.as_sidecar {
                Some(
                    class @ (LaunchClass::Multi
                    | LaunchClass::Resident
                    | LaunchClass::NoExec
                    | LaunchClass::Unparsed),
                ) => Some(format!(
                    "as a native sidecar its launch would be {class}: change its command to run the agent alone (exec), then it can move"
                )),
                _ => None,
            },
            NativeSidecarSupport::Unsupported(why) => {
                Some(format!("native sidecars are not available: {why}"))
            }
        };
        let job = if w.finite {
            "; in a Job pod it keeps the pod running after the main container ends"
        } else {
            ""
        };
        let main = &agent.main;
        let move_it = "move it to initContainers with restartPolicy: Always (a native sidecar, Kubernetes 1.29+): it starts first and stops last";
        let message = || {
            let evidence = agent.summary();
            match agent.confidence {
                Confidence::Certain => format!(
                    "container {name:?} ({}) is a side agent next to the main container {main:?}{job} [certain: {evidence}]",
                    c.image
                ),
                Confidence::Likely => format!(
                    "container {name:?} ({}) looks like a side agent next to the main container {main:?}{job} [likely: {evidence}]",
                    c.image
                ),
            }
        };
        let fix = || match agent.confidence {
            Confidence::Certain => move_it.to_string(),
            Confidence::Likely => format!(
                "if it is one, {move_it}; to have pidone move it, confirm it on the pod template: pidone.io/side-agents: \"{name}\""
            ),
        };
        push(RuleId::SideAgent, &message, &fix, fallback);
    }

    if let Some(hack) = &report.stop_hack {
        push(
            RuleId::SidecarStopHack,
            &|| format!("container {name:?} stops its sidecar by hand ({hack})"),
            &|| {
                "make the sidecar a native sidecar (initContainers with restartPolicy: Always): the kubelet stops it when the Job's containers end".into()
            },
            None,
        );
    }
    // Side-agent findings carry their confidence and evidence; a `likely` one is never acted
    // on beyond a warning.
    if let Some(agent) = &report.side_agent
        && let Some(f) = eval
            .findings
            .iter_mut()
            .rev()
            .find(|f| f.pointer == *c.pointer && f.rule == RuleId::SideAgent)
    {
        f.confidence = Some(agent.confidence);
        // Worded as its message was: by the action it was found with.
        if words.cover(f.action) {
            f.evidence = agent.evidence_text();
        }
        if agent.confidence == Confidence::Likely && f.action > Action::Warn {
            f.action = Action::Warn;
            f.fallback = None;
        }
    }

    cap_stopgap(eval, name, a);
}

/// Several programs under an init that signals the whole process group (pidone's own init
/// injection with `-g`, `tini -g`, dumb-init): the stopgap is in place, so the
/// `multi-process` finding stays but warns instead of denying (docs/design.md section 2).
fn cap_stopgap(eval: &mut Evaluation, container: &str, a: &LaunchAnalysis) {
    if a.class != LaunchClass::Multi || !a.under_group_init() {
        return;
    }
    for f in eval.findings.iter_mut().rev() {
        if f.container != container {
            break;
        }
        if f.rule == RuleId::MultiProcess && f.action == Action::Deny {
            f.action = Action::Warn;
        }
    }
}

/// For launches through `su`/`sudo`/`runuser`, which stay as the parent of the shell: the
/// launchers that exec instead.
fn parent_fix(a: &LaunchAnalysis) -> String {
    match a.parent_launcher() {
        Some(name @ ("su" | "runuser" | "sudo")) => format!(
            "; {name} stays PID 1 as the shell's parent: use `setpriv --reuid=USER --regid=GROUP --init-groups --` or `su-exec USER`, which exec the program"
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use crate::engine::evaluation::Words;
    use serde_json::json;
    use std::sync::Arc;

    /// What a finding tells a planner: everything but its words.
    type Steering = (RuleId, Action, String, String, bool, Option<Confidence>);

    fn steering(eval: &Evaluation) -> Vec<Steering> {
        eval.findings
            .iter()
            .map(|f| {
                (
                    f.rule,
                    f.action,
                    f.container.clone(),
                    f.pointer.clone(),
                    f.fallback.is_some(),
                    f.confidence,
                )
            })
            .collect()
    }

    #[test]
    fn findings_steer_the_same_however_many_are_worded() {
        let mut config = Config::default();
        config.init_injection.enabled = false;
        let engine = Engine::new(Arc::new(config)).unwrap();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"containers": [
            {"name": "web", "image": "registry.example/web:1", "ports": [{"containerPort": 80}],
             "command": ["sh", "-c", "setup\nweb --port 80"]},
            {"name": "log-shipper", "image": "fluent/fluent-bit:3.1"},
            {"name": "pair", "image": "busybox", "command": ["sh", "-c", "a & b & wait -n"]},
            {"name": "idle", "image": "busybox", "command": ["sleep", "infinity"]},
            {"name": "loop", "image": "busybox",
             "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]},
            {"name": "reloader", "image": "registry.example/reloader:1"}
        ]}});
        for native_sidecars in [
            NativeSidecarSupport::Supported,
            NativeSidecarSupport::Unsupported("an old cluster".into()),
        ] {
            let evaluate = |words: Words| {
                let ctx = EvalContext {
                    native_sidecars: native_sidecars.clone(),
                    words,
                    ..EvalContext::default()
                };
                engine.evaluate_parsed(&pod, &ctx).unwrap().unwrap()
            };
            let all = evaluate(Words::All);
            assert!(all.findings.len() >= 4, "{:?}", steering(&all));
            assert!(
                all.findings
                    .iter()
                    .all(|f| !f.message.is_empty() && !f.fix.is_empty())
            );
            assert!(all.findings.iter().any(|f| !f.evidence.is_empty()));
            let none = evaluate(Words::None);
            assert_eq!(steering(&all), steering(&none));
            assert!(
                none.findings
                    .iter()
                    .all(|f| f.message.is_empty() && f.fix.is_empty() && f.evidence.is_empty())
            );
            // The mutating webhook's choice: every finding that ends as `mutate` has the words
            // of the fully worded evaluation; the others may go without.
            let mutate_only = evaluate(Words::MutateOnly);
            assert_eq!(steering(&all), steering(&mutate_only));
            for (worded, f) in all.findings.iter().zip(&mutate_only.findings) {
                if f.action == Action::Mutate {
                    assert_eq!(
                        (&f.message, &f.fix, &f.evidence),
                        (&worded.message, &worded.fix, &worded.evidence)
                    );
                }
            }
            let (mutating, others): (Vec<&Finding>, Vec<&Finding>) = mutate_only
                .findings
                .iter()
                .partition(|f| f.action == Action::Mutate);
            assert!(
                !mutating.is_empty() && !others.is_empty(),
                "both kinds present: {:?}",
                steering(&all)
            );
            assert!(
                others
                    .iter()
                    .any(|f| f.message.is_empty() && f.evidence.is_empty())
            );
        }
    }
}
