//! The labelled examples with each `command` moved into an image: ENTRYPOINT = command,
//! CMD = args, and the pod sets neither (Kubernetes then runs ENTRYPOINT + CMD, the same argv).

use pidone::engine::evaluate::EvalContext;
use pidone::engine::workload;
use pidone::resolve::Evaluator;
use serde_json::Value;
use std::collections::BTreeSet;

/// One container whose launch moved into an image.
#[derive(Debug, Clone)]
pub struct Moved {
    /// Index of the document in the examples file.
    pub doc: usize,
    pub container: String,
    /// The image reference written into the pod in place of the original.
    pub image: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

pub fn load_examples() -> Vec<Value> {
    let text = std::fs::read_to_string("tests/fixtures/examples/launches.yaml").unwrap();
    serde_saphyr::from_multiple(&text).unwrap()
}

/// `image(original, n)` names the new image of the n-th moved container; it should keep the
/// original's repository name so side-agent globs on image names still match.
pub fn move_commands_to_images(
    docs: &[Value],
    mut image: impl FnMut(&str, usize) -> String,
) -> (Vec<Value>, Vec<Moved>) {
    let mut out = Vec::new();
    let mut moved = Vec::new();
    for (doc_index, doc) in docs.iter().enumerate() {
        let mut copy = doc.clone();
        if let Ok(Some(w)) = workload::extract(doc) {
            for c in &w.containers {
                let Some(command) = c.command.as_ref().filter(|c| !c.is_empty()) else {
                    continue;
                };
                let name = image(c.image, moved.len());
                let target = copy
                    .pointer_mut(&c.pointer)
                    .unwrap()
                    .as_object_mut()
                    .unwrap();
                target.remove("command");
                target.remove("args");
                target.insert("image".into(), Value::String(name.clone()));
                moved.push(Moved {
                    doc: doc_index,
                    container: c.name.to_string(),
                    image: name,
                    entrypoint: command.iter().map(|w| w.to_string()).collect(),
                    cmd: c.args.iter().flatten().map(|w| w.to_string()).collect(),
                });
            }
        }
        out.push(copy);
    }
    (out, moved)
}

/// `(container, launch, rules)` of every container of one evaluated document.
pub fn launches(
    engine: &Evaluator,
    doc: &Value,
    ctx: &EvalContext<'_>,
) -> Vec<(String, String, BTreeSet<String>)> {
    let Some(eval) = engine.evaluate(doc, ctx).unwrap() else {
        return Vec::new();
    };
    eval.containers
        .iter()
        .map(|c| {
            let rules = eval
                .findings
                .iter()
                .filter(|f| f.container == c.container)
                .map(|f| f.rule.to_string())
                .collect();
            (c.container.clone(), c.launch.to_string(), rules)
        })
        .collect()
}

/// A new image name on the original's repository, with a tag of its own.
pub fn retag(original: &str, n: usize, registry: Option<&str>) -> String {
    let without_digest = original.split('@').next().unwrap_or(original);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let repo = match without_digest[last_slash..].rfind(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    };
    match registry {
        // Keep only the path: the image moves to the test registry.
        Some(host) => {
            let path = repo
                .split_once('/')
                .filter(|(first, _)| first.contains('.') || first.contains(':'))
                .map_or(repo, |(_, rest)| rest);
            format!("{host}/{path}:example-{n}")
        }
        None => format!("{repo}:example-{n}"),
    }
}
