//! The apiserver's Pod validation rules that mutations must respect (docs/apiserver.md), as a
//! checker for tests: a patched object that breaks them would be rejected with a 422.

use serde_json::Value;
use std::collections::HashSet;

fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Checks a pod spec; returns every violation found.
pub fn violations(spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let list = |key: &str| {
        spec.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let volumes: Vec<String> = list("volumes")
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let mut volume_names = HashSet::new();
    for v in &volumes {
        if !volume_names.insert(v.clone()) {
            out.push(format!("volume name {v} is not unique"));
        }
        if !is_dns1123_label(v) {
            out.push(format!("volume name {v} is not a DNS-1123 label"));
        }
    }
    let mut names = HashSet::new();
    for (section, items) in [
        ("initContainers", list("initContainers")),
        ("containers", list("containers")),
        ("ephemeralContainers", list("ephemeralContainers")),
    ] {
        for c in &items {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            if !is_dns1123_label(name) {
                out.push(format!("{section} name {name:?} is not a DNS-1123 label"));
            }
            if !names.insert(name.to_string()) {
                out.push(format!(
                    "container name {name} is not unique across containers"
                ));
            }
            let restart = c.get("restartPolicy").and_then(Value::as_str);
            match section {
                "initContainers" => {
                    if let Some(r) = restart
                        && r != "Always"
                    {
                        out.push(format!(
                            "init container {name}: restartPolicy {r} (only Always is allowed)"
                        ));
                    }
                    if restart != Some("Always") {
                        for field in [
                            "lifecycle",
                            "livenessProbe",
                            "readinessProbe",
                            "startupProbe",
                        ] {
                            if c.get(field).is_some() {
                                out.push(format!("init container {name}: {field} may not be set without restartPolicy=Always"));
                            }
                        }
                    }
                }
                _ => {
                    if restart.is_some() {
                        out.push(format!(
                            "container {name}: restartPolicy is not allowed on regular containers"
                        ));
                    }
                }
            }
            let mut paths = HashSet::new();
            for m in c
                .get("volumeMounts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let vol = m.get("name").and_then(Value::as_str).unwrap_or("");
                if !volume_names.contains(vol) {
                    out.push(format!(
                        "container {name}: volumeMount {vol} names no volume"
                    ));
                }
                let path = m.get("mountPath").and_then(Value::as_str).unwrap_or("");
                if !paths.insert(path.to_string()) {
                    out.push(format!("container {name}: mountPath {path} is not unique"));
                }
            }
            match c.get("command") {
                None | Some(Value::Array(_)) => {}
                Some(_) => out.push(format!("container {name}: command is not a list")),
            }
        }
    }
    if list("containers").is_empty() {
        out.push("a pod needs at least one container".into());
    }
    out
}
