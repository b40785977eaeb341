//! Native sidecar conversion: a side agent moves from `containers` to `initContainers` with
//! `restartPolicy: Always`, every other field kept.

use serde_json::Value;

/// The container as a native sidecar.
pub fn as_native_sidecar(container: &Value) -> Value {
    let mut c = container.clone();
    if let Some(obj) = c.as_object_mut() {
        obj.insert("restartPolicy".into(), Value::String("Always".into()));
    }
    c
}
