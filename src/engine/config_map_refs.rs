//! Which ConfigMaps a pod's launches may read scripts from: the names a caller fetches before
//! evaluation (the webhook from the API, `audit --cluster` from its lists), so that
//! [`crate::engine::mounted_scripts`] finds the scripts there.
//!
//! Cheap and generous rather than exact: the exact answer needs the launch analysis, which
//! needs the scripts. A ConfigMap counts when one of its volumes is mounted into a container
//! whose command, args, or an already known script of its mounts names a path under the mount;
//! when the container runs a relative path from a working directory under the mount. A
//! container that leaves its command to the image counts with the image's ENTRYPOINT and CMD
//! when they were looked up (a ConfigMap file mounted over the image's entrypoint script).

use crate::engine::image_config::ImageConfig;
use crate::engine::mounted_scripts::ConfigMaps;
use crate::engine::volumes::Volume;
use crate::engine::workload::{self, ContainerSpec, Workload};
use serde_json::Value;
use std::collections::HashMap;

/// The ConfigMap of every pod's service-account volume: a CA certificate, never a script.
const KUBE_ROOT_CA: &str = "kube-root-ca.crt";

/// ConfigMap names the launches of `object` may read, in the order the pod mounts them,
/// without repeats. `known` holds ConfigMaps already read: their texts may name further
/// mounts (a script that execs a script of another ConfigMap). `namespace` is the object's.
/// `images` are the looked-up image configs, keyed by the image as the pod names it.
pub fn referenced(
    object: &Value,
    namespace: Option<&str>,
    known: &ConfigMaps,
    images: Option<&HashMap<String, ImageConfig>>,
) -> Vec<String> {
    match workload::extract(object) {
        Ok(Some(w)) => referenced_in(&w, namespace, known, images),
        _ => Vec::new(),
    }
}

/// [`referenced`] of an extracted workload.
pub fn referenced_in(
    w: &Workload<'_>,
    namespace: Option<&str>,
    known: &ConfigMaps,
    images: Option<&HashMap<String, ImageConfig>>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in &w.containers {
        // What the kubelet runs: the pod's command and args, else the image's.
        let image = images.and_then(|m| m.get(c.image));
        let mut argv: Vec<&str> = match (&c.command, image) {
            (Some(command), _) => command.to_vec(),
            (None, Some(i)) => i.entrypoint.iter().map(String::as_str).collect(),
            (None, None) => Vec::new(),
        };
        match (&c.command, &c.args, image) {
            (_, Some(args), _) => argv.extend(args),
            (None, None, Some(i)) => argv.extend(i.cmd.iter().map(String::as_str)),
            _ => {}
        }
        let mounted = mounted_maps(c, &w.volumes);
        // Texts that may name a path: the argv, and the scripts already read from this
        // container's mounts.
        let scripts: Vec<&str> = mounted
            .iter()
            .filter_map(|m| known.get(namespace, &m.name))
            .flat_map(|data| data.values().map(String::as_str))
            .collect();
        for m in &mounted {
            if out.contains(&m.name) {
                continue;
            }
            let named = |text: &str| names_path_under(text, &m.mount_path);
            let runs = argv.iter().any(|a| named(a))
                || scripts.iter().any(|t| named(t))
                || runs_relative_under(c, &argv, &m.mount_path);
            if runs {
                out.push(m.name.clone());
            }
        }
    }
    out
}

/// Every ConfigMap the pod template of `object` mounts (the service account's CA aside).
pub fn mounted(object: &Value) -> Vec<String> {
    let Ok(Some(w)) = workload::extract(object) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for v in &w.volumes {
        for name in volume_maps(v) {
            if !out.iter().any(|n| n == name) {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// One ConfigMap mounted into a container.
struct MountedMap {
    name: String,
    mount_path: String,
}

fn mounted_maps(c: &ContainerSpec<'_>, volumes: &[Volume<'_>]) -> Vec<MountedMap> {
    let mut out = Vec::new();
    for m in &c.mounts {
        let (volume, mount_path) = (m.volume, m.path.trim_end_matches('/'));
        if volume.is_empty() || mount_path.is_empty() {
            continue;
        }
        let Some(v) = volumes.iter().find(|v| v.name == volume) else {
            continue;
        };
        for name in volume_maps(v) {
            out.push(MountedMap {
                name: name.to_string(),
                mount_path: mount_path.to_string(),
            });
        }
    }
    out
}

/// The ConfigMaps a `configMap` or `projected` volume reads.
fn volume_maps<'a>(v: &Volume<'a>) -> Vec<&'a str> {
    v.source
        .config_maps()
        .filter_map(|(files, _)| files.name)
        .filter(|n| !n.is_empty() && *n != KUBE_ROOT_CA)
        .collect()
}

/// Whether `text` names `mount` or a path below it (`/scripts`, `/scripts/run.sh`), and not
/// merely a longer name that starts the same (`/scripts-old`).
fn names_path_under(text: &str, mount: &str) -> bool {
    text.match_indices(mount).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + mount.len()..].chars().next();
        let starts = before.is_none_or(|c| !(c.is_alphanumeric() || "._-/".contains(c)));
        let ends = after.is_none_or(|c| !(c.is_alphanumeric() || "._-".contains(c)));
        starts && ends
    })
}

/// A container whose working directory is the mount or below it, and whose argv runs a
/// relative path (`./run.sh`, `bin/start`).
fn runs_relative_under(c: &ContainerSpec<'_>, argv: &[&str], mount: &str) -> bool {
    let Some(dir) = c.working_dir else {
        return false;
    };
    let dir = dir.trim_end_matches('/');
    let under = dir == mount || dir.strip_prefix(mount).is_some_and(|r| r.starts_with('/'));
    under
        && argv
            .iter()
            .flat_map(|a| a.split_whitespace())
            .any(|w| w.starts_with("./") || (!w.starts_with(['/', '-']) && w.contains('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn pod(containers: Value, volumes: Value) -> Value {
        json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
            "spec": {"containers": containers, "volumes": volumes}})
    }

    fn volumes() -> Value {
        json!([
            {"name": "scripts", "configMap": {"name": "run-scripts"}},
            {"name": "conf", "configMap": {"name": "nginx-conf"}},
            {"name": "more", "projected": {"sources": [
                {"configMap": {"name": "helpers"}}, {"secret": {"name": "s"}}]}},
            {"name": "token", "projected": {"sources": [
                {"configMap": {"name": "kube-root-ca.crt"}}]}}
        ])
    }

    fn mounts() -> Value {
        json!([
            {"name": "scripts", "mountPath": "/scripts/"},
            {"name": "conf", "mountPath": "/etc/nginx"},
            {"name": "more", "mountPath": "/opt/helpers"},
            {"name": "token", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
        ])
    }

    fn refs(container: Value, known: &ConfigMaps) -> Vec<String> {
        let mut c = container;
        c["volumeMounts"] = mounts();
        referenced(&pod(json!([c]), volumes()), Some("shop"), known, None)
    }

    #[test]
    fn scripts_the_argv_names_are_referenced_and_configuration_is_not() {
        let none = ConfigMaps::default();
        assert_eq!(
            refs(json!({"name": "a", "command": ["/scripts/run.sh"]}), &none),
            ["run-scripts"]
        );
        assert_eq!(
            refs(
                json!({"name": "a", "command": ["sh", "-c", "cd /x && exec /scripts/run.sh --port 80"]}),
                &none
            ),
            ["run-scripts"]
        );
        assert_eq!(
            refs(
                json!({"name": "a", "command": ["nginx", "-c", "/etc/nginx/nginx.conf"]}),
                &none
            ),
            ["nginx-conf"],
            "generous: a path under the mount is enough"
        );
        assert!(
            refs(
                json!({"name": "a", "command": ["/scripts-old/run.sh"]}),
                &none
            )
            .is_empty()
        );
        assert!(refs(json!({"name": "a", "command": ["/app"]}), &none).is_empty());
        // The service account's CA is never looked up.
        assert!(
            refs(
                json!({"name": "a", "command": ["cat", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"]}),
                &none
            )
            .is_empty()
        );
    }

    #[test]
    fn relative_paths_image_entrypoints_and_chains() {
        let none = ConfigMaps::default();
        assert_eq!(
            refs(
                json!({"name": "a", "workingDir": "/scripts", "command": ["./run.sh"]}),
                &none
            ),
            ["run-scripts"]
        );
        // No command: a file mounted with subPath over the image's ENTRYPOINT counts once the
        // image's config is known.
        let p = pod(
            json!([{"name": "a", "image": "nginx:1", "volumeMounts": [
                {"name": "scripts", "mountPath": "/docker-entrypoint.sh", "subPath": "entry.sh"},
                {"name": "conf", "mountPath": "/etc/nginx/nginx.conf", "subPath": "nginx.conf"}]}]),
            volumes(),
        );
        assert!(referenced(&p, Some("shop"), &none, None).is_empty());
        let images = HashMap::from([(
            "nginx:1".to_string(),
            ImageConfig {
                entrypoint: vec!["/docker-entrypoint.sh".into()],
                cmd: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
                ..ImageConfig::default()
            },
        )]);
        assert_eq!(
            referenced(&p, Some("shop"), &none, Some(&images)),
            ["run-scripts"]
        );
        // A known script that runs a file of another mount brings that ConfigMap in.
        let mut known = ConfigMaps::default();
        known.insert(
            Some("shop"),
            "run-scripts",
            BTreeMap::from([(
                "run.sh".to_string(),
                "#!/bin/sh\nexec /opt/helpers/start.sh\n".to_string(),
            )]),
        );
        assert_eq!(
            refs(json!({"name": "a", "command": ["/scripts/run.sh"]}), &known),
            ["run-scripts", "helpers"]
        );
    }

    #[test]
    fn workload_templates_and_every_mounted_map() {
        let d = json!({"kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {
                "containers": [{"name": "a", "command": ["/opt/helpers/x"], "volumeMounts": mounts()}],
                "volumes": volumes()}}}});
        assert_eq!(
            referenced(&d, None, &ConfigMaps::default(), None),
            ["helpers"]
        );
        assert_eq!(mounted(&d), ["run-scripts", "nginx-conf", "helpers"]);
        assert!(mounted(&json!({"kind": "ConfigMap"})).is_empty());
    }
}
