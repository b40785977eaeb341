//! The side-agent rules measured on a labelled corpus of pods from public charts, operators and
//! manifests (`tests/fixtures/side_agents`, each object citing its source): precision and
//! recall per confidence level, printed, with the bars the product promises asserted: at least
//! 90% of side agents found, and no `certain` finding on a main workload.
//!
//! Containers a mesh injector marks as its own (`engine::injected`) are neither side agents nor
//! main containers to pidone; they are counted apart and left out of the scores.

mod support {
    pub mod fixtures;
}

use pidone::engine::evaluate::EvalContext;
use pidone::engine::injected::injected_containers;
use pidone::engine::side_agents::Confidence;
use pidone::engine::{Config, RuleId, Section};
use pidone::resolve::Evaluator;
use pidone::resolve::InProcessAnalyzer;
use std::collections::BTreeSet;
use std::sync::Arc;
use support::fixtures::side_agent_corpus;

const SOURCE: &str = "corpus.pidone.test/source";
const LABEL: &str = "corpus.pidone.test/side-agents";

#[derive(Default)]
struct Tally {
    /// Side agents found, and main containers wrongly called side agents, per confidence.
    found: [usize; 2],
    wrong: [usize; 2],
}

fn level(c: Confidence) -> usize {
    match c {
        Confidence::Certain => 0,
        Confidence::Likely => 1,
    }
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 1.0 } else { n as f64 / d as f64 }
}

#[test]
fn side_agents_are_found_on_the_labelled_corpus() {
    // Default rules, no exempt namespaces: the corpus has kube-system add-ons too.
    let config = Config::from_yaml("exemptions:\n  namespaces: []\n").unwrap();
    let engine = Evaluator::new(Arc::new(config), Arc::new(InProcessAnalyzer)).unwrap();
    let docs = side_agent_corpus();
    let mut tally = Tally::default();
    let (mut agents, mut mains, mut injected_skipped) = (0, 0, 0);
    let (mut agent_pods, mut main_pods) = (0, 0);
    let mut misses = Vec::new();
    let mut wrong = Vec::new();
    for (file, doc) in &docs {
        let name = format!("{file}: {}/{}", doc["kind"], doc["metadata"]["name"]);
        let source = doc["metadata"]["annotations"][SOURCE]
            .as_str()
            .unwrap_or("");
        assert!(
            source.contains('/') && source.contains(' '),
            "{name}: cite the source repository and path"
        );
        let label = doc["metadata"]["annotations"][LABEL]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no {LABEL} label"));
        let labelled: BTreeSet<&str> = label.split(',').filter(|s| !s.is_empty()).collect();
        let injected = match pidone::engine::workload::extract(doc) {
            Ok(Some(w)) => injected_containers(&w.annotations),
            other => panic!("{name}: not a pod-bearing object: {other:?}"),
        };
        let eval = engine
            .evaluate(doc, &EvalContext::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: not a pod-bearing object"));
        let regular: Vec<&str> = eval
            .containers
            .iter()
            .filter(|c| c.section == Section::Containers)
            .map(|c| c.container.as_str())
            .collect();
        for l in &labelled {
            assert!(
                regular.contains(l),
                "{name}: labelled {l:?} is not in containers"
            );
        }
        let mut scored_agents = 0;
        for c in &regular {
            if injected.iter().any(|i| i == c) {
                injected_skipped += 1;
                continue;
            }
            let finding = eval
                .findings
                .iter()
                .find(|f| f.rule == RuleId::SideAgent && f.container == *c);
            let confidence = finding.and_then(|f| f.confidence);
            if labelled.contains(c) {
                agents += 1;
                scored_agents += 1;
                match confidence {
                    Some(conf) => tally.found[level(conf)] += 1,
                    None => misses.push(format!("{name} {c}")),
                }
            } else {
                mains += 1;
                if let (Some(conf), Some(f)) = (confidence, finding) {
                    tally.wrong[level(conf)] += 1;
                    wrong.push(format!("[{conf}] {name} {c}: {}", f.message));
                }
            }
        }
        if scored_agents > 0 {
            agent_pods += 1;
        } else if labelled.is_empty() {
            main_pods += 1;
        }
    }

    let found = tally.found[0] + tally.found[1];
    println!(
        "side-agent corpus: {} objects, {agent_pods} pods with side agents, {main_pods} pods with a main workload only",
        docs.len()
    );
    println!(
        "containers: {agents} side agents, {mains} main, {injected_skipped} injected by a mesh (not scored)"
    );
    println!(
        "{:<10} {:>6} {:>6} {:>10} {:>8}",
        "level", "found", "wrong", "precision", "recall"
    );
    for (i, name) in ["certain", "likely"].iter().enumerate() {
        println!(
            "{name:<10} {:>6} {:>6} {:>9.1}% {:>7.1}%",
            tally.found[i],
            tally.wrong[i],
            100.0 * ratio(tally.found[i], tally.found[i] + tally.wrong[i]),
            100.0 * ratio(tally.found[i], agents)
        );
    }
    println!(
        "{:<10} {:>6} {:>6} {:>9.1}% {:>7.1}%",
        "either",
        found,
        tally.wrong[0] + tally.wrong[1],
        100.0 * ratio(found, found + tally.wrong[0] + tally.wrong[1]),
        100.0 * ratio(found, agents)
    );
    for m in &misses {
        println!("missed: {m}");
    }
    for w in &wrong {
        println!("wrong: {w}");
    }

    assert!(agent_pods >= 60, "only {agent_pods} pods with side agents");
    assert!(
        main_pods >= 60,
        "only {main_pods} pods with a main workload only"
    );
    assert!(
        ratio(found, agents) >= 0.90,
        "recall {found}/{agents} is under 90%; missed: {misses:#?}"
    );
    assert_eq!(
        tally.wrong[0], 0,
        "certain findings on main workloads: {wrong:#?}"
    );
}
