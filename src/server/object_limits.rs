//! The per-object bounds (`limits:` in the configuration): how many containers a pod template
//! has and how many bytes of `command` and `args` they carry, measured on the lean object in
//! one linear pass before any analysis, image look-up or patch planning starts.

use crate::engine::config::LimitsConfig;
use crate::engine::json_pointer;
use crate::engine::lent::Lent;
use crate::engine::workload::Workload;
use serde_json::Value;

/// What one pod template asks of the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObjectSize {
    pub containers: usize,
    pub argv_bytes: usize,
}

/// An object over a bound: which one (the metric label) and what to tell its author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverLimit {
    pub limit: &'static str,
    pub message: String,
}

/// What [`measure`] gives for the object a workload was read from: its containers and the
/// bytes of their `command` and `args` (a workload is read only where every word is a string).
pub fn of_workload(workload: &Workload<'_>) -> ObjectSize {
    fn bytes(words: &Option<Lent<'_, Vec<&str>>>) -> usize {
        words.iter().flat_map(|w| w.iter()).map(|w| w.len()).sum()
    }
    ObjectSize {
        containers: workload.containers.len(),
        argv_bytes: workload
            .containers
            .iter()
            .map(|c| bytes(&c.command) + bytes(&c.args))
            .sum(),
    }
}

/// Measures the pod template at `pointer` (a template pointer: `""` for a Pod).
pub fn measure(object: &Value, pointer: &str) -> ObjectSize {
    let mut size = ObjectSize::default();
    let Some(spec) = json_pointer::get(object, pointer).and_then(|t| t.get("spec")) else {
        return size;
    };
    for section in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(list) = spec.get(section).and_then(Value::as_array) else {
            continue;
        };
        size.containers += list.len();
        for c in list {
            for field in ["command", "args"] {
                if let Some(words) = c.get(field).and_then(Value::as_array) {
                    size.argv_bytes += words
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::len)
                        .sum::<usize>();
                }
            }
        }
    }
    size
}

/// The first bound `size` exceeds, if any.
pub fn check(size: ObjectSize, limits: &LimitsConfig) -> Option<OverLimit> {
    if size.containers > limits.max_containers {
        return Some(OverLimit {
            limit: "containers",
            message: format!(
                "the pod template has {} containers, more than pidone analyses (limits.maxContainers: {})",
                size.containers, limits.max_containers
            ),
        });
    }
    if size.argv_bytes > limits.max_argv_bytes {
        return Some(OverLimit {
            limit: "argv-bytes",
            message: format!(
                "the containers' command and args total {} bytes, more than pidone analyses (limits.maxArgvBytes: {})",
                size.argv_bytes, limits.max_argv_bytes
            ),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_every_section_and_the_argv_bytes() {
        let pod = json!({"kind": "Pod", "spec": {
            "initContainers": [{"name": "i", "command": ["sh", "-c", "abc"]}],
            "containers": [{"name": "a", "args": ["12345"]}, {"name": "b", "command": [1, "x"]}]
        }});
        assert_eq!(
            measure(&pod, ""),
            ObjectSize {
                containers: 3,
                argv_bytes: 2 + 2 + 3 + 5 + 1
            }
        );
        let deploy = json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}});
        assert_eq!(measure(&deploy, "/spec/template").containers, 1);
        assert_eq!(measure(&json!({}), "/spec/template"), ObjectSize::default());
    }

    #[test]
    fn the_first_bound_exceeded_is_named() {
        let limits = LimitsConfig {
            max_containers: 2,
            max_argv_bytes: 10,
        };
        let ok = ObjectSize {
            containers: 2,
            argv_bytes: 10,
        };
        assert_eq!(check(ok, &limits), None);
        let many = check(
            ObjectSize {
                containers: 3,
                argv_bytes: 99,
            },
            &limits,
        )
        .unwrap();
        assert_eq!(many.limit, "containers");
        assert!(
            many.message.contains("limits.maxContainers: 2"),
            "{}",
            many.message
        );
        let long = check(
            ObjectSize {
                containers: 1,
                argv_bytes: 11,
            },
            &limits,
        )
        .unwrap();
        assert_eq!(long.limit, "argv-bytes");
    }
}
