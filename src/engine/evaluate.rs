//! The engine's entry point: an object in, containers with launch classes and findings out.

use crate::engine::argv::{self, LaunchAnalysis};
use crate::engine::config::{Action, Config, ConfigError};
use crate::engine::image_files::WantedFile;
use crate::engine::mounted_scripts::{self, ConfigMaps, Followed, MountContext, ScriptRead};
use crate::engine::rules::RuleId;
use crate::engine::script_verdicts::{ScriptKey, ScriptLookup};
use crate::engine::side_agents::{self, Candidate, PodFacts, SideAgentMatcher};
use crate::engine::volumes::Volume;
use crate::engine::workload::{self, ContainerSpec, Section, Workload, WorkloadError};
use serde_json::Value;
use std::sync::Arc;

pub use crate::engine::evaluation::{
    ANNOTATION_IGNORE, ANNOTATION_INJECT_INIT, ANNOTATION_MUTATIONS, ANNOTATION_SIDE_AGENTS,
    ContainerReport, EvalContext, Evaluation, Finding, NativeSidecarSupport, Words,
};
pub use crate::engine::image_config::ImageConfig;

/// The analysis engine: the configuration and what is derived from it. Cheap to share.
/// Pure: scripts arrive as verdicts in [`EvalContext::scripts`], resolved by the caller after
/// asking [`Engine::needs`].
pub struct Engine {
    config: Arc<Config>,
    side_agents: SideAgentMatcher,
}

/// What an object's evaluation needs from outside that the context does not hold yet, one
/// stage at a time: images first (they decide what commandless containers run), then
/// ConfigMaps (their scripts may be what runs), then the scripts and image files the launches
/// run. A caller fetches what is asked, puts it in the context, and asks again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Images whose ENTRYPOINT and CMD to look up (`images.resolve`, and the context has no
    /// image configs yet).
    pub images: Vec<String>,
    /// ConfigMaps the launches may run scripts from (`scripts.configMaps` allows the
    /// namespace, and the context has no ConfigMaps yet); a ConfigMap's scripts may name
    /// further ones, which the look-up follows.
    pub config_maps: Vec<String>,
    /// Scripts to analyse (inline `-c` scripts, and scripts read from ConfigMaps and images).
    pub scripts: Vec<ScriptKey>,
    /// Files of images to read (when the context carries image files at all).
    pub image_files: Vec<WantedFile>,
    /// The walk read a container's `env` (see `LaunchAnalysis::env_read`): the scripts it
    /// names are as the environment made them.
    pub env_read: bool,
}

impl Needs {
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
            && self.config_maps.is_empty()
            && self.scripts.is_empty()
            && self.image_files.is_empty()
    }
}

impl Engine {
    pub fn new(config: Arc<Config>) -> Result<Engine, ConfigError> {
        let side_agents = SideAgentMatcher::new(
            config.side_agents.images.as_deref(),
            config.side_agents.catalogue,
        )?;
        Ok(Engine {
            config,
            side_agents,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn config_arc(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }

    /// Evaluates one object. `Ok(None)` for kinds that carry no pod template. Scripts missing
    /// from `ctx.scripts` are evaluated as not analysed.
    pub fn evaluate(
        &self,
        object: &Value,
        ctx: &EvalContext<'_>,
    ) -> Result<Option<Evaluation>, WorkloadError> {
        let Some(workload) = workload::extract(object)? else {
            return Ok(None);
        };
        Ok(Some(self.evaluate_workload(&workload, ctx)))
    }

    /// [`Engine::evaluate`] with every script parsed in this process: for the engine's own
    /// tests, whose scripts are trusted.
    #[cfg(test)]
    pub fn evaluate_parsed(
        &self,
        object: &Value,
        ctx: &EvalContext<'_>,
    ) -> Result<Option<Evaluation>, WorkloadError> {
        let mut verdicts = ctx.scripts.cloned().unwrap_or_default();
        loop {
            let with = EvalContext {
                scripts: Some(&verdicts),
                ..ctx.clone()
            };
            let Some(eval) = self.evaluate(object, &with)? else {
                return Ok(None);
            };
            if eval.unresolved.is_empty() {
                return Ok(Some(eval));
            }
            for key in eval.unresolved {
                let verdict = crate::engine::script::analyze_script(key.dialect, &key.script);
                verdicts.insert(key.dialect, key.script, verdict);
            }
        }
    }

    /// What evaluating `object` with `ctx` would read that `ctx` does not hold, the earliest
    /// stage first (see [`Needs`]): image configs when the configuration looks them up and
    /// `ctx.images` is unset; ConfigMaps when it reads them for the namespace and
    /// `ctx.config_maps` is unset; then the scripts the launches run that have no verdict, and
    /// (when `ctx.image_files` is set) the files of images they run that were not read. The
    /// caller resolves them and asks again: each round follows one more step of a chain of
    /// scripts. Empty for objects without a pod template and for exempt namespaces.
    pub fn needs(&self, object: &Value, ctx: &EvalContext<'_>) -> Needs {
        let Ok(Some(w)) = workload::extract(object) else {
            return Needs::default();
        };
        self.needs_of(&w, ctx)
    }

    /// [`Engine::needs`] of an object whose workload the caller extracted (once for the
    /// rounds of look-ups and the evaluation: see [`Engine::evaluate_workload`]).
    pub fn needs_of(&self, w: &Workload<'_>, ctx: &EvalContext<'_>) -> Needs {
        self.walk_needs(w, ctx, None)
    }

    /// [`Engine::needs_of`], with the launches the walk finished: the evaluation that follows
    /// the look-ups takes them ([`Engine::evaluate_workload_finished`]) instead of launching
    /// those containers again.
    pub fn needs_and_launches(
        &self,
        w: &Workload<'_>,
        ctx: &EvalContext<'_>,
    ) -> (Needs, FinishedLaunches) {
        // A walk that stopped at an earlier stage launched nothing: the evaluation takes no
        // launches whose number is not its workload's.
        let mut finished = Vec::new();
        let needs = self.walk_needs(w, ctx, Some(&mut finished));
        (needs, FinishedLaunches(finished))
    }

    fn walk_needs(
        &self,
        w: &Workload<'_>,
        ctx: &EvalContext<'_>,
        mut finished: Option<&mut Vec<Option<FinishedLaunch>>>,
    ) -> Needs {
        let namespace = ctx.namespace.or(w.object.namespace.as_deref());
        if let Some(ns) = namespace
            && self.config.exemptions.namespaces.iter().any(|e| e == ns)
        {
            return Needs::default();
        }
        if self.config.images.resolve && ctx.images.is_none() {
            let images = crate::engine::image_refs::images_of(w);
            if !images.is_empty() {
                return Needs {
                    images,
                    ..Needs::default()
                };
            }
        }
        if ctx.config_maps.is_none() && self.config.scripts.config_maps.allows(namespace) {
            let config_maps = crate::engine::config_map_refs::referenced_in(
                w,
                namespace,
                &ConfigMaps::default(),
                ctx.images,
            );
            if !config_maps.is_empty() {
                return Needs {
                    config_maps,
                    ..Needs::default()
                };
            }
        }
        let mounts = mount_context(&w.volumes, namespace, ctx);
        let scripts = ScriptLookup::collecting(ctx.scripts);
        let mut env_read = false;
        let mut image_files: Vec<WantedFile> = w
            .containers
            .iter()
            .filter_map(|c| {
                let misses = finished.is_some().then(|| scripts.misses());
                let followed = self.launch(c, long_running(w, c), ctx, mounts.as_ref(), &scripts);
                env_read |= followed.analysis.env_read;
                let Followed {
                    analysis,
                    read,
                    wanted,
                } = followed;
                if let Some(finished) = finished.as_deref_mut() {
                    // Finished: every script it ran had a verdict, and it wants no file.
                    let done = misses == Some(scripts.misses()) && wanted.is_none();
                    finished.push(done.then_some((analysis, read)));
                }
                wanted
            })
            .filter(|_| ctx.image_files.is_some())
            .collect();
        image_files.sort_unstable();
        image_files.dedup();
        Needs {
            scripts: scripts.into_missing(),
            image_files,
            env_read,
            ..Needs::default()
        }
    }

    /// One container's launch, followed into the scripts it runs that are known.
    fn launch(
        &self,
        c: &ContainerSpec<'_>,
        long_running: bool,
        ctx: &EvalContext<'_>,
        mounts: Option<&MountContext<'_>>,
        scripts: &ScriptLookup<'_>,
    ) -> Followed {
        let analysis = argv::analyze(
            c,
            long_running,
            scripts,
            ctx.images.and_then(|m| m.get(c.image)),
        );
        match mounts {
            Some(m) => mounted_scripts::follow(analysis, c, m, long_running, scripts),
            None => Followed {
                analysis,
                read: Vec::new(),
                wanted: None,
            },
        }
    }

    /// [`Engine::evaluate`] of an object's workload `w` ([`workload::extract`]): everything an
    /// evaluation reads of the object is in it.
    pub fn evaluate_workload(&self, w: &Workload<'_>, ctx: &EvalContext<'_>) -> Evaluation {
        self.evaluate_workload_after(w, ctx, None)
    }

    /// [`Engine::evaluate_workload`] of a workload evaluated before (`earlier`) and edited
    /// since: the launches of the containers it did not edit are taken from that evaluation.
    pub fn evaluate_workload_after(
        &self,
        w: &Workload<'_>,
        ctx: &EvalContext<'_>,
        earlier: Option<Earlier<'_>>,
    ) -> Evaluation {
        self.evaluate_with(w, ctx, earlier, FinishedLaunches::default())
    }

    /// [`Engine::evaluate_workload`] after the needs walk of `w` in this context (the verdicts
    /// resolved since aside) that finished `finished` ([`Engine::needs_and_launches`]): a
    /// finished launch read only verdicts it found, which stay, and files it had, so it is
    /// the launch this evaluation would make.
    pub fn evaluate_workload_finished(
        &self,
        w: &Workload<'_>,
        ctx: &EvalContext<'_>,
        finished: FinishedLaunches,
    ) -> Evaluation {
        self.evaluate_with(w, ctx, None, finished)
    }

    fn evaluate_with(
        &self,
        w: &Workload<'_>,
        ctx: &EvalContext<'_>,
        earlier: Option<Earlier<'_>>,
        finished: FinishedLaunches,
    ) -> Evaluation {
        let namespace = ctx.namespace.or(w.object.namespace.as_deref());
        let mut eval = Evaluation {
            object: (*w.object).clone(),
            template_pointer: w.template_pointer,
            containers: Vec::with_capacity(w.containers.len()),
            findings: Vec::new(),
            ignored: Vec::new(),
            suppressed: Vec::new(),
            exempt: false,
            inject_init: self.config.init_injection.enabled,
            unresolved: Vec::new(),
            env_read: false,
        };
        if let Some(ns) = namespace
            && self.config.exemptions.namespaces.iter().any(|e| e == ns)
        {
            eval.exempt = true;
            return eval;
        }
        let annotation = |key: &str| w.annotations.get(key);
        if let Some(v) = annotation(ANNOTATION_INJECT_INIT) {
            match v.trim() {
                "true" => eval.inject_init = true,
                "false" => eval.inject_init = false,
                _ => {}
            }
        }
        if self.config.exemptions.allow_annotations.allows(namespace)
            && let Some(v) = annotation(ANNOTATION_IGNORE)
        {
            eval.ignored = parse_rule_list(v);
        }
        let named_side_agents: Vec<&str> = annotation(ANNOTATION_SIDE_AGENTS)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();

        // A mesh's injected proxy is neither a side agent to move nor a main container.
        let injected = crate::engine::injected::injected_containers(&w.annotations);
        let pod = PodFacts::read(w, named_side_agents, injected);
        let mounts = mount_context(&w.volumes, namespace, ctx);
        // The launch, followed into the ConfigMap and image scripts it runs when they are
        // known.
        let lookup = ScriptLookup::new(ctx.scripts);
        let launch = |c: &ContainerSpec<'_>, long_running: bool| {
            let followed = self.launch(c, long_running, ctx, mounts.as_ref(), &lookup);
            (followed.analysis, followed.read)
        };
        let kept = |i: usize| earlier.as_ref().and_then(|e| e.launch_of(i, w));
        let mut finished = finished.0;
        if finished.len() != w.containers.len() {
            finished.clear();
        }
        let (analyses, scripts): (Vec<LaunchAnalysis>, Vec<Vec<ScriptRead>>) = w
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| match kept(i) {
                Some(report) => (report.analysis.clone(), report.scripts.clone()),
                None => match finished.get_mut(i).and_then(Option::take) {
                    Some(done) => done,
                    None => launch(c, long_running(w, c)),
                },
            })
            .unzip();
        // Side agents are told apart by what containers run: an edit that leaves every
        // container running the same commands leaves the earlier verdicts standing.
        let reused = earlier.as_ref().and_then(|e| e.side_agents(&analyses));
        // Candidates are read for the verdicts, and in a finite pod for its stop hacks.
        let read_candidates = reused.is_none() || w.finite;
        let commands: Vec<side_agents::LaunchCommands> = w
            .containers
            .iter()
            .zip(&analyses)
            .filter(|_| read_candidates)
            .map(|(c, a)| side_agents::launch_commands(c, a))
            .collect();
        let candidates: Vec<Candidate<'_, '_>> = w
            .containers
            .iter()
            .zip(&analyses)
            .zip(&commands)
            .map(|((c, a), commands)| Candidate {
                spec: c,
                commands: commands.as_slice(),
                endless_loop: script_facts(a).is_some_and(|f| f.endless_loop),
                repository: side_agents::RepositoryPath::of(c.image),
            })
            .collect();
        let verdicts = match reused {
            Some(verdicts) => verdicts,
            None => side_agents::classify(&self.side_agents, &pod, &candidates),
        };
        eval.env_read = analyses.iter().any(|a| a.env_read);
        let share_process_namespace = w.share_process_namespace;

        // Stop hacks exist only in finite pods; their sidecars are indexed once per pod.
        let stop_hacks = w
            .finite
            .then(|| crate::engine::stop_hack::StopHacks::new(&candidates));
        for (i, (((c, analysis), side_agent), scripts)) in w
            .containers
            .iter()
            .zip(analyses)
            .zip(verdicts)
            .zip(scripts)
            .enumerate()
        {
            let long_running = long_running(w, c);
            // A side agent of a finite pod becomes long-running once it is a native sidecar:
            // its launch must hold up as one, or moving it would only trade one finding for
            // another (a wrapper that polls a stop file turns into a resident shell).
            let as_sidecar = (side_agent.is_some() && !long_running).then(|| {
                let again = launch(c, true).0;
                eval.env_read |= again.env_read;
                again.class
            });
            let stop_hack = match &stop_hacks {
                Some(hacks) if c.section == Section::Containers => {
                    hacks.of(i, script_facts(&analysis), share_process_namespace)
                }
                _ => None,
            };
            let report = ContainerReport {
                container: c.name.to_string(),
                section: c.section,
                pointer: c.pointer.to_string(),
                launch: analysis.class,
                analysis,
                side_agent,
                as_sidecar,
                scripts,
                stop_hack,
            };
            crate::engine::findings::collect(
                &self.config,
                w,
                c,
                &report,
                long_running,
                ctx,
                &mut eval,
            );
            eval.containers.push(report);
        }
        let (kept, suppressed) = std::mem::take(&mut eval.findings)
            .into_iter()
            .partition(|f| !eval.ignored.contains(&f.rule));
        eval.findings = kept;
        eval.suppressed = suppressed;
        eval.findings.retain(|f| f.action != Action::Ignore);
        eval.unresolved = lookup.into_missing();
        eval
    }
}

/// One container's launch as a needs walk finished it: its analysis and the scripts it read.
type FinishedLaunch = (LaunchAnalysis, Vec<ScriptRead>);

/// The launches a needs walk finished, by container ([`Engine::needs_and_launches`]): those
/// that ran only scripts with verdicts and want no file of an image; `None` for the others.
#[derive(Debug, Default)]
pub struct FinishedLaunches(Vec<Option<FinishedLaunch>>);

/// An evaluation of a workload before some of its containers' `command` or `args` were edited
/// (nothing else of the workload), and which containers were not. A launch reads its own
/// container, the context's images, ConfigMaps and image files, and the verdicts of the scripts
/// it runs (not the other containers, not the wording): the earlier launch of a container not
/// edited since is the later one when the earlier evaluation resolved every script it ran and
/// the context is the same but for verdicts and wording. Side-agent verdicts read, of a
/// container's command line, only the commands it runs and whether its script loops forever.
#[derive(Clone, Copy)]
pub struct Earlier<'e> {
    pub evaluation: &'e Evaluation,
    /// By position in the workload's containers: not edited since.
    pub unchanged: &'e [bool],
}

impl<'e> Earlier<'e> {
    fn launch_of(&self, i: usize, w: &Workload<'_>) -> Option<&'e ContainerReport> {
        let e = self.evaluation;
        let reusable = e.unresolved.is_empty()
            && !e.exempt
            && e.containers.len() == w.containers.len()
            && self.unchanged.get(i) == Some(&true);
        reusable.then(|| e.containers.get(i)).flatten()
    }

    /// The earlier side-agent verdicts, when this evaluation's launches (`analyses`) leave them
    /// standing: each edited container's script runs the commands the earlier one ran (an
    /// `exec` inserted changes none) and loops as it did.
    fn side_agents(
        &self,
        analyses: &[LaunchAnalysis],
    ) -> Option<Vec<Option<side_agents::SideAgent>>> {
        let e = self.evaluation;
        let comparable = e.unresolved.is_empty()
            && !e.exempt
            && e.containers.len() == analyses.len()
            && self.unchanged.len() == analyses.len();
        let same = comparable
            && e.containers.iter().zip(analyses).zip(self.unchanged).all(
                |((before, now), &unchanged)| {
                    unchanged || runs_the_same_commands(&before.analysis, now)
                },
            );
        same.then(|| e.containers.iter().map(|r| r.side_agent.clone()).collect())
    }
}

/// Two launches of one container, each a parsed script, that run the same commands and loop
/// alike: what side-agent verdicts read of them.
fn runs_the_same_commands(before: &LaunchAnalysis, now: &LaunchAnalysis) -> bool {
    match (script_facts(before), script_facts(now)) {
        (Some(b), Some(n)) => {
            b.endless_loop == n.endless_loop
                && b.commands.len() == n.commands.len()
                && b.commands
                    .iter()
                    .zip(&n.commands)
                    .all(|(b, n)| b == n || side_agents::reads_as_execed(b, n))
        }
        _ => false,
    }
}

/// Where the files containers run come from, when the caller gave any.
fn mount_context<'m>(
    volumes: &'m [Volume<'m>],
    namespace: Option<&'m str>,
    ctx: &EvalContext<'m>,
) -> Option<MountContext<'m>> {
    (ctx.config_maps.is_some() || ctx.image_files.is_some()).then_some(MountContext {
        volumes,
        namespace,
        maps: ctx.config_maps,
        image_files: ctx.image_files,
    })
}

/// Whether a container runs until stopped: init containers only as native sidecars, regular
/// containers unless the pod is finite work.
fn long_running(w: &Workload<'_>, c: &ContainerSpec<'_>) -> bool {
    if c.section == Section::InitContainers {
        c.native_sidecar
    } else {
        !w.finite
    }
}

fn script_facts(a: &LaunchAnalysis) -> Option<&crate::engine::script::ScriptFacts> {
    match &*a.shell.as_ref()?.verdict {
        crate::engine::script::ScriptVerdict::Parsed(f) => Some(f),
        crate::engine::script::ScriptVerdict::Unparsed(_) => None,
    }
}

/// Parses `pidone.io/ignore`: comma-separated rule ids or `all`; unknown ids are dropped.
pub fn parse_rule_list(value: &str) -> Vec<RuleId> {
    let mut rules = Vec::new();
    for part in value.split(',').map(str::trim) {
        if part == "all" {
            return RuleId::ALL.to_vec();
        }
        if let Ok(rule) = part.parse::<RuleId>()
            && !rules.contains(&rule)
        {
            rules.push(rule);
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Config;
    use serde_json::json;

    #[test]
    fn a_later_evaluation_keeps_the_launches_of_containers_not_edited() {
        let engine = Engine::new(Arc::new(Config::default())).unwrap();
        let pod = json!({"kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": [
            {"name": "web", "image": "registry.example/web:1",
             "command": ["sh", "-c", "setup\nweb --port 80"]},
            {"name": "sync", "image": "registry.example/sync:1",
             "command": ["sh", "-c", "while true; do sync-once; sleep 30; done"]}]}});
        let ctx = EvalContext::default();
        let first = engine.evaluate_parsed(&pod, &ctx).unwrap().unwrap();
        assert!(first.unresolved.is_empty());
        let w = workload::extract(&pod).unwrap().unwrap();
        let after = |unchanged: &[bool]| {
            let earlier = Earlier {
                evaluation: &first,
                unchanged,
            };
            engine.evaluate_workload_after(&w, &ctx, Some(earlier))
        };
        // Nothing edited: the earlier launches, which need no verdicts now.
        let kept = after(&[true, true]);
        assert!(kept.unresolved.is_empty());
        let json = |e: &Evaluation| serde_json::to_value(&e.containers).unwrap();
        assert_eq!(json(&kept), json(&first));
        // An edited container is launched again: its script has no verdict in this context.
        let edited = after(&[false, true]);
        assert_eq!(edited.unresolved.len(), 1);
        assert_eq!(edited.unresolved[0].script, "setup\nweb --port 80");
        // An earlier evaluation that left a script unresolved lends nothing.
        let unresolved = engine.evaluate(&pod, &ctx).unwrap().unwrap();
        let earlier = Earlier {
            evaluation: &unresolved,
            unchanged: &[true, true],
        };
        let again = engine.evaluate_workload_after(&w, &ctx, Some(earlier));
        assert_eq!(again.unresolved.len(), 2);
    }

    #[test]
    fn an_evaluation_takes_the_launches_its_needs_walk_finished() {
        let engine = Engine::new(Arc::new(Config::default())).unwrap();
        let pod = json!({"kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": [
            {"name": "web", "image": "registry.example/web:1",
             "command": ["sh", "-c", "setup\nweb --port 80"]},
            {"name": "logs", "image": "fluent/fluent-bit:3.1", "args": ["-c", "/fb.conf"]},
            {"name": "wait", "image": "busybox", "command": ["sleep", "infinity"]}]}});
        let w = workload::extract(&pod).unwrap().unwrap();
        let ctx = EvalContext::default();
        let (needs, finished) = engine.needs_and_launches(&w, &ctx);
        assert_eq!(needs, engine.needs_of(&w, &ctx));
        assert_eq!(needs.scripts.len(), 1);
        // The script's launch waits for its verdict; the others are done.
        let done: Vec<bool> = finished.0.iter().map(Option::is_some).collect();
        assert_eq!(done, [false, true, true]);
        let verdicts = verdicts_of(&engine, &pod);
        let with = EvalContext {
            scripts: Some(&verdicts),
            ..EvalContext::default()
        };
        let json = |e: &Evaluation| {
            (
                serde_json::to_value(&e.containers).unwrap(),
                serde_json::to_value(&e.findings).unwrap(),
                e.containers
                    .iter()
                    .map(|r| format!("{:?}", r.analysis))
                    .collect::<Vec<_>>(),
            )
        };
        let taken = engine.evaluate_workload_finished(&w, &with, finished);
        assert_eq!(json(&taken), json(&engine.evaluate_workload(&w, &with)));
        assert!(taken.unresolved.is_empty());
        // Launches of another workload (another number of containers) are not taken.
        let (_, others) = engine.needs_and_launches(&w, &ctx);
        let one = json!({"kind": "Pod", "metadata": {"name": "one"}, "spec": {"containers": [
            {"name": "web", "image": "registry.example/web:1", "command": ["web"]}]}});
        let w1 = workload::extract(&one).unwrap().unwrap();
        let alone = engine.evaluate_workload_finished(&w1, &with, others);
        assert_eq!(json(&alone), json(&engine.evaluate_workload(&w1, &with)));
    }

    /// Verdicts for every script `pod` runs, parsed here.
    fn verdicts_of(engine: &Engine, pod: &Value) -> crate::engine::script_verdicts::ScriptVerdicts {
        let mut verdicts = crate::engine::script_verdicts::ScriptVerdicts::default();
        for key in engine.needs(pod, &EvalContext::default()).scripts {
            let verdict = crate::engine::script::analyze_script(key.dialect, &key.script);
            verdicts.insert(key.dialect, key.script, verdict);
        }
        verdicts
    }

    #[test]
    fn side_agent_verdicts_stand_while_the_edited_scripts_run_the_same_commands() {
        let engine = Engine::new(Arc::new(Config::default())).unwrap();
        let pod = |app: &str, agent: &str| {
            json!({"kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": [
                {"name": "web", "image": "registry.example/web:1", "ports": [{"containerPort": 80}],
                 "command": ["sh", "-c", app]},
                {"name": "logs", "image": "fluent/fluent-bit:3.1",
                 "command": ["sh", "-c", agent]}]}})
        };
        let before = pod(
            "setup\nweb --port 80",
            "sleep 1\nfluent-bit -c /etc/fb.conf",
        );
        let first = engine
            .evaluate_parsed(&before, &EvalContext::default())
            .unwrap()
            .unwrap();
        assert!(first.containers[1].side_agent.is_some());
        assert!(first.containers[0].side_agent.is_none());
        // Each edit evaluated after the first, and afresh: the same verdicts either way.
        for (app, agent, reused) in [
            // `exec` inserted: the same commands run.
            (
                "setup\nexec web --port 80",
                "sleep 1\nexec fluent-bit -c /etc/fb.conf",
                true,
            ),
            // The agent's script now runs another program: classified again.
            (
                "setup\nexec web --port 80",
                "sleep 1\nexec web-helper",
                false,
            ),
        ] {
            let after = pod(app, agent);
            let verdicts = verdicts_of(&engine, &after);
            let ctx = EvalContext {
                scripts: Some(&verdicts),
                ..EvalContext::default()
            };
            let w = workload::extract(&after).unwrap().unwrap();
            let earlier = Earlier {
                evaluation: &first,
                unchanged: &[false, false],
            };
            let analyses: Vec<LaunchAnalysis> = engine
                .evaluate_workload(&w, &ctx)
                .containers
                .into_iter()
                .map(|r| r.analysis)
                .collect();
            assert_eq!(earlier.side_agents(&analyses).is_some(), reused, "{agent}");
            let later = engine.evaluate_workload_after(&w, &ctx, Some(earlier));
            let fresh = engine.evaluate_workload(&w, &ctx);
            let agents = |e: &Evaluation| {
                e.containers
                    .iter()
                    .map(|r| format!("{:?}", r.side_agent))
                    .collect::<Vec<_>>()
            };
            assert_eq!(agents(&later), agents(&fresh), "{agent}");
            assert_eq!(later.findings.len(), fresh.findings.len(), "{agent}");
        }
    }
}
