//! The configuration file (docs/design.md section 6), YAML through serde-saphyr.
//!
//! Unknown fields are errors: a typo such as `initInjecton` must not silently turn a feature off.

use crate::engine::durations::{duration, ser_duration};
pub use crate::engine::parser_config::ParserConfig;
pub use crate::engine::rules::Action;
use crate::engine::rules::RuleId;
use crate::engine::side_agents::{PatternError, SideAgentMatcher};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Audit,
    Off,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
            Mode::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "enforce" => Some(Mode::Enforce),
            "audit" => Some(Mode::Audit),
            "off" => Some(Mode::Off),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SidecarPosition {
    /// Before existing init containers: the agent is up before they run.
    #[default]
    First,
    /// After existing init containers.
    Last,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NativeSidecars {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum InitStrategy {
    #[default]
    #[serde(rename = "binary")]
    Binary,
    #[serde(rename = "shareProcessNamespace")]
    ShareProcessNamespace,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SideAgentsConfig {
    /// More side-agent images, added to the catalogue: exact repository names
    /// (`example.com/team/agent` matches any tag and registry prefix) or globs on the whole
    /// reference (`*my-agent*`). Both give `certain` findings.
    pub images: Option<Vec<String>>,
    /// Use the built-in catalogue of agent images and commands.
    pub catalogue: bool,
    pub position: SidecarPosition,
}

impl Default for SideAgentsConfig {
    fn default() -> Self {
        SideAgentsConfig {
            images: None,
            catalogue: true,
            position: SidecarPosition::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct InitInjectionConfig {
    pub enabled: bool,
    pub strategy: InitStrategy,
    /// Image that carries `/pidone-init` (the pidone image).
    pub image: String,
}

/// Where pidone patches (DESIGN section 5.1). Pods are always patched; objects with a
/// controller owner never are.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct MutationsConfig {
    /// Also patch the pod templates of ownerless workloads (Deployment, StatefulSet, DaemonSet,
    /// ReplicaSet, Job, CronJob...) on CREATE. Off by default: a patched template is drift for
    /// GitOps tools (Argo CD, Flux), and the workload's Pods are fixed anyway.
    pub workloads: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ExemptionsConfig {
    pub namespaces: Vec<String>,
    /// Where `pidone.io/ignore` is honoured: `false` (nowhere, the default: any pod author
    /// could otherwise switch every rule off), `true` (everywhere), or a list of namespaces.
    pub allow_annotations: AllowAnnotations,
}

/// A switch that is on everywhere, nowhere, or in a list of namespaces: `true`, `false` or
/// `[ns, ...]` in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceSwitch {
    Everywhere(bool),
    Namespaces(Vec<String>),
}

/// `exemptions.allowAnnotations`.
pub type AllowAnnotations = NamespaceSwitch;

impl Default for NamespaceSwitch {
    fn default() -> Self {
        NamespaceSwitch::Everywhere(false)
    }
}

impl NamespaceSwitch {
    /// Whether the switch is on for an object in `namespace`.
    pub fn allows(&self, namespace: Option<&str>) -> bool {
        match self {
            NamespaceSwitch::Everywhere(allowed) => *allowed,
            NamespaceSwitch::Namespaces(list) => {
                namespace.is_some_and(|ns| list.iter().any(|n| n == ns))
            }
        }
    }

    /// Whether it is on anywhere at all.
    pub fn any(&self) -> bool {
        match self {
            NamespaceSwitch::Everywhere(on) => *on,
            NamespaceSwitch::Namespaces(list) => !list.is_empty(),
        }
    }

    /// The first empty namespace name of the list, if any (a config error).
    fn empty_name(&self) -> Option<usize> {
        match self {
            NamespaceSwitch::Everywhere(_) => None,
            NamespaceSwitch::Namespaces(list) => list.iter().position(String::is_empty),
        }
    }
}

impl Serialize for NamespaceSwitch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NamespaceSwitch::Everywhere(allowed) => s.serialize_bool(*allowed),
            NamespaceSwitch::Namespaces(list) => list.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for NamespaceSwitch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = NamespaceSwitch;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false or a list of namespaces")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<NamespaceSwitch, E> {
                Ok(NamespaceSwitch::Everywhere(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<NamespaceSwitch, A::Error> {
                let mut list = Vec::new();
                while let Some(ns) = seq.next_element::<String>()? {
                    list.push(ns);
                }
                Ok(NamespaceSwitch::Namespaces(list))
            }
        }
        d.deserialize_any(Either)
    }
}

impl Default for ExemptionsConfig {
    fn default() -> Self {
        ExemptionsConfig {
            namespaces: vec![
                "kube-system".into(),
                "kube-public".into(),
                "kube-node-lease".into(),
            ],
            allow_annotations: AllowAnnotations::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ImagesConfig {
    pub resolve: bool,
    #[serde(deserialize_with = "duration", serialize_with = "ser_duration")]
    pub deadline: Duration,
    #[serde(
        rename = "tagTTL",
        deserialize_with = "duration",
        serialize_with = "ser_duration"
    )]
    pub tag_ttl: Duration,
    pub credentials: String,
    /// Registry host -> mirror hosts, tried in order before the registry itself.
    pub mirrors: BTreeMap<String, Vec<String>>,
    /// The platform nodes run (`os/arch[/variant]`): picks the entry of an image index.
    pub platform: String,
    /// Registries reached over plain HTTP (host[:port]); all others use TLS.
    pub insecure_registries: Vec<String>,
    /// Registries (host[:port]) that may be reached on loopback, link-local or metadata
    /// addresses; a registry a pod names is refused there otherwise (so are redirects and
    /// token services). Mirrors, insecure registries and those with a credential count too.
    pub trusted_registries: Vec<String>,
    /// Registry host -> namespaces whose pods' images are looked up with that registry's
    /// credential (`"*"`: every namespace). Elsewhere look-ups are anonymous, so no tenant
    /// learns about an image it could not pull. The CLI uses every credential.
    pub credential_namespaces: BTreeMap<String, Vec<String>>,
    /// PEM file with extra CA certificates to trust for registries (private registry CAs).
    pub ca_bundle: String,
    /// Bounds of the in-memory cache: entries, and approximate bytes of what they hold.
    pub cache_max_entries: usize,
    pub cache_max_bytes: usize,
    /// Reading the script an image launch runs from the image's layers.
    pub scripts: ImageScriptsConfig,
}

/// `images.scripts`: when a launch runs a file of its image (`ENTRYPOINT
/// ["/docker-entrypoint.sh"]`, or an absolute path a script execs), pidone reads that one file
/// from the image's layers, within these bounds, and analyses the script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ImageScriptsConfig {
    /// Read them (with `images.resolve` in the webhook, `--resolve-images` offline).
    pub read: bool,
    /// What an admission waits for all the files one object needs, on top of
    /// `images.deadline` (both within the webhook's `timeoutSeconds`). A look-up cut short
    /// goes on in the background (see `images::files::BACKGROUND`).
    #[serde(deserialize_with = "duration", serialize_with = "ser_duration")]
    pub deadline: Duration,
    /// Layer blobs read per file, top layer first (a link followed from the top counts again).
    pub max_layers: usize,
    /// Compressed bytes read from the registry per file.
    pub max_bytes: u64,
    /// A script larger than this is not read.
    pub max_file_bytes: u64,
}

impl Default for ImageScriptsConfig {
    fn default() -> Self {
        ImageScriptsConfig {
            read: true,
            deadline: Duration::from_secs(2),
            max_layers: 32,
            max_bytes: 128 * 1024 * 1024,
            max_file_bytes: 256 * 1024,
        }
    }
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            resolve: false,
            deadline: Duration::from_secs(2),
            tag_ttl: Duration::from_secs(600),
            credentials: String::new(),
            mirrors: BTreeMap::new(),
            platform: "linux/amd64".into(),
            insecure_registries: Vec::new(),
            trusted_registries: Vec::new(),
            credential_namespaces: BTreeMap::new(),
            ca_bundle: String::new(),
            cache_max_entries: 10_000,
            cache_max_bytes: 32 * 1024 * 1024,
            scripts: ImageScriptsConfig::default(),
        }
    }
}

/// Scripts that containers run from ConfigMap volumes, read from the API by the webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ScriptsConfig {
    /// Where the webhook reads them: `false` (nowhere, the default), `true` (every namespace)
    /// or a list of namespaces. The service account needs `get configmaps` there.
    pub config_maps: NamespaceSwitch,
    /// Time for the look-ups of one review (never more than half of what is left of the
    /// apiserver's timeout); past it the scripts are not read and the review goes on without.
    #[serde(deserialize_with = "duration", serialize_with = "ser_duration")]
    pub deadline: Duration,
    /// How long a ConfigMap read from the API is used before it is read again: the most a
    /// change to it can go unseen.
    #[serde(
        rename = "cacheTTL",
        deserialize_with = "duration",
        serialize_with = "ser_duration"
    )]
    pub cache_ttl: Duration,
    /// Largest ConfigMap read (bytes of the API's JSON answer); larger ones are not read.
    pub max_bytes: usize,
    /// Bounds of the cache: ConfigMaps, and bytes of their data.
    pub cache_max_entries: usize,
    pub cache_max_bytes: usize,
}

impl Default for ScriptsConfig {
    fn default() -> Self {
        ScriptsConfig {
            config_maps: NamespaceSwitch::Everywhere(false),
            deadline: Duration::from_secs(1),
            cache_ttl: Duration::from_secs(30),
            max_bytes: 1024 * 1024 + 64 * 1024,
            cache_max_entries: 1000,
            cache_max_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Bounds on the work one object may ask of the webhook. An object over them is not analysed:
/// enforce mode denies it (an object too large to check must not pass unchecked), audit mode
/// warns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct LimitsConfig {
    /// Containers and init containers of one pod template.
    pub max_containers: usize,
    /// Bytes of `command` and `args` across all of them.
    pub max_argv_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_containers: 128,
            max_argv_bytes: 256 * 1024,
        }
    }
}

/// Which report resources `pidone serve` keeps current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportsApi {
    /// `wgpolicyk8s.io/v1alpha2` PolicyReport and ClusterPolicyReport.
    #[default]
    PolicyReport,
    /// `openreports.io/v1alpha1` Report and ClusterReport.
    OpenReport,
}

/// Cluster reports kept current by `pidone serve` (one replica writes, elected by a Lease).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ReportsConfig {
    pub enabled: bool,
    pub api: ReportsApi,
    /// One report is written at most once per interval: a rollout's pods land in one write.
    #[serde(deserialize_with = "duration", serialize_with = "ser_duration")]
    pub min_interval: Duration,
    /// Report writes per second, over every namespace.
    pub max_writes_per_second: u32,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            enabled: false,
            api: ReportsApi::PolicyReport,
            min_interval: Duration::from_secs(10),
            max_writes_per_second: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Config {
    pub mode: Mode,
    /// Per-rule action overrides; rules not named keep their defaults.
    pub rules: BTreeMap<RuleId, Action>,
    pub side_agents: SideAgentsConfig,
    pub native_sidecars: NativeSidecars,
    pub mutations: MutationsConfig,
    pub init_injection: InitInjectionConfig,
    pub exemptions: ExemptionsConfig,
    pub images: ImagesConfig,
    pub scripts: ScriptsConfig,
    pub parser: ParserConfig,
    pub limits: LimitsConfig,
    pub reports: ReportsConfig,
}

/// The longest `parser.deadline` and `images.deadline`: far more than a parse or a look-up
/// may take, and small enough to add to the clock (the parser pool and the image resolver set
/// their deadlines as now + the setting; a value near `u64::MAX` seconds would overflow).
pub const MAX_DEADLINE: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Yaml(String),
    #[error("invalid configuration: {field}: {reason}")]
    Field { field: String, reason: String },
}

impl From<PatternError> for ConfigError {
    fn from(e: PatternError) -> ConfigError {
        ConfigError::Field {
            field: e.field,
            reason: e.reason,
        }
    }
}

impl Config {
    /// Parses and validates a configuration file's text. An empty file is the default config.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config =
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Yaml(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        // The matcher the engine builds, so that a config accepted here always builds one.
        SideAgentMatcher::new(
            self.side_agents.images.as_deref(),
            self.side_agents.catalogue,
        )?;
        for (i, ns) in self.exemptions.namespaces.iter().enumerate() {
            if ns.is_empty() {
                return Err(ConfigError::Field {
                    field: format!("exemptions.namespaces[{i}]"),
                    reason: "empty namespace name".into(),
                });
            }
        }
        for (field, switch) in [
            (
                "exemptions.allowAnnotations",
                &self.exemptions.allow_annotations,
            ),
            ("scripts.configMaps", &self.scripts.config_maps),
        ] {
            if let Some(i) = switch.empty_name() {
                return Err(ConfigError::Field {
                    field: format!("{field}[{i}]"),
                    reason: "empty namespace name".into(),
                });
            }
        }
        for (field, value) in [
            ("limits.maxContainers", self.limits.max_containers),
            ("limits.maxArgvBytes", self.limits.max_argv_bytes),
        ] {
            if value == 0 {
                return Err(ConfigError::Field {
                    field: field.into(),
                    reason: "must be greater than 0".into(),
                });
            }
        }
        if self.parser.max_script_bytes == 0 {
            return Err(ConfigError::Field {
                field: "parser.maxScriptBytes".into(),
                reason: "must be greater than 0".into(),
            });
        }
        if self.parser.max_depth == 0 {
            return Err(ConfigError::Field {
                field: "parser.maxDepth".into(),
                reason: "must be greater than 0".into(),
            });
        }
        if self.images.deadline.is_zero() {
            return Err(ConfigError::Field {
                field: "images.deadline".into(),
                reason: "must be greater than 0".into(),
            });
        }
        for (field, zero) in [
            (
                "images.scripts.deadline",
                self.images.scripts.deadline.is_zero(),
            ),
            (
                "images.scripts.maxLayers",
                self.images.scripts.max_layers == 0,
            ),
            (
                "images.scripts.maxBytes",
                self.images.scripts.max_bytes == 0,
            ),
            (
                "images.scripts.maxFileBytes",
                self.images.scripts.max_file_bytes == 0,
            ),
        ] {
            if zero {
                return Err(ConfigError::Field {
                    field: field.into(),
                    reason: "must be greater than 0".into(),
                });
            }
        }
        if self.reports.max_writes_per_second == 0 {
            return Err(ConfigError::Field {
                field: "reports.maxWritesPerSecond".into(),
                reason: "must be greater than 0".into(),
            });
        }
        if self.scripts.deadline.is_zero() {
            return Err(ConfigError::Field {
                field: "scripts.deadline".into(),
                reason: "must be greater than 0".into(),
            });
        }
        for (field, value) in [
            ("scripts.maxBytes", self.scripts.max_bytes),
            ("scripts.cacheMaxEntries", self.scripts.cache_max_entries),
            ("scripts.cacheMaxBytes", self.scripts.cache_max_bytes),
        ] {
            if value == 0 {
                return Err(ConfigError::Field {
                    field: field.into(),
                    reason: "must be greater than 0".into(),
                });
            }
        }
        for (field, value) in [
            ("parser.deadline", self.parser.deadline),
            ("images.deadline", self.images.deadline),
            ("images.scripts.deadline", self.images.scripts.deadline),
            ("reports.minInterval", self.reports.min_interval),
            ("scripts.deadline", self.scripts.deadline),
            ("scripts.cacheTTL", self.scripts.cache_ttl),
        ] {
            if value > MAX_DEADLINE {
                return Err(ConfigError::Field {
                    field: field.into(),
                    reason: format!(
                        "`{}` is more than {}",
                        humantime::format_duration(value),
                        humantime::format_duration(MAX_DEADLINE)
                    ),
                });
            }
        }
        let parts: Vec<&str> = self.images.platform.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::Field {
                field: "images.platform".into(),
                reason: format!("`{}` is not os/arch[/variant]", self.images.platform),
            });
        }
        if self.images.cache_max_entries == 0 || self.images.cache_max_bytes == 0 {
            return Err(ConfigError::Field {
                field: "images.cacheMaxEntries".into(),
                reason: "cache bounds must be greater than 0".into(),
            });
        }
        Ok(())
    }

    /// The action enforce mode takes for a rule: the override, else the rule's default.
    pub fn action(&self, rule: RuleId) -> Action {
        self.rules
            .get(&rule)
            .copied()
            .unwrap_or_else(|| default_action(rule))
    }
}

pub fn default_action(rule: RuleId) -> Action {
    rule.info().default_action
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_section() {
        let c = Config::from_yaml("reports: {enabled: true, api: openreport, minInterval: 30s}")
            .unwrap();
        assert!(c.reports.enabled);
        assert_eq!(c.reports.api, ReportsApi::OpenReport);
        assert_eq!(c.reports.min_interval, Duration::from_secs(30));
        assert_eq!(c.reports.max_writes_per_second, 5);
        assert!(!Config::default().reports.enabled);
        for bad in [
            "reports: {api: clusterreport}",
            "reports: {maxWritesPerSecond: 0}",
            "reports: {minInterval: 2h}",
            "reports: {enable: true}",
        ] {
            assert!(Config::from_yaml(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn scripts_section() {
        let c = Config::default();
        assert!(!c.scripts.config_maps.any(), "off by default");
        assert!(!c.scripts.config_maps.allows(Some("default")));
        let c = Config::from_yaml("scripts: {configMaps: true, cacheTTL: 10s, deadline: 500ms}")
            .unwrap();
        assert!(c.scripts.config_maps.allows(Some("any")));
        assert_eq!(c.scripts.cache_ttl, Duration::from_secs(10));
        assert_eq!(c.scripts.deadline, Duration::from_millis(500));
        let c = Config::from_yaml("scripts:\n  configMaps: [shop, db]\n").unwrap();
        assert!(c.scripts.config_maps.allows(Some("db")));
        assert!(!c.scripts.config_maps.allows(Some("web")));
        assert!(!c.scripts.config_maps.allows(None));
        for (bad, field) in [
            ("scripts: {configMaps: ['']}", "scripts.configMaps[0]"),
            ("scripts: {deadline: 0s}", "scripts.deadline"),
            ("scripts: {cacheTTL: 2h}", "scripts.cacheTTL"),
            ("scripts: {maxBytes: 0}", "scripts.maxBytes"),
            ("scripts: {configMap: true}", "configMap"),
            ("scripts: {configMaps: maybe}", "list of namespaces"),
        ] {
            let e = Config::from_yaml(bad).unwrap_err().to_string();
            assert!(e.contains(field), "{bad}: {e}");
        }
    }

    #[test]
    fn empty_file_is_default() {
        let c = Config::from_yaml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.action(RuleId::MultiProcess), Action::Deny);
        assert_eq!(c.action(RuleId::ShellNoExec), Action::Mutate);
        assert!(
            !c.mutations.workloads,
            "workload templates are not patched by default"
        );
    }

    #[test]
    fn full_example_parses() {
        let text = r#"
mode: audit
rules:
  multi-process: warn
sideAgents:
  images: ["*fluent-bit*", "*cloud-sql-proxy*"]
  position: last
nativeSidecars: never
mutations:
  workloads: true
initInjection:
  enabled: true
  strategy: shareProcessNamespace
  image: ghcr.io/pidone/pidone:0.1.0
exemptions:
  namespaces: [kube-system]
  allowAnnotations: false
images:
  resolve: true
  deadline: 1500ms
  tagTTL: 5m
  credentials: /etc/docker/config.json
  mirrors:
    docker.io: [mirror.example.com, registry-1.docker.io]
  platform: linux/arm64/v8
  insecureRegistries: ["127.0.0.1:5000"]
  scripts:
    deadline: 3s
    maxLayers: 8
    maxFileBytes: 65536
"#;
        let c = Config::from_yaml(text).unwrap();
        assert_eq!(c.mode, Mode::Audit);
        assert_eq!(c.action(RuleId::MultiProcess), Action::Warn);
        assert_eq!(c.side_agents.position, SidecarPosition::Last);
        assert_eq!(c.native_sidecars, NativeSidecars::Never);
        assert!(c.mutations.workloads);
        assert_eq!(
            c.init_injection.strategy,
            InitStrategy::ShareProcessNamespace
        );
        assert!(!c.exemptions.allow_annotations.allows(Some("kube-system")));
        assert_eq!(c.images.deadline, Duration::from_millis(1500));
        assert_eq!(c.images.tag_ttl, Duration::from_secs(300));
        assert_eq!(c.images.mirrors["docker.io"].len(), 2);
        assert_eq!(c.images.platform, "linux/arm64/v8");
        assert_eq!(c.images.insecure_registries, ["127.0.0.1:5000"]);
        assert!(c.images.scripts.read);
        assert_eq!(c.images.scripts.deadline, Duration::from_secs(3));
        assert_eq!(c.images.scripts.max_layers, 8);
        assert_eq!(c.images.scripts.max_bytes, 128 * 1024 * 1024);
        assert_eq!(c.images.scripts.max_file_bytes, 65536);
        let e = Config::from_yaml("images:\n  scripts:\n    maxLayers: 0\n").unwrap_err();
        assert!(e.to_string().contains("images.scripts.maxLayers"), "{e}");
    }

    #[test]
    fn allow_annotations_is_a_switch_or_a_list_of_namespaces() {
        let c = Config::from_yaml("mode: enforce\n").unwrap();
        assert!(!c.exemptions.allow_annotations.allows(Some("default")));
        let c = Config::from_yaml("exemptions:\n  allowAnnotations: true\n").unwrap();
        assert!(c.exemptions.allow_annotations.allows(None));
        let c = Config::from_yaml("exemptions:\n  allowAnnotations: [team-a, team-b]\n").unwrap();
        assert!(c.exemptions.allow_annotations.allows(Some("team-b")));
        assert!(!c.exemptions.allow_annotations.allows(Some("team-c")));
        assert!(!c.exemptions.allow_annotations.allows(None));
        let e = Config::from_yaml("exemptions:\n  allowAnnotations: yes please\n").unwrap_err();
        assert!(
            e.to_string().contains("allowAnnotations")
                || e.to_string().contains("list of namespaces"),
            "{e}"
        );
        let e = Config::from_yaml("exemptions:\n  allowAnnotations: ['']\n").unwrap_err();
        assert!(
            e.to_string().contains("exemptions.allowAnnotations[0]"),
            "{e}"
        );
        let c = Config::from_yaml("limits:\n  maxContainers: 3\n").unwrap();
        assert_eq!(c.limits.max_containers, 3);
        assert_eq!(
            c.limits.max_argv_bytes,
            LimitsConfig::default().max_argv_bytes
        );
        assert!(Config::from_yaml("limits:\n  maxContainers: 0\n").is_err());
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::from_yaml("initInjecton:\n  enabled: true\n").unwrap_err();
        assert!(e.to_string().contains("initInjecton"), "{e}");
        let e = Config::from_yaml("rules:\n  no-such-rule: deny\n").unwrap_err();
        assert!(e.to_string().contains("no-such-rule"), "{e}");
        let e = Config::from_yaml("rules:\n  multi-process: block\n").unwrap_err();
        assert!(e.to_string().contains("block"), "{e}");
        let e = Config::from_yaml("mode: strict\n").unwrap_err();
        assert!(e.to_string().contains("strict"), "{e}");
        let e = Config::from_yaml("images:\n  platform: amd64\n").unwrap_err();
        assert!(e.to_string().contains("images.platform"), "{e}");
        let e = Config::from_yaml("images:\n  deadline: soon\n").unwrap_err();
        assert!(e.to_string().contains("soon"), "{e}");
        let e = Config::from_yaml("mutations:\n  workload: true\n").unwrap_err();
        assert!(e.to_string().contains("workload"), "{e}");
        let e = Config::from_yaml("mutations:\n  workloads: maybe\n").unwrap_err();
        assert!(e.to_string().contains("maybe"), "{e}");
        let e = Config::from_yaml("sideAgents:\n  images: ['a[']\n").unwrap_err();
        assert!(e.to_string().contains("sideAgents.images[0]"), "{e}");
    }

    #[test]
    fn deadlines_are_bounded() {
        let e = Config::from_yaml("parser:\n  deadline: 18446744073709551615s\n").unwrap_err();
        assert!(e.to_string().contains("parser.deadline"), "{e}");
        let e = Config::from_yaml("images:\n  deadline: 61m\n").unwrap_err();
        assert!(e.to_string().contains("images.deadline"), "{e}");
        assert!(e.to_string().contains("more than 1h"), "{e}");
        let c = Config::from_yaml("parser:\n  deadline: 1h\nimages:\n  deadline: 60m\n").unwrap();
        assert_eq!(c.parser.deadline, MAX_DEADLINE);
        assert_eq!(c.images.deadline, MAX_DEADLINE);
    }

    /// Inputs the `config_parser` fuzzer found (fuzz/regressions/config_parser): each is
    /// refused with an error, or accepted and then builds the engine's side-agent matcher.
    #[test]
    fn fuzz_regressions_load_or_fail_cleanly() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fuzz/regressions/config_parser"
        );
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            let Ok(text) = std::str::from_utf8(&bytes) else {
                continue;
            };
            if let Ok(config) = Config::from_yaml(text) {
                let built = SideAgentMatcher::new(
                    config.side_agents.images.as_deref(),
                    config.side_agents.catalogue,
                );
                assert!(built.is_ok(), "{:?}: {:?}", entry.path(), built.err());
                let now = std::time::Instant::now();
                assert!(now.checked_add(config.parser.deadline).is_some());
                assert!(now.checked_add(config.images.deadline).is_some());
            }
            seen += 1;
        }
        assert!(seen >= 1, "regressions not found in {dir}");
    }
}
