//! ConfigMaps of the input: `pidone audit` and `pidone fix` read the scripts containers run
//! from ConfigMap volumes out of the same manifests (`helm template` prints both).

use crate::cli::input::{self, Manifest};
use crate::engine::mounted_scripts::ConfigMaps;
use serde_json::Value;
use std::collections::BTreeMap;

/// The ConfigMaps of every document of the paths: a cheap first pass before the documents are
/// audited or fixed one at a time, so a container finds its script wherever the ConfigMap
/// stands in the input. Only documents that name the kind are parsed, and only the string data
/// of their ConfigMaps is kept; errors are left to the pass that reports them.
pub fn gather_from(paths: &[String]) -> ConfigMaps {
    let mut maps = ConfigMaps::default();
    for path in paths {
        let Ok(files) = input::expand(path) else {
            continue;
        };
        for file in files {
            let Ok(docs) = input::open(&file) else {
                continue;
            };
            for doc in docs {
                let Ok(doc) = doc else {
                    break;
                };
                if !doc.text.contains("ConfigMap") {
                    continue;
                }
                if let Ok(manifests) = input::manifests(&doc) {
                    for m in &manifests {
                        add(&mut maps, m);
                    }
                }
            }
        }
    }
    maps
}

fn is_config_map(m: &Manifest) -> bool {
    m.object.get("kind").and_then(Value::as_str) == Some("ConfigMap")
}

/// Every ConfigMap among the manifests, with its string `data` (`binaryData` holds no scripts).
pub fn gather(manifests: &[Manifest]) -> ConfigMaps {
    let mut maps = ConfigMaps::default();
    for m in manifests {
        add(&mut maps, m);
    }
    maps
}

/// Adds the manifest when it is a named ConfigMap.
fn add(maps: &mut ConfigMaps, m: &Manifest) {
    if !is_config_map(m) {
        return;
    }
    let o = &m.object;
    let meta = o.get("metadata");
    let Some(name) = meta.and_then(|m| m.get("name")).and_then(Value::as_str) else {
        return;
    };
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str);
    let data: BTreeMap<String, String> = o
        .get("data")
        .and_then(Value::as_object)
        .map(|d| {
            d.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    maps.insert(namespace, name, data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::input::Documents;

    fn parse_text(file: &str, text: &str) -> Vec<Manifest> {
        Documents::new(file.to_string(), text.as_bytes())
            .flat_map(|doc| input::manifests(&doc.unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn gathers_config_maps_with_and_without_namespace() {
        let text = "kind: ConfigMap\nmetadata: {name: s, namespace: db}\ndata:\n  run.sh: |\n    #!/bin/sh\n    exec app\n  n: 1\n---\nkind: ConfigMap\nmetadata: {name: t}\n---\nkind: Pod\nmetadata: {name: p}\n---\nkind: ConfigMap\ndata: {x: y}\n";
        let maps = gather(&parse_text("x.yaml", text));
        assert_eq!(maps.len(), 2);
        let s = maps.get(Some("db"), "s").unwrap();
        assert_eq!(
            s.get("run.sh").map(String::as_str),
            Some("#!/bin/sh\nexec app\n")
        );
        // Non-string values are not scripts.
        assert!(!s.contains_key("n"));
        assert!(maps.get(Some("other"), "t").is_some());
    }
}
