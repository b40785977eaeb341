//! Shared by the fuzz targets: a pod whose container runs the fuzzed script.

use serde_json::{Value, json};

/// First byte picks the shell (and so the dialect), the rest is the script.
pub fn pod(data: &[u8]) -> Option<Value> {
    let (&pick, script) = data.split_first()?;
    let shell = match pick % 4 {
        0 => "sh",
        1 => "bash",
        2 => "/bin/ash",
        _ => "/usr/bin/env",
    };
    let script = String::from_utf8_lossy(script);
    let command = if shell == "/usr/bin/env" {
        json!([shell, "bash", "-ec", script, "app"])
    } else {
        json!([shell, "-c", script])
    };
    Some(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "fuzz", "namespace": "default"},
        "spec": {"containers": [{
            "name": "app",
            "image": "example/app:1",
            "command": command,
            "env": [{"name": "PORT", "value": "80"}]
        }]}
    }))
}
