//! Which images' configs an object's launches depend on: those of containers without a
//! `command`, which run their image's ENTRYPOINT. Callers look them up before evaluating
//! (see [`crate::engine::Engine::needs`]).

use crate::engine::workload::{self, Workload};
use serde_json::Value;

/// The images whose config decides a launch in this object: those of containers (and init
/// containers) without a `command`. Sorted, without duplicates; empty for objects that are not
/// workloads (or do not extract).
pub fn images_to_resolve(object: &Value) -> Vec<String> {
    match workload::extract(object) {
        Ok(Some(w)) => images_of(&w),
        _ => Vec::new(),
    }
}

/// [`images_to_resolve`] of an extracted workload.
pub fn images_of(w: &Workload<'_>) -> Vec<String> {
    let mut images: Vec<String> = w
        .containers
        .iter()
        .filter(|c| c.command.as_deref().is_none_or(Vec::is_empty))
        .map(|c| c.image)
        .filter(|image| !image.is_empty())
        .map(str::to_string)
        .collect();
    images.sort_unstable();
    images.dedup();
    images
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_containers_without_command() {
        let pod = serde_json::json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "i", "image": "busybox"}],
            "containers": [
                {"name": "a", "image": "nginx:1", "args": ["-x"]},
                {"name": "b", "image": "app:1", "command": ["/app"]},
                {"name": "c", "image": "nginx:1", "command": []}]}});
        assert_eq!(images_to_resolve(&pod), ["busybox", "nginx:1"]);
        assert!(images_to_resolve(&serde_json::json!({"kind": "ConfigMap"})).is_empty());
        let cron = serde_json::json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {
            "template": {"spec": {"containers": [{"name": "a", "image": "job:1"}]}}}}}});
        assert_eq!(images_to_resolve(&cron), ["job:1"]);
    }
}
