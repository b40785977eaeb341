//! Workload extraction: from any pod-bearing object's raw JSON to its pod template and
//! containers, each with the JSON Pointer that mutations and messages need.

use crate::engine::json_pointer;
use crate::engine::lent::Lent;
use crate::engine::pod_bearing::pod_bearing;
use crate::engine::volumes::{self, Volume};
use serde::Serialize;
use serde_json::Value;
use std::fmt::{self, Write as _};

/// Identifies an object in messages and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Section {
    #[serde(rename = "initContainers")]
    InitContainers,
    #[serde(rename = "containers")]
    Containers,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Section::InitContainers => "initContainers",
            Section::Containers => "containers",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    #[error("the object is not a JSON object")]
    NotAnObject,
    #[error("{pointer}: expected {expected}, found {found}")]
    WrongType {
        pointer: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{pointer}: missing required field")]
    Missing { pointer: String },
}

/// A pod template inside an object: where it is and what it holds. Its lists are borrowed
/// by a [`Workload::view`], owned otherwise.
#[derive(Debug, Clone)]
pub struct Workload<'a> {
    pub object: Lent<'a, ObjectRef>,
    /// JSON Pointer of the pod template (`""` for a Pod, `/spec/template` for a Deployment).
    pub template_pointer: &'static str,
    /// The template's (or Pod's) `metadata.annotations`.
    pub annotations: Annotations<'a>,
    /// What the object's and the template's metadata say about the workload.
    pub metadata: Lent<'a, WorkloadMetadata<'a>>,
    /// The pod's `volumes`.
    pub volumes: Lent<'a, Vec<Volume<'a>>>,
    /// `shareProcessNamespace: true`: the pod's containers see one another's processes, and
    /// the pause container is PID 1 of them all.
    pub share_process_namespace: bool,
    /// Whether the pod's containers are finite work (Job pods, `restartPolicy: Never|OnFailure`).
    pub finite: bool,
    pub containers: Vec<ContainerSpec<'a>>,
}

impl Workload<'_> {
    /// A copy that borrows every list of this one: for a re-check that edits a few fields,
    /// each of which becomes its own when it is edited.
    pub fn view(&self) -> Workload<'_> {
        Workload {
            object: self.object.lend(),
            template_pointer: self.template_pointer,
            annotations: Annotations(self.annotations.0.lend()),
            metadata: self.metadata.lend(),
            volumes: self.volumes.lend(),
            share_process_namespace: self.share_process_namespace,
            finite: self.finite,
            containers: self.containers.iter().map(ContainerSpec::view).collect(),
        }
    }
}

/// A pod template's annotations whose values are strings (the API allows no others), in the
/// object's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations<'a>(pub Lent<'a, Vec<(&'a str, &'a str)>>);

impl<'a> Annotations<'a> {
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find(|&&(k, _)| k == key).map(|&(_, v)| v)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn of(map: Option<&'a serde_json::Map<String, Value>>) -> Self {
        Annotations(Lent::Owned(map.map(string_entries).unwrap_or_default()))
    }
}

/// The members of a map whose values are strings (annotations, labels), in order.
fn string_entries(map: &serde_json::Map<String, Value>) -> Vec<(&str, &str)> {
    map.iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
        .collect()
}

/// The metadata the side-agent rules read to tell a workload's main container: the names it
/// goes by, its owners and its volume claims. Values that are not strings are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadMetadata<'a> {
    /// `metadata.name`.
    pub name: Option<&'a str>,
    /// `metadata.generateName`.
    pub generate_name: Option<&'a str>,
    /// The pod template's labels (none for a Pod, which is its own template).
    pub template_labels: Vec<(&'a str, &'a str)>,
    /// The object's labels.
    pub labels: Vec<(&'a str, &'a str)>,
    /// The kind of each of the object's `ownerReferences`.
    pub owner_kinds: Vec<&'a str>,
    /// The names of a StatefulSet's `volumeClaimTemplates`.
    pub claim_templates: Vec<&'a str>,
}

impl<'a> WorkloadMetadata<'a> {
    fn read(object: &'a Value, kind: &str, template: &'a Value, template_pointer: &str) -> Self {
        let text = |v: &'a Value, key: &str| v.get(key).and_then(Value::as_str);
        let labels = |labels: &'a Value| labels.as_object().map(string_entries).unwrap_or_default();
        let list = |v: Option<&'a Value>| v.and_then(Value::as_array).into_iter().flatten();
        let mut read = WorkloadMetadata::default();
        // The object's metadata, its members found in one walk of them.
        for (key, v) in object
            .get("metadata")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            match key.as_str() {
                "name" => read.name = v.as_str(),
                "generateName" => read.generate_name = v.as_str(),
                "labels" => read.labels = labels(v),
                "ownerReferences" => {
                    read.owner_kinds = list(Some(v)).filter_map(|o| text(o, "kind")).collect()
                }
                _ => {}
            }
        }
        if !template_pointer.is_empty()
            && let Some(l) = template.get("metadata").and_then(|m| m.get("labels"))
        {
            read.template_labels = labels(l);
        }
        // Only a StatefulSet has claim templates.
        if kind == "StatefulSet" {
            read.claim_templates = list(json_pointer::get(object, "/spec/volumeClaimTemplates"))
                .filter_map(|t| json_pointer::get(t, "/metadata/name").and_then(Value::as_str))
                .collect();
        }
        read
    }
}

/// One container (or init container) of a pod spec: every field of it the engine reads,
/// borrowed from the object.
#[derive(Debug, Clone)]
pub struct ContainerSpec<'a> {
    pub name: &'a str,
    pub section: Section,
    pub index: usize,
    /// JSON Pointer of the container within the object.
    pub pointer: Lent<'a, String>,
    pub image: &'a str,
    /// Borrowed from the object: evaluated twice per /mutate review, copied by neither.
    pub command: Option<Lent<'a, Vec<&'a str>>>,
    pub args: Option<Lent<'a, Vec<&'a str>>>,
    /// `restartPolicy: Always` on an init container: a native sidecar.
    pub native_sidecar: bool,
    /// The `env` entries that have a name, in order (the kubelet expands `$(VAR)` in
    /// `command` and `args` from them).
    pub env: Lent<'a, Vec<EnvEntry<'a>>>,
    /// The container also takes variables from ConfigMaps or Secrets (a non-empty
    /// `envFrom`): names missing from `env` may still be set at run time.
    pub env_from: bool,
    /// `workingDir`, when it is a string.
    pub working_dir: Option<&'a str>,
    /// `volumeMounts`, in order.
    pub mounts: Lent<'a, Vec<VolumeMount<'a>>>,
    /// The container declares `ports` (a non-empty list).
    pub has_ports: bool,
}

impl ContainerSpec<'_> {
    /// A copy that borrows every list of this one (see [`Workload::view`]).
    pub fn view(&self) -> ContainerSpec<'_> {
        ContainerSpec {
            name: self.name,
            section: self.section,
            index: self.index,
            pointer: self.pointer.lend(),
            image: self.image,
            command: self.command.as_ref().map(Lent::lend),
            args: self.args.as_ref().map(Lent::lend),
            native_sidecar: self.native_sidecar,
            env: self.env.lend(),
            env_from: self.env_from,
            working_dir: self.working_dir,
            mounts: self.mounts.lend(),
            has_ports: self.has_ports,
        }
    }
}

/// One named entry of a container's `env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvEntry<'a> {
    pub name: &'a str,
    pub value: EnvValue<'a>,
}

/// Where an env entry's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvValue<'a> {
    /// `value:` as written (`""` when absent or not a string), before the kubelet's `$(VAR)`
    /// expansion.
    Literal(&'a str),
    /// `valueFrom:` a ConfigMap, Secret, field or resource: known only at run time.
    FromElsewhere,
}

/// One of a container's `volumeMounts`. A name or path that is absent is `""`; the
/// apiserver rejects both for any pod it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeMount<'a> {
    pub volume: &'a str,
    pub path: &'a str,
    /// `subPath`, when it is a string.
    pub sub_path: Option<&'a str>,
}

/// Where `kind` keeps its pod template (`""` for a Pod), for the kinds pidone analyses.
pub fn template_pointer(kind: &str) -> Option<&'static str> {
    pod_bearing(kind).map(|k| k.template)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong(pointer: String, expected: &'static str, found: &Value) -> WorkloadError {
    WorkloadError::WrongType {
        pointer,
        expected,
        found: type_name(found),
    }
}

/// An optional object field: absent and `null` are both `None`.
fn opt_object<'a>(
    parent: &'a Value,
    key: &str,
    pointer: impl fmt::Display,
) -> Result<Option<&'a serde_json::Map<String, Value>>, WorkloadError> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(wrong(format!("{pointer}/{key}"), "an object", other)),
    }
}

/// `pointer` is where `parent` is, formatted only for an error (`format_args!` keeps it lazy).
fn opt_str<'a>(
    parent: &'a Value,
    key: &str,
    pointer: impl fmt::Display,
) -> Result<Option<&'a str>, WorkloadError> {
    str_member(parent.get(key), key, pointer)
}

/// [`opt_str`] of the member `key` found (by a walk of its object's members).
fn str_member<'a>(
    found: Option<&'a Value>,
    key: &str,
    pointer: impl fmt::Display,
) -> Result<Option<&'a str>, WorkloadError> {
    match found {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong(format!("{pointer}/{key}"), "a string", other)),
    }
}

/// An optional array of strings, the member `key` found.
fn strings_member<'a>(
    found: Option<&'a Value>,
    key: &str,
    pointer: impl fmt::Display,
) -> Result<Option<Vec<&'a str>>, WorkloadError> {
    match found {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.as_str()),
                other => Err(wrong(format!("{pointer}/{key}/{i}"), "a string", other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(wrong(
            format!("{pointer}/{key}"),
            "an array of strings",
            other,
        )),
    }
}

/// The owner that manages an object: its `ownerReferences` entry with `controller: true`
/// (at most one per object, the apiserver enforces it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControllerRef {
    pub kind: String,
    pub name: String,
}

impl fmt::Display for ControllerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// The object's controller owner, if it has one (DESIGN section 5.1: an object a controller
/// manages is compared by that controller with its own template, so pidone never patches it
/// unless it is a Pod). Entries of the wrong shape are not controllers: the apiserver
/// validates `ownerReferences` before admission, so they only come from a broken client.
pub fn controller_of(object: &Value) -> Option<ControllerRef> {
    let refs = json_pointer::get(object, "/metadata/ownerReferences")?.as_array()?;
    refs.iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| {
            let text = |key: &str| r.get(key).and_then(Value::as_str).unwrap_or("").to_string();
            ControllerRef {
                kind: text("kind"),
                name: text("name"),
            }
        })
}

/// The annotation the kubelet puts on the mirror Pod of a static Pod.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Whether a Pod is the mirror of a static Pod: the kubelet runs the manifest file on its node,
/// and this API object only shows it, so a patch would claim a fix that never runs and a
/// denial would only hide the pod from the API.
pub fn is_mirror_pod(object: &Value) -> bool {
    json_pointer::get(object, "/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION))
}

/// Reads the object's identity; `None` when the kind carries no pod template.
pub fn object_ref(object: &Value) -> Result<Option<ObjectRef>, WorkloadError> {
    if !object.is_object() {
        return Err(WorkloadError::NotAnObject);
    }
    let Some(kind) = opt_str(object, "kind", "")? else {
        return Ok(None);
    };
    if template_pointer(kind).is_none() {
        return Ok(None);
    }
    let metadata = object.get("metadata").unwrap_or(&Value::Null);
    let name = opt_str(metadata, "name", "/metadata")?
        .filter(|n| !n.is_empty())
        .or(opt_str(metadata, "generateName", "/metadata")?)
        .unwrap_or("")
        .to_string();
    let namespace = opt_str(metadata, "namespace", "/metadata")?
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    Ok(Some(ObjectRef {
        kind: kind.to_string(),
        namespace,
        name,
    }))
}

/// Extracts the pod template and containers of a pod-bearing object.
/// Returns `Ok(None)` for kinds pidone does not handle.
pub fn extract(object: &Value) -> Result<Option<Workload<'_>>, WorkloadError> {
    let Some(object_ref) = object_ref(object)? else {
        return Ok(None);
    };
    let Some(template_pointer) = template_pointer(&object_ref.kind) else {
        return Ok(None);
    };
    let template = if template_pointer.is_empty() {
        object
    } else {
        match json_pointer::get(object, template_pointer) {
            Some(t @ Value::Object(_)) => t,
            Some(other) => return Err(wrong(template_pointer.to_string(), "an object", other)),
            None => {
                return Err(WorkloadError::Missing {
                    pointer: template_pointer.to_string(),
                });
            }
        }
    };
    let annotations = match opt_object(template, "metadata", template_pointer)? {
        Some(_) => opt_object(
            &template["metadata"],
            "annotations",
            format_args!("{template_pointer}/metadata"),
        )?,
        None => None,
    };
    let spec_pointer = [template_pointer, "/spec"].concat();
    let spec = match template.get("spec") {
        Some(s @ Value::Object(_)) => s,
        Some(other) => return Err(wrong(spec_pointer, "an object", other)),
        None => {
            return Err(WorkloadError::Missing {
                pointer: spec_pointer,
            });
        }
    };
    // The spec's members the engine reads, found in one walk of them.
    let (mut restart_policy, mut lists, mut share, mut volumes) = (None, [None, None], None, None);
    for (key, v) in spec.as_object().into_iter().flatten() {
        match key.as_str() {
            "restartPolicy" => restart_policy = Some(v),
            "initContainers" => lists[0] = Some(v),
            "containers" => lists[1] = Some(v),
            "shareProcessNamespace" => share = Some(v),
            "volumes" => volumes = Some(v),
            _ => {}
        }
    }
    let restart_policy = str_member(restart_policy, "restartPolicy", &spec_pointer)?;
    let finite = matches!(restart_policy, Some("Never" | "OnFailure"))
        || (restart_policy.is_none() && pod_bearing(&object_ref.kind).is_some_and(|k| k.finite));

    let mut containers = Vec::new();
    for (section, found) in [Section::InitContainers, Section::Containers]
        .into_iter()
        .zip(lists)
    {
        let key = section.as_str();
        let list = match found {
            None | Some(Value::Null) => continue,
            Some(Value::Array(list)) => list,
            Some(other) => return Err(wrong(format!("{spec_pointer}/{key}"), "an array", other)),
        };
        for (index, json) in list.iter().enumerate() {
            // Written into its final size at once (`format!` grows it piece by piece).
            let mut pointer = String::with_capacity(spec_pointer.len() + key.len() + 8);
            let _ = write!(pointer, "{spec_pointer}/{key}/{index}");
            containers.push(container(json, section, index, pointer)?);
        }
    }
    let metadata = WorkloadMetadata::read(object, &object_ref.kind, template, template_pointer);
    Ok(Some(Workload {
        object: Lent::Owned(object_ref),
        template_pointer,
        annotations: Annotations::of(annotations),
        metadata: Lent::Owned(metadata),
        volumes: Lent::Owned(volumes::of_list(volumes)),
        share_process_namespace: share.and_then(Value::as_bool).unwrap_or(false),
        finite,
        containers,
    }))
}

/// The members of a container the engine reads, found in one walk of its members (a
/// look-up per member searches the map again for each).
#[derive(Default)]
struct ContainerMembers<'a> {
    name: Option<&'a Value>,
    image: Option<&'a Value>,
    command: Option<&'a Value>,
    args: Option<&'a Value>,
    restart_policy: Option<&'a Value>,
    env: Option<&'a Value>,
    env_from: Option<&'a Value>,
    working_dir: Option<&'a Value>,
    volume_mounts: Option<&'a Value>,
    ports: Option<&'a Value>,
}

impl<'a> ContainerMembers<'a> {
    fn of(map: &'a serde_json::Map<String, Value>) -> Self {
        let mut m = ContainerMembers::default();
        for (key, value) in map {
            let slot = match key.as_str() {
                "name" => &mut m.name,
                "image" => &mut m.image,
                "command" => &mut m.command,
                "args" => &mut m.args,
                "restartPolicy" => &mut m.restart_policy,
                "env" => &mut m.env,
                "envFrom" => &mut m.env_from,
                "workingDir" => &mut m.working_dir,
                "volumeMounts" => &mut m.volume_mounts,
                "ports" => &mut m.ports,
                _ => continue,
            };
            *slot = Some(value);
        }
        m
    }
}

fn container(
    json: &Value,
    section: Section,
    index: usize,
    pointer: String,
) -> Result<ContainerSpec<'_>, WorkloadError> {
    let Value::Object(map) = json else {
        return Err(wrong(pointer, "an object", json));
    };
    let m = ContainerMembers::of(map);
    let name = str_member(m.name, "name", &pointer)?.unwrap_or("");
    let image = str_member(m.image, "image", &pointer)?.unwrap_or("");
    let command = strings_member(m.command, "command", &pointer)?;
    let args = strings_member(m.args, "args", &pointer)?;
    let native_sidecar = section == Section::InitContainers
        && str_member(m.restart_policy, "restartPolicy", &pointer)? == Some("Always");
    let mut env = Vec::new();
    match m.env {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            env.reserve(items.len());
            for (i, item) in items.iter().enumerate() {
                if let Some(entry) = env_entry(item, format_args!("{pointer}/env/{i}"))? {
                    env.push(entry);
                }
            }
        }
        Some(other) => return Err(wrong(format!("{pointer}/env"), "an array", other)),
    }
    let mut mounts = Vec::new();
    match m.volume_mounts {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            mounts.reserve(items.len());
            for (i, item) in items.iter().enumerate() {
                mounts.push(volume_mount(
                    item,
                    format_args!("{pointer}/volumeMounts/{i}"),
                )?);
            }
        }
        Some(other) => return Err(wrong(format!("{pointer}/volumeMounts"), "an array", other)),
    }
    let non_empty = |found: Option<&Value>| {
        found
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    Ok(ContainerSpec {
        name,
        section,
        index,
        pointer: Lent::Owned(pointer),
        image,
        command: command.map(Lent::Owned),
        args: args.map(Lent::Owned),
        native_sidecar,
        env: Lent::Owned(env),
        env_from: non_empty(m.env_from),
        working_dir: m.working_dir.and_then(Value::as_str),
        mounts: Lent::Owned(mounts),
        has_ports: non_empty(m.ports),
    })
}

/// One `env` entry, `None` without a name (or not an object); a name that is not a string
/// is an error.
fn env_entry(item: &Value, at: impl fmt::Display) -> Result<Option<EnvEntry<'_>>, WorkloadError> {
    let Value::Object(map) = item else {
        return Ok(None);
    };
    let (mut name, mut value, mut value_from) = (None, None, None);
    for (key, v) in map {
        match key.as_str() {
            "name" => name = Some(v),
            "value" => value = Some(v),
            "valueFrom" => value_from = Some(v),
            _ => {}
        }
    }
    let Some(name) = str_member(name, "name", at)? else {
        return Ok(None);
    };
    // From elsewhere when `valueFrom` is set (not null), else the literal.
    let value = if value_from.is_some_and(|v| !v.is_null()) {
        EnvValue::FromElsewhere
    } else {
        EnvValue::Literal(value.and_then(Value::as_str).unwrap_or(""))
    };
    Ok(Some(EnvEntry { name, value }))
}

/// One `volumeMounts` entry; a name or path that is not a string is an error.
fn volume_mount(item: &Value, at: impl fmt::Display) -> Result<VolumeMount<'_>, WorkloadError> {
    let (mut volume, mut path, mut sub_path) = (None, None, None);
    if let Value::Object(map) = item {
        for (key, v) in map {
            match key.as_str() {
                "name" => volume = Some(v),
                "mountPath" => path = Some(v),
                "subPath" => sub_path = Some(v),
                _ => {}
            }
        }
    }
    Ok(VolumeMount {
        volume: str_member(volume, "name", &at)?.unwrap_or(""),
        path: str_member(path, "mountPath", &at)?.unwrap_or(""),
        sub_path: sub_path.and_then(Value::as_str),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cronjob_containers_have_pointers() {
        let obj = json!({"kind": "CronJob", "metadata": {"name": "c", "namespace": "n"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "initContainers": [{"name": "i", "image": "x"}],
                "containers": [{"name": "a", "image": "y", "command": ["sh", "-c", "x"]}]}}}}}});
        let w = extract(&obj).unwrap().unwrap();
        assert!(w.finite);
        assert_eq!(w.template_pointer, "/spec/jobTemplate/spec/template");
        assert_eq!(
            *w.containers[0].pointer,
            "/spec/jobTemplate/spec/template/spec/initContainers/0"
        );
        assert_eq!(
            *w.containers[1].pointer,
            "/spec/jobTemplate/spec/template/spec/containers/0"
        );
        assert_eq!(w.object.to_string(), "CronJob/n/c");
    }

    #[test]
    fn a_containers_fields_are_read_typed() {
        let obj = json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{
            "name": "app", "image": "app:1", "workingDir": "/srv",
            "ports": [{"containerPort": 8080}],
            "envFrom": [{"secretRef": {"name": "s"}}],
            "env": [
                {"name": "A", "value": "x"},
                {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "C", "valueFrom": null},
                {"name": "D", "value": 3},
                {"value": "no name"}
            ],
            "volumeMounts": [
                {"name": "cfg", "mountPath": "/etc/app", "subPath": "app.yaml"},
                {"name": "data", "mountPath": "/data", "readOnly": true}
            ]
        }, {"name": "bare", "image": "b", "ports": [], "envFrom": [], "workingDir": 1}]}});
        let w = extract(&obj).unwrap().unwrap();
        let (app, bare) = (&w.containers[0], &w.containers[1]);
        let literal = |name, value| EnvEntry {
            name,
            value: EnvValue::Literal(value),
        };
        assert_eq!(
            *app.env,
            [
                literal("A", "x"),
                EnvEntry {
                    name: "B",
                    value: EnvValue::FromElsewhere
                },
                literal("C", ""),
                literal("D", ""),
            ]
        );
        assert_eq!(
            *app.mounts,
            [
                VolumeMount {
                    volume: "cfg",
                    path: "/etc/app",
                    sub_path: Some("app.yaml")
                },
                VolumeMount {
                    volume: "data",
                    path: "/data",
                    sub_path: None
                },
            ]
        );
        assert_eq!(app.working_dir, Some("/srv"));
        assert!(app.has_ports && app.env_from);
        assert!(!bare.has_ports && !bare.env_from);
        assert!(bare.env.is_empty() && bare.mounts.is_empty());
        assert_eq!(bare.working_dir, None);
    }

    #[test]
    fn a_view_reads_as_its_workload_and_an_edit_stays_in_the_view() {
        let pod = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "n",
                "annotations": {"a": "b"}, "labels": {"app": "web"}},
            "spec": {"volumes": [{"name": "cfg", "configMap": {"name": "c"}}],
                "containers": [{"name": "app", "image": "i", "command": ["sh", "-c", "run"],
                    "env": [{"name": "A", "value": "x"}],
                    "volumeMounts": [{"name": "cfg", "mountPath": "/etc/c"}]}]}});
        let w = extract(&pod).unwrap().unwrap();
        let mut view = w.view();
        assert_eq!(format!("{view:?}"), format!("{w:?}"));
        let edited = String::from("exec run");
        let command = view.containers[0].command.as_mut().unwrap();
        let mut words = (**command).clone();
        words[2] = &edited;
        *command = Lent::Owned(words);
        assert_eq!(
            **view.containers[0].command.as_ref().unwrap(),
            ["sh", "-c", "exec run"]
        );
        assert_eq!(
            **w.containers[0].command.as_ref().unwrap(),
            ["sh", "-c", "run"]
        );
        assert!(matches!(view.containers[0].env, Lent::Borrowed(_)));
    }

    #[test]
    fn the_metadata_the_side_agent_rules_read() {
        let sts = json!({"kind": "StatefulSet", "metadata": {
                "name": "vault", "labels": {"app": "vault", "tier": 2},
                "ownerReferences": [{"kind": "VaultCluster", "name": "v"}, {"name": "no-kind"}]},
            "spec": {
                "volumeClaimTemplates": [{"metadata": {"name": "data"}}, {"metadata": {}}],
                "template": {"metadata": {"labels": {"app.kubernetes.io/name": "vault-server"}},
                             "spec": {"containers": []}}}});
        let w = extract(&sts).unwrap().unwrap();
        assert_eq!(
            *w.metadata,
            WorkloadMetadata {
                name: Some("vault"),
                generate_name: None,
                template_labels: vec![("app.kubernetes.io/name", "vault-server")],
                labels: vec![("app", "vault")],
                owner_kinds: vec!["VaultCluster"],
                claim_templates: vec!["data"],
            }
        );
        // A Pod is its own template: its labels are the object's only.
        let pod = json!({"kind": "Pod", "metadata": {"generateName": "web-5d4f-",
            "labels": {"app": "web"}}, "spec": {"containers": []}});
        let w = extract(&pod).unwrap().unwrap();
        assert_eq!(w.metadata.generate_name, Some("web-5d4f-"));
        assert_eq!(w.metadata.name, None);
        assert!(w.metadata.template_labels.is_empty());
        assert_eq!(w.metadata.labels, [("app", "web")]);
    }

    #[test]
    fn wrongly_shaped_env_and_mounts_are_typed_errors() {
        for (container, error) in [
            (
                json!({"name": "a", "env": {"A": "x"}}),
                "/spec/containers/0/env: expected an array, found an object",
            ),
            (
                json!({"name": "a", "env": [{"name": 1}]}),
                "/spec/containers/0/env/0/name: expected a string, found a number",
            ),
            (
                json!({"name": "a", "volumeMounts": [{"name": "v", "mountPath": ["/v"]}]}),
                "/spec/containers/0/volumeMounts/0/mountPath: expected a string, found an array",
            ),
        ] {
            let obj = json!({"kind": "Pod", "spec": {"containers": [container]}});
            assert_eq!(extract(&obj).unwrap_err().to_string(), error);
        }
    }

    #[test]
    fn string_command_is_a_typed_error() {
        let obj = json!({"kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "command": "sh -c 'x'"}]}});
        let err = extract(&obj).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/spec/containers/0/command: expected an array of strings, found a string"
        );
    }

    #[test]
    fn the_controller_owner_is_the_reference_with_controller_true() {
        let rs = json!({"kind": "ReplicaSet", "metadata": {"name": "web-5d4f", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "gc-only", "uid": "1"},
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "2",
             "controller": true, "blockOwnerDeletion": true}]}});
        assert_eq!(
            controller_of(&rs),
            Some(ControllerRef {
                kind: "Deployment".into(),
                name: "web".into()
            })
        );
        assert_eq!(controller_of(&rs).unwrap().to_string(), "Deployment/web");
        for ownerless in [
            json!({"kind": "Deployment", "metadata": {"name": "web"}}),
            json!({"kind": "Job", "metadata": {"ownerReferences": []}}),
            json!({"kind": "Job", "metadata": {"ownerReferences": [
                {"kind": "Workflow", "name": "w", "controller": false}]}}),
            json!({"kind": "Job", "metadata": {"ownerReferences": [
                {"kind": "Workflow", "name": "w", "controller": "true"}]}}),
            json!({"kind": "Job", "metadata": {"ownerReferences": {"kind": "x"}}}),
            json!([1]),
        ] {
            assert_eq!(controller_of(&ownerless), None, "{ownerless}");
        }
    }

    #[test]
    fn mirror_pods_carry_the_kubelets_annotation() {
        let mirror = json!({"kind": "Pod", "metadata": {"name": "etcd-node-1", "annotations": {
            "kubernetes.io/config.mirror": "9f3c2b1a", "kubernetes.io/config.source": "file"}}});
        assert!(is_mirror_pod(&mirror));
        for pod in [
            json!({"kind": "Pod", "metadata": {"name": "p"}}),
            json!({"kind": "Pod", "metadata": {"annotations": {"kubernetes.io/config.source": "api"}}}),
            json!({"kind": "Pod", "metadata": {"annotations": "kubernetes.io/config.mirror"}}),
        ] {
            assert!(!is_mirror_pod(&pod), "{pod}");
        }
    }

    #[test]
    fn unknown_kinds_are_skipped() {
        assert!(extract(&json!({"kind": "ConfigMap"})).unwrap().is_none());
        assert!(extract(&json!({"apiVersion": "v1"})).unwrap().is_none());
        assert!(extract(&json!([1])).is_err());
    }
}
