//! What an evaluation takes from outside the object and what it gives back: the context, the
//! analysed containers, the findings. Types only, shared by the engine's stages.

use crate::engine::argv::LaunchAnalysis;
use crate::engine::config::Action;
use crate::engine::image_config::ImageConfig;
use crate::engine::image_files::ImageFiles;
use crate::engine::launch::LaunchClass;
use crate::engine::mounted_scripts::{ConfigMaps, ScriptRead};
use crate::engine::rules::RuleId;
use crate::engine::script_verdicts::{ScriptKey, ScriptVerdicts};
use crate::engine::side_agents::{Confidence, SideAgent};
use crate::engine::workload::{ObjectRef, Section};
use serde::Serialize;
use std::collections::HashMap;

pub const ANNOTATION_IGNORE: &str = "pidone.io/ignore";
pub const ANNOTATION_SIDE_AGENTS: &str = "pidone.io/side-agents";
pub const ANNOTATION_INJECT_INIT: &str = "pidone.io/inject-init";
pub const ANNOTATION_MUTATIONS: &str = "pidone.io/mutations";

/// What the cluster can do, as far as fixes are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeSidecarSupport {
    Supported,
    /// Not supported, with the reason shown to users.
    Unsupported(String),
}

/// Facts from outside the object that the evaluation depends on.
#[derive(Debug, Clone)]
pub struct EvalContext<'a> {
    /// The namespace from the admission request (authoritative when the object has none).
    pub namespace: Option<&'a str>,
    pub native_sidecars: NativeSidecarSupport,
    /// ENTRYPOINT and CMD of images, looked up by the caller (the engine does no I/O), keyed by
    /// the image reference as written in the pod.
    pub images: Option<&'a HashMap<String, ImageConfig>>,
    /// ConfigMaps the caller gathered (the same manifests, or the API), so scripts that
    /// containers run from ConfigMap volumes can be read.
    pub config_maps: Option<&'a ConfigMaps>,
    /// Files the caller read from images' layers (the scripts image launches run), when
    /// images are looked up.
    pub image_files: Option<&'a ImageFiles>,
    /// Verdicts of the scripts the launches run, resolved by the caller (see
    /// [`crate::engine::Engine::needs`]); a script without one is not analysed.
    pub scripts: Option<&'a ScriptVerdicts>,
    /// Which findings are worded (message, fix, evidence); the others get empty texts (a
    /// fallback that applies stays `Some`, since it decides the action).
    pub words: Words,
}

/// Which findings an evaluation words. Wording costs formatting for every finding, and a
/// caller that shows only some of them need not pay for the rest: a planner's re-check, whose
/// findings only steer its next edits, words none; the mutating webhook, which reports only
/// `mutate` findings, words only those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Words {
    All,
    /// Findings whose action is `mutate` when they are found. Actions only ever fall later in
    /// an evaluation (a `likely` side agent, a stopgap init), so a finding that ends as
    /// `mutate` was one when found.
    MutateOnly,
    None,
}

impl Words {
    /// Whether a finding with this action, when found, is worded.
    pub fn cover(self, action: Action) -> bool {
        match self {
            Words::All => true,
            Words::MutateOnly => action == Action::Mutate,
            Words::None => false,
        }
    }
}

impl Default for EvalContext<'_> {
    fn default() -> Self {
        EvalContext {
            namespace: None,
            native_sidecars: NativeSidecarSupport::Supported,
            images: None,
            config_maps: None,
            image_files: None,
            scripts: None,
            words: Words::All,
        }
    }
}

/// One analysed container.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerReport {
    pub container: String,
    pub section: Section,
    /// JSON Pointer of the container in the object.
    #[serde(skip)]
    pub pointer: String,
    pub launch: LaunchClass,
    #[serde(skip)]
    pub analysis: LaunchAnalysis,
    /// A side agent next to a main container: with what confidence, on what evidence.
    #[serde(skip)]
    pub side_agent: Option<SideAgent>,
    /// The launch class the container would have as a native sidecar (side agents of finite
    /// pods only).
    #[serde(skip)]
    pub as_sidecar: Option<LaunchClass>,
    /// Scripts read for the launch (from ConfigMap volumes or the image), first to last.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<ScriptRead>,
    /// How this container (of a Job pod) stops its sidecar by hand, if it does.
    #[serde(skip)]
    pub stop_hack: Option<String>,
}

/// One rule hit, with what enforce mode would do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub container: String,
    #[serde(skip)]
    pub section: Section,
    #[serde(skip)]
    pub pointer: String,
    pub rule: RuleId,
    /// The action enforce mode takes, after any fallback.
    pub action: Action,
    /// What pidone saw.
    pub message: String,
    /// How to fix it.
    pub fix: String,
    /// Why a `mutate` action fell back to `warn`, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// How sure pidone is (`side-agent` findings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
    /// What the finding rests on (`side-agent` findings), strongest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

#[cfg(test)]
impl Finding {
    /// A finding of `rule` on a regular container, for tests: the fields a test names, the
    /// rest empty.
    pub(crate) fn for_test(
        container: &str,
        pointer: &str,
        rule: RuleId,
        action: Action,
        message: &str,
    ) -> Finding {
        Finding {
            container: container.into(),
            section: Section::Containers,
            pointer: pointer.into(),
            rule,
            action,
            message: message.into(),
            fix: String::new(),
            fallback: None,
            confidence: None,
            evidence: Vec::new(),
        }
    }
}

/// The result of evaluating one object.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub object: ObjectRef,
    /// JSON Pointer of the pod template within the object.
    #[serde(skip)]
    pub template_pointer: &'static str,
    pub containers: Vec<ContainerReport>,
    pub findings: Vec<Finding>,
    /// Rules switched off for this object by `pidone.io/ignore` (`all` lists every rule).
    pub ignored: Vec<RuleId>,
    /// Findings of those rules: not acted on, shown by the offline audit as ignored.
    #[serde(skip)]
    pub suppressed: Vec<Finding>,
    /// The namespace is exempt: nothing was analysed.
    pub exempt: bool,
    /// Whether the pod asked for (or the config enables) init injection.
    pub inject_init: bool,
    /// Scripts the launches run that had no verdict in the context: evaluated as not
    /// analysed. The caller resolves them and evaluates again (see `Engine::needs`).
    #[serde(skip)]
    pub unresolved: Vec<ScriptKey>,
    /// Some launch read a container's `env` (see `LaunchAnalysis::env_read`).
    #[serde(skip)]
    pub env_read: bool,
}

impl Evaluation {
    /// The most severe action among the findings.
    pub fn max_action(&self) -> Option<Action> {
        self.findings.iter().map(|f| f.action).max()
    }
}
