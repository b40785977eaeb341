//! The fixture objects: the labelled examples and the launch patterns.

use serde_json::Value;

/// Every object of `tests/fixtures/examples` and `tests/fixtures/patterns`.
#[allow(dead_code)]
pub fn documents() -> Vec<Value> {
    let mut docs = Vec::new();
    for path in [
        "tests/fixtures/examples/launches.yaml",
        "tests/fixtures/patterns/launches.yaml",
    ] {
        let text = std::fs::read_to_string(path).unwrap();
        docs.extend(serde_saphyr::from_multiple::<Value>(&text).unwrap());
    }
    docs
}

/// The labelled side-agent corpus (`tests/fixtures/side_agents`): pods from public charts and
/// manifests with their side agents marked by hand.
#[allow(dead_code)]
pub fn side_agent_corpus() -> Vec<(&'static str, Value)> {
    let mut docs = Vec::new();
    for path in [
        "tests/fixtures/side_agents/agents.yaml",
        "tests/fixtures/side_agents/mains.yaml",
    ] {
        let text = std::fs::read_to_string(path).unwrap();
        for doc in serde_saphyr::from_multiple::<Value>(&text).unwrap() {
            docs.push((path, doc));
        }
    }
    docs
}
