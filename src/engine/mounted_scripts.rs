//! Scripts a container runs from a file pidone can read: a ConfigMap volume (where a path in
//! the container's filesystem comes from: mount path, `subPath`, `items`, `defaultMode`,
//! projected volumes) or the image's own layers; and the launch the script itself makes, read
//! with its shebang's dialect.
//!
//! The caller gathers the ConfigMaps (from the same manifests, or from the API) and the image
//! files (from the registry) and passes them in `EvalContext`; everything here is pure.

use crate::engine::argv::{self, LaunchAnalysis, Role, basename};
use crate::engine::image_files::{FileContent, ImageFiles, WantedFile};
use crate::engine::launch::LaunchClass;
use crate::engine::launchers::{self, ShellFamily};
use crate::engine::script::{Dialect, ScriptVerdict};
use crate::engine::script_verdicts::ScriptLookup;
use crate::engine::volumes::{ConfigMapFiles, Volume};
use crate::engine::workload::ContainerSpec;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How many scripts one launch may hand over to (a ConfigMap script exec'ing another).
pub const MAX_CHAIN: usize = 4;

/// The mode Kubernetes gives ConfigMap files when the volume sets none (0644).
const DEFAULT_MODE: u64 = 0o644;

/// ConfigMaps by namespace and name: their `data`, key to text.
#[derive(Debug, Clone, Default)]
pub struct ConfigMaps {
    maps: HashMap<(String, String), Arc<BTreeMap<String, String>>>,
}

impl ConfigMaps {
    /// Adds one ConfigMap; `namespace` is `None` when the object names none.
    pub fn insert(&mut self, namespace: Option<&str>, name: &str, data: BTreeMap<String, String>) {
        self.insert_shared(namespace, name, Arc::new(data));
    }

    /// Adds one ConfigMap whose data is shared with a cache (no copy).
    pub fn insert_shared(
        &mut self,
        namespace: Option<&str>,
        name: &str,
        data: Arc<BTreeMap<String, String>>,
    ) {
        self.maps.insert(
            (namespace.unwrap_or("").to_string(), name.to_string()),
            data,
        );
    }

    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    pub fn len(&self) -> usize {
        self.maps.len()
    }

    /// The ConfigMap `name` as a pod in `namespace` sees it. Manifests often leave the
    /// namespace out (it comes from `kubectl -n` or the release), so when either side names
    /// none, a ConfigMap of that name is taken if exactly one matches.
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<&BTreeMap<String, String>> {
        let ns = namespace.unwrap_or("");
        if let Some(data) = self.maps.get(&(ns.to_string(), name.to_string())) {
            return Some(data.as_ref());
        }
        let mut candidates = self
            .maps
            .iter()
            .filter(|((n, m), _)| m == name && (ns.is_empty() || n.is_empty()));
        let first = candidates.next()?;
        candidates.next().is_none().then_some(first.1.as_ref())
    }
}

/// A script file the container runs: from a ConfigMap volume or from the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedFile<'a> {
    /// Where the text comes from, as messages and JSON show it: `configmap/NAME:key` or
    /// `image@sha256:...:/path`.
    pub source: String,
    pub text: &'a str,
    /// The file mode (ConfigMaps: `items[].mode`, else `defaultMode`, else 0644).
    pub mode: u64,
}

/// One script pidone read for a launch, as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptRead {
    /// Where the text came from: `configmap/NAME:key` or `image@sha256:...:/path`.
    pub source: String,
    /// The path the container runs it as.
    pub path: String,
    /// The dialect it was parsed with (none when its shebang names no shell).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialect: Option<Dialect>,
    /// The launch class of the script itself.
    pub class: LaunchClass,
}

/// The ConfigMap file at `path` in container `c`, if a ConfigMap volume of the pod's puts one
/// there. Relative paths are taken from the container's `workingDir`.
pub fn find<'m>(
    volumes: &[Volume<'_>],
    c: &ContainerSpec<'_>,
    namespace: Option<&str>,
    maps: &'m ConfigMaps,
    path: &str,
) -> Option<MountedFile<'m>> {
    let path = absolute(c, path)?;
    // The last mount that covers the path wins, as nested mounts shadow their parents.
    let mut found = None;
    for m in &c.mounts {
        let (volume, mount_path) = (m.volume, m.path);
        if volume.is_empty() || mount_path.is_empty() {
            continue;
        }
        let Some(rel) = relative_to_mount(&path, mount_path) else {
            continue;
        };
        let sub_path = m
            .sub_path
            .map(|s| s.trim_matches('/'))
            .filter(|s| !s.is_empty());
        let in_volume = match (sub_path, rel.is_empty()) {
            (Some(sub), true) => sub.to_string(),
            (Some(sub), false) => format!("{sub}/{rel}"),
            (None, true) => continue,
            (None, false) => rel.to_string(),
        };
        let Some(v) = volumes.iter().find(|v| v.name == volume) else {
            continue;
        };
        if let Some(file) = volume_file(v, &in_volume, namespace, maps) {
            found = Some(file);
        }
    }
    found
}

fn absolute(c: &ContainerSpec<'_>, path: &str) -> Option<String> {
    if path.starts_with('/') {
        return Some(path.to_string());
    }
    let dir = c.working_dir?;
    if !dir.starts_with('/') {
        return None;
    }
    let rel = path.strip_prefix("./").unwrap_or(path);
    Some(format!("{}/{rel}", dir.trim_end_matches('/')))
}

/// `path` below `mount` (`""` for the mount point itself), or `None` when outside it.
fn relative_to_mount<'p>(path: &'p str, mount: &str) -> Option<&'p str> {
    let mount = mount.trim_end_matches('/');
    let rest = path.strip_prefix(mount)?;
    if rest.is_empty() {
        return Some("");
    }
    rest.strip_prefix('/').map(|r| r.trim_start_matches('/'))
}

/// The file at `in_volume` of a `configMap` or `projected` volume.
fn volume_file<'m>(
    volume: &Volume<'_>,
    in_volume: &str,
    namespace: Option<&str>,
    maps: &'m ConfigMaps,
) -> Option<MountedFile<'m>> {
    volume.source.config_maps().find_map(|(files, mode)| {
        config_map_file(
            files,
            in_volume,
            mode.unwrap_or(DEFAULT_MODE),
            namespace,
            maps,
        )
    })
}

fn config_map_file<'m>(
    files: &ConfigMapFiles<'_>,
    in_volume: &str,
    default_mode: u64,
    namespace: Option<&str>,
    maps: &'m ConfigMaps,
) -> Option<MountedFile<'m>> {
    let name = files.name?;
    let data = maps.get(namespace, name)?;
    let (key, mode) = match &files.items {
        // With `items`, only the listed keys appear, each at its own path.
        Some(items) => items.iter().find_map(|item| {
            (item.path.trim_matches('/') == in_volume)
                .then(|| (item.key, item.mode.unwrap_or(default_mode)))
        })?,
        None => (in_volume, default_mode),
    };
    let (key, text) = data.get_key_value(key)?;
    Some(MountedFile {
        source: format!("configmap/{name}:{key}"),
        text,
        mode,
    })
}

/// What the shebang line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interpreter {
    Shell {
        name: String,
        dialect: Dialect,
    },
    /// An init (`dumb-init`, `tini`) that runs the rest as its child.
    Init(String),
    /// Not a shell (python, node...): the interpreter itself is PID 1.
    Other(String),
}

/// Reads `#!` (with `/usr/bin/env` and its `-S`); no shebang means `sh`, which is what
/// shells and the kubelet's exec fall back to.
pub fn interpreter(text: &str) -> Interpreter {
    let Some(line) = text.lines().next().and_then(|l| l.strip_prefix("#!")) else {
        return shell("sh");
    };
    let mut words = line.split_whitespace();
    let mut program = words.next().unwrap_or("sh");
    if basename(program) == "env" {
        program = words
            .find(|w| !w.starts_with('-') && !w.contains('='))
            .unwrap_or("sh");
    }
    // The launcher table knows the inits and the shells (and busybox, whose `sh` applet a
    // shebang names as `#!/bin/busybox sh`).
    if launchers::is_init(program) {
        return Interpreter::Init(program.to_string());
    }
    if launchers::shell_family(program).is_some() || launchers::is_busybox(program) {
        return shell(program);
    }
    Interpreter::Other(program.to_string())
}

fn shell(program: &str) -> Interpreter {
    let dialect = match launchers::shell_family(program) {
        Some(ShellFamily::Bash | ShellFamily::Other) => Dialect::Bash,
        _ => Dialect::Sh,
    };
    Interpreter::Shell {
        name: program.to_string(),
        dialect,
    }
}

/// Where the files a pod may run come from: its ConfigMap volumes and its images.
pub struct MountContext<'a> {
    /// The pod's volumes.
    pub volumes: &'a [Volume<'a>],
    pub namespace: Option<&'a str>,
    pub maps: Option<&'a ConfigMaps>,
    /// Files the caller read from images' layers; `None` when images are not looked up.
    pub image_files: Option<&'a ImageFiles>,
}

/// A launch followed into the scripts it runs.
#[derive(Debug, Clone)]
pub struct Followed {
    pub analysis: LaunchAnalysis,
    /// The scripts read, first to last.
    pub read: Vec<ScriptRead>,
    /// A file of the image the launch runs next that the caller has not read yet.
    pub wanted: Option<WantedFile>,
}

/// What a path a launch runs is, as far as the pod and the image files tell.
enum Found<'a> {
    Text(MountedFile<'a>),
    /// A file of the image that is not a script: it is PID 1 itself.
    Binary {
        source: String,
        what: &'a str,
    },
    /// The image file could not be read (or is not there): the analysis stays, with why.
    Note(String),
    /// An image file the caller may read.
    Wanted(WantedFile),
}

/// Follows a launch into the scripts it runs: when the program that would be PID 1 is a file
/// from a ConfigMap volume or from the image, the script's own launch replaces the analysis
/// (up to [`MAX_CHAIN`] scripts deep).
pub fn follow(
    mut analysis: LaunchAnalysis,
    c: &ContainerSpec<'_>,
    mounts: &MountContext<'_>,
    long_running: bool,
    scripts: &ScriptLookup<'_>,
) -> Followed {
    let mut read: Vec<ScriptRead> = Vec::new();
    let mut wanted = None;
    while read.len() < MAX_CHAIN {
        if !matches!(
            analysis.class,
            LaunchClass::Script | LaunchClass::Direct | LaunchClass::Exec
        ) {
            break;
        }
        let Some(path) = analysis.pid1.clone() else {
            break;
        };
        if read.iter().any(|r| r.path == path) {
            break;
        }
        let config_map = mounts
            .maps
            .and_then(|maps| find(mounts.volumes, c, mounts.namespace, maps, &path));
        let file = match config_map
            .map(Found::Text)
            .or_else(|| in_image(c, mounts, &analysis, &path))
        {
            Some(Found::Text(file)) => file,
            Some(Found::Binary { source, what }) => {
                analysis.class = LaunchClass::Direct;
                analysis.detail =
                    format!("runs {path} (source: {source}), {what}, as PID 1 without a shell");
                analysis.exec_insertions.clear();
                analysis.final_program = None;
                read.push(ScriptRead {
                    source,
                    path,
                    dialect: None,
                    class: LaunchClass::Direct,
                });
                break;
            }
            Some(Found::Note(note)) => {
                // First: messages are cut to a length, and this is what is new.
                analysis.detail = format!("{note}; {}", analysis.detail);
                break;
            }
            Some(Found::Wanted(file)) => {
                wanted = Some(file);
                break;
            }
            None => break,
        };
        let argv = effective_argv(c, &analysis);
        let invoked_by = if read.is_empty() {
            invoking_shell(&argv, &path)
        } else {
            None
        };
        let (next, dialect) = script_launch(&file, &path, invoked_by, &argv, long_running, scripts);
        read.push(ScriptRead {
            source: file.source.clone(),
            path: path.clone(),
            dialect,
            class: next.class,
        });
        analysis = LaunchAnalysis {
            // The shell of the pod's own command stays: fixes and stop-hack checks look at
            // what is in the spec, never at the ConfigMap or the image.
            shell: analysis.shell,
            from_args: analysis.from_args,
            from_image: analysis.from_image,
            image_argv: analysis.image_argv,
            // What the pod's own command read to get here.
            env_read: analysis.env_read || next.env_read,
            ..next
        };
    }
    Followed {
        analysis,
        read,
        wanted,
    }
}

/// The file of the container's image at `path`, when the launch runs one: an absolute path
/// (or one below the container's `workingDir`) that no volume covers, run as a script, or
/// as the program of a launch that came from the image (an ENTRYPOINT, or what its script
/// execs). A program a launcher or init stays the parent of is not looked at.
fn in_image<'f>(
    c: &ContainerSpec<'_>,
    mounts: &MountContext<'f>,
    analysis: &LaunchAnalysis,
    path: &str,
) -> Option<Found<'f>> {
    let files = mounts.image_files?;
    if c.image.is_empty() || !path.contains('/') {
        return None;
    }
    let from_image = analysis.from_image.is_some();
    if analysis.class != LaunchClass::Script && !from_image {
        return None;
    }
    if analysis
        .through
        .iter()
        .any(|t| !matches!(t.role, Role::Execs))
    {
        return None;
    }
    let path = absolute(c, path)?;
    if under_a_volume(c, &path) {
        return None;
    }
    let Some(file) = files.get(c.image, &path) else {
        return Some(Found::Wanted(WantedFile {
            image: c.image.to_string(),
            path,
        }));
    };
    Some(match &file.content {
        FileContent::Script { text } => Found::Text(MountedFile {
            source: file.source(),
            text,
            mode: u64::from(file.mode),
        }),
        FileContent::Binary { what } => Found::Binary {
            source: file.source(),
            what,
        },
        FileContent::Missing => Found::Note(format!("{path} is not in the image {}", file.digest)),
        FileContent::Unread { reason } => Found::Note(format!(
            "pidone could not read {path} from the image: {reason}"
        )),
    })
}

/// Whether a volume of the container is mounted over `path` (then the image's file is
/// hidden).
fn under_a_volume(c: &ContainerSpec<'_>, path: &str) -> bool {
    c.mounts
        .iter()
        .filter(|m| !m.path.is_empty())
        .any(|m| relative_to_mount(path, m.path).is_some())
}

/// The argv the container runs: `command` and `args`, or, for a launch from the image, its
/// ENTRYPOINT with the pod's `args` or the image's CMD.
fn effective_argv(c: &ContainerSpec<'_>, analysis: &LaunchAnalysis) -> Vec<String> {
    let command = c.command.as_deref().map_or(&[][..], Vec::as_slice);
    match &analysis.image_argv {
        Some((entrypoint, cmd)) if command.is_empty() => match &c.args {
            Some(args) => entrypoint
                .iter()
                .cloned()
                .chain(args.iter().map(|a| a.to_string()))
                .collect(),
            None => entrypoint.iter().chain(cmd).cloned().collect(),
        },
        _ => command
            .iter()
            .chain(c.args.iter().flatten())
            .map(|w| w.to_string())
            .collect(),
    }
}

/// The shell named before `path` in the container's argv (`bash /scripts/run.sh`): it, not
/// the shebang, picks the dialect.
fn invoking_shell(argv: &[String], path: &str) -> Option<String> {
    let at = argv.iter().position(|a| a.as_str() == path)?;
    let first = argv.first()?;
    let is_shell = matches!(
        interpreter(&format!("#!{first}")),
        Interpreter::Shell { .. }
    );
    (at > 0 && is_shell && !argv[..at].iter().any(|a| a.as_str() == "-c"))
        .then(|| first.to_string())
}

/// The launch one script file makes, and the dialect it was read with.
fn script_launch(
    file: &MountedFile<'_>,
    path: &str,
    invoked_by: Option<String>,
    argv: &[String],
    long_running: bool,
    scripts: &ScriptLookup<'_>,
) -> (LaunchAnalysis, Option<Dialect>) {
    let source = &file.source;
    let by_shell = invoked_by.is_some();
    let mut out = LaunchAnalysis {
        class: LaunchClass::Unparsed,
        pid1: None,
        shell: None,
        from_args: false,
        from_image: None,
        image_argv: None,
        detail: String::new(),
        exec_insertions: Vec::new(),
        through: Vec::new(),
        final_program: None,
        exec_blocker: None,
        env_read: false,
    };
    let interp = match invoked_by {
        Some(sh) => shell(&sh),
        None => interpreter(file.text),
    };
    let (shell_name, dialect) = match interp {
        Interpreter::Shell { name, dialect } => (name, dialect),
        Interpreter::Init(init) => {
            out.class = LaunchClass::Direct;
            out.detail = format!(
                "runs {path} (source: {source}), whose shebang puts {} at PID 1",
                basename(&init)
            );
            out.pid1 = Some(init);
            return (out, None);
        }
        Interpreter::Other(program) => {
            out.class = LaunchClass::Direct;
            out.detail = format!(
                "runs {path} (source: {source}) with {} as PID 1 without a shell",
                basename(&program)
            );
            out.pid1 = Some(program);
            return (out, None);
        }
    };
    // The kubelet expands `$(VAR)` in the pod's command, never in a file's text.
    let verdict = scripts.verdict(dialect, file.text);
    let label = format!("{path} (source: {source}, {})", dialect_name(dialect));
    match verdict.as_ref() {
        ScriptVerdict::Unparsed(reason) => {
            out.detail = format!("script {label} not analysed: {reason}");
        }
        ScriptVerdict::Parsed(facts) => {
            let operands = operands(argv, path);
            argv::classify_file_script(
                facts,
                &operands,
                long_running,
                scripts,
                basename(&shell_name),
                file.text,
                &mut out,
            );
            out.detail = format!("script {label}: {}", out.detail);
        }
    }
    if file.mode & 0o111 == 0 && !by_shell {
        out.detail.push_str(&format!(
            " (the file's mode {:o} is not executable)",
            file.mode
        ));
    }
    // Offsets point into the file's text, which the pod's fixes do not rewrite.
    out.exec_insertions.clear();
    (out, Some(dialect))
}

fn dialect_name(d: Dialect) -> &'static str {
    match d {
        Dialect::Sh => "an sh script",
        Dialect::Bash => "a bash script",
    }
}

/// `$0` and the positional parameters: the argv entries after the script's path, when the
/// container runs it with arguments (`[/scripts/run.sh, --port, 80]`, or an image's
/// `ENTRYPOINT ["/docker-entrypoint.sh"]` with `CMD ["postgres"]`).
fn operands(argv: &[String], path: &str) -> Vec<String> {
    match argv.iter().position(|a| a.as_str() == path) {
        Some(at) => argv[at..].iter().map(|a| a.to_string()).collect(),
        None => vec![path.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::script_verdicts::with_scripts_parsed;

    /// A long-running container's launch followed into its scripts, every script parsed.
    fn follow_parsed(
        c: &ContainerSpec<'_>,
        ctx: &MountContext<'_>,
        image: Option<&crate::engine::image_config::ImageConfig>,
    ) -> Followed {
        with_scripts_parsed(|scripts| {
            let before = argv::analyze(c, true, scripts, image);
            follow(before, c, ctx, true, scripts)
        })
    }
    use crate::engine::workload;
    use serde_json::{Value, json};

    fn maps() -> ConfigMaps {
        let mut m = ConfigMaps::default();
        m.insert(
            Some("db"),
            "scripts",
            BTreeMap::from([
                (
                    "start.sh".to_string(),
                    "#!/bin/bash\nset -e\nexec redis-server --port 6379\n".to_string(),
                ),
                (
                    "wait.sh".to_string(),
                    "#!/bin/sh\nworker &\nserver\n".to_string(),
                ),
            ]),
        );
        m
    }

    fn pod(container: Value, volume: Value) -> Value {
        json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "db"},
            "spec": {"containers": [container], "volumes": [volume]}})
    }

    fn found(pod: &Value, path: &str) -> Option<(String, u64)> {
        let m = maps();
        let w = workload::extract(pod).ok()??;
        let f = find(&w.volumes, &w.containers[0], Some("db"), &m, path)?;
        Some((f.source.clone(), f.mode))
    }

    #[test]
    fn mount_path_key_subpath_items_and_modes() {
        let c = json!({"name": "a", "volumeMounts": [{"name": "s", "mountPath": "/opt/scripts/"}]});
        let whole = pod(
            c.clone(),
            json!({"name": "s", "configMap": {"name": "scripts", "defaultMode": 493}}),
        );
        assert_eq!(
            found(&whole, "/opt/scripts/start.sh"),
            Some(("configmap/scripts:start.sh".into(), 0o755))
        );
        assert_eq!(found(&whole, "/opt/scripts/none.sh"), None);
        assert_eq!(found(&whole, "/opt/scriptsx/start.sh"), None);

        let items = pod(
            c,
            json!({"name": "s", "configMap": {"name": "scripts", "items": [
                {"key": "start.sh", "path": "bin/run", "mode": 320}]}}),
        );
        assert_eq!(
            found(&items, "/opt/scripts/bin/run"),
            Some(("configmap/scripts:start.sh".into(), 0o500))
        );
        // Keys not listed in `items` are not in the volume.
        assert_eq!(found(&items, "/opt/scripts/start.sh"), None);

        let sub = pod(
            json!({"name": "a", "volumeMounts": [
                {"name": "s", "mountPath": "/entrypoint.sh", "subPath": "wait.sh"}]}),
            json!({"name": "s", "configMap": {"name": "scripts"}}),
        );
        assert_eq!(
            found(&sub, "/entrypoint.sh"),
            Some(("configmap/scripts:wait.sh".into(), 0o644))
        );
        let projected = pod(
            json!({"name": "a", "workingDir": "/app", "volumeMounts": [{"name": "s", "mountPath": "/app"}]}),
            json!({"name": "s", "projected": {"defaultMode": 365, "sources": [
                {"secret": {"name": "x"}}, {"configMap": {"name": "scripts"}}]}}),
        );
        assert_eq!(
            found(&projected, "./start.sh"),
            Some(("configmap/scripts:start.sh".into(), 0o555))
        );
    }

    #[test]
    fn namespaces_match_exactly_or_when_one_side_names_none() {
        let mut m = ConfigMaps::default();
        m.insert(None, "a", BTreeMap::new());
        m.insert(Some("x"), "b", BTreeMap::new());
        m.insert(Some("y"), "b", BTreeMap::new());
        assert!(m.get(Some("z"), "a").is_some());
        assert!(m.get(Some("x"), "b").is_some());
        assert!(m.get(Some("z"), "b").is_none());
        // Two candidates: ambiguous, so none.
        assert!(m.get(None, "b").is_none());
    }

    #[test]
    fn shebangs() {
        let sh = |t: &str| interpreter(t);
        assert!(matches!(
            sh("#!/bin/bash\n"),
            Interpreter::Shell {
                dialect: Dialect::Bash,
                ..
            }
        ));
        assert!(matches!(
            sh("#!/usr/bin/env bash\n"),
            Interpreter::Shell {
                dialect: Dialect::Bash,
                ..
            }
        ));
        assert!(matches!(
            sh("#! /bin/sh -e\n"),
            Interpreter::Shell {
                dialect: Dialect::Sh,
                ..
            }
        ));
        assert!(matches!(
            sh("echo hi\n"),
            Interpreter::Shell {
                dialect: Dialect::Sh,
                ..
            }
        ));
        // Every init of the launcher table, as the table names it.
        for init in [
            "dumb-init",
            "tini",
            "tini-static",
            "catatonit",
            "pidone-init",
        ] {
            assert_eq!(
                sh(&format!("#!/usr/bin/{init} /bin/bash\n")),
                Interpreter::Init(format!("/usr/bin/{init}")),
            );
        }
        assert!(matches!(sh("#!/usr/bin/gosu app\n"), Interpreter::Other(_)));
        assert_eq!(
            sh("#!/usr/bin/env -S python3 -u\n"),
            Interpreter::Other("python3".into())
        );
    }

    #[test]
    fn follows_into_the_script() {
        let p = pod(
            json!({"name": "a", "command": ["/bin/bash", "-c", "/opt/scripts/start.sh"],
                "volumeMounts": [{"name": "s", "mountPath": "/opt/scripts"}]}),
            json!({"name": "s", "configMap": {"name": "scripts", "defaultMode": 493}}),
        );
        let w = workload::extract(&p).unwrap().unwrap();
        let c = &w.containers[0];
        let m = maps();
        let ctx = MountContext {
            volumes: &w.volumes,
            namespace: Some("db"),
            maps: Some(&m),
            image_files: None,
        };
        let Followed {
            analysis: after,
            read,
            ..
        } = follow_parsed(c, &ctx, None);
        let before = with_scripts_parsed(|scripts| argv::analyze(c, true, scripts, None));
        assert_eq!(before.class, LaunchClass::Script);
        assert_eq!(after.class, LaunchClass::Exec, "{}", after.detail);
        assert_eq!(after.pid1.as_deref(), Some("redis-server"));
        assert!(
            after.detail.contains("source: configmap/scripts:start.sh"),
            "{}",
            after.detail
        );
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].dialect, Some(Dialect::Bash));
        assert!(after.shell.is_some(), "the pod's own shell stays for fixes");
    }

    #[test]
    fn chains_are_followed_and_bounded() {
        let mut m = ConfigMaps::default();
        let mut data = BTreeMap::new();
        data.insert(
            "a.sh".to_string(),
            "#!/bin/sh\nexec /s/b.sh \"$@\"\n".to_string(),
        );
        data.insert(
            "b.sh".to_string(),
            "#!/bin/bash\nexec app \"$@\"\n".to_string(),
        );
        data.insert(
            "loop.sh".to_string(),
            "#!/bin/sh\nexec /s/loop.sh\n".to_string(),
        );
        for i in 0..6 {
            data.insert(
                format!("c{i}.sh"),
                format!("#!/bin/sh\nexec /s/c{}.sh\n", i + 1),
            );
        }
        m.insert(None, "s", data);
        let run = |command: &str| {
            let p = pod(
                json!({"name": "a", "command": [command],
                    "volumeMounts": [{"name": "s", "mountPath": "/s"}]}),
                json!({"name": "s", "configMap": {"name": "s", "defaultMode": 493}}),
            );
            let w = workload::extract(&p).unwrap().unwrap();
            let c = &w.containers[0];
            let ctx = MountContext {
                volumes: &w.volumes,
                namespace: Some("db"),
                maps: Some(&m),
                image_files: None,
            };
            let Followed {
                analysis: after,
                read,
                ..
            } = follow_parsed(c, &ctx, None);
            (
                after.class,
                after.pid1,
                read.iter().map(|r| r.source.clone()).collect::<Vec<_>>(),
            )
        };
        let (class, pid1, read) = run("/s/a.sh");
        assert_eq!(class, LaunchClass::Exec);
        assert_eq!(pid1.as_deref(), Some("app"));
        assert_eq!(read, ["configmap/s:a.sh", "configmap/s:b.sh"]);
        // A script that execs itself is read once.
        let (class, _, read) = run("/s/loop.sh");
        assert_eq!(class, LaunchClass::Script);
        assert_eq!(read.len(), 1);
        // A long chain stops at MAX_CHAIN, still a script pidone has not seen the end of.
        let (class, pid1, read) = run("/s/c0.sh");
        assert_eq!(read.len(), MAX_CHAIN);
        assert_eq!(class, LaunchClass::Script);
        assert_eq!(pid1.as_deref(), Some("/s/c4.sh"));
    }

    #[test]
    fn follows_into_the_image_and_asks_for_what_it_lacks() {
        use crate::engine::evaluate::ImageConfig;
        use crate::engine::image_files::{ImageFile, ImageFiles};
        let image = ImageConfig {
            entrypoint: vec!["docker-entrypoint.sh".into()],
            cmd: vec!["postgres".into()],
            digest: "sha256:feed".into(),
            ..Default::default()
        };
        let abs = ImageConfig {
            entrypoint: vec!["/usr/local/bin/docker-entrypoint.sh".into()],
            ..image.clone()
        };
        let file = |content: FileContent| ImageFile {
            digest: "sha256:feed".into(),
            path: "/usr/local/bin/docker-entrypoint.sh".into(),
            mode: 0o755,
            content,
        };
        let entrypoint =
            "#!/usr/bin/env bash\nset -e\nif [ \"$1\" = postgres ]; then initdb; fi\nexec \"$@\"\n";
        let run = |container: Value, image: &ImageConfig, files: Option<&ImageFiles>| {
            let p = json!({"kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [container]}});
            let w = workload::extract(&p).unwrap().unwrap();
            let c = &w.containers[0];
            let ctx = MountContext {
                volumes: &w.volumes,
                namespace: None,
                maps: None,
                image_files: files,
            };
            follow_parsed(c, &ctx, Some(image))
        };
        let app = json!({"name": "db", "image": "db:1"});
        // A bare name is looked up in PATH: not a file pidone can name.
        assert!(
            run(app.clone(), &image, Some(&ImageFiles::default()))
                .wanted
                .is_none()
        );
        // Nothing read yet: the file is asked for.
        let first = run(app.clone(), &abs, Some(&ImageFiles::default()));
        assert_eq!(
            first.wanted,
            Some(WantedFile {
                image: "db:1".into(),
                path: "/usr/local/bin/docker-entrypoint.sh".into()
            })
        );
        assert_eq!(first.analysis.class, LaunchClass::Script);
        // Read: `exec "$@"` hands over to CMD.
        let mut files = ImageFiles::default();
        files.insert(
            "db:1",
            "/usr/local/bin/docker-entrypoint.sh",
            file(FileContent::Script {
                text: entrypoint.into(),
            }),
        );
        let read = run(app.clone(), &abs, Some(&files));
        assert_eq!(
            read.analysis.class,
            LaunchClass::Exec,
            "{}",
            read.analysis.detail
        );
        assert_eq!(read.analysis.pid1.as_deref(), Some("postgres"));
        assert_eq!(
            read.read[0].source,
            "image@sha256:feed:/usr/local/bin/docker-entrypoint.sh"
        );
        assert!(read.analysis.detail.contains("source: image@sha256:feed:"));
        // The pod's args replace CMD, and are what `"$@"` runs.
        let with_args = json!({"name": "db", "image": "db:1", "args": ["pgbouncer"]});
        let read = run(with_args, &abs, Some(&files));
        assert_eq!(read.analysis.pid1.as_deref(), Some("pgbouncer"));
        // A volume over the path hides the image's file.
        let covered = json!({"name": "db", "image": "db:1",
            "volumeMounts": [{"name": "bin", "mountPath": "/usr/local/bin"}]});
        let read = run(covered, &abs, Some(&files));
        assert!(read.wanted.is_none() && read.read.is_empty());
        // A binary is PID 1 itself; a file that is not there is said so.
        let mut binary = ImageFiles::default();
        binary.insert(
            "db:1",
            "/usr/local/bin/docker-entrypoint.sh",
            file(FileContent::Binary {
                what: "an ELF binary".into(),
            }),
        );
        let read = run(app.clone(), &abs, Some(&binary));
        assert_eq!(read.analysis.class, LaunchClass::Direct);
        assert!(
            read.analysis.detail.contains("an ELF binary"),
            "{}",
            read.analysis.detail
        );
        let mut missing = ImageFiles::default();
        missing.insert(
            "db:1",
            "/usr/local/bin/docker-entrypoint.sh",
            file(FileContent::Missing),
        );
        let read = run(app.clone(), &abs, Some(&missing));
        assert_eq!(read.analysis.class, LaunchClass::Script);
        assert!(
            read.analysis.detail.contains("is not in the image"),
            "{}",
            read.analysis.detail
        );
        // Without image files (images not looked up), nothing is asked for.
        assert!(run(app, &abs, None).wanted.is_none());
    }
}
