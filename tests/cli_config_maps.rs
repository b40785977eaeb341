//! Scripts kept in ConfigMaps: `pidone audit` and `pidone fix` read them from the same input
//! (`helm template` output) and classify the launch the script makes, naming the source.

mod cli_support;

use cli_support::pidone;
use serde_json::Value;
use std::process::{Command, Stdio};

const CHARTS: &str = "tests/fixtures/configmap-scripts/charts.yaml";

fn audit(path: &str, stdin: Option<&str>) -> Value {
    let out = pidone(
        &["audit", "--format", "json", "--fail-on", "never", path],
        stdin,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("audit prints JSON")
}

fn container<'a>(report: &'a Value, object: &str, name: &str) -> &'a Value {
    report["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["object"]["name"] == object && c["container"] == name)
        .unwrap_or_else(|| panic!("no container {object}/{name} in {report:#}"))
}

fn rules(report: &Value, name: &str) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["container"] == name)
        .map(|f| f["rule"].as_str().unwrap_or("").to_string())
        .collect()
}

fn message<'a>(report: &'a Value, name: &str, rule: &str) -> &'a str {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["container"] == name && f["rule"] == rule)
        .and_then(|f| f["message"].as_str())
        .unwrap_or_else(|| panic!("no {rule} finding for {name}"))
}

/// `(object, container, launch, source, dialect, script class, rules)`.
type Expected = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

const EXPECTED: &[Expected] = &[
    (
        "redis-master",
        "redis",
        "exec",
        "configmap/redis-scripts:start-master.sh",
        "bash",
        "exec",
        &[],
    ),
    (
        "zookeeper",
        "init-certs",
        "one-shot",
        "configmap/zookeeper-scripts:init-certs.sh",
        "bash",
        "one-shot",
        &[],
    ),
    (
        "zookeeper",
        "zookeeper",
        "script",
        "configmap/zookeeper-scripts:setup.sh",
        "bash",
        "script",
        &["script-entrypoint"],
    ),
    (
        "mongodb",
        "mongodb",
        "script",
        "configmap/mongodb-scripts:setup.sh",
        "bash",
        "script",
        &["script-entrypoint"],
    ),
    (
        "csi-node",
        "csi-node",
        "multi",
        "configmap/csi-node-scripts:entrypoint.sh",
        "bash",
        "multi",
        &["multi-process"],
    ),
    (
        "csi-node",
        "iscsi",
        "exec",
        "configmap/csi-node-scripts:iscsi.sh",
        "sh",
        "exec",
        &["signal-deaf-pid1"],
    ),
    (
        "web",
        "web",
        "no-exec",
        "configmap/web-scripts:run.sh",
        "sh",
        "no-exec",
        &["shell-no-exec"],
    ),
    // `sh /scripts/backup.sh`: sh reads it, whatever the shebang says.
    (
        "web",
        "backup",
        "resident",
        "configmap/web-scripts:backup.sh",
        "sh",
        "resident",
        // Its name says what it is: the side-agent rule speaks of the container, not the script.
        &["shell-resident", "side-agent"],
    ),
    (
        "migrate",
        "migrate",
        "one-shot",
        "configmap/migrate:migrate.sh",
        "sh",
        "one-shot",
        &[],
    ),
];

#[test]
fn scripts_in_config_maps_are_read_and_classified() {
    let report = audit(CHARTS, None);
    let mut failures = Vec::new();
    for &(object, name, launch, source, dialect, class, want_rules) in EXPECTED {
        let c = container(&report, object, name);
        let script = &c["scripts"][0];
        let got = (
            c["launch"].as_str().unwrap_or(""),
            script["source"].as_str().unwrap_or(""),
            script["dialect"].as_str().unwrap_or(""),
            script["class"].as_str().unwrap_or(""),
            rules(&report, name),
        );
        let want = (launch, source, dialect, class, want_rules.to_vec());
        if got.0 != want.0
            || got.1 != want.1
            || got.2 != want.2
            || got.3 != want.3
            || got.4 != want.4
        {
            failures.push(format!("{object}/{name}: got {got:?}, want {want:?}"));
        }
        for rule in want_rules {
            let m = message(&report, name, rule);
            if !["signal-deaf-pid1", "side-agent"].contains(rule)
                && !m.contains(&format!("source: {source}"))
            {
                failures.push(format!(
                    "{object}/{name}: {rule} message names no source: {m}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A python script is no shell: the interpreter is PID 1.
    let exporter = container(&report, "web", "exporter");
    assert_eq!(exporter["launch"], "direct");
    assert_eq!(
        exporter["scripts"][0]["source"],
        "configmap/web-scripts:exporter.py"
    );
    assert!(exporter["scripts"][0].get("dialect").is_none());
    // A ConfigMap missing from the input leaves the script unseen.
    let orphan = container(&report, "web", "orphan");
    assert_eq!(orphan["launch"], "script");
    assert!(orphan.get("scripts").is_none());
    // The fix for a ConfigMap script is not pidone's to make: warn, and say why.
    let m = message(&report, "web", "shell-no-exec");
    assert!(
        m.contains("the script is in configmap/web-scripts:run.sh, which pidone does not rewrite"),
        "{m}"
    );
}

#[test]
fn without_the_config_maps_the_same_containers_stay_unseen() {
    let text = std::fs::read_to_string(CHARTS).expect("fixture");
    let workloads: Vec<&str> = text
        .split("\n---\n")
        .filter(|doc| !doc.contains("kind: ConfigMap"))
        .collect();
    let report = audit("-", Some(&workloads.join("\n---\n")));
    for &(object, name, ..) in EXPECTED {
        let c = container(&report, object, name);
        assert!(c.get("scripts").is_none(), "{object}/{name}: {c}");
        let launch = c["launch"].as_str().unwrap_or("");
        // `/scripts/iscsi.sh` etc. are script files, `bash -c path` too.
        assert!(
            launch == "script" || (name == "init-certs" || name == "migrate"),
            "{object}/{name}: {launch}"
        );
    }
}

#[test]
fn config_map_scripts_go_through_the_parser_limits() {
    let big = format!(
        "#!/bin/sh\n{}exec app\n",
        "echo padding-line\n".repeat(5000)
    );
    let mut cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "s"}, "data": {"big.sh": big, "bad.sh": "#!/bin/bash\nif then fi ((\n"}});
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [
            {"name": "big", "image": "a", "command": ["/s/big.sh"],
             "volumeMounts": [{"name": "s", "mountPath": "/s"}]},
            {"name": "bad", "image": "a", "command": ["/s/bad.sh"],
             "volumeMounts": [{"name": "s", "mountPath": "/s"}]}],
        "volumes": [{"name": "s", "configMap": {"name": "s", "defaultMode": 493}}]}});
    cm["metadata"]["namespace"] = Value::Null;
    let input = serde_json::to_string(&serde_json::json!([cm, pod])).expect("json");
    let report = audit("-", Some(&input));
    for name in ["big", "bad"] {
        let c = container(&report, "p", name);
        assert_eq!(c["launch"], "unparsed", "{name}: {c}");
        assert_eq!(c["scripts"][0]["source"], format!("configmap/s:{name}.sh"));
        assert_eq!(rules(&report, name), ["shell-unparsed"]);
    }
    assert!(
        message(&report, "big", "shell-unparsed").contains("too large"),
        "{report:#}"
    );
}

#[test]
fn fix_leaves_config_map_scripts_and_their_pods_alone() {
    let out = pidone(&["fix", CHARTS], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fixed = String::from_utf8_lossy(&out.stdout);
    // The multi-process DaemonSet is still denied; nothing is rewritten for the others.
    assert!(stderr.contains("multi-process"), "{stderr}");
    assert!(!stderr.contains("shell-no-exec"), "{stderr}");
    for line in ["nginx -g 'daemon off;'", "exec redis-server \"${ARGS[@]}\""] {
        assert!(fixed.contains(line), "fix output lost {line:?}:\n{fixed}");
    }
    assert!(
        !fixed.contains("exec nginx"),
        "fix rewrote a ConfigMap script:\n{fixed}"
    );
    // Nothing in the charts is patched (the fix for `web` would be in its ConfigMap), while a
    // pod spec's own script in the same input still is.
    let mut input = std::fs::read_to_string(CHARTS).expect("fixture");
    input.push_str(
        "---\nkind: Pod\nmetadata: {name: own, namespace: web}\nspec:\n  containers:\n  - {name: a, image: x, command: [sh, -c, \"setup; nginx\"]}\n",
    );
    // --diff reads files (stdin cannot be edited in place).
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("charts.yaml");
    std::fs::write(&path, &input).expect("write input");
    let path = path.to_str().expect("utf-8 path");
    let diff = pidone(&["fix", "--diff", path], None);
    let diff = String::from_utf8_lossy(&diff.stdout);
    // The only lines added are the own pod's, edited where they are written.
    let added: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .collect();
    assert_eq!(
        added,
        [
            r#"+metadata: {name: own, namespace: web, "annotations": {"pidone.io/mutations":"exec:a"}}"#,
            r#"+  - {name: a, image: x, command: [sh, -c, "setup; exec nginx"]}"#,
        ],
        "{diff}"
    );
}

#[test]
fn config_maps_are_found_after_their_workloads_and_in_other_files() {
    let text = std::fs::read_to_string(CHARTS).expect("fixture");
    let (maps, workloads): (Vec<&str>, Vec<&str>) = text
        .split("\n---\n")
        .partition(|doc| doc.contains("kind: ConfigMap"));
    assert!(!maps.is_empty() && !workloads.is_empty());
    let check = |report: &Value, how: &str| {
        for &(object, name, launch, source, ..) in EXPECTED {
            let c = container(report, object, name);
            assert_eq!(c["launch"], launch, "{how}: {object}/{name}: {c}");
            assert_eq!(
                c["scripts"][0]["source"], source,
                "{how}: {object}/{name}: {c}"
            );
        }
    };
    // On stdin, every ConfigMap after every workload.
    let reordered = format!(
        "{}\n---\n{}",
        workloads.join("\n---\n"),
        maps.join("\n---\n")
    );
    check(&audit("-", Some(&reordered)), "stdin, ConfigMaps last");
    // The ConfigMaps in a file of their own, named after the workloads' file.
    let dir = tempfile::tempdir().expect("temp dir");
    let workloads_file = dir.path().join("a-workloads.yaml");
    let maps_file = dir.path().join("b-config-maps.yaml");
    // Stdin from a file is read where it is, twice, from the offset it was handed at.
    let stdin_file = dir.path().join("stdin.yaml");
    let skipped = "not for pidone: [\n";
    std::fs::write(&stdin_file, format!("{skipped}{reordered}")).expect("write");
    let mut handed = std::fs::File::open(&stdin_file).expect("open");
    std::io::Seek::seek(&mut handed, std::io::SeekFrom::Start(skipped.len() as u64)).expect("seek");
    let out = Command::new(env!("CARGO_BIN_EXE_pidone"))
        .args(["audit", "--format", "json", "--fail-on", "never", "-"])
        .stdin(Stdio::from(handed))
        .output()
        .expect("run pidone");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check(
        &serde_json::from_slice(&out.stdout).expect("JSON"),
        "stdin from a file, ConfigMaps last",
    );
    std::fs::write(&workloads_file, workloads.join("\n---\n")).expect("write");
    std::fs::write(&maps_file, maps.join("\n---\n")).expect("write");
    let out = pidone(
        &[
            "audit",
            "--format",
            "json",
            "--fail-on",
            "never",
            workloads_file.to_str().expect("utf-8"),
            maps_file.to_str().expect("utf-8"),
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    check(&report, "two files");
    // `pidone fix` reads them the same way: the multi-process DaemonSet is still denied.
    let out = pidone(
        &[
            "fix",
            workloads_file.to_str().expect("utf-8"),
            maps_file.to_str().expect("utf-8"),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("multi-process"), "{stderr}");
}
