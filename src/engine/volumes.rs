//! A pod's `volumes`, as far as the engine reads them: which ConfigMap keys appear where (the
//! scripts a container may run from a mount) and which volumes hold storage that outlives a
//! container (a main workload's own data).

use serde_json::Value;

/// One of the pod's `volumes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume<'a> {
    pub name: &'a str,
    pub source: VolumeSource<'a>,
}

/// What a volume holds. The apiserver admits one source per volume; a volume written with
/// several is read as the first of these it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource<'a> {
    /// A `configMap` volume, under its own `defaultMode`.
    ConfigMap(ConfigMapFiles<'a>),
    /// A `projected` volume's ConfigMap sources, all under the volume's `defaultMode`.
    Projected {
        default_mode: Option<u64>,
        config_maps: Vec<ConfigMapFiles<'a>>,
    },
    /// A `persistentVolumeClaim` or `ephemeral` volume.
    Persistent,
    /// Anything else (`emptyDir`, `secret`, `hostPath`...).
    Other,
}

/// The files a ConfigMap puts in a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMapFiles<'a> {
    /// The ConfigMap's name, when given as a string.
    pub name: Option<&'a str>,
    /// `items`: only these keys appear, each at its own path; `None` puts every key at its
    /// own name. Entries without a string key and path are left out.
    pub items: Option<Vec<KeyToPath<'a>>>,
    /// `defaultMode` of a `configMap` volume (a projection's is its volume's).
    pub default_mode: Option<u64>,
}

/// One entry of `items`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyToPath<'a> {
    pub key: &'a str,
    pub path: &'a str,
    pub mode: Option<u64>,
}

impl<'a> VolumeSource<'a> {
    /// The ConfigMaps the volume shows files of, with the mode files get when their item
    /// sets none.
    pub fn config_maps(&self) -> impl Iterator<Item = (&ConfigMapFiles<'a>, Option<u64>)> {
        let (direct, projected, mode) = match self {
            VolumeSource::ConfigMap(files) => (Some(files), &[][..], files.default_mode),
            VolumeSource::Projected {
                default_mode,
                config_maps,
            } => (None, config_maps.as_slice(), *default_mode),
            VolumeSource::Persistent | VolumeSource::Other => (None, &[][..], None),
        };
        direct.into_iter().chain(projected).map(move |f| (f, mode))
    }
}

/// The volumes of a pod spec's `volumes` member; entries that are not objects are left out, a
/// missing name is `""`.
pub fn of_list(volumes: Option<&Value>) -> Vec<Volume<'_>> {
    volumes
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_object().map(volume))
        .collect()
}

/// One volume, its members found in one walk of them.
fn volume(map: &serde_json::Map<String, Value>) -> Volume<'_> {
    let (mut name, mut config_map, mut projected, mut persistent) = (None, None, None, false);
    for (key, v) in map {
        if v.is_null() {
            continue;
        }
        match key.as_str() {
            "name" => name = v.as_str(),
            "configMap" => config_map = Some(v),
            "projected" => projected = Some(v),
            "persistentVolumeClaim" | "ephemeral" => persistent = true,
            _ => {}
        }
    }
    Volume {
        name: name.unwrap_or(""),
        source: source(config_map, projected, persistent),
    }
}

fn source<'a>(
    config_map: Option<&'a Value>,
    projected: Option<&'a Value>,
    persistent: bool,
) -> VolumeSource<'a> {
    if let Some(config_map) = config_map {
        return VolumeSource::ConfigMap(files(config_map, mode_of(config_map.get("defaultMode"))));
    }
    if let Some(projected) = projected {
        let config_maps = projected
            .get("sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("configMap").filter(|c| !c.is_null()))
            .map(|c| files(c, None))
            .collect();
        return VolumeSource::Projected {
            default_mode: mode_of(projected.get("defaultMode")),
            config_maps,
        };
    }
    if persistent {
        return VolumeSource::Persistent;
    }
    VolumeSource::Other
}

fn files(source: &Value, default_mode: Option<u64>) -> ConfigMapFiles<'_> {
    let items = source.get("items").and_then(Value::as_array).map(|items| {
        items
            .iter()
            .filter_map(|item| {
                Some(KeyToPath {
                    key: item.get("key").and_then(Value::as_str)?,
                    path: item.get("path").and_then(Value::as_str)?,
                    mode: mode_of(item.get("mode")),
                })
            })
            .collect()
    });
    ConfigMapFiles {
        name: source.get("name").and_then(Value::as_str),
        items,
        default_mode,
    }
}

/// Modes are integers in the API's JSON. Manifests write them in octal (`0755`), which
/// Kubernetes' YAML 1.1 reads as 493 but a YAML 1.2 reader keeps as the decimal digits (our
/// reader gives the float 755.0): digits that came through as a float, or a string, are read
/// as octal. Anything else counts as unset.
pub fn mode_of(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    let octal = |digits: &str| u64::from_str_radix(digits.trim_start_matches("0o"), 8).ok();
    let mode = match v {
        Value::Number(n) if n.is_u64() => n.as_u64(),
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e6)
            .and_then(|f| octal(&format!("{f:.0}"))),
        Value::String(s) => octal(s.trim()),
        _ => None,
    }?;
    (mode <= 0o7777).then_some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modes_in_octal_however_they_arrive() {
        assert_eq!(mode_of(Some(&json!(493))), Some(0o755));
        assert_eq!(mode_of(Some(&json!(755.0))), Some(0o755));
        assert_eq!(mode_of(Some(&json!("0755"))), Some(0o755));
        assert_eq!(mode_of(Some(&json!("0o500"))), Some(0o500));
        assert_eq!(mode_of(Some(&json!(789.0))), None);
        assert_eq!(mode_of(Some(&json!(99999))), None);
        assert_eq!(mode_of(Some(&json!(-1))), None);
        assert_eq!(mode_of(Some(&json!(true))), None);
    }

    #[test]
    fn each_source_is_read_as_the_engine_needs_it() {
        let spec = json!({"volumes": [
            {"name": "scripts", "configMap": {"name": "run", "defaultMode": 493,
                "items": [{"key": "start", "path": "bin/start.sh", "mode": "0500"},
                          {"key": "no-path"}, {"path": "no-key"}]}},
            {"name": "all", "projected": {"defaultMode": 365, "sources": [
                {"secret": {"name": "s"}}, {"configMap": {"name": "a"}},
                {"configMap": null}, {"configMap": {"name": "b", "items": []}}]}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "d"}},
            {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "empty-cm", "configMap": null},
            "not an object",
            {"configMap": {"name": 3}}
        ]});
        let volumes = of_list(spec.get("volumes"));
        let files = |name, items, default_mode| ConfigMapFiles {
            name,
            items,
            default_mode,
        };
        assert_eq!(
            volumes,
            [
                Volume {
                    name: "scripts",
                    source: VolumeSource::ConfigMap(files(
                        Some("run"),
                        Some(vec![KeyToPath {
                            key: "start",
                            path: "bin/start.sh",
                            mode: Some(0o500)
                        }]),
                        Some(0o755)
                    ))
                },
                Volume {
                    name: "all",
                    source: VolumeSource::Projected {
                        default_mode: Some(0o555),
                        config_maps: vec![
                            files(Some("a"), None, None),
                            files(Some("b"), Some(Vec::new()), None)
                        ]
                    }
                },
                Volume {
                    name: "data",
                    source: VolumeSource::Persistent
                },
                Volume {
                    name: "scratch",
                    source: VolumeSource::Persistent
                },
                Volume {
                    name: "tmp",
                    source: VolumeSource::Other
                },
                Volume {
                    name: "empty-cm",
                    source: VolumeSource::Other
                },
                Volume {
                    name: "",
                    source: VolumeSource::ConfigMap(files(None, None, None))
                },
            ]
        );
        // A projection's files take the volume's mode; a configMap volume's its own.
        let modes: Vec<Vec<Option<u64>>> = volumes
            .iter()
            .map(|v| v.source.config_maps().map(|(_, mode)| mode).collect())
            .collect();
        assert_eq!(
            modes,
            [
                vec![Some(0o755)],
                vec![Some(0o555), Some(0o555)],
                vec![],
                vec![],
                vec![],
                vec![],
                vec![None]
            ]
        );
        assert!(of_list(None).is_empty());
        assert!(of_list(Some(&json!({"a": 1}))).is_empty());
    }
}
