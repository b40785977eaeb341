//! Init injection (strategy `binary`): an in-memory volume, an init container that installs
//! pidone-init into it, a read-only mount, and the command prefixed with the init.

use super::{INIT_DIR, INIT_NAME, INIT_PATH};
use serde_json::{Value, json};

pub fn volume() -> Value {
    json!({"name": INIT_NAME, "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}})
}

/// The init container that copies pidone-init into the shared volume: no shell needed.
pub fn installer(image: &str) -> Value {
    json!({
        "name": INIT_NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/pidone-init", "--install", INIT_PATH],
        "volumeMounts": [{"name": INIT_NAME, "mountPath": INIT_DIR}],
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "100m", "memory": "32Mi"}
        },
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}
        }
    })
}

/// Mounts the init volume read-only and prefixes the command. `group`: signal the whole
/// process group (`-g`), for launches where the program is not the init's own child (a shell
/// that stays, several programs). Returns false when the container has no command to prefix
/// or already runs under the init.
pub fn wrap(container: &mut Value, group: bool) -> bool {
    let Some(obj) = container.as_object_mut() else {
        return false;
    };
    let Some(Value::Array(command)) = obj.get("command") else {
        return false;
    };
    // Already under pidone's init: wrapping again changes nothing a signal sees.
    if command.is_empty() || command.first().and_then(Value::as_str) == Some(INIT_PATH) {
        return false;
    }
    let mut prefixed = vec![Value::String(INIT_PATH.into())];
    if group {
        prefixed.push(Value::String("-g".into()));
    }
    prefixed.push(Value::String("--".into()));
    prefixed.extend(command.iter().cloned());
    obj.insert("command".into(), Value::Array(prefixed));
    let mount = json!({"name": INIT_NAME, "mountPath": INIT_DIR, "readOnly": true});
    match obj.get_mut("volumeMounts") {
        Some(Value::Array(mounts)) => {
            if !mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(INIT_DIR))
            {
                mounts.push(mount);
            }
        }
        _ => {
            obj.insert("volumeMounts".into(), Value::Array(vec![mount]));
        }
    }
    true
}
