//! The engine's entry point: an object in, containers with launch classes and findings out.

use crate::engine::argv::{self, LaunchAnalysis};
use crate::engine::config::{Action, Config, ConfigError};
use crate::engine::mounted_scripts::{self, MountContext, ScriptRead};
use crate::engine::rules::RuleId;
use crate::engine::script::ScriptAnalyzer;
use crate::engine::side_agents::{self, Candidate, PodFacts, SideAgentMatcher};
use crate::engine::workload::{self, ContainerSpec, Section, Workload, WorkloadError};
use serde_json::Value;
use std::sync::Arc;

pub use crate::engine::evaluation::{
    ANNOTATION_IGNORE, ANNOTATION_INJECT_INIT, ANNOTATION_MUTATIONS, ANNOTATION_SIDE_AGENTS,
    ContainerReport, EvalContext, Evaluation, Finding, NativeSidecarSupport,
};
pub use crate::engine::image_config::ImageConfig;

/// The analysis engine: configuration plus a script analyzer. Cheap to share.
pub struct Engine {
    config: Arc<Config>,
    analyzer: Arc<dyn ScriptAnalyzer>,
    side_agents: SideAgentMatcher,
}

impl Engine {
    pub fn new(
        config: Arc<Config>,
        analyzer: Arc<dyn ScriptAnalyzer>,
    ) -> Result<Engine, ConfigError> {
        let side_agents = SideAgentMatcher::new(
            config.side_agents.images.as_deref(),
            config.side_agents.catalogue,
        )?;
        Ok(Engine {
            config,
            analyzer,
            side_agents,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn config_arc(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }

    /// Evaluates one object. `Ok(None)` for kinds that carry no pod template.
    pub fn evaluate(
        &self,
        object: &Value,
        ctx: &EvalContext<'_>,
    ) -> Result<Option<Evaluation>, WorkloadError> {
        let Some(workload) = workload::extract(object)? else {
            return Ok(None);
        };
        Ok(Some(self.evaluate_workload(object, &workload, ctx)))
    }

    fn evaluate_workload(
        &self,
        object: &Value,
        w: &Workload<'_>,
        ctx: &EvalContext<'_>,
    ) -> Evaluation {
        let namespace = ctx.namespace.or(w.object.namespace.as_deref());
        let mut eval = Evaluation {
            object: w.object.clone(),
            template_pointer: w.template_pointer,
            containers: Vec::new(),
            findings: Vec::new(),
            ignored: Vec::new(),
            suppressed: Vec::new(),
            exempt: false,
            inject_init: self.config.init_injection.enabled,
        };
        if let Some(ns) = namespace
            && self.config.exemptions.namespaces.iter().any(|e| e == ns)
        {
            eval.exempt = true;
            return eval;
        }
        let annotation = |key: &str| -> Option<&str> {
            w.annotations
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
        };
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
        let injected = crate::engine::injected::injected_containers(w.annotations);
        let pod = PodFacts::read(
            object,
            w.template_pointer,
            w.annotations,
            w.spec,
            named_side_agents,
            injected,
        );
        let mounts = ctx.config_maps.map(|maps| MountContext {
            spec: w.spec,
            namespace,
            maps,
        });
        // The launch, followed into the ConfigMap scripts it runs when they are known.
        let launch = |c: &ContainerSpec<'_>, long_running: bool| {
            let analysis = argv::analyze(
                c,
                long_running,
                self.analyzer.as_ref(),
                ctx.images.and_then(|m| m.get(&c.image)),
            );
            match &mounts {
                Some(m) => {
                    mounted_scripts::follow(analysis, c, m, long_running, self.analyzer.as_ref())
                }
                None => (analysis, Vec::new()),
            }
        };
        let (analyses, scripts): (Vec<LaunchAnalysis>, Vec<Vec<ScriptRead>>) = w
            .containers
            .iter()
            .map(|c| launch(c, long_running(w, c)))
            .unzip();
        let commands: Vec<Vec<Vec<String>>> = w
            .containers
            .iter()
            .zip(&analyses)
            .map(|(c, a)| side_agents::launch_commands(c, a))
            .collect();
        let candidates: Vec<Candidate<'_, '_>> = w
            .containers
            .iter()
            .zip(&analyses)
            .zip(&commands)
            .map(|((c, a), commands)| Candidate {
                spec: c,
                commands,
                endless_loop: script_facts(a).is_some_and(|f| f.endless_loop),
            })
            .collect();
        let verdicts = side_agents::classify(&self.side_agents, &pod, &candidates);
        let share_process_namespace = w
            .spec
            .get("shareProcessNamespace")
            .and_then(Value::as_bool)
            .unwrap_or(false);

        // Stop hacks exist only in finite pods; their sidecars are indexed once per pod.
        let stop_hacks = w
            .finite
            .then(|| crate::engine::stop_hack::StopHacks::new(&candidates));
        for (i, (((c, analysis), side_agent), scripts)) in w
            .containers
            .iter()
            .zip(analyses.iter().cloned())
            .zip(verdicts)
            .zip(scripts)
            .enumerate()
        {
            let long_running = long_running(w, c);
            // A side agent of a finite pod becomes long-running once it is a native sidecar:
            // its launch must hold up as one, or moving it would only trade one finding for
            // another (a wrapper that polls a stop file turns into a resident shell).
            let as_sidecar =
                (side_agent.is_some() && !long_running).then(|| launch(c, true).0.class);
            let stop_hack = match &stop_hacks {
                Some(hacks) if c.section == Section::Containers => {
                    hacks.of(i, script_facts(&analysis), share_process_namespace)
                }
                _ => None,
            };
            let report = ContainerReport {
                container: c.name.clone(),
                section: c.section,
                pointer: c.pointer.clone(),
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
        eval
    }
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
    match &a.shell.as_ref()?.verdict {
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
