//! `pidone explain RULE`: why each rule exists, an example, and the fix by hand.

use crate::engine::rules::RuleId;

const PID1: &str = "\
Why PID 1 matters: the kernel gives the first process of a container two duties no one else
has. It must handle signals itself: SIGTERM sent to a PID 1 that installed no handler is
dropped. And it must reap orphaned children, or zombies pile up until the pod runs out of PIDs.
When a pod stops, the kubelet sends SIGTERM to PID 1, waits terminationGracePeriodSeconds
(30 s by default), then sends SIGKILL: a program that never saw SIGTERM loses in-flight work.";

/// Where pidone acts on a finding and what a user sees (DESIGN section 5.1).
pub const WHERE: &str = "\
Where pidone acts, and what you see:
- Pods: fixes land in each Pod when it is created, whoever creates it (a ReplicaSet, a Job, a
  StatefulSet, an operator, you). The Pod's pidone.io/mutations annotation says what changed.
  Pods a controller creates show pidone's denial as a FailedCreate event on that controller.
- Workloads you apply (Deployment, StatefulSet, DaemonSet, Job, CronJob...): checked when
  applied. Enforce mode denies `deny` findings and warns about fixable ones, leaving the
  object as written (kubectl: `Warning: <rule> (fixed in its Pods): ...`); audit mode warns
  `(audit: would ...)`. With mutations.workloads: true the template itself is patched on
  CREATE, which GitOps tools (Argo CD, Flux) show as drift.
- Objects a controller owns (a Deployment's ReplicaSets, a CronJob's Jobs, anything whose
  ownerReference says controller: true) are never patched or denied: their controller compares
  them with its template, their owner was checked when it was applied, and their Pods are
  checked when created.
- Mode off (or an exempt namespace): nothing is checked, patched or denied.
- `pidone fix` rewrites the manifests you keep, templates included: the lasting fix.";

/// The one-line summary of a rule, for tables and SARIF.
pub fn summary(rule: RuleId) -> &'static str {
    rule.info().summary
}

/// The full explanation shown by `pidone explain`.
pub fn explain(rule: RuleId) -> String {
    let body = match rule {
        RuleId::ShellNoExec => "\
A wrapper shell such as `sh -c 'setup; app'` may keep the shell at PID 1 with the app as its
child. What happens depends on the shell (measured in PID namespaces with dash 0.5.12, bash 5.2
and busybox 1.35): dash (Debian's and Ubuntu's /bin/sh) never execs the final command itself,
so it stays PID 1, ignores the kubelet's SIGTERM, and the app is SIGKILLed after the grace
period. bash 5.1 and later exec a final simple command themselves, unless it has a redirect,
sits inside `{ }`, `if`, `case`, a subshell or a function, or follows an EXIT trap; busybox
sh execs it when no newline follows it in the script and no trap has an action. `exec` makes
every shell hand PID 1 to the app: harmless where the shell would have done it anyway.

Example:
  command: [sh, -c, 'envsubst < /t/app.tmpl > /etc/app.conf; /app/server']

Fix by hand: exec the final command, so the app replaces the shell and becomes PID 1:
  command: [sh, -c, 'envsubst < /t/app.tmpl > /etc/app.conf; exec /app/server']

pidone's fix (action mutate): insert `exec` before the final command; nothing else changes.
When exec alone would not help (the final program has no SIGTERM handler, like `sleep`; the
command is `eval`; the script is in the image), pidone says why, and with init injection
enabled runs the container under its init instead. Behind `su -c`, su stays as the shell's
parent: `setpriv --reuid=USER --regid=GROUP --init-groups --` or `su-exec USER` exec instead.",
        RuleId::MultiProcess => "\
`sh -c 'app & agent & wait -n'`, a process supervisor (supervisord, s6-svscan, pm2-runtime) or a
pipeline (`app | tee log`) runs several long-running programs in one container. The shell at
PID 1 forwards no signal: on stop none of them sees SIGTERM, and all are SIGKILLed.

Example:
  command: [bash, -c, '/app/api & /app/worker & wait -n']

Fix by hand: one program per container. Side agents become native sidecars (Kubernetes 1.29+):
  initContainers:
    - name: worker
      restartPolicy: Always
      command: [/app/worker]
If they must share a container, put a real init at PID 1 that signals the whole process group,
for example with pidone.io/inject-init: \"true\" (pidone-init -g).",
        RuleId::ShellResident => "\
Some scripts need the shell to stay: endless loops (`while true; do sync; sleep 60; done`),
restart loops, signal traps, or commands after the app (recording its exit status). A shell at
PID 1 ignores SIGTERM unless it traps it, and reaps no orphans while it waits.

Example:
  command: [sh, -c, 'while true; do /app/sync; sleep 60; done']

Fix by hand: move the loop into the program (or a CronJob), or run it under an init:
  annotations: {pidone.io/inject-init: \"true\"}   # pidone prefixes /.pidone/init --",
        RuleId::ScriptEntrypoint => "\
`command: [/docker-entrypoint.sh]` or `bash start.sh` runs a script from the image. pidone cannot
see its text; if it does not end with `exec`, its shell stays PID 1 and swallows SIGTERM.

Example:
  command: [/docker-entrypoint.sh, server]

Fix by hand: make the script end with `exec \"$@\"` (or `exec <program>`), or run it under an
init (pidone.io/inject-init: \"true\").",
        RuleId::SideAgent => "\
Log forwarders, proxies (cloud-sql-proxy, istio-proxy), vault agents and telemetry agents placed
in `containers` next to the app start in any order, stop at the same time as the app (so the
app loses its proxy while draining), and keep Job pods running forever after the main
container ends.

Example:
  containers:
    - {name: app, image: example/app}
    - {name: cloud-sql-proxy, image: gcr.io/cloud-sql-connectors/cloud-sql-proxy:2}

Fix by hand: make it a native sidecar (Kubernetes 1.29+): it starts before the app, stops after
it, and does not block Job completion:
  initContainers:
    - {name: cloud-sql-proxy, image: gcr.io/cloud-sql-connectors/cloud-sql-proxy:2, restartPolicy: Always}

pidone's fix (action mutate): move the container to initContainers with restartPolicy: Always,
keeping every field. Only `certain` findings are moved: a catalogued agent image (exact
repository name) or command (vault agent, consul-template, cloud_sql_proxy...), an image in
sideAgents.images, or a container named in pidone.io/side-agents. `likely` findings (a name such
as *-proxy, a tail -F of a shared file, a sync loop over a shared volume) only warn: confirm
them with pidone.io/side-agents: \"name1,name2\". The main workload (the only container, the
kubectl.kubernetes.io/default-container, the one named after the workload) is never moved.",
        RuleId::SidecarStopHack => "\
Before native sidecars, Jobs stopped their sidecars by hand: `curl -X POST
localhost:15020/quitquitquit`, `pkill envoy`, or touching a shared file the sidecar polls for.
If the main container fails before that line, the sidecar runs forever and the Job never
completes.

Example:
  command: [sh, -c, '/app/migrate; curl -X POST http://127.0.0.1:15020/quitquitquit']

Fix by hand: make the sidecar a native sidecar (initContainers with restartPolicy: Always) and
drop the stop code: the kubelet stops native sidecars when the Job's containers end.",
        RuleId::ShellUnparsed => "\
pidone parses every launch script with a real shell parser. Scripts that are too large, nest
too deep, use constructs known to make parsers misbehave, or do not parse at all are not
analysed; pidone cannot tell whether the shell stays PID 1. The message says why (size, depth,
error at line:col, the parser gave up).

Example:
  command: [sh, -c, '<a 100 KiB script>']

Fix by hand: move the script into the image (and end it with exec), simplify it, or run it
under an init (pidone.io/inject-init: \"true\").",
        RuleId::SignalDeafPid1 => "\
`sleep`, `tail -f`, `cat` and similar keep-alives install no SIGTERM handler. As PID 1 the
kernel drops SIGTERM sent to them, so every stop of the pod waits out the whole grace period
before SIGKILL.

Example:
  command: [sh, -c, 'exec sleep infinity']

Fix by hand: put an init at PID 1: it handles SIGTERM and passes it on to the program, which
then dies of it as any process but PID 1 does (tini is in many base images and distributions):
  command: [tini, --, sleep, infinity]
or let pidone add its own init (pidone.io/inject-init: \"true\"). `exec` alone does not help:
`sh -c 'exec sleep infinity'` still has sleep at PID 1.",
    };
    format!("{rule}: {}\n\n{body}\n\n{PID1}\n\n{WHERE}\n", summary(rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_explained() {
        for rule in RuleId::ALL {
            let text = explain(rule);
            assert!(text.starts_with(rule.as_str()));
            assert!(text.contains("Example:"), "{rule}");
            assert!(text.contains("Fix by hand"), "{rule}");
            assert!(text.contains("Where pidone acts"), "{rule}");
            assert!(text.contains("mutations.workloads"), "{rule}");
        }
    }
}
