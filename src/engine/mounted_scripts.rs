//! Scripts a container runs from a ConfigMap volume: where a path in the container's
//! filesystem comes from (mount path, `subPath`, `items`, `defaultMode`, projected volumes),
//! and the launch the script itself makes, read with its shebang's dialect.
//!
//! The caller gathers the ConfigMaps (from the same manifests, or from the API) and passes
//! them in `EvalContext::config_maps`; everything here is pure.

use crate::engine::argv::{self, LaunchAnalysis, basename};
use crate::engine::launch::LaunchClass;
use crate::engine::script::{Dialect, ScriptAnalyzer, ScriptVerdict};
use crate::engine::workload::ContainerSpec;
use serde::Serialize;
use serde_json::Value;
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

/// A file a ConfigMap volume puts into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedFile<'a> {
    pub config_map: String,
    pub key: String,
    pub text: &'a str,
    /// The file mode (`items[].mode`, else `defaultMode`, else 0644).
    pub mode: u64,
}

impl MountedFile<'_> {
    /// `configmap/NAME:key`, as messages and JSON show it.
    pub fn source(&self) -> String {
        format!("configmap/{}:{}", self.config_map, self.key)
    }
}

/// One script pidone read for a launch, as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptRead {
    /// Where the text came from: `configmap/NAME:key`.
    pub source: String,
    /// The path the container runs it as.
    pub path: String,
    /// The dialect it was parsed with (none when its shebang names no shell).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialect: Option<Dialect>,
    /// The launch class of the script itself.
    pub class: LaunchClass,
}

/// The ConfigMap file at `path` in container `c`, if a ConfigMap volume of `spec` puts one
/// there. Relative paths are taken from the container's `workingDir`.
pub fn find<'m>(
    spec: &Value,
    c: &ContainerSpec<'_>,
    namespace: Option<&str>,
    maps: &'m ConfigMaps,
    path: &str,
) -> Option<MountedFile<'m>> {
    let path = absolute(c, path)?;
    let volumes = spec.get("volumes").and_then(Value::as_array)?;
    let mounts = c.json.get("volumeMounts").and_then(Value::as_array)?;
    // The last mount that covers the path wins, as nested mounts shadow their parents.
    let mut found = None;
    for m in mounts {
        let (Some(volume), Some(mount_path)) = (
            m.get("name").and_then(Value::as_str),
            m.get("mountPath").and_then(Value::as_str),
        ) else {
            continue;
        };
        let Some(rel) = relative_to_mount(&path, mount_path) else {
            continue;
        };
        let sub_path = m
            .get("subPath")
            .and_then(Value::as_str)
            .map(|s| s.trim_matches('/'))
            .filter(|s| !s.is_empty());
        let in_volume = match (sub_path, rel.is_empty()) {
            (Some(sub), true) => sub.to_string(),
            (Some(sub), false) => format!("{sub}/{rel}"),
            (None, true) => continue,
            (None, false) => rel.to_string(),
        };
        let Some(v) = volumes
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(volume))
        else {
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
    let dir = c.json.get("workingDir").and_then(Value::as_str)?;
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
    volume: &Value,
    in_volume: &str,
    namespace: Option<&str>,
    maps: &'m ConfigMaps,
) -> Option<MountedFile<'m>> {
    if let Some(source) = volume.get("configMap") {
        let mode = mode_of(source.get("defaultMode")).unwrap_or(DEFAULT_MODE);
        return config_map_file(source, in_volume, mode, namespace, maps);
    }
    let projected = volume.get("projected")?;
    let mode = mode_of(projected.get("defaultMode")).unwrap_or(DEFAULT_MODE);
    projected
        .get("sources")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|s| s.get("configMap"))
        .find_map(|source| config_map_file(source, in_volume, mode, namespace, maps))
}

fn config_map_file<'m>(
    source: &Value,
    in_volume: &str,
    default_mode: u64,
    namespace: Option<&str>,
    maps: &'m ConfigMaps,
) -> Option<MountedFile<'m>> {
    let name = source.get("name").and_then(Value::as_str)?;
    let data = maps.get(namespace, name)?;
    let (key, mode) = match source.get("items").and_then(Value::as_array) {
        // With `items`, only the listed keys appear, each at its own path.
        Some(items) => items.iter().find_map(|item| {
            let key = item.get("key").and_then(Value::as_str)?;
            let path = item.get("path").and_then(Value::as_str)?;
            (path.trim_matches('/') == in_volume)
                .then(|| (key, mode_of(item.get("mode")).unwrap_or(default_mode)))
        })?,
        None => (in_volume, default_mode),
    };
    let (key, text) = data.get_key_value(key)?;
    Some(MountedFile {
        config_map: name.to_string(),
        key: key.clone(),
        text,
        mode,
    })
}

/// Modes are integers in the API's JSON. Manifests write them in octal (`0755`), which
/// Kubernetes' YAML 1.1 reads as 493 but a YAML 1.2 reader keeps as the decimal digits (our
/// reader gives the float 755.0): digits that came through as a float, or a string, are read
/// as octal. Anything else counts as unset.
fn mode_of(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    let octal = |digits: &str| u64::from_str_radix(digits.trim_start_matches("0o"), 8).ok();
    let mode = match v {
        Value::Number(n) if n.is_u64() => n.as_u64(),
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e6)
            .and_then(|f| octal(&format!("{f:.0}"))),
        Value::String(s) => octal(s.trim()),
        _ => None,
    }?;
    (mode <= 0o7777).then_some(mode)
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
    let base = basename(program);
    if matches!(base, "dumb-init" | "tini" | "tini-static" | "catatonit") {
        return Interpreter::Init(program.to_string());
    }
    if matches!(
        base,
        "sh" | "bash" | "dash" | "ash" | "zsh" | "ksh" | "mksh" | "yash" | "posh" | "busybox"
    ) {
        return shell(program);
    }
    Interpreter::Other(program.to_string())
}

fn shell(program: &str) -> Interpreter {
    let dialect = match basename(program) {
        "bash" | "zsh" | "ksh" | "mksh" => Dialect::Bash,
        _ => Dialect::Sh,
    };
    Interpreter::Shell {
        name: program.to_string(),
        dialect,
    }
}

/// Where the ConfigMaps a pod may read come from.
pub struct MountContext<'a> {
    pub spec: &'a Value,
    pub namespace: Option<&'a str>,
    pub maps: &'a ConfigMaps,
}

/// Follows a launch into the ConfigMap scripts it runs: when the program that would be PID 1
/// is a file from a ConfigMap volume, the script's own launch replaces the analysis (up to
/// [`MAX_CHAIN`] scripts deep). Returns the scripts read, first to last.
pub fn follow(
    mut analysis: LaunchAnalysis,
    c: &ContainerSpec<'_>,
    mounts: &MountContext<'_>,
    long_running: bool,
    analyzer: &dyn ScriptAnalyzer,
) -> (LaunchAnalysis, Vec<ScriptRead>) {
    let mut read: Vec<ScriptRead> = Vec::new();
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
        let Some(file) = find(mounts.spec, c, mounts.namespace, mounts.maps, &path) else {
            break;
        };
        let invoked_by = if read.is_empty() {
            invoking_shell(c, &path)
        } else {
            None
        };
        let (next, dialect) = script_launch(&file, &path, invoked_by, c, long_running, analyzer);
        read.push(ScriptRead {
            source: file.source(),
            path: path.clone(),
            dialect,
            class: next.class,
        });
        analysis = LaunchAnalysis {
            // The shell of the pod's own command stays: fixes and stop-hack checks look at
            // what is in the spec, never at the ConfigMap.
            shell: analysis.shell,
            from_args: analysis.from_args,
            from_image: analysis.from_image,
            image_argv: analysis.image_argv,
            ..next
        };
    }
    (analysis, read)
}

/// The shell named before `path` in the container's argv (`bash /scripts/run.sh`): it, not
/// the shebang, picks the dialect.
fn invoking_shell(c: &ContainerSpec<'_>, path: &str) -> Option<String> {
    let argv: Vec<&String> = c
        .command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .collect();
    let at = argv.iter().position(|a| a.as_str() == path)?;
    let first = argv.first()?;
    let is_shell = matches!(
        interpreter(&format!("#!{first}")),
        Interpreter::Shell { .. }
    );
    (at > 0 && is_shell && !argv[..at].iter().any(|a| a.as_str() == "-c"))
        .then(|| first.to_string())
}

/// The launch one ConfigMap script makes, and the dialect it was read with.
fn script_launch(
    file: &MountedFile<'_>,
    path: &str,
    invoked_by: Option<String>,
    c: &ContainerSpec<'_>,
    long_running: bool,
    analyzer: &dyn ScriptAnalyzer,
) -> (LaunchAnalysis, Option<Dialect>) {
    let source = file.source();
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
    let verdict = analyzer.analyze(dialect, file.text);
    let label = format!("{path} (source: {source}, {})", dialect_name(dialect));
    match &verdict {
        ScriptVerdict::Unparsed(reason) => {
            out.detail = format!("script {label} not analysed: {reason}");
        }
        ScriptVerdict::Parsed(facts) => {
            let operands = operands(c, path);
            argv::classify_file_script(
                facts,
                &operands,
                long_running,
                analyzer,
                basename(&shell_name),
                file.text,
                &mut out,
            );
            out.detail = format!("script {label}: {}", out.detail);
        }
    }
    if file.mode & 0o111 == 0 && invoked_by_is_none(c, path) {
        out.detail.push_str(&format!(
            " (the file's mode {:o} is not executable)",
            file.mode
        ));
    }
    // Offsets point into the ConfigMap's text, which the pod's fixes do not rewrite.
    out.exec_insertions.clear();
    (out, Some(dialect))
}

fn invoked_by_is_none(c: &ContainerSpec<'_>, path: &str) -> bool {
    invoking_shell(c, path).is_none()
}

fn dialect_name(d: Dialect) -> &'static str {
    match d {
        Dialect::Sh => "an sh script",
        Dialect::Bash => "a bash script",
    }
}

/// `$0` and the positional parameters: the argv entries after the script's path, when the
/// container runs it with arguments (`[/scripts/run.sh, --port, 80]`).
fn operands(c: &ContainerSpec<'_>, path: &str) -> Vec<String> {
    let argv: Vec<&String> = c
        .command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .collect();
    match argv.iter().position(|a| a.as_str() == path) {
        Some(at) => argv[at..].iter().map(|a| a.to_string()).collect(),
        None => vec![path.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::script::InProcessAnalyzer;
    use crate::engine::workload;
    use serde_json::json;

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
        let f = find(w.spec, &w.containers[0], Some("db"), &m, path)?;
        Some((f.source(), f.mode))
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
    fn modes_in_octal_however_they_arrive() {
        assert_eq!(mode_of(Some(&json!(493))), Some(0o755));
        assert_eq!(mode_of(Some(&json!(755.0))), Some(0o755));
        assert_eq!(mode_of(Some(&json!("0755"))), Some(0o755));
        assert_eq!(mode_of(Some(&json!("0o500"))), Some(0o500));
        assert_eq!(mode_of(Some(&json!(789.0))), None);
        assert_eq!(mode_of(Some(&json!(99999))), None);
        assert_eq!(mode_of(Some(&json!(-1))), None);
        assert_eq!(mode_of(Some(&json!(true))), None);
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
        assert_eq!(
            sh("#!/usr/bin/dumb-init /bin/bash\n"),
            Interpreter::Init("/usr/bin/dumb-init".into())
        );
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
        let before = argv::analyze(c, true, &InProcessAnalyzer, None);
        assert_eq!(before.class, LaunchClass::Script);
        let ctx = MountContext {
            spec: w.spec,
            namespace: Some("db"),
            maps: &m,
        };
        let (after, read) = follow(before, c, &ctx, true, &InProcessAnalyzer);
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
                spec: w.spec,
                namespace: Some("db"),
                maps: &m,
            };
            let before = argv::analyze(c, true, &InProcessAnalyzer, None);
            let (after, read) = follow(before, c, &ctx, true, &InProcessAnalyzer);
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
}
