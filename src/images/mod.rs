//! Image look-ups: the ENTRYPOINT and CMD that run when a pod sets no `command` (DESIGN
//! sections 1, 6 and 7). The engine stays pure; the server and the CLI call
//! [`ImageResolver::resolve_all`] before evaluating and pass the map in `EvalContext::images`.

pub mod cache;
pub mod credentials;
pub mod offline;
pub mod reference;
pub mod resolver;

pub use resolver::{ImageResolver, ImageStats, ImageWarning, ResolveError, ResolverError};

use crate::engine::workload;
use serde_json::Value;

/// The images whose config decides a launch in this object: those of containers (and init
/// containers) without a `command`. Sorted, without duplicates; empty for objects that are not
/// workloads.
pub fn images_to_resolve(object: &Value) -> Vec<String> {
    let Ok(Some(w)) = workload::extract(object) else {
        return Vec::new();
    };
    let mut images: Vec<String> = w
        .containers
        .iter()
        .filter(|c| c.command.as_ref().is_none_or(Vec::is_empty) && !c.image.is_empty())
        .map(|c| c.image.clone())
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
    }
}
