//! Side agents (DESIGN section 5.3): which containers of a pod are agents beside its main
//! workload, on what evidence, and how sure pidone is.
//!
//! `certain` evidence is a catalogued agent image (exact repository name) or command, an image
//! the operator listed in `sideAgents.images`, or the `pidone.io/side-agents` annotation; only
//! it is mutated. `likely` evidence is the container's role: its name, a `tail -F` of a file
//! another container writes, a sync loop over a shared volume. The main workload is never a side
//! agent, whatever its image.

use crate::engine::argv::{LaunchAnalysis, basename};
use crate::engine::kubelet::Environment;
use crate::engine::launchers::{self, Peeled};
use crate::engine::script::ScriptVerdict;
use crate::engine::side_agent_catalogue::{self as catalogue, Role};
use crate::engine::volumes::VolumeSource;
use crate::engine::workload::{ContainerSpec, Section, VolumeMount, Workload};
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

/// `kubectl.kubernetes.io/default-container`: the container kubectl picks, the pod's main one.
pub const ANNOTATION_DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

/// How sure pidone is that a container is a side agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Its role only: warned about, never mutated.
    Likely,
    /// Catalogued, configured or annotated: mutated.
    Certain,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Likely => "likely",
            Confidence::Certain => "certain",
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason to think a container is a side agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// Named in `pidone.io/side-agents`.
    Annotation,
    /// A catalogued agent image.
    CatalogueImage {
        repository: &'static str,
        role: Role,
        source: &'static str,
    },
    /// A catalogued agent command.
    CatalogueCommand {
        command: String,
        role: Role,
        source: &'static str,
    },
    /// An image the configuration lists (`sideAgents.images`).
    ConfiguredImage { pattern: String },
    /// A name that says what it is (`*-proxy`, `*-sidecar`, `log-*`...).
    Name { pattern: &'static str },
    /// Follows (`tail -f/-F`) a file on a volume another container writes.
    TailsSharedFile {
        path: String,
        volume: String,
        writer: String,
    },
    /// Runs a sync, ship or rotate program in an endless loop over a shared volume.
    SyncLoop {
        program: String,
        volume: String,
        with: String,
    },
    /// Declares no ports while the main container serves: supports other evidence, never
    /// enough alone (a worker beside a web server looks the same).
    NoPorts { main: String },
}

impl Evidence {
    /// The confidence this evidence gives alone; `None` for supporting evidence.
    pub fn confidence(&self) -> Option<Confidence> {
        match self {
            Evidence::Annotation
            | Evidence::CatalogueImage { .. }
            | Evidence::CatalogueCommand { .. }
            | Evidence::ConfiguredImage { .. } => Some(Confidence::Certain),
            Evidence::Name { .. }
            | Evidence::TailsSharedFile { .. }
            | Evidence::SyncLoop { .. } => Some(Confidence::Likely),
            Evidence::NoPorts { .. } => None,
        }
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::Annotation => write!(f, "named in pidone.io/side-agents"),
            Evidence::CatalogueImage {
                repository, role, ..
            } => write!(f, "catalogued {role} image {repository}"),
            Evidence::CatalogueCommand { command, role, .. } => {
                write!(f, "catalogued {role} command `{command}`")
            }
            Evidence::ConfiguredImage { pattern } => {
                write!(f, "image listed in sideAgents.images ({pattern})")
            }
            Evidence::Name { pattern } => write!(f, "its name matches {pattern}"),
            Evidence::TailsSharedFile {
                path,
                volume,
                writer,
            } => write!(
                f,
                "it follows {path} on volume {volume:?}, which container {writer:?} also mounts"
            ),
            Evidence::SyncLoop {
                program,
                volume,
                with,
            } => write!(
                f,
                "it runs {program} in an endless loop over volume {volume:?}, shared with container {with:?}"
            ),
            Evidence::NoPorts { main } => {
                write!(f, "it declares no ports while container {main:?} serves")
            }
        }
    }
}

/// Why a container is the pod's main workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MainReason {
    OnlyContainer,
    DefaultContainer,
    WorkloadName(String),
    OwnPersistentVolume(String),
    OnlyPorts,
    /// A log forwarder in a DaemonSet: forwarding logs is the DaemonSet's job.
    DaemonSetLogForwarder,
}

impl fmt::Display for MainReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MainReason::OnlyContainer => write!(f, "the only container"),
            MainReason::DefaultContainer => write!(f, "named by {ANNOTATION_DEFAULT_CONTAINER}"),
            MainReason::WorkloadName(n) => write!(f, "carries the workload's name {n:?}"),
            MainReason::OwnPersistentVolume(v) => {
                write!(f, "the only container mounting persistent volume {v:?}")
            }
            MainReason::OnlyPorts => write!(f, "the only container with ports"),
            MainReason::DaemonSetLogForwarder => {
                write!(f, "a log forwarder in a DaemonSet, whose job it is")
            }
        }
    }
}

/// What pidone concluded about one container that is a side agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideAgent {
    pub confidence: Confidence,
    /// Strongest first.
    pub evidence: Vec<Evidence>,
    /// The main container it sits beside.
    pub main: String,
}

impl Evidence {
    /// The evidence with the catalogue entry's source, for JSON and SARIF output.
    pub fn detailed(&self) -> String {
        match self {
            Evidence::CatalogueImage { source, .. } | Evidence::CatalogueCommand { source, .. } => {
                format!("{self} (as in {source})")
            }
            _ => self.to_string(),
        }
    }
}

impl SideAgent {
    /// The evidence in a few words each, for messages.
    pub fn summary(&self) -> String {
        self.evidence
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The evidence with sources, for JSON and SARIF output.
    pub fn evidence_text(&self) -> Vec<String> {
        self.evidence.iter().map(Evidence::detailed).collect()
    }
}

/// A side-agent image pattern from the configuration.
enum Configured {
    /// An exact repository name, matched like the catalogue's.
    Repository(RepositoryPath<'static>),
    /// A glob on the whole reference: the operator's explicit choice.
    Glob,
}

/// Matches images and commands against the catalogue and the configured images.
pub struct SideAgentMatcher {
    catalogue: bool,
    configured: Vec<(String, Configured)>,
    globs: GlobSet,
    /// Indexes into `configured` of each glob in `globs`.
    glob_index: Vec<usize>,
}

/// A side-agent glob, matched without regard to case. The pattern is compiled as written:
/// lower-casing it first would change what a character range means (`[J-c]` spans `J` to `c`;
/// `[j-c]` is not a range at all).
fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).case_insensitive(true).build()
}

/// A configured side-agent image pattern that cannot be used (`field` names it in the config).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct PatternError {
    pub field: String,
    pub reason: String,
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

impl SideAgentMatcher {
    /// `images` are the configured patterns (added to the catalogue); `catalogue` switches the
    /// built-in catalogue on or off.
    pub fn new(images: Option<&[String]>, catalogue: bool) -> Result<Self, PatternError> {
        let mut builder = GlobSetBuilder::new();
        let mut configured = Vec::new();
        let mut glob_index = Vec::new();
        for (i, p) in images.unwrap_or_default().iter().enumerate() {
            let field = || format!("sideAgents.images[{i}]");
            if is_glob(p) {
                builder.add(glob(p).map_err(|e| PatternError {
                    field: field(),
                    reason: e.to_string(),
                })?);
                glob_index.push(configured.len());
                configured.push((p.clone(), Configured::Glob));
            } else {
                let path = RepositoryPath::of(p);
                if path.is_empty() || p.contains(['@']) {
                    return Err(PatternError {
                        field: field(),
                        reason: format!("`{p}` is neither a repository name nor a glob"),
                    });
                }
                configured.push((p.clone(), Configured::Repository(path.into_owned())));
            }
        }
        let globs = builder.build().map_err(|e| PatternError {
            field: "sideAgents.images".into(),
            reason: e.to_string(),
        })?;
        Ok(SideAgentMatcher {
            catalogue,
            configured,
            globs,
            glob_index,
        })
    }

    /// Certain evidence from the image reference.
    /// `path` is the image's [`RepositoryPath`].
    pub fn image_evidence(&self, image: &str, path: &RepositoryPath<'_>) -> Option<Evidence> {
        if image.is_empty() {
            return None;
        }
        if self.catalogue
            && let Some(name) = path.name()
        {
            for e in catalogue::images_named(name) {
                if path.ends_with_repository(e.repository) {
                    return Some(Evidence::CatalogueImage {
                        repository: e.repository,
                        role: e.role,
                        source: e.source,
                    });
                }
            }
        }
        for (pattern, kind) in &self.configured {
            if let Configured::Repository(repo) = kind
                && path.ends_with_repository(repo.as_str())
            {
                return Some(Evidence::ConfiguredImage {
                    pattern: pattern.clone(),
                });
            }
        }
        let hit = self.globs.matches(image).into_iter().next()?;
        let (pattern, _) = self.configured.get(*self.glob_index.get(hit)?)?;
        Some(Evidence::ConfiguredImage {
            pattern: pattern.clone(),
        })
    }

    /// Certain evidence from the commands the container runs.
    pub fn command_evidence(&self, commands: &[Vec<String>]) -> Option<Evidence> {
        if !self.catalogue {
            return None;
        }
        for argv in commands {
            let argv = skip_wrappers(argv);
            let Some(program) = argv.first() else {
                continue;
            };
            let program = basename(program);
            for e in catalogue::COMMANDS {
                if e.program != program {
                    continue;
                }
                let mut words = argv[1..].iter().filter(|a| !a.starts_with('-'));
                if e.subcommand
                    .iter()
                    .all(|s| words.next().is_some_and(|w| w == s))
                {
                    let mut command = e.program.to_string();
                    for s in e.subcommand {
                        command.push(' ');
                        command.push_str(s);
                    }
                    return Some(Evidence::CatalogueCommand {
                        command,
                        role: e.role,
                        source: e.source,
                    });
                }
            }
        }
        None
    }
}

/// The repository path of an image reference, lower-cased, without registry host, tag, digest
/// or Docker Hub's `library/`: `quay.io/kiwigrid/k8s-sidecar:1.28@sha256:..` ->
/// `kiwigrid/k8s-sidecar`. Borrowed from the reference where it is written so (lower-case,
/// no empty segment), as nearly every image is: read for every container of every review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryPath<'a>(Cow<'a, str>);

impl<'a> RepositoryPath<'a> {
    pub fn of(image: &'a str) -> RepositoryPath<'a> {
        let image = image.trim();
        // Image references are lower-case but for a rare registry host: copied only then.
        if image.bytes().any(|b| b.is_ascii_uppercase()) {
            let lower = image.to_ascii_lowercase();
            return RepositoryPath(Cow::Owned(Self::path_in(&lower).into_owned()));
        }
        RepositoryPath(Self::path_in(image))
    }

    /// The path within a lower-case reference: split at `/`, then the tag, a registry host,
    /// Docker Hub's `library/` and empty segments taken off, in that order.
    fn path_in(image: &str) -> Cow<'_, str> {
        // Byte searches: `split`/`find` with a char or `contains` with a string set up a
        // searcher each time, and this runs for every container of every evaluation.
        let position = |text: &str, byte: u8| text.bytes().position(|b| b == byte);
        let mut path = &image[..position(image, b'@').unwrap_or(image.len())];
        // The tag follows a colon in the last segment (a colon before a slash is a port).
        let last = path
            .bytes()
            .rposition(|b| b == b'/')
            .map_or(0, |slash| slash + 1);
        if let Some(colon) = position(&path[last..], b':') {
            path = &path[..last + colon];
        }
        if let Some(slash) = position(path, b'/') {
            let host = &path[..slash];
            if host == "localhost" || host.bytes().any(|b| b == b'.' || b == b':') {
                path = &path[slash + 1..];
            }
        }
        if let Some(rest) = path.strip_prefix("library/") {
            path = rest;
        }
        let empty_segment = path.starts_with('/')
            || path.ends_with('/')
            || path.as_bytes().windows(2).any(|pair| pair == b"//");
        if empty_segment {
            Cow::Owned(
                path.split('/')
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join("/"),
            )
        } else {
            Cow::Borrowed(path)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The last segment: the image's own name.
    pub fn name(&self) -> Option<&str> {
        self.0.rsplit('/').next().filter(|n| !n.is_empty())
    }

    /// Whether the path is `repository`, or ends with it after a `/`: under any registry or
    /// mirror prefix, whole segments only.
    pub fn ends_with_repository(&self, repository: &str) -> bool {
        let path = self.as_str();
        !repository.is_empty()
            && path.ends_with(repository)
            && (path.len() == repository.len()
                || path.as_bytes()[path.len() - repository.len() - 1] == b'/')
    }

    pub fn into_owned(self) -> RepositoryPath<'static> {
        RepositoryPath(Cow::Owned(self.0.into_owned()))
    }
}

/// Skips launchers and inits (through the launcher tables, with their own option grammar),
/// `exec`/`time`, and `--`, to the program that runs; a word the tables do not know as a
/// launcher (a bare `init`, a stray option or `VAR=value`) is skipped too.
fn skip_wrappers(argv: &[String]) -> &[String] {
    // The word list `peel` reads is built only for a word that may name a launcher: most
    // command lines start with the program itself.
    let mut words: Option<Vec<&str>> = None;
    let mut i = 0;
    while let Some(word) = argv.get(i).map(String::as_str) {
        if matches!(word, "--" | "exec" | "time" | "command" | "builtin") {
            i += 1;
            continue;
        }
        let peeled = if launchers::may_peel(word) {
            let words = words.get_or_insert_with(|| argv.iter().map(String::as_str).collect());
            launchers::peel(&words[i..], &Environment::none())
        } else {
            Peeled::Program
        };
        match peeled {
            // Each launcher consumes at least its own word.
            Peeled::Runs { next, .. } | Peeled::Init { next, .. } => i += next.max(1),
            _ if word.starts_with('-') || (i > 0 && word.contains('=')) => i += 1,
            _ if basename(word) == "init" => i += 1,
            _ => break,
        }
    }
    argv.get(i..).unwrap_or_default()
}

/// Whether the side-agent rules read command `execed` as they read `argv`: it is `argv` with
/// `exec` put before it (as a fix inserts it). Every rule reads a command past its leading
/// wrappers (`skip_wrappers`), which pass over `exec` alike wherever the command starts but
/// for one word: an assignment-like first word, taken for the program at the start only.
pub fn reads_as_execed(argv: &[String], execed: &[String]) -> bool {
    matches!(execed, [exec, rest @ ..] if exec == "exec" && rest == argv)
        && argv.first().is_some_and(|first| !first.contains('='))
}

/// What a container runs: the script's commands, or its argv (with the image's ENTRYPOINT when
/// the pod gives only args and the image's program is known).
pub fn launch_commands(c: &ContainerSpec<'_>, analysis: &LaunchAnalysis) -> LaunchCommands {
    if let Some(shell) = &analysis.shell {
        return LaunchCommands::Script(Arc::clone(&shell.verdict));
    }
    let mut argv = match (&c.command, &analysis.image_argv) {
        (Some(command), _) => command.iter().map(|w| w.to_string()).collect(),
        (None, Some((entrypoint, cmd))) => {
            let mut v = entrypoint.clone();
            if c.args.is_none() {
                v.extend(cmd.iter().cloned());
            }
            v
        }
        (None, None) => {
            let path = RepositoryPath::of(c.image);
            catalogue::IMAGE_PROGRAMS
                .iter()
                .find(|p| path.ends_with_repository(p.repository))
                .map(|p| vec![p.program.to_string()])
                .unwrap_or_default()
        }
    };
    argv.extend(c.args.iter().flatten().map(|w| w.to_string()));
    LaunchCommands::Argv(argv)
}

/// What a container runs, as [`launch_commands`] reads it: a script's commands are shared
/// with its verdict (the verdict cache's), not copied for every review.
pub enum LaunchCommands {
    Script(Arc<ScriptVerdict>),
    Argv(Vec<String>),
}

impl LaunchCommands {
    /// The commands, each an argv: none for an unparsed script or an empty argv.
    pub fn as_slice(&self) -> &[Vec<String>] {
        match self {
            LaunchCommands::Script(verdict) => match &**verdict {
                ScriptVerdict::Parsed(facts) => &facts.commands,
                ScriptVerdict::Unparsed(_) => &[],
            },
            LaunchCommands::Argv(argv) if argv.is_empty() => &[],
            LaunchCommands::Argv(argv) => std::slice::from_ref(argv),
        }
    }
}

/// Facts about the pod that the main-workload rules need, read from the object.
#[derive(Debug, Clone, Default)]
pub struct PodFacts<'a> {
    /// Names the workload goes by: object name, `app.kubernetes.io/name`, `app`...
    pub names: Vec<String>,
    pub default_container: Option<&'a str>,
    /// Container names listed in `pidone.io/side-agents`.
    pub annotated: Vec<&'a str>,
    /// Pod volumes backed by a PersistentVolumeClaim (or a StatefulSet claim template).
    pub persistent_volumes: HashSet<String>,
    /// A DaemonSet, or a Pod a DaemonSet owns.
    pub daemon_set: bool,
    /// Containers a mesh injector added (see `engine::injected`): neither side agents nor main
    /// containers.
    pub injected: Vec<String>,
}

pub const NAME_LABELS: &[&str] = &[
    "app.kubernetes.io/name",
    "app",
    "k8s-app",
    "name",
    "app.kubernetes.io/component",
    "component",
];

impl<'a> PodFacts<'a> {
    /// Reads the facts from the workload's metadata, annotations and volumes.
    pub fn read(w: &Workload<'a>, annotated: Vec<&'a str>, injected: Vec<String>) -> PodFacts<'a> {
        let mut names = Vec::new();
        // Names are kept lower-case; one already kept is not copied again to find it so.
        let mut add = |n: &str| {
            let n = n.trim();
            if !n.is_empty() && !names.iter().any(|k: &String| k.eq_ignore_ascii_case(n)) {
                names.push(n.to_ascii_lowercase());
            }
        };
        let m = &w.metadata;
        for n in [m.name, m.generate_name].into_iter().flatten() {
            add(n);
            if w.object.kind == "Pod" {
                add(without_generated_suffix(n));
            }
        }
        // A Pod is its own template: its labels are read once.
        for labels in [&m.template_labels, &m.labels] {
            for key in NAME_LABELS {
                if let Some(&(_, v)) = labels.iter().find(|(k, _)| k == key) {
                    add(v);
                }
            }
        }
        let default_container = w
            .annotations
            .get(ANNOTATION_DEFAULT_CONTAINER)
            .map(str::trim);
        let mut persistent_volumes = HashSet::new();
        for v in &w.volumes {
            if v.source == VolumeSource::Persistent {
                persistent_volumes.insert(v.name.to_string());
            }
        }
        for &claim in &m.claim_templates {
            persistent_volumes.insert(claim.to_string());
        }
        let owned_by_daemon_set = m.owner_kinds.contains(&"DaemonSet");
        PodFacts {
            names,
            default_container,
            annotated,
            persistent_volumes,
            daemon_set: w.object.kind == "DaemonSet" || owned_by_daemon_set,
            injected,
        }
    }
}

/// One container as the side-agent rules see it.
pub struct Candidate<'c, 'a> {
    pub spec: &'c ContainerSpec<'a>,
    /// What it runs (see [`launch_commands`]).
    pub commands: &'c [Vec<String>],
    /// Its script loops forever.
    pub endless_loop: bool,
    /// Its image's [`RepositoryPath`], read once for every rule that matches images.
    pub repository: RepositoryPath<'a>,
}

/// The certain evidence of each candidate's image and commands, read when first asked and
/// at most once: the main-workload rules and the side-agent evidence both ask, and a pod's
/// only container is never asked about.
struct Catalogued<'m, 'c, 'x, 'a> {
    matcher: &'m SideAgentMatcher,
    candidates: &'c [Candidate<'x, 'a>],
    images: Vec<OnceCell<Option<Evidence>>>,
    commands: Vec<OnceCell<Option<Evidence>>>,
}

impl<'m, 'c, 'x, 'a> Catalogued<'m, 'c, 'x, 'a> {
    fn new(matcher: &'m SideAgentMatcher, candidates: &'c [Candidate<'x, 'a>]) -> Self {
        Catalogued {
            matcher,
            candidates,
            images: vec![OnceCell::new(); candidates.len()],
            commands: vec![OnceCell::new(); candidates.len()],
        }
    }

    /// What the catalogue or the configured images say of candidate `i`'s image.
    fn image(&self, i: usize) -> Option<&Evidence> {
        let c = self.candidates.get(i)?;
        self.images
            .get(i)?
            .get_or_init(|| self.matcher.image_evidence(c.spec.image, &c.repository))
            .as_ref()
    }

    /// What the catalogue says of the commands candidate `i` runs.
    fn command(&self, i: usize) -> Option<&Evidence> {
        let c = self.candidates.get(i)?;
        self.commands
            .get(i)?
            .get_or_init(|| self.matcher.command_evidence(c.commands))
            .as_ref()
    }

    /// The role of a catalogued image or command, when candidate `i` has one.
    fn role(&self, i: usize) -> Option<Role> {
        match self.image(i).or_else(|| self.command(i)) {
            Some(
                Evidence::CatalogueImage { role, .. } | Evidence::CatalogueCommand { role, .. },
            ) => Some(*role),
            _ => None,
        }
    }
}

/// The main-workload rules, in order; the first that names a container decides. `None` for a
/// container that no rule names.
fn main_reasons(
    catalogued: &Catalogued<'_, '_, '_, '_>,
    pod: &PodFacts<'_>,
    candidates: &[Candidate<'_, '_>],
) -> Vec<Option<MainReason>> {
    let regular: Vec<usize> = (0..candidates.len())
        .filter(|&i| {
            candidates[i].spec.section == Section::Containers
                && !pod.injected.iter().any(|n| n == candidates[i].spec.name)
        })
        .collect();
    let mut out = vec![None; candidates.len()];
    let name = |i: usize| candidates[i].spec.name;
    if pod.daemon_set {
        for &i in &regular {
            if catalogued.role(i) == Some(Role::LogForwarder) {
                out[i] = Some(MainReason::DaemonSetLogForwarder);
            }
        }
    }
    if let Some(d) = pod.default_container
        && let Some(&i) = regular.iter().find(|&&i| name(i) == d)
    {
        out[i] = Some(MainReason::DefaultContainer);
        return out;
    }
    if let [only] = regular.as_slice() {
        out[*only] = Some(MainReason::OnlyContainer);
        return out;
    }
    let mut found = false;
    for &i in &regular {
        // Container names are DNS labels, lower-case: copied only when one is not.
        let n = name(i);
        let n = if n.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(n.to_ascii_lowercase())
        } else {
            Cow::Borrowed(n)
        };
        if let Some(w) = pod.names.iter().find(|w| workload_name_matches(w, &n)) {
            out[i] = Some(MainReason::WorkloadName(w.clone()));
            found = true;
        }
    }
    if found {
        return out;
    }
    for &i in &regular {
        let mine = candidates[i]
            .spec
            .mounts
            .iter()
            .map(|m| m.volume)
            .find(|v| {
                pod.persistent_volumes.contains(*v)
                    && !regular.iter().any(|&o| {
                        o != i && candidates[o].spec.mounts.iter().any(|m| m.volume == *v)
                    })
            });
        if let Some(v) = mine {
            out[i] = Some(MainReason::OwnPersistentVolume(v.to_string()));
        }
    }
    // Agents declare ports too (proxies, exporters): ports tell the main container apart only
    // among the containers no catalogue or configured image knows.
    let with_ports: Vec<usize> = regular
        .iter()
        .copied()
        .filter(|&i| {
            candidates[i].spec.has_ports
                && catalogued.image(i).is_none()
                && catalogued.command(i).is_none()
        })
        .collect();
    if let [only] = with_ports.as_slice()
        && out[*only].is_none()
    {
        out[*only] = Some(MainReason::OnlyPorts);
    }
    out
}

/// A container named after its workload: the same name, or the workload's name with a release
/// prefix (`my-release-grafana` runs `grafana`). Not a prefix of it: `git-sync-example` is an
/// example of git-sync, not git-sync.
fn workload_name_matches(workload: &str, container: &str) -> bool {
    !container.is_empty()
        && (workload == container
            || (container.len() >= 3
                && workload
                    .strip_suffix(container)
                    .is_some_and(|head| head.ends_with('-'))))
}

/// A Pod's name without the suffixes its controllers add (`web-7d9f8c6b5-x2k4q` -> `web`,
/// `vault-0` -> `vault`).
fn without_generated_suffix(name: &str) -> &str {
    let mut rest = name.trim_end_matches('-');
    for _ in 0..2 {
        match rest.rsplit_once('-') {
            Some((head, tail))
                if !head.is_empty()
                    && ((4..=10).contains(&tail.len())
                        && tail.chars().all(|c| c.is_ascii_alphanumeric())
                        && tail.chars().any(|c| c.is_ascii_digit())
                        || !tail.is_empty() && tail.chars().all(|c| c.is_ascii_digit())) =>
            {
                rest = head;
            }
            _ => break,
        }
    }
    rest
}

/// Name patterns that say "I am a helper".
fn name_evidence(name: &str, beside_server: bool) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    let segments: Vec<&str> = name.split(['-', '_', '.']).collect();
    let first = segments.first().copied().unwrap_or("");
    let last = segments.last().copied().unwrap_or("");
    if segments.len() > 1 {
        match last {
            "proxy" => return Some("*-proxy"),
            "sidecar" => return Some("*-sidecar"),
            "agent" => return Some("*-agent"),
            "reloader" | "reload" => return Some("*-reloader"),
            "shipper" | "forwarder" => return Some("*-shipper/*-forwarder"),
            "exporter" if beside_server => return Some("*-exporter beside a server"),
            _ => {}
        }
        if matches!(first, "log" | "logs") {
            return Some("log-*");
        }
        if segments[1..].iter().any(|s| matches!(*s, "log" | "logs")) {
            return Some("*-log-*");
        }
    }
    // Backups run beside the data they copy (`xtrabackup` beside `mysql`).
    if name.contains("backup") {
        return Some("*backup*");
    }
    if segments.len() > 1
        && segments.iter().any(|s| {
            matches!(*s, "sync" | "syncer" | "syncd" | "synchronizer")
                || (s.len() > 4 && s.ends_with("sync"))
        })
    {
        return Some("*-sync*");
    }
    if segments.contains(&"sidecar") {
        return Some("*sidecar*");
    }
    None
}

/// Programs that sync, ship or rotate files when run in a loop.
fn sync_program(argv: &[String]) -> Option<String> {
    let argv = skip_wrappers(argv);
    let program = basename(argv.first()?);
    let has = |flags: &[&str]| argv.iter().skip(1).any(|a| flags.contains(&a.as_str()));
    let sub = argv.get(1).map(String::as_str).unwrap_or("");
    let found = match program {
        "rsync" | "rclone" | "gsutil" | "s3cmd" | "azcopy" | "logrotate" | "cp" | "mv"
        | "inotifywait" | "kubectl" | "unison" | "lsyncd" => true,
        "git" => matches!(
            sub,
            "pull" | "fetch" | "clone" | "reset" | "checkout" | "-C"
        ),
        "aws" => sub == "s3",
        "mc" => matches!(sub, "mirror" | "cp"),
        "find" => has(&["-delete", "-exec", "-mtime", "-mmin"]),
        "rm" => true,
        "curl" => has(&["-T", "--upload-file", "-F", "--form", "--data-binary"]),
        _ => false,
    };
    found.then(|| match program {
        "git" | "aws" | "mc" => format!("{program} {sub}"),
        _ => program.to_string(),
    })
}

/// The files a `tail -f/-F/--follow` follows, when the command is one.
fn followed_files(argv: &[String]) -> Vec<&str> {
    let argv = skip_wrappers(argv);
    if argv.first().map(|p| basename(p)) != Some("tail") {
        return Vec::new();
    }
    let mut follow = false;
    let mut files = Vec::new();
    let mut i = 1;
    while let Some(a) = argv.get(i) {
        if a == "--" {
            files.extend(argv[i + 1..].iter().map(String::as_str));
            break;
        } else if a.starts_with("--") {
            follow |= a == "--follow" || a.starts_with("--follow=");
            if matches!(
                a.as_str(),
                "--lines" | "--bytes" | "--pid" | "--sleep-interval"
            ) {
                i += 1;
            }
        } else if a.starts_with('-') && a.len() > 1 {
            follow |= a.contains(['f', 'F']);
            // `-n N`, `-c N`, `-s N`: the value is the next word unless attached.
            if let Some(last) = a.chars().last()
                && matches!(last, 'n' | 'c' | 's')
            {
                i += 1;
            }
        } else if !a.starts_with('+') {
            files.push(a.as_str());
        }
        i += 1;
    }
    if follow { files } else { Vec::new() }
}

/// Whether `path` lies under the mount point `mount`.
pub fn under_mount(path: &str, mount: &str) -> bool {
    let mount = mount.trim_end_matches('/');
    if mount.is_empty() {
        return path.starts_with('/');
    }
    path == mount
        || path
            .strip_prefix(mount)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Another container of the pod (any section) that mounts `volume`.
fn sharer<'c>(candidates: &'c [Candidate<'_, '_>], me: usize, volume: &str) -> Option<&'c str> {
    candidates
        .iter()
        .enumerate()
        .find(|(o, c)| *o != me && c.spec.mounts.iter().any(|m| m.volume == volume))
        .map(|(_, c)| c.spec.name)
}

/// Role evidence (`likely`) for one container.
fn role_evidence(
    candidates: &[Candidate<'_, '_>],
    me: usize,
    beside_server: bool,
    mains: &[Option<MainReason>],
) -> Vec<Evidence> {
    let c = &candidates[me];
    let mut out = Vec::new();
    // A container that runs the main container's image is one of its processes
    // (`trace-agent` beside `agent`), whatever its name says, unless it says `sidecar`.
    let main_image = candidates
        .iter()
        .zip(mains)
        .any(|(o, m)| m.is_some() && !std::ptr::eq(o, c) && o.repository == c.repository);
    // A name that says `sidecar` is its author's word, whatever the image.
    if let Some(pattern) = name_evidence(c.spec.name, beside_server)
        && (!main_image || pattern.contains("sidecar"))
    {
        out.push(Evidence::Name { pattern });
    }
    'tail: for argv in c.commands {
        for file in followed_files(argv) {
            for &VolumeMount {
                volume,
                path: mount,
                ..
            } in &c.spec.mounts
            {
                if under_mount(file, mount)
                    && let Some(writer) = sharer(candidates, me, volume)
                {
                    out.push(Evidence::TailsSharedFile {
                        path: file.to_string(),
                        volume: volume.to_string(),
                        writer: writer.to_string(),
                    });
                    break 'tail;
                }
            }
        }
    }
    if c.endless_loop
        && let Some(program) = c.commands.iter().find_map(|a| sync_program(a))
        && let Some((volume, with)) = c
            .spec
            .mounts
            .iter()
            .find_map(|m| sharer(candidates, me, m.volume).map(|w| (m.volume, w)))
    {
        out.push(Evidence::SyncLoop {
            program,
            volume: volume.to_string(),
            with: with.to_string(),
        });
    }
    out
}

/// Decides, for every container (init containers included, in the order given), whether it is
/// a side agent in `containers` beside a main container, and on what evidence.
pub fn classify(
    matcher: &SideAgentMatcher,
    pod: &PodFacts<'_>,
    candidates: &[Candidate<'_, '_>],
) -> Vec<Option<SideAgent>> {
    let catalogued = Catalogued::new(matcher, candidates);
    let mains = main_reasons(&catalogued, pod, candidates);
    let regular = |i: usize| {
        candidates[i].spec.section == Section::Containers
            && !pod.injected.iter().any(|n| n == candidates[i].spec.name)
    };
    let serving_main = (0..candidates.len())
        .find(|&i| regular(i) && mains[i].is_some() && candidates[i].spec.has_ports);
    let any_server = (0..candidates.len()).any(|i| regular(i) && candidates[i].spec.has_ports);
    let mut evidence: Vec<Vec<Evidence>> = vec![Vec::new(); candidates.len()];
    for (i, c) in candidates.iter().enumerate() {
        if !regular(i) {
            continue;
        }
        let annotated = pod.annotated.contains(&c.spec.name);
        if annotated {
            evidence[i].push(Evidence::Annotation);
        }
        if mains[i].is_some() && !annotated {
            continue;
        }
        let ev = &mut evidence[i];
        ev.extend(catalogued.image(i).cloned());
        ev.extend(catalogued.command(i).cloned());
        let beside_server =
            (0..candidates.len()).any(|o| o != i && regular(o) && candidates[o].spec.has_ports);
        ev.extend(role_evidence(
            candidates,
            i,
            beside_server && any_server,
            &mains,
        ));
    }
    // The main container: a container the rules name, else one with no evidence at all.
    let main_of = |i: usize| -> Option<usize> {
        let named = (0..candidates.len()).find(|&o| {
            o != i
                && regular(o)
                && mains[o].is_some()
                && !pod.annotated.contains(&candidates[o].spec.name)
        });
        named.or_else(|| {
            (0..candidates.len()).find(|&o| {
                o != i && regular(o) && evidence[o].iter().all(|e| e.confidence().is_none())
            })
        })
    };
    (0..candidates.len())
        .map(|i| {
            let ev = &evidence[i];
            let confidence = ev.iter().filter_map(Evidence::confidence).max()?;
            let main = main_of(i)?;
            let mut ev = ev.clone();
            if !candidates[i].spec.has_ports
                && let Some(server) = serving_main.filter(|&s| s != i)
            {
                ev.push(Evidence::NoPorts {
                    main: candidates[server].spec.name.to_string(),
                });
            }
            ev.sort_by_key(|e| std::cmp::Reverse(e.confidence()));
            Some(SideAgent {
                confidence,
                evidence: ev,
                main: candidates[main].spec.name.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::evaluate::{EvalContext, Evaluation};
    use crate::engine::{Action, Config, Engine, RuleId};
    use serde_json::{Value, json};

    pub(crate) fn evaluate_with(yaml: &str, object: &Value) -> Evaluation {
        let config = Config::from_yaml(yaml).unwrap();
        let engine = Engine::new(Arc::new(config)).unwrap();
        engine
            .evaluate_parsed(object, &EvalContext::default())
            .unwrap()
            .unwrap()
    }

    /// `(container, confidence)` of every side-agent finding.
    fn agents_with(yaml: &str, object: &Value) -> Vec<(String, Confidence)> {
        evaluate_with(yaml, object)
            .findings
            .iter()
            .filter(|f| f.rule == RuleId::SideAgent)
            .map(|f| (f.container.clone(), f.confidence.unwrap()))
            .collect()
    }

    fn agents(object: &Value) -> Vec<(String, Confidence)> {
        agents_with("", object)
    }

    fn pod(containers: Value) -> Value {
        json!({"kind": "Pod", "metadata": {"name": "p-7d9f8"}, "spec": {"containers": containers}})
    }

    fn certain(name: &str) -> Vec<(String, Confidence)> {
        vec![(name.to_string(), Confidence::Certain)]
    }

    fn likely(name: &str) -> Vec<(String, Confidence)> {
        vec![(name.to_string(), Confidence::Likely)]
    }

    const APP: fn() -> Value = || json!({"name": "app", "image": "registry.example/shop/app:1", "ports": [{"containerPort": 8080}]});

    #[test]
    fn catalogued_images_match_by_exact_repository_under_any_registry_tag_or_digest() {
        for image in [
            "quay.io/kiwigrid/k8s-sidecar:1.28.0",
            "docker.io/kiwigrid/k8s-sidecar",
            "mirror.example.com/dockerhub/kiwigrid/k8s-sidecar:1.28@sha256:0123",
            "gcr.io/cloudsql-docker/gce-proxy:1.33.2",
            "registry.k8s.io/git-sync/git-sync:v4.2.1",
            "k8s.gcr.io/git-sync:v3.1.6",
        ] {
            let p = pod(json!([APP(), {"name": "helper", "image": image}]));
            assert_eq!(agents(&p), certain("helper"), "{image}");
            let f = &evaluate_with("", &p).findings[0];
            assert!(f.message.contains("[certain: catalogued"), "{}", f.message);
            assert!(
                f.evidence[0].contains(" (as in "),
                "sources in JSON: {:?}",
                f.evidence
            );
        }
        // Substrings, other owners and longer names are not the catalogued repository.
        for image in [
            "registry.example/team/fluent-bit-config-builder:1",
            "example/kiwigrid-k8s-sidecar-fork:1",
            "hashicorp/vault:1.16",
            "registry.example/k8s-sidecar/tools:2",
        ] {
            let p = pod(json!([APP(), {"name": "helper", "image": image}]));
            assert_eq!(agents(&p), vec![], "{image}");
        }
    }

    #[test]
    fn a_command_with_exec_put_before_it_reads_as_it_did() {
        let words = |text: &str| text.split(' ').map(String::from).collect::<Vec<_>>();
        for argv in [
            "fluent-bit -c /etc/fb.conf",
            "tini -- tail -f /var/log/app.log",
            "env LOG=1 rsync -a /src /dst",
            "nice -n 5 git pull",
            "time kubectl proxy",
            "-x run",
            "init tail -F /x",
            "exec tail -f /y",
        ] {
            let (argv, execed) = (words(argv), words(&format!("exec {argv}")));
            assert!(reads_as_execed(&argv, &execed), "{argv:?}");
            assert_eq!(skip_wrappers(&argv), skip_wrappers(&execed), "{argv:?}");
            assert_eq!(followed_files(&argv), followed_files(&execed), "{argv:?}");
            assert_eq!(sync_program(&argv), sync_program(&execed), "{argv:?}");
        }
        // A first word that looks like an assignment is the program only at the start.
        let (argv, execed) = (words("A=1 tail -f /z"), words("exec A=1 tail -f /z"));
        assert!(!reads_as_execed(&argv, &execed));
        assert_ne!(skip_wrappers(&argv), skip_wrappers(&execed));
        assert!(!reads_as_execed(
            &words("tail -f /a"),
            &words("exec tail -f /b")
        ));
        assert!(!reads_as_execed(&words("tail -f /a"), &words("tail -f /a")));
    }

    #[test]
    fn catalogued_commands_are_certain_wherever_they_run() {
        for helper in [
            json!({"name": "secrets", "image": "hashicorp/vault:1.16", "command": ["vault", "agent", "-config=/etc/vault/agent.hcl"]}),
            json!({"name": "secrets", "image": "hashicorp/vault:1.16", "args": ["agent", "-config=/etc/vault/agent.hcl"]}),
            json!({"name": "secrets", "image": "hashicorp/vault:1.16", "command": ["/bin/sh", "-ec"],
                   "args": ["echo ${VAULT_CONFIG?} | base64 -d > /home/vault/config.json && vault agent -config=/home/vault/config.json"]}),
            json!({"name": "secrets", "image": "registry.example/tools:1", "command": ["/usr/bin/dumb-init", "--", "consul-template", "-config=/etc/ct"]}),
            json!({"name": "db", "image": "registry.example/tools:1", "command": ["/cloud_sql_proxy", "-instances=p:r:i=tcp:5432"]}),
            json!({"name": "backup", "image": "hashicorp/consul:1.18", "command": ["consul", "snapshot", "agent"]}),
            // Launchers with their own option grammar, from the shared launcher tables.
            json!({"name": "secrets", "image": "registry.example/tools:1", "command": ["setpriv", "--reuid=100", "--regid=100", "--clear-groups", "--", "vault", "agent", "-config=/etc/va.hcl"]}),
            json!({"name": "secrets", "image": "registry.example/tools:1", "command": ["su-exec", "vault", "taskset", "-c", "0", "nice", "-n5", "vault", "agent"]}),
            json!({"name": "secrets", "image": "registry.example/tools:1", "command": ["/bin/sh", "-c", "exec chrt -o 0 timeout -s TERM 1d vault agent -config=/etc/va.hcl"]}),
        ] {
            let p = pod(json!([APP(), helper]));
            let got = agents(&p);
            assert_eq!(got.len(), 1, "{helper}");
            assert_eq!(got[0].1, Confidence::Certain, "{helper}");
        }
        // The same images running their servers are not agents.
        let p = pod(
            json!([APP(), {"name": "db", "image": "hashicorp/vault:1.16", "args": ["server", "-dev"]}]),
        );
        assert_eq!(agents(&p), vec![]);
    }

    #[test]
    fn configured_images_are_certain_repository_names_or_globs() {
        let p = pod(
            json!([APP(), {"name": "pusher", "image": "registry.example/ops/metrics-pusher:2"}]),
        );
        assert_eq!(agents(&p), vec![]);
        let yaml = "sideAgents:\n  images: [ops/metrics-pusher]\n";
        assert_eq!(agents_with(yaml, &p), certain("pusher"));
        let yaml = "sideAgents:\n  images: [\"*metrics-pusher*\"]\n";
        assert_eq!(agents_with(yaml, &p), certain("pusher"));
        // An exact name is not a substring.
        let yaml = "sideAgents:\n  images: [metrics-push]\n";
        assert_eq!(agents_with(yaml, &p), vec![]);
        // The catalogue can be switched off.
        let proxy = pod(
            json!([APP(), {"name": "db", "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2"}]),
        );
        assert_eq!(
            agents_with("sideAgents:\n  catalogue: false\n", &proxy),
            vec![]
        );
        assert!(Config::from_yaml("sideAgents:\n  images: ['a@sha256:1']\n").is_err());
    }

    #[test]
    fn the_annotation_is_certain() {
        let mut p =
            pod(json!([APP(), {"name": "pusher", "image": "registry.example/ops/pusher:2"}]));
        p["metadata"]["annotations"] = json!({"pidone.io/side-agents": "pusher"});
        assert_eq!(agents(&p), certain("pusher"));
    }

    #[test]
    fn names_that_say_so_are_likely() {
        for name in [
            "db-proxy",
            "config-sidecar",
            "metrics-agent",
            "log-tailer",
            "logs-forward",
            "nginx-reloader",
            "content-sync",
            "git-syncer",
        ] {
            let p = pod(json!([APP(), {"name": name, "image": "registry.example/tools:1"}]));
            assert_eq!(agents(&p), likely(name), "{name}");
        }
        for name in ["scheduler-log-groomer", "xtrabackup", "db-backup"] {
            let p = pod(json!([APP(), {"name": name, "image": "registry.example/tools:1"}]));
            assert_eq!(agents(&p), likely(name), "{name}");
        }
        for name in [
            "worker",
            "proxyless",
            "agent",
            "syncthing-ui-x",
            "catalog-api",
        ] {
            let p = pod(json!([APP(), {"name": name, "image": "registry.example/tools:1"}]));
            assert_eq!(agents(&p), vec![], "{name}");
        }
        // An exporter is a helper beside a server, not beside another exporter-less worker.
        let p = pod(json!([APP(), {"name": "app-exporter", "image": "registry.example/tools:1"}]));
        assert_eq!(agents(&p), likely("app-exporter"));
        let p = pod(
            json!([{"name": "app", "image": "x"}, {"name": "app-exporter", "image": "registry.example/tools:1"}]),
        );
        assert_eq!(agents(&p), vec![]);
    }

    fn with_volume(mut p: Value, volume: &str) -> Value {
        p["spec"]["volumes"] = json!([{"name": volume, "emptyDir": {}}]);
        p
    }

    #[test]
    fn following_a_file_another_container_writes_is_likely() {
        let streamer = |command: Value| {
            with_volume(
                pod(json!([
                    {"name": "count", "image": "busybox", "ports": [{"containerPort": 80}],
                     "volumeMounts": [{"name": "varlog", "mountPath": "/var/log"}]},
                    {"name": "stream-1", "image": "busybox", "command": command,
                     "volumeMounts": [{"name": "varlog", "mountPath": "/var/log"}]}
                ])),
                "varlog",
            )
        };
        for command in [
            json!(["/bin/sh", "-c", "tail -n+1 -F /var/log/1.log"]),
            json!(["tail", "-f", "/var/log/1.log"]),
            json!(["tail", "--follow=name", "-n", "0", "/var/log/1.log"]),
        ] {
            let e = evaluate_with("", &streamer(command.clone()));
            let f = e
                .findings
                .iter()
                .find(|f| f.rule == RuleId::SideAgent)
                .expect("finding");
            assert_eq!(f.confidence, Some(Confidence::Likely), "{command}");
            assert!(
                f.message.contains("follows /var/log/1.log"),
                "{}",
                f.message
            );
            assert!(
                f.message
                    .contains("declares no ports while container \"count\" serves"),
                "{}",
                f.message
            );
            assert_eq!(f.action, Action::Warn);
        }
        // Not following, or a file no other container mounts: no evidence.
        for command in [
            json!(["tail", "-n", "5", "/var/log/1.log"]),
            json!(["tail", "-f", "/dev/null"]),
            json!(["tail", "-F", "/tmp/own.log"]),
        ] {
            assert_eq!(agents(&streamer(command.clone())), vec![], "{command}");
        }
    }

    #[test]
    fn sync_loops_over_a_shared_volume_are_likely() {
        let syncer = |script: &str, shared: bool| {
            let theirs = if shared { "content" } else { "other" };
            let mut p = pod(json!([
                {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
                 "volumeMounts": [{"name": theirs, "mountPath": "/usr/share/nginx/html"}]},
                {"name": "puller", "image": "alpine/git", "command": ["sh", "-c", script],
                 "volumeMounts": [{"name": "content", "mountPath": "/repo"}]}
            ]));
            p["spec"]["volumes"] =
                json!([{"name": "content", "emptyDir": {}}, {"name": "other", "emptyDir": {}}]);
            p
        };
        for script in [
            "cd /repo; while true; do git pull; sleep 60; done",
            "while :; do aws s3 sync /repo s3://bucket/site; sleep 30; done",
            "while true; do find /repo -mtime +7 -delete; sleep 3600; done",
            "until false; do rsync -a /repo/ backup:/srv/; sleep 60; done",
        ] {
            assert_eq!(agents(&syncer(script, true)), likely("puller"), "{script}");
        }
        // No loop, or no volume shared with another container: no evidence.
        assert_eq!(agents(&syncer("cd /repo && git pull", true)), vec![]);
        assert_eq!(
            agents(&syncer("while true; do git pull; sleep 60; done", false)),
            vec![]
        );
        assert_eq!(
            agents(&syncer("while true; do date; sleep 60; done", true)),
            vec![]
        );
    }

    #[test]
    fn no_ports_alone_is_not_enough() {
        let p = pod(json!([APP(), {"name": "worker", "image": "registry.example/shop/worker:1"}]));
        assert_eq!(agents(&p), vec![]);
    }

    #[test]
    fn likely_findings_warn_and_say_how_to_confirm() {
        let mut p = pod(json!([APP(), {"name": "db-proxy", "image": "registry.example/tools:1"}]));
        let e = evaluate_with("rules:\n  side-agent: deny\n", &p);
        let f = &e.findings[0];
        assert_eq!(f.action, Action::Warn);
        assert!(
            f.message.contains("[likely: its name matches *-proxy"),
            "{}",
            f.message
        );
        assert!(
            f.fix.contains("pidone.io/side-agents: \"db-proxy\""),
            "{}",
            f.fix
        );
        p["metadata"]["annotations"] = json!({"pidone.io/side-agents": "db-proxy"});
        let e = evaluate_with("", &p);
        assert_eq!(e.findings[0].action, Action::Mutate);
        assert_eq!(e.findings[0].confidence, Some(Confidence::Certain));
    }

    #[test]
    fn the_only_container_is_the_main_workload() {
        let p =
            pod(json!([{"name": "fluent-bit", "image": "cr.fluentbit.io/fluent/fluent-bit:3.1"}]));
        assert_eq!(agents(&p), vec![]);
        // Init containers do not count.
        let mut p = p;
        p["spec"]["initContainers"] =
            json!([{"name": "init", "image": "busybox", "command": ["true"]}]);
        assert_eq!(agents(&p), vec![]);
    }

    #[test]
    fn the_default_container_annotation_names_the_main_workload() {
        let mut p = pod(json!([
            {"name": "proxy", "image": "envoyproxy/envoy:v1.30"},
            {"name": "oauth2-proxy", "image": "quay.io/oauth2-proxy/oauth2-proxy:v7.6.0"}
        ]));
        p["metadata"]["annotations"] = json!({ANNOTATION_DEFAULT_CONTAINER: "oauth2-proxy"});
        assert_eq!(agents(&p), vec![]);
    }

    /// The vault chart's `server.extraContainers`: a glob on the image name must not make the
    /// Vault server a side agent.
    #[test]
    fn the_container_with_the_workloads_name_is_the_main_workload() {
        let vault = json!({"kind": "StatefulSet", "metadata": {"name": "vault", "labels": {"app.kubernetes.io/name": "vault"}},
        "spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/name": "vault", "component": "server"}},
          "spec": {"containers": [
            {"name": "vault", "image": "hashicorp/vault:1.16.1", "command": ["/bin/sh", "-ec"],
             "args": ["/usr/local/bin/docker-entrypoint.sh vault server -config=/tmp/storageconfig.hcl"],
             "ports": [{"containerPort": 8200}]},
            {"name": "vault-agent", "image": "hashicorp/vault:1.16.1", "args": ["agent", "-config=/vault/agent.hcl"]}
          ]}}}});
        assert_eq!(agents(&vault), certain("vault-agent"));
        let glob = "sideAgents:\n  images: [\"*hashicorp/vault*\"]\n";
        assert_eq!(agents_with(glob, &vault), certain("vault-agent"));
        // A release prefix: `my-release-grafana` runs container `grafana`.
        let grafana = json!({"kind": "Deployment", "metadata": {"name": "my-release-grafana"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "grafana-sc-dashboard", "image": "quay.io/kiwigrid/k8s-sidecar:1.28.0"},
                {"name": "grafana", "image": "docker.io/grafana/grafana:11.2.0"}]}}}});
        assert_eq!(agents(&grafana), certain("grafana-sc-dashboard"));
        let e = evaluate_with("", &grafana);
        assert!(e.findings[0].message.contains("main container \"grafana\""));
    }

    #[test]
    fn the_container_with_its_own_persistent_volume_or_the_only_ports_is_the_main_workload() {
        let mut p = pod(json!([
            {"name": "db-proxy", "image": "registry.example/pg:16", "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql"}]},
            {"name": "stats-agent", "image": "registry.example/tools:1"}
        ]));
        p["spec"]["volumes"] =
            json!([{"name": "data", "persistentVolumeClaim": {"claimName": "d"}}]);
        assert_eq!(agents(&p), likely("stats-agent"));
        let p = pod(json!([
            {"name": "edge-proxy", "image": "registry.example/edge:1", "ports": [{"containerPort": 443}]},
            {"name": "worker", "image": "registry.example/worker:1"}
        ]));
        assert_eq!(agents(&p), vec![]);
        // Ports do not make a catalogued agent the main container.
        let p = pod(json!([
            {"name": "job", "image": "registry.example/batch:1"},
            {"name": "db", "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2", "ports": [{"containerPort": 5432}]}
        ]));
        assert_eq!(agents(&p), certain("db"));
        // StatefulSet claim templates are persistent volumes too.
        let sts = json!({"kind": "StatefulSet", "metadata": {"name": "store"},
            "spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}}],
              "template": {"spec": {"containers": [
                {"name": "state-sync", "image": "registry.example/store:1", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "sync-agent", "image": "registry.example/tools:1"}]}}}});
        assert_eq!(agents(&sts), likely("sync-agent"));
    }

    #[test]
    fn a_log_forwarding_daemonset_is_a_main_workload() {
        let ds = |containers: Value| {
            json!({"kind": "DaemonSet", "metadata": {"name": "node-logs"},
            "spec": {"template": {"spec": {"containers": containers}}}})
        };
        let fluentd =
            json!({"name": "fluentd", "image": "fluent/fluentd-kubernetes-daemonset:v1.17"});
        assert_eq!(agents(&ds(json!([fluentd.clone()]))), vec![]);
        assert_eq!(
            agents(&ds(
                json!([fluentd.clone(), {"name": "metrics", "image": "registry.example/node-metrics:1"}])
            )),
            vec![]
        );
        // The same containers in a Deployment: fluentd is beside the app.
        let dep = json!({"kind": "Deployment", "metadata": {"name": "api"},
            "spec": {"template": {"spec": {"containers": [APP(), fluentd]}}}});
        assert_eq!(agents(&dep), certain("fluentd"));
        // A pod a DaemonSet owns.
        let mut p = pod(
            json!([{"name": "fluent-bit", "image": "fluent/fluent-bit:3"}, {"name": "x", "image": "y"}]),
        );
        p["metadata"]["ownerReferences"] =
            json!([{"kind": "DaemonSet", "name": "d", "controller": true}]);
        assert_eq!(agents(&p), vec![]);
    }

    #[test]
    fn a_pod_of_agents_only_has_no_side_agents() {
        let p = pod(json!([
            {"name": "fluent-bit", "image": "fluent/fluent-bit:3"},
            {"name": "vector", "image": "timberio/vector:0.40"}
        ]));
        assert_eq!(agents(&p), vec![]);
    }

    /// A mesh's injected proxy is the injector's: neither moved nor the main container.
    #[test]
    fn injected_mesh_proxies_are_neither_agents_nor_mains() {
        let mut p = pod(json!([
            {"name": "app", "image": "registry.example/shop/app:1"},
            {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22", "args": ["proxy", "sidecar"], "ports": [{"containerPort": 15090}]},
            {"name": "log-shipper", "image": "registry.example/tools:1"}
        ]));
        p["metadata"]["annotations"] =
            json!({"sidecar.istio.io/status": "{\"containers\":[\"istio-proxy\"]}"});
        // With the proxy set aside, the shipper stands beside the app on its name.
        assert_eq!(agents(&p), likely("log-shipper"));
        p["spec"]["containers"] = json!([
            {"name": "app", "image": "registry.example/shop/app:1"},
            {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22"}
        ]);
        assert_eq!(agents(&p), vec![]);
    }

    /// The Datadog chart's DaemonSet: `trace-agent` and `process-agent` run the agent's image.
    #[test]
    fn containers_running_the_main_image_are_part_of_the_main_workload() {
        let ds = json!({"kind": "DaemonSet", "metadata": {"name": "datadog", "labels": {"app": "datadog"}},
            "spec": {"template": {"spec": {"containers": [
                {"name": "agent", "image": "gcr.io/datadoghq/agent:7.55.0", "command": ["agent", "run"],
                 "ports": [{"containerPort": 8125}]},
                {"name": "trace-agent", "image": "gcr.io/datadoghq/agent:7.55.0", "command": ["trace-agent", "-config=/etc/datadog-agent/datadog.yaml"]},
                {"name": "process-agent", "image": "gcr.io/datadoghq/agent:7.55.0", "command": ["process-agent"]}]}}}});
        assert_eq!(agents(&ds), vec![]);
    }

    #[test]
    fn pod_names_lose_their_generated_suffixes() {
        assert_eq!(without_generated_suffix("web-7d9f8c6b5-x2k4q"), "web");
        assert_eq!(without_generated_suffix("grafana-5f7b9c-"), "grafana");
        assert_eq!(
            without_generated_suffix("git-sync-example"),
            "git-sync-example"
        );
        assert_eq!(without_generated_suffix("vault-0"), "vault");
        assert_eq!(without_generated_suffix("hello-v2"), "hello-v2");
        assert!(workload_name_matches("my-release-grafana", "grafana"));
        assert!(!workload_name_matches("git-sync-example", "git-sync"));
    }

    #[test]
    fn repository_names_drop_registry_tag_and_digest() {
        for (image, want) in [
            (
                "quay.io/kiwigrid/k8s-sidecar:1.28.0",
                "kiwigrid/k8s-sidecar",
            ),
            ("kiwigrid/k8s-sidecar", "kiwigrid/k8s-sidecar"),
            ("docker.io/library/nginx:1.27", "nginx"),
            ("nginx", "nginx"),
            ("localhost:5000/team/app:1@sha256:abc", "team/app"),
            ("registry.example:5000/app", "app"),
            (
                "GCR.IO/CloudSQL-Docker/GCE-Proxy:1.33",
                "cloudsql-docker/gce-proxy",
            ),
            ("k8s.gcr.io/git-sync:v3.1.6", "git-sync"),
        ] {
            assert_eq!(RepositoryPath::of(image).as_str(), want, "{image}");
        }
    }

    /// The definition the segments are read by: split, then take off the tag, a registry
    /// host, Docker Hub's `library/` and empty segments, in that order.
    fn segments_by_definition(image: &str) -> Vec<String> {
        let image = image.trim().to_ascii_lowercase();
        let without_digest = image.split('@').next().unwrap_or("");
        let mut segments: Vec<&str> = without_digest.split('/').collect();
        if let Some(last) = segments.last_mut()
            && let Some((name, _tag)) = last.split_once(':')
        {
            *last = name;
        }
        if segments.len() > 1
            && (segments[0].contains('.')
                || segments[0].contains(':')
                || segments[0] == "localhost")
        {
            segments.remove(0);
        }
        if segments.len() > 1 && segments[0] == "library" {
            segments.remove(0);
        }
        segments
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn segments_are_read_by_their_definition(
            image in "( |[a-zA-Z0-9._-]{0,6}|localhost|library)([/:@]([a-zA-Z0-9._-]{0,6}|localhost|library)){0,5} ?",
        ) {
            let path = RepositoryPath::of(&image);
            proptest::prop_assert_eq!(path.as_str(), segments_by_definition(&image).join("/"));
        }
    }

    #[test]
    fn a_repository_matches_the_tail_of_an_image_path_only_whole_segments() {
        let path = RepositoryPath::of("mirror.example/cache/fluent/fluent-bit:3.1");
        assert!(path.ends_with_repository("fluent/fluent-bit"));
        assert!(path.ends_with_repository("fluent-bit"));
        assert!(path.ends_with_repository("cache/fluent/fluent-bit"));
        assert!(!path.ends_with_repository("x/cache/fluent/fluent-bit"));
        assert!(!path.ends_with_repository("bit"));
        assert!(!path.ends_with_repository("other/fluent-bit"));
        assert!(!path.ends_with_repository(""));
        assert!(!RepositoryPath::of("").ends_with_repository("fluent-bit"));
        // Borrowed from the reference unless it must be rewritten.
        assert!(matches!(path.0, Cow::Borrowed(_)));
        assert!(matches!(RepositoryPath::of("Quay.io/a/b").0, Cow::Owned(_)));
    }
}
