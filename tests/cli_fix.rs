//! `pidone fix` over a corpus of real charts rendered with Helm and real static manifests
//! (tests/fixtures/roundtrip, sources in its SOURCES.md): what it leaves alone is left byte for
//! byte, what it changes keeps every comment, a YAML 1.1 reader sees only the engine's patch,
//! `--diff` applied with `git apply` equals `--write`, and a second run has nothing to do.

mod cli_support;

use cli_support::pidone_in as pidone;
use pidone::cli::input::{Documents, read_value};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const CORPUS: &str = "tests/fixtures/roundtrip";
const DIRS: [&str; 2] = ["charts", "static"];

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Relative path -> bytes of every corpus file.
fn corpus() -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for dir in DIRS {
        for entry in std::fs::read_dir(Path::new(CORPUS).join(dir)).expect("corpus dir") {
            let path = entry.expect("entry").path();
            let name = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
            files.insert(name, std::fs::read(&path).expect("read corpus file"));
        }
    }
    assert!(
        files.len() >= 20,
        "the corpus is incomplete: {}",
        files.len()
    );
    files
}

fn copy_to(files: &BTreeMap<String, Vec<u8>>, dir: &Path) {
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

fn read_back(files: &BTreeMap<String, Vec<u8>>, dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files
        .keys()
        .map(|name| (name.clone(), std::fs::read(dir.join(name)).unwrap()))
        .collect()
}

/// Every comment of a YAML text (without `#`), as the YAML parser sees them.
fn comments(text: &str) -> Vec<String> {
    use serde_saphyr::granit_parser::{Event, Options, Parser};
    let mut options = Options::default();
    options.emit_comments = true;
    let mut out = Vec::new();
    // Documents are parsed one by one, as pidone reads them.
    for doc in Documents::new("x".into(), text.as_bytes()) {
        let doc = doc.unwrap();
        for event in Parser::new_from_str_with_options(&doc.text, options.clone()) {
            if let Ok((Event::Comment(c, _), _)) = event {
                out.push(c.trim().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The chart tests' Python, which has PyYAML (a YAML 1.1 reader). Set up once per run: two
/// tests rebuilding the environment at the same time would undo each other.
fn python() -> String {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON.get_or_init(set_up_python).clone()
}

fn set_up_python() -> String {
    let out = Command::new("bash")
        .arg("tests/chart/venv.sh")
        .output()
        .expect("run tests/chart/venv.sh");
    assert!(
        out.status.success(),
        "cannot set up the Python environment with PyYAML (tests/chart/venv.sh): {}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

/// Every document of every file as PyYAML reads it (YAML 1.1: `0755` is 493, `yes` is true).
fn yaml11(python: &str, paths: &[PathBuf]) -> Vec<Vec<Value>> {
    let script = "import json, sys, yaml\nout = []\nfor p in sys.argv[1:]:\n    with open(p) as f:\n        out.append(list(yaml.safe_load_all(f)))\nprint(json.dumps(out, default=str))\n";
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(paths)
        .output()
        .expect("run PyYAML");
    assert!(out.status.success(), "PyYAML: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("PyYAML output")
}

/// Every document of a file as pidone reads it (YAML 1.2 core schema).
fn yaml12(file: &str, bytes: &[u8]) -> Vec<Value> {
    Documents::new(file.into(), bytes)
        .map(|d| read_value(&d.unwrap().text).unwrap_or(Value::Null))
        .collect()
}

fn name_of(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str)
}

/// Named list items anywhere in a document: (as YAML 1.1 reads it, as pidone reads it).
fn named_items<'a>(v11: &'a Value, v12: &'a Value, out: &mut Vec<(&'a Value, &'a Value)>) {
    match (v11, v12) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, x) in b {
                if let Some(y) = a.get(k) {
                    named_items(y, x, out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (y, x) in a.iter().zip(b) {
                if name_of(x).is_some() {
                    out.push((y, x));
                }
                named_items(y, x, out);
            }
        }
        _ => {}
    }
}

/// What a YAML 1.1 reader should see after the fix: the original as it reads it, with
/// exactly the changes pidone's reading of the two texts shows. Unchanged parts (octal
/// modes, `yes`, ...) keep their YAML 1.1 values; list items are followed by name, also into
/// another list (a container moved to `initContainers`).
fn expect11(
    before11: &Value,
    before12: &Value,
    after12: &Value,
    pool: &[(&Value, &Value)],
) -> Value {
    if before12 == after12 {
        return before11.clone();
    }
    match (before11, before12, after12) {
        (Value::Object(o11), Value::Object(o12), Value::Object(n12)) => Value::Object(
            n12.iter()
                .map(|(k, v)| {
                    let e = match (o11.get(k), o12.get(k)) {
                        (Some(a), Some(b)) => expect11(a, b, v, pool),
                        _ => v.clone(),
                    };
                    (k.clone(), e)
                })
                .collect(),
        ),
        (Value::Array(o11), Value::Array(o12), Value::Array(n12)) if o11.len() == o12.len() => {
            Value::Array(
                n12.iter()
                    .map(|item| {
                        let same = o12.iter().position(|o| match (name_of(o), name_of(item)) {
                            (Some(a), Some(b)) => a == b,
                            _ => o == item,
                        });
                        if let Some(i) = same {
                            return expect11(&o11[i], &o12[i], item, pool);
                        }
                        let keys = |v: &Value| -> Vec<String> {
                            v.as_object()
                                .map(|m| m.keys().cloned().collect())
                                .unwrap_or_default()
                        };
                        let moved = pool.iter().find(|(_, b12)| {
                            name_of(b12).is_some()
                                && name_of(b12) == name_of(item)
                                && keys(b12).iter().all(|k| item.get(k).is_some())
                        });
                        match moved {
                            Some((b11, b12)) => expect11(b11, b12, item, pool),
                            None => item.clone(),
                        }
                    })
                    .collect(),
            )
        }
        _ => after12.clone(),
    }
}

fn round_trip(config: Option<&str>) {
    let files = corpus();
    let config_path = config.map(|c| std::fs::canonicalize(Path::new(CORPUS).join(c)).unwrap());
    let mut args: Vec<String> = vec!["fix".into()];
    if let Some(c) = &config_path {
        args.push("--config".into());
        args.push(c.display().to_string());
    }
    let with = |extra: &[&str]| -> Vec<String> {
        let mut a = args.clone();
        a.extend(extra.iter().map(|s| s.to_string()));
        a.extend(DIRS.iter().map(|s| s.to_string()));
        a
    };
    let run = |dir: &Path, extra: &[&str]| {
        let a = with(extra);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        pidone(&refs, dir, None)
    };

    // --write, in place.
    let written_dir = tempfile::tempdir().unwrap();
    copy_to(&files, written_dir.path());
    let out = run(written_dir.path(), &["--write"]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "fix --write: {}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("could not make its fixes"),
        "{}",
        text(&out.stderr)
    );
    let written = read_back(&files, written_dir.path());

    // --diff, applied with git apply to another copy.
    let diff_dir = tempfile::tempdir().unwrap();
    copy_to(&files, diff_dir.path());
    let out = run(diff_dir.path(), &["--diff"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "fix --diff");
    let diff = text(&out.stdout);
    assert_eq!(
        read_back(&files, diff_dir.path()),
        files,
        "--diff changes no file"
    );
    let mut apply = Command::new("git")
        .args(["apply", "--verbose", "-"])
        .current_dir(diff_dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git apply");
    apply
        .stdin
        .take()
        .unwrap()
        .write_all(diff.as_bytes())
        .unwrap();
    let applied = apply.wait_with_output().unwrap();
    assert!(
        applied.status.success(),
        "git apply: {}\n{diff}",
        text(&applied.stderr)
    );
    assert_eq!(
        read_back(&files, diff_dir.path()),
        written,
        "git apply of --diff equals --write"
    );

    let changed: Vec<&String> = files.keys().filter(|n| files[*n] != written[*n]).collect();
    assert!(
        changed.len() >= 3,
        "the corpus exercises the edits: {changed:?}"
    );
    for name in files.keys() {
        let header = format!("--- a/{name}\n");
        assert_eq!(
            diff.contains(&header),
            changed.contains(&name),
            "{name}: in the diff exactly when changed"
        );
    }

    // Changed files keep every comment; JSON stays JSON.
    for name in &changed {
        let before = String::from_utf8(files[*name].clone()).unwrap();
        let after = String::from_utf8(written[*name].clone()).unwrap();
        let (b, a) = (comments(&before), comments(&after));
        let mut missing = b.clone();
        for c in &a {
            if let Some(i) = missing.iter().position(|m| m == c) {
                missing.remove(i);
            }
        }
        assert!(missing.is_empty(), "{name}: comments lost: {missing:?}");
        if name.ends_with(".json") {
            serde_json::from_str::<Value>(&after).expect("JSON stays JSON");
        }
    }

    // A YAML 1.1 reader sees exactly the changes pidone's reader sees, and nothing else
    // (octal modes, `yes`/`no`, quoting...).
    let py = python();
    let paths = |dir: &Path| -> Vec<PathBuf> { changed.iter().map(|n| dir.join(n)).collect() };
    let originals = tempfile::tempdir().unwrap();
    copy_to(&files, originals.path());
    let before11 = yaml11(&py, &paths(originals.path()));
    let after11 = yaml11(&py, &paths(written_dir.path()));
    for (i, name) in changed.iter().enumerate() {
        let before12 = yaml12(name, &files[*name]);
        let after12 = yaml12(name, &written[*name]);
        assert_eq!(before12.len(), before11[i].len(), "{name}: documents");
        assert_eq!(
            after11[i].len(),
            before11[i].len(),
            "{name}: documents after"
        );
        for d in 0..before12.len() {
            let mut pool = Vec::new();
            named_items(&before11[i][d], &before12[d], &mut pool);
            let expected = expect11(&before11[i][d], &before12[d], &after12[d], &pool);
            assert_eq!(
                after11[i][d], expected,
                "{name}: document {d} as YAML 1.1 reads it"
            );
        }
    }

    // Nothing is left to change: a second run edits nothing and audit finds nothing to mutate.
    let out = run(written_dir.path(), &["--diff"]);
    assert_eq!(text(&out.stdout), "", "second fix --diff is empty");
    let mut audit: Vec<String> = vec![
        "audit".into(),
        "--format".into(),
        "json".into(),
        "--fail-on".into(),
        "never".into(),
    ];
    if let Some(c) = &config_path {
        audit.push("--config".into());
        audit.push(c.display().to_string());
    }
    audit.extend(DIRS.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = audit.iter().map(String::as_str).collect();
    let out = pidone(&refs, written_dir.path(), None);
    let report: Value = serde_json::from_slice(&out.stdout).expect("audit JSON");
    let mutate: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "mutate")
        .collect();
    assert!(mutate.is_empty(), "left to mutate: {mutate:?}");
}

#[test]
fn round_trip_with_the_default_config() {
    round_trip(None);
}

#[test]
fn round_trip_with_moves_and_init_injection() {
    round_trip(Some("moves.yaml"));
}

#[test]
fn unchanged_files_are_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clean.yaml");
    let text = "# clean\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: x\n    command: [\"/app\"]\n  volumes:\n  - name: s\n    secret: {secretName: s, defaultMode: 0400}\n";
    std::fs::write(&path, text).unwrap();
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = pidone(&["fix", "--write", "clean.yaml"], dir.path(), None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    // Printing keeps the bytes too.
    let out = pidone(&["fix", "clean.yaml"], dir.path(), None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), text);
}

#[test]
fn json_stays_json_and_stdin_works() {
    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
  "spec": {"containers": [{"name": "a", "image": "x", "command": ["sh", "-c", "cd /srv && ./server"]}]}}
"#;
    let dir = tempfile::tempdir().unwrap();
    let out = pidone(&["fix", "-"], dir.path(), Some(pod));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fixed: Value = serde_json::from_slice(&out.stdout).expect("still JSON");
    assert_eq!(
        fixed["spec"]["containers"][0]["command"][2],
        "cd /srv && exec ./server"
    );
    assert_eq!(
        fixed["metadata"]["annotations"]["pidone.io/mutations"],
        "exec:a"
    );
    let out = pidone(&["fix", "--write", "-"], dir.path(), Some(pod));
    assert_eq!(out.status.code(), Some(2), "--write needs files");
}

#[test]
fn exit_codes_and_broken_documents() {
    let dir = tempfile::tempdir().unwrap();
    // Document 1 is broken; documents 0 and 2 are still fixed, and the file keeps document 1
    // as it was.
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - {name: a, image: x, command: [sh, -c, 'cd /x; run']}\n---\nkind: Pod\nmetadata: {name: [\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: c}\nspec:\n  containers:\n  - {name: c, image: x, command: [sh, -c, 'cd /y; serve']}\n";
    std::fs::write(dir.path().join("m.yaml"), text).unwrap();
    let out = pidone(&["fix", "--write", "m.yaml"], dir.path(), None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("m.yaml: document 1, line 9: not valid YAML"),
        "{err}"
    );
    let after = std::fs::read_to_string(dir.path().join("m.yaml")).unwrap();
    assert!(
        after.contains("'cd /x; exec run'") && after.contains("'cd /y; exec serve'"),
        "{after}"
    );
    assert!(after.contains("kind: Pod\nmetadata: {name: [\n"));

    // A pod enforce mode would still deny: exit 1.
    std::fs::write(
        dir.path().join("multi.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: m}\nspec:\n  containers:\n  - {name: a, image: x, command: [sh, -c, 'api & worker & wait']}\n",
    )
    .unwrap();
    let out = pidone(&["fix", "--diff", "multi.yaml"], dir.path(), None);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("would still deny"));

    // Init injection asked for but impossible (no command to prefix): exit 1, said why.
    std::fs::write(
        dir.path().join("cfg.yaml"),
        "initInjection:\n  enabled: true\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("deaf.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: d}\nspec:\n  containers:\n  - {name: a, image: x, command: [sleep, infinity]}\n",
    )
    .unwrap();
    let out = pidone(
        &["fix", "--config", "cfg.yaml", "deaf.yaml"],
        dir.path(),
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("initInjection.image"));
}
