//! The fixture objects: the labelled examples and the launch patterns.

use serde_json::Value;

/// Every object of `tests/fixtures/examples` and `tests/fixtures/patterns`.
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
