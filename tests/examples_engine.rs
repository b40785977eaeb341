//! The engine against the labelled examples: every container's launch class and rules.

use pidone::engine::Config;
use pidone::engine::evaluate::EvalContext;
use pidone::resolve::Evaluator;
use pidone::resolve::InProcessAnalyzer;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

#[test]
fn examples_match_labels() {
    let text = std::fs::read_to_string("tests/fixtures/examples/launches.yaml").unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let expected: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/examples/expected.json").unwrap(),
    )
    .unwrap();
    let engine = Evaluator::new(Arc::new(Config::default()), Arc::new(InProcessAnalyzer)).unwrap();
    let mut seen = Vec::new();
    for doc in &docs {
        let Some(eval) = engine.evaluate(doc, &EvalContext::default()).unwrap() else {
            continue;
        };
        let object = format!(
            "{}/{}/{}",
            eval.object.kind,
            eval.object.namespace.as_deref().unwrap_or("default"),
            eval.object.name
        );
        for c in &eval.containers {
            let rules: BTreeSet<String> = eval
                .findings
                .iter()
                .filter(|f| f.container == c.container)
                .map(|f| f.rule.to_string())
                .collect();
            seen.push((
                object.clone(),
                c.container.clone(),
                c.launch.to_string(),
                rules,
                c.analysis.detail.clone(),
            ));
        }
    }
    let mut failures = Vec::new();
    for e in &expected {
        let object = e["object"].as_str().unwrap();
        let container = e["container"].as_str().unwrap();
        let launch = e["launch"].as_str().unwrap();
        let rules: BTreeSet<String> = e["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        match seen.iter().find(|s| s.0 == object && s.1 == container) {
            None => failures.push(format!("{object} {container}: not analysed")),
            Some(s) if s.2 != launch || s.3 != rules => failures.push(format!(
                "{object} {container}: got {} {:?}, want {launch} {rules:?} ({})",
                s.2, s.3, s.4
            )),
            Some(_) => {}
        }
    }
    assert_eq!(seen.len(), expected.len(), "container count");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn image_entrypoint_and_cmd_are_classified_when_known() {
    use pidone::engine::evaluate::ImageConfig;
    use std::collections::HashMap;
    let engine = Evaluator::new(Arc::new(Config::default()), Arc::new(InProcessAnalyzer)).unwrap();
    let pod = serde_json::json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "image": "example/a:1"},
        {"name": "b", "image": "example/b:1", "args": ["--port", "80"]},
        {"name": "c", "image": "example/a:1", "command": ["/app"]}]}});
    let mut images = HashMap::new();
    images.insert(
        "example/a:1".to_string(),
        ImageConfig {
            entrypoint: vec![
                "sh".into(),
                "-c".into(),
                "setup; exec \"$@\"".into(),
                "sh".into(),
            ],
            cmd: vec!["sleep".into(), "infinity".into()],
            digest: "sha256:aaa".into(),
            ..Default::default()
        },
    );
    images.insert(
        "example/b:1".to_string(),
        ImageConfig {
            entrypoint: vec!["/docker-entrypoint.sh".into()],
            cmd: vec!["server".into()],
            digest: "sha256:bbb".into(),
            ..Default::default()
        },
    );
    let ctx = EvalContext {
        images: Some(&images),
        ..Default::default()
    };
    let eval = engine.evaluate(&pod, &ctx).unwrap().unwrap();
    let launch: Vec<String> = eval
        .containers
        .iter()
        .map(|c| c.launch.to_string())
        .collect();
    assert_eq!(launch, ["exec", "script", "direct"]);
    assert_eq!(
        eval.containers[0].analysis.pid1.as_deref(),
        Some("sleep"),
        "CMD fills \"$@\""
    );
    assert!(
        eval.findings
            .iter()
            .any(|f| f.container == "a" && f.rule.as_str() == "signal-deaf-pid1")
    );
    assert_eq!(
        eval.containers[0].analysis.from_image.as_deref(),
        Some("sha256:aaa")
    );
    assert_eq!(
        eval.containers[2].analysis.from_image, None,
        "command overrides the image"
    );
}
