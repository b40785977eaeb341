//! ConfigMaps of the input: `pidone audit` and `pidone fix` read the scripts containers run
//! from ConfigMap volumes out of the same manifests (`helm template` prints both).

use crate::cli::input::Manifest;
use crate::engine::mounted_scripts::ConfigMaps;
use serde_json::Value;
use std::collections::BTreeMap;

/// Every ConfigMap among the manifests, with its string `data` (`binaryData` holds no scripts).
pub fn gather(manifests: &[Manifest]) -> ConfigMaps {
    let mut maps = ConfigMaps::default();
    for m in manifests {
        let o = &m.object;
        if o.get("kind").and_then(Value::as_str) != Some("ConfigMap") {
            continue;
        }
        let meta = o.get("metadata");
        let Some(name) = meta.and_then(|m| m.get("name")).and_then(Value::as_str) else {
            continue;
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
    maps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::input::parse_text;

    #[test]
    fn gathers_config_maps_with_and_without_namespace() {
        let text = "kind: ConfigMap\nmetadata: {name: s, namespace: db}\ndata:\n  run.sh: |\n    #!/bin/sh\n    exec app\n  n: 1\n---\nkind: ConfigMap\nmetadata: {name: t}\n---\nkind: Pod\nmetadata: {name: p}\n---\nkind: ConfigMap\ndata: {x: y}\n";
        let maps = gather(&parse_text("x.yaml", text).unwrap());
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
