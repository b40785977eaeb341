//! `pidone audit` as CI pipelines run it: the real binary, its JSON, SARIF and exit codes.

mod cli_support;

use cli_support::{pidone, pidone_in};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output, Stdio};

fn audit_json(path: &str) -> Value {
    audit_json_with(path, &[])
}

fn audit_json_with(path: &str, extra: &[&str]) -> Value {
    let mut args = vec!["audit", "--format", "json", "--fail-on", "never"];
    args.extend_from_slice(extra);
    args.push(path);
    let out = pidone(&args, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("audit prints JSON")
}

fn object_key(o: &Value) -> String {
    format!(
        "{}/{}/{}",
        o["kind"].as_str().unwrap_or(""),
        o["namespace"].as_str().unwrap_or("default"),
        o["name"].as_str().unwrap_or("")
    )
}

/// `(object, container) -> (launch, rules)` from audit JSON.
fn labels(report: &Value) -> BTreeMap<(String, String), (String, BTreeSet<String>)> {
    let mut out = BTreeMap::new();
    for c in report["containers"].as_array().expect("containers") {
        let key = (
            object_key(&c["object"]),
            c["container"].as_str().unwrap_or("").to_string(),
        );
        out.insert(
            key,
            (
                c["launch"].as_str().unwrap_or("").to_string(),
                BTreeSet::new(),
            ),
        );
    }
    for f in report["findings"].as_array().expect("findings") {
        let key = (
            object_key(&f["object"]),
            f["container"].as_str().unwrap_or("").to_string(),
        );
        if let Some(entry) = out.get_mut(&key) {
            entry.1.insert(f["rule"].as_str().unwrap_or("").to_string());
        }
    }
    out
}

#[test]
fn examples_match_expected_exactly() {
    let got = labels(&audit_json("tests/fixtures/examples/launches.yaml"));
    let expected: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/examples/expected.json").unwrap(),
    )
    .unwrap();
    assert_eq!(
        got.len(),
        expected.len(),
        "every container is analysed once"
    );
    let mut mismatches = Vec::new();
    for e in &expected {
        let key = (
            e["object"].as_str().unwrap().to_string(),
            e["container"].as_str().unwrap().to_string(),
        );
        let want_launch = e["launch"].as_str().unwrap();
        let want_rules: BTreeSet<String> = e["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        match got.get(&key) {
            Some((launch, rules)) if launch == want_launch && *rules == want_rules => {}
            other => mismatches.push(format!(
                "{key:?}: got {other:?}, want {want_launch} {want_rules:?}"
            )),
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn patterns_match_their_annotations() {
    let text = std::fs::read_to_string("tests/fixtures/patterns/launches.yaml").unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let got = labels(&audit_json_with(
        "tests/fixtures/patterns/launches.yaml",
        &["--config", "tests/fixtures/patterns/config.yaml"],
    ));
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for doc in &docs {
        let key = object_key(&serde_json::json!({
            "kind": doc["kind"], "namespace": doc["metadata"]["namespace"], "name": doc["metadata"]["name"]
        }));
        let template = match doc["kind"].as_str().unwrap() {
            "Pod" => doc.clone(),
            "CronJob" => doc["spec"]["jobTemplate"]["spec"]["template"].clone(),
            "PodTemplate" => doc["template"].clone(),
            _ => doc["spec"]["template"].clone(),
        };
        let expect = template["metadata"]["annotations"]["pidone.test/expect"]
            .as_str()
            .expect("expect annotation");
        for part in expect.split(';') {
            let (name, rest) = part.split_once('=').unwrap();
            let (launch, rules) = rest.split_once(':').unwrap();
            let rules: BTreeSet<String> = rules
                .split(',')
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .collect();
            checked += 1;
            match got.get(&(key.clone(), name.to_string())) {
                Some((l, r)) if l == launch && *r == rules => {}
                other => mismatches.push(format!(
                    "{key} {name}: got {other:?}, want {launch} {rules:?}"
                )),
            }
        }
    }
    assert!(checked >= 78, "only {checked} containers checked");
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_launch_class_and_rule_has_a_fixture() {
    let mut launches = BTreeSet::new();
    let mut rules = BTreeSet::new();
    for path in [
        "tests/fixtures/examples/launches.yaml",
        "tests/fixtures/patterns/launches.yaml",
    ] {
        for (_, (launch, r)) in labels(&audit_json(path)) {
            launches.insert(launch);
            rules.extend(r);
        }
    }
    for class in [
        "direct",
        "exec",
        "no-exec",
        "multi",
        "resident",
        "one-shot",
        "script",
        "unparsed",
        "image-default",
    ] {
        assert!(launches.contains(class), "no fixture for launch {class}");
    }
    for rule in [
        "shell-no-exec",
        "multi-process",
        "shell-resident",
        "script-entrypoint",
        "side-agent",
        "sidecar-stop-hack",
        "shell-unparsed",
        "signal-deaf-pid1",
    ] {
        assert!(rules.contains(rule), "no fixture for rule {rule}");
    }
}

#[test]
fn json_output_has_the_documented_shape() {
    let report = audit_json("tests/fixtures/examples/launches.yaml");
    let c = &report["containers"][0];
    for key in ["object", "source", "container", "section", "launch"] {
        assert!(c.get(key).is_some(), "containers[].{key}");
    }
    assert_eq!(c["source"]["file"], "tests/fixtures/examples/launches.yaml");
    assert_eq!(c["source"]["document"], 0);
    let f = &report["findings"][0];
    for key in [
        "object",
        "source",
        "container",
        "rule",
        "action",
        "message",
        "fix",
        "region",
    ] {
        assert!(f.get(key).is_some(), "findings[].{key}");
    }
    assert!(f["region"]["line"].as_u64().unwrap() > 1);
    assert!(report["ignored"].as_array().unwrap().is_empty());
    // `region` when known; `confidence` and `evidence` for side-agent findings only.
    let optional = ["region", "confidence", "evidence"];
    for finding in report["findings"].as_array().unwrap() {
        let required: Vec<&String> = finding
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !optional.contains(&k.as_str()))
            .collect();
        assert_eq!(required.len(), 7, "no undocumented fields: {finding}");
        let side_agent = finding["rule"] == "side-agent";
        for key in ["confidence", "evidence"] {
            assert_eq!(finding.get(key).is_some(), side_agent, "{key}: {finding}");
        }
    }
}

#[test]
fn exit_codes_follow_fail_on() {
    let path = "tests/fixtures/examples/launches.yaml";
    assert_eq!(
        pidone(&["audit", "--format", "json", path], None)
            .status
            .code(),
        Some(1),
        "deny findings fail by default"
    );
    assert_eq!(
        pidone(&["audit", "--fail-on", "never", path], None)
            .status
            .code(),
        Some(0)
    );
    let clean = "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec:\n  containers:\n  - {name: a, image: x, command: [/app]}\n";
    assert_eq!(
        pidone(&["audit", "--fail-on", "warn", "-"], Some(clean))
            .status
            .code(),
        Some(0)
    );
    let warn_only = "apiVersion: v1\nkind: Pod\nmetadata: {name: w}\nspec:\n  containers:\n  - {name: a, image: x, command: [sleep, infinity]}\n";
    assert_eq!(
        pidone(&["audit", "--fail-on", "warn", "-"], Some(warn_only))
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        pidone(&["audit", "--fail-on", "deny", "-"], Some(warn_only))
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        pidone(&["audit", "--format", "xml", path], None)
            .status
            .code(),
        Some(2),
        "usage error"
    );
}

#[test]
fn stdin_directories_lists_and_unknown_kinds() {
    let stream = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p1}\n  spec: {containers: [{name: a, image: x, command: [sh, -c, 'echo; /app']}]}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n";
    let out = pidone(
        &["audit", "--format", "json", "--fail-on", "never", "-"],
        Some(stream),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["containers"].as_array().unwrap().len(), 1);
    assert_eq!(report["findings"][0]["rule"], "shell-no-exec");
    assert_eq!(report["findings"][0]["source"]["file"], "-");

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    std::fs::write(dir.path().join("a/b/pod.yml"), stream).unwrap();
    std::fs::write(dir.path().join("a/pod.json"), r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[{"name":"a","image":"x","command":["sh","-c","/app & /b & wait"]}]}}"#).unwrap();
    std::fs::write(dir.path().join("a/notes.txt"), "not a manifest").unwrap();
    let out = pidone(
        &[
            "audit",
            "--format",
            "json",
            "--fail-on",
            "never",
            dir.path().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["containers"].as_array().unwrap().len(), 2);
}

#[test]
fn sarif_is_what_code_scanning_accepts() {
    let out = pidone(
        &[
            "audit",
            "--format",
            "sarif",
            "--fail-on",
            "never",
            "tests/fixtures/examples/launches.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 8);
    for r in rules {
        for key in [
            "id",
            "name",
            "shortDescription",
            "fullDescription",
            "help",
            "defaultConfiguration",
        ] {
            assert!(r.get(key).is_some(), "rule {key}");
        }
    }
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        let index = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(
            rules[index]["id"], r["ruleId"],
            "ruleIndex points at ruleId"
        );
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(
            loc["artifactLocation"]["uri"],
            "tests/fixtures/examples/launches.yaml"
        );
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn table_fits_80_columns_and_groups_by_object() {
    let out = pidone(
        &[
            "audit",
            "--fail-on",
            "never",
            "tests/fixtures/examples/launches.yaml",
        ],
        None,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line:?}");
    }
    assert!(text.contains("Deployment shop/inventory"));
    assert!(text.lines().last().unwrap().contains("explain"));
}

#[test]
fn explain_every_rule() {
    for rule in [
        "shell-no-exec",
        "multi-process",
        "shell-resident",
        "script-entrypoint",
        "side-agent",
        "sidecar-stop-hack",
        "shell-unparsed",
        "signal-deaf-pid1",
    ] {
        let out = pidone(&["explain", rule], None);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Fix by hand"), "{rule}");
    }
    assert_eq!(
        pidone(&["explain", "no-such-rule"], None).status.code(),
        Some(2)
    );
}

fn audit_stdin(input: &str) -> (Option<i32>, String, String) {
    let out = pidone(
        &["audit", "--format", "json", "--fail-on", "never", "-"],
        Some(input),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn malformed_yaml_names_file_document_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n",
    )
    .unwrap();
    let out = pidone(&["audit", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.yaml: document 1, line 6: not valid YAML or JSON"),
        "{err}"
    );
    assert!(err.contains("line"), "{err}");
}

#[test]
fn command_as_a_string_is_a_clear_error() {
    let (code, _, err) = audit_stdin(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: x, command: \"sh -c 'app'\"}\n",
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("-: document 0, line 6: Pod p: /spec/containers/0/command must be a list of strings, but it is a string"),
        "{err}"
    );
}

#[test]
fn scalar_document_and_wrong_types_are_errors_not_panics() {
    let (code, _, err) = audit_stdin("just text\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("expected a Kubernetes object"), "{err}");
    let (code, _, err) = audit_stdin(
        "kind: Deployment\nmetadata: {name: d}\nspec: {template: {spec: {containers: {a: 1}}}}\n",
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("/spec/template/spec/containers must be a list, but it is an object"),
        "{err}"
    );
}

#[test]
fn huge_script_is_reported_not_fatal() {
    let script = "echo x; ".repeat(200_000) + "/app/server";
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "huge"},
        "spec": {"containers": [{"name": "a", "image": "x", "command": ["sh", "-c", script]}]}});
    let (code, out, err) = audit_stdin(&pod.to_string());
    assert_eq!(code, Some(0), "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let launch = report["containers"][0]["launch"].as_str().unwrap();
    assert!(["no-exec", "unparsed"].contains(&launch), "{launch}");
}

#[test]
fn deep_nesting_is_reported_not_fatal() {
    for (open, close) in [
        ("{ ", " ; }"),
        ("( ", " )"),
        ("if true; then ", "; fi"),
        ("while false; do ", "; done"),
    ] {
        let script = open.repeat(3000) + "/app/server" + &close.repeat(3000);
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "deep"},
            "spec": {"containers": [{"name": "a", "image": "x", "command": ["sh", "-c", script]}]}});
        let (code, out, err) = audit_stdin(&pod.to_string());
        assert_eq!(code, Some(0), "{open}: {err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        assert!(report["containers"][0]["launch"].is_string(), "{open}");
    }
}

#[test]
fn deeply_nested_yaml_is_an_error_not_a_crash() {
    let nested = "a: ".to_string() + &"[".repeat(100_000) + &"]".repeat(100_000);
    let (code, _, err) = audit_stdin(&nested);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("document 0"), "{err}");
}

fn audit_in(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    pidone_in(&all, dir, stdin)
}

#[test]
fn empty_input_is_an_error_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    )
    .unwrap();
    for (args, stdin) in [
        (vec!["-"], Some("")),
        (vec!["empty"], None),
        (vec!["cm.yaml"], None),
    ] {
        let out = audit_in(dir.path(), &args, stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--allow-empty"),
            "{args:?}"
        );
        let mut allowed = args.clone();
        allowed.push("--allow-empty");
        assert_eq!(
            audit_in(dir.path(), &allowed, stdin).status.code(),
            Some(0),
            "{allowed:?}"
        );
    }
}

#[test]
fn no_path_and_a_terminal_is_a_usage_error() {
    // `script` gives pidone a terminal on stdin.
    let bin = env!("CARGO_BIN_EXE_pidone");
    let out = Command::new("script")
        .args(["-qec", &format!("{bin} audit"), "/dev/null"])
        .stdin(Stdio::null())
        .output();
    let Ok(out) = out else {
        panic!("this test needs `script` (util-linux) to give pidone a terminal");
    };
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no input"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Without a terminal, no path means stdin.
    let (code, _, err) = audit_stdin(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: x, command: [/app]}]}\n",
    );
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn namespace_needs_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let out = audit_in(dir.path(), &["-n", "web", "-"], Some(""));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cluster"));
}

#[test]
fn a_broken_document_does_not_hide_the_rest_of_its_file() {
    let stream = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a, image: x, command: [sh, -c, 'cd /x; run']}]}\n---\nkind: Pod\nmetadata: {name: [\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: c}\nspec: {containers: [{name: c, image: x, command: [sh, -c, 'cd /y; serve']}]}\n";
    let (code, out, err) = audit_stdin(stream);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("-: document 1, line 7: not valid YAML"),
        "{err}"
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["object"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(report["findings"][1]["source"]["document"], 2);
}

#[test]
fn unrendered_helm_templates_get_a_hint() {
    let (code, _, err) = audit_stdin(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}\n  {{- with .Values.labels }}\n",
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("document 0, line"), "{err}");
    assert!(err.contains("helm template"), "{err}");
}

#[test]
fn ignored_findings_are_shown_and_typos_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        "exemptions:\n  allowAnnotations: true\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {pidone.io/ignore: 'shell-no-exec, shell-noexec'}\nspec: {containers: [{name: a, image: x, command: [sh, -c, 'cd /x; run']}]}\n",
    )
    .unwrap();
    let out = audit_in(
        dir.path(),
        &["--config", "config.yaml", "--format", "json", "pod.yaml"],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"shell-noexec\", which is not a rule"),
        "{err}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["findings"].as_array().unwrap().is_empty());
    assert_eq!(report["ignored"][0]["rule"], "shell-no-exec");
    let out = audit_in(
        dir.path(),
        &["--config", "config.yaml", "-v", "pod.yaml"],
        None,
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("ignored (pidone.io/ignore)"), "{table}");
    assert!(!table.contains(" ok\n"), "{table}");
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line:?}");
    }
}

#[test]
fn sarif_fingerprints_are_stable_and_regions_point_at_the_command() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: web}\nspec:\n  containers:\n  - name: a\n    image: x\n    command:\n    - sh\n    - -c\n    - cd /x; run\n";
    let sarif = |text: &str| -> Value {
        let out = pidone(
            &["audit", "--format", "sarif", "--fail-on", "never", "-"],
            Some(text),
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let one = sarif(pod);
    let two = sarif(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\n{pod}"
    ));
    let result = |s: &Value| s["runs"][0]["results"][0].clone();
    assert_eq!(
        result(&one)["partialFingerprints"],
        result(&two)["partialFingerprints"],
        "a document inserted before does not change the fingerprint"
    );
    assert_eq!(
        result(&one)["partialFingerprints"]["pidone/v2"],
        "Pod/web/p/a:shell-no-exec"
    );
    let region = &result(&one)["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startLine"], 8, "the line of `command:`: {region}");
    assert_eq!(region["startColumn"], 5);
    let region = &result(&two)["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startLine"], 12);
    let text = result(&one)["message"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.starts_with("Container \"a\""), "{text}");
    assert!(text.ends_with('.'), "{text}");
    assert!(text.contains(". To fix: "), "{text}");
}

/// `audit` says what `fix` and the webhook would do: with `nativeSidecars: never` a side
/// agent is reported as `warn` (nothing moves it), and `fix` leaves it where it is.
#[test]
fn audit_and_fix_agree_when_native_sidecars_are_off() {
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: shipper}\nspec:\n  containers:\n  - name: app\n    image: example.com/app:1\n    command: [/app]\n  - name: logs\n    image: fluent/fluent-bit:3.0\n",
    )
    .unwrap();
    let never = dir.path().join("never.yaml");
    std::fs::write(&never, "nativeSidecars: never\n").unwrap();
    let action = |extra: &[&str]| -> String {
        let report = audit_json_with(pod.to_str().unwrap(), extra);
        let findings = report["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 1, "{report}");
        assert_eq!(findings[0]["rule"], "side-agent");
        findings[0]["action"].as_str().unwrap().to_string()
    };
    assert_eq!(action(&[]), "mutate");
    assert_eq!(action(&["--config", never.to_str().unwrap()]), "warn");
    let fixed = pidone(
        &[
            "fix",
            "--diff",
            "--config",
            never.to_str().unwrap(),
            pod.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        fixed.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&fixed.stdout)
    );
}
