//! A Pod's workload read straight from the bytes of its JSON object: what `workload::extract`
//! reads from the object's lean cut (with env lists, [`crate::server::object::Lean`]), found by
//! the walk [`crate::server::lean_scan`] makes, with no `serde_json::Value` between. The lean
//! cut owns every member name and string it keeps; here a string written without escapes is
//! borrowed from the body, and one written with escapes (scripts' newlines, the apiserver's
//! `\u0026` for `&`) is decoded once into `texts`, an arena that lives as long as the body.
//!
//! What a member is worth follows the lean cut: a member it skips is passed over (strings and
//! brackets only, [`skip_value`]); a member it keeps but the workload reads only in part (an
//! `envFrom` list, a ConfigMap volume's other fields, an env entry's `valueFrom`) is checked as
//! serde_json checks it without being built. So a body this reader takes is one the lean scan
//! takes, and its workload is the one `extract` gives for the lean cut (tested on generated Pods
//! and on the fixtures' pod templates).
//!
//! Anything else is left to the lean scan (`None`): an object that is not a Pod, a member name
//! written with escapes, a member written twice, a value of a type `extract` rejects or the
//! lean cut would keep whole where it reads into (a malformed object gets its error there), a
//! string serde_json rejects, nesting deeper than the lean scan follows.

use crate::byte_scan::quote_or_backslash;
use crate::engine::lent::Lent;
use crate::engine::side_agents::NAME_LABELS;
use crate::engine::volumes::{ConfigMapFiles, KeyToPath, Volume, VolumeSource, mode_of};
use crate::engine::workload::{
    Annotations, ContainerSpec, EnvEntry, EnvValue, MIRROR_POD_ANNOTATION, ObjectRef, Section,
    VolumeMount, Workload, WorkloadMetadata,
};
use crate::server::json_scan::{elements, members, skip_value, string_end};
use crate::server::object::Cut;
use crate::server::review_cuts::checked_env_list;
use bumpalo::Bump;
use serde::de::IgnoredAny;
use serde_json::Value;
use std::fmt::Write as _;

/// The Pod whose object starts at `at` in `bytes`, as `extract` reads the object's cut `C` (a
/// lean one: with or without env lists), and where the object ends; `None` for an object left
/// to the lean scan (see the module). Strings written with escapes are decoded into `texts`.
pub fn read_pod<'a, C: Cut>(
    bytes: &'a [u8],
    at: usize,
    texts: &'a Bump,
) -> Option<(PodRead<'a>, usize)> {
    if C::WHOLE {
        return None;
    }
    let read = Reader {
        bytes,
        texts,
        env: C::ENV,
    };
    let mut kind = Slot::default();
    let mut metadata = Slot::default();
    let mut spec = Slot::default();
    let end = members(bytes, at, |name, at| match name {
        // Another kind is left to the lean scan at once: its object is not walked twice.
        b"kind" => kind.fill(read.text(at).filter(|(kind, _)| *kind == "Pod")?),
        b"apiVersion" => read.checked(at),
        b"metadata" => metadata.fill(read.metadata(at)?),
        b"spec" => spec.fill(read.spec(at)?),
        // Read into by the lean cut, not by a Pod's workload: left to the lean scan.
        b"template" => None,
        _ => read.other(name, at),
    })?;
    // Only a Pod's kind fills the slot; an object without one is left to the lean scan.
    kind.0?;
    let has_metadata = metadata.0.is_some();
    let metadata = metadata.0.unwrap_or_default();
    let spec = spec.0?;
    let shape = Shape {
        has_metadata,
        has_annotations: metadata.has_annotations,
        sections: spec.sections,
    };
    let name = metadata
        .name
        .filter(|n| !n.is_empty())
        .or(metadata.generate_name)
        .unwrap_or("");
    let object = ObjectRef {
        kind: "Pod".to_string(),
        namespace: metadata
            .namespace
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        name: name.to_string(),
    };
    let workload = Workload {
        object: Lent::Owned(object),
        template_pointer: "",
        annotations: Annotations(Lent::Owned(metadata.annotations)),
        metadata: Lent::Owned(WorkloadMetadata {
            name: metadata.name,
            generate_name: metadata.generate_name,
            template_labels: Vec::new(),
            labels: metadata.labels,
            owner_kinds: metadata.owner_kinds,
            claim_templates: Vec::new(),
        }),
        volumes: Lent::Owned(spec.volumes),
        share_process_namespace: spec.share_process_namespace,
        // A Pod is finite only when its restart policy says so.
        finite: matches!(spec.restart_policy, Some("Never" | "OnFailure")),
        containers: spec.containers,
    };
    Some((PodRead { workload, shape }, end))
}

/// A Pod read from a review's body: its workload, and the shape of the members a planner that
/// rewrites scripts writes into.
#[derive(Debug)]
pub struct PodRead<'a> {
    pub workload: Workload<'a>,
    shape: Shape,
}

/// Which of the members a script-only plan writes into the object has.
#[derive(Debug, Clone, Copy)]
struct Shape {
    has_metadata: bool,
    /// `metadata.annotations` is an object.
    has_annotations: bool,
    /// `spec.initContainers` and `spec.containers` are arrays.
    sections: [bool; 2],
}

impl PodRead<'_> {
    /// The part of the lean cut a plan that only rewrites scripts reads, checks and applies its
    /// patch to: `metadata.annotations` (string values) and each container's `command` and
    /// `args`, in members the object has. Other members are left out, so any other plan finds
    /// what it reads missing and is not taken from it (`within_cut`).
    pub fn script_view(&self) -> Value {
        let mut object = serde_json::Map::new();
        if self.shape.has_metadata {
            let mut metadata = serde_json::Map::new();
            if self.shape.has_annotations {
                let annotations = self
                    .workload
                    .annotations
                    .0
                    .iter()
                    .map(|&(k, v)| (k.to_string(), Value::from(v)))
                    .collect();
                metadata.insert("annotations".into(), Value::Object(annotations));
            }
            object.insert("metadata".into(), Value::Object(metadata));
        }
        let mut spec = serde_json::Map::new();
        for (present, section) in self
            .shape
            .sections
            .into_iter()
            .zip([Section::InitContainers, Section::Containers])
        {
            if !present {
                continue;
            }
            let list = self
                .workload
                .containers
                .iter()
                .filter(|c| c.section == section)
                .map(|c| {
                    let mut container = serde_json::Map::new();
                    for (key, words) in [("command", &c.command), ("args", &c.args)] {
                        if let Some(words) = words {
                            let words = words.iter().map(|&w| Value::from(w)).collect();
                            container.insert(key.into(), Value::Array(words));
                        }
                    }
                    Value::Object(container)
                })
                .collect();
            spec.insert(section.as_str().into(), Value::Array(list));
        }
        object.insert("spec".into(), Value::Object(spec));
        Value::Object(object)
    }
}

/// A member's value, `None` until found; a second one is left to the lean scan.
struct Slot<T>(Option<T>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(None)
    }
}

impl<T> Slot<T> {
    fn fill(&mut self, (value, end): (T, usize)) -> Option<usize> {
        if self.0.is_some() {
            return None;
        }
        self.0 = Some(value);
        Some(end)
    }
}

/// The object's `metadata`, as far as the workload reads it.
#[derive(Default)]
struct Metadata<'a> {
    has_annotations: bool,
    name: Option<&'a str>,
    generate_name: Option<&'a str>,
    namespace: Option<&'a str>,
    annotations: Vec<(&'a str, &'a str)>,
    labels: Vec<(&'a str, &'a str)>,
    owner_kinds: Vec<&'a str>,
}

/// A projected volume's `defaultMode` and the files of its ConfigMap sources.
type Projected<'a> = (Option<u64>, Vec<ConfigMapFiles<'a>>);

/// The pod's `spec`, as far as the workload reads it.
struct Spec<'a> {
    /// `initContainers` and `containers` are arrays.
    sections: [bool; 2],
    restart_policy: Option<&'a str>,
    share_process_namespace: bool,
    volumes: Vec<Volume<'a>>,
    containers: Vec<ContainerSpec<'a>>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    texts: &'a Bump,
    /// Whether env lists are read (else checked as the lean cut without them checks them,
    /// and left out).
    env: bool,
}

impl<'a> Reader<'a> {
    /// A member the lean cut skips, passed over as the lean scan passes over it; a name
    /// written with escapes is left to the lean scan, which decodes it before deciding.
    fn other(&self, name: &[u8], at: usize) -> Option<usize> {
        if name.contains(&b'\\') {
            return None;
        }
        skip_value(self.bytes, at)
    }

    /// A value the lean cut keeps whole and the workload does not read: checked as serde_json
    /// decodes it, and passed over.
    fn checked(&self, at: usize) -> Option<usize> {
        let mut values =
            serde_json::Deserializer::from_slice(self.bytes.get(at..)?).into_iter::<IgnoredAny>();
        values.next()?.ok()?;
        Some(at + values.byte_offset())
    }

    /// A value the lean cut keeps whole, decoded: for scalars whose meaning `extract` takes
    /// from serde_json (`null`, booleans, numbers allocate nothing).
    fn scalar(&self, at: usize) -> Option<(Value, usize)> {
        let mut values =
            serde_json::Deserializer::from_slice(self.bytes.get(at..)?).into_iter::<Value>();
        let value = values.next()?.ok()?;
        Some((value, at + values.byte_offset()))
    }

    /// The string at `at`: borrowed from the body when written without escapes, decoded into
    /// the arena otherwise. `None` for anything but a string serde_json accepts.
    fn text(&self, at: usize) -> Option<(&'a str, usize)> {
        if self.bytes.get(at) != Some(&b'"') {
            return None;
        }
        // The first quote or backslash: the string's end when it has no escapes.
        let first = quote_or_backslash(self.bytes, at + 1)?;
        if self.bytes[first] == b'"' {
            let raw = self.bytes.get(at + 1..first)?;
            // serde_json rejects control characters in strings.
            if has_control(raw) {
                return None;
            }
            return Some((std::str::from_utf8(raw).ok()?, first + 1));
        }
        let end = string_end(self.bytes, first)?;
        let decoded: String = serde_json::from_slice(self.bytes.get(at..end)?).ok()?;
        Some((self.texts.alloc_str(&decoded), end))
    }

    /// A string, or `None` for `null`: what `extract` reads where it wants a string (any other
    /// type is its error, left to the lean scan).
    fn optional_text(&self, at: usize) -> Option<(Option<&'a str>, usize)> {
        match self.bytes.get(at)? {
            b'n' => self.null(at).map(|end| (None, end)),
            _ => self.text(at).map(|(text, end)| (Some(text), end)),
        }
    }

    /// A string where `extract` takes any value and keeps only a string (`Value::as_str`).
    fn loose_text(&self, at: usize) -> Option<(Option<&'a str>, usize)> {
        match self.bytes.get(at)? {
            b'"' => self.text(at).map(|(text, end)| (Some(text), end)),
            _ => self.checked(at).map(|end| (None, end)),
        }
    }

    fn null(&self, at: usize) -> Option<usize> {
        (self.bytes.get(at..at + 4)? == b"null").then_some(at + 4)
    }

    /// An array of strings, `None` inside for `null` (what `extract` reads as `command`).
    fn words(&self, at: usize) -> Option<(Option<Vec<&'a str>>, usize)> {
        if self.bytes.get(at)? == &b'n' {
            return self.null(at).map(|end| (None, end));
        }
        let mut words = Vec::new();
        let end = elements(self.bytes, at, |at| {
            let (word, end) = self.text(at)?;
            words.push(word);
            Some(end)
        })?;
        Some((Some(words), end))
    }

    /// Whether the value at `at` is a non-empty array, the value checked whole (`envFrom`,
    /// `ports`: the lean cut keeps their elements whole).
    fn non_empty(&self, at: usize) -> Option<(bool, usize)> {
        let end = self.checked(at)?;
        let inner = crate::server::json_scan::whitespace(self.bytes, at + 1);
        let non_empty = self.bytes.get(at) == Some(&b'[') && self.bytes.get(inner) != Some(&b']');
        Some((non_empty, end))
    }

    /// The string members of a map (annotations, or the name labels the lean cut keeps), in the
    /// order of their names (a `serde_json::Map` iterates in that order); a non-string value is
    /// left out, as `extract` leaves it out. `keep` says which members the lean cut keeps.
    fn string_map(
        &self,
        at: usize,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Option<(Vec<(&'a str, &'a str)>, usize)> {
        if self.bytes.get(at)? == &b'n' {
            return self.null(at).map(|end| (Vec::new(), end));
        }
        let mut entries = Vec::new();
        let mut names: Vec<&[u8]> = Vec::new();
        let end = members(self.bytes, at, |name, at| {
            if name.contains(&b'\\') {
                return None;
            }
            if !keep(name) {
                return skip_value(self.bytes, at);
            }
            names.push(name);
            let (value, end) = self.loose_text(at)?;
            match value {
                Some(value) => entries.push((std::str::from_utf8(name).ok()?, value)),
                // A mirror Pod is told by the annotation's presence, whatever its value: one
                // the workload would leave out is left to the lean scan.
                None if name == MIRROR_POD_ANNOTATION.as_bytes() => return None,
                None => {}
            }
            Some(end)
        })?;
        // A name written twice: the map keeps the last; left to the lean scan.
        names.sort_unstable();
        if names.windows(2).any(|pair| pair[0] == pair[1]) {
            return None;
        }
        for name in names {
            kept_name(name)?;
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        Some((entries, end))
    }

    fn metadata(&self, at: usize) -> Option<(Metadata<'a>, usize)> {
        let mut name = Slot::default();
        let mut generate_name = Slot::default();
        let mut namespace = Slot::default();
        let mut annotations = Slot::default();
        let mut labels = Slot::default();
        let mut owners = Slot::default();
        let end = members(self.bytes, at, |member, at| match member {
            b"name" => name.fill(self.optional_text(at)?),
            b"generateName" => generate_name.fill(self.optional_text(at)?),
            b"namespace" => namespace.fill(self.optional_text(at)?),
            b"annotations" => {
                let object = self.bytes.get(at) == Some(&b'{');
                let (entries, end) = self.string_map(at, |_| true)?;
                annotations.fill(((entries, object), end))
            }
            b"labels" => labels.fill(
                self.string_map(at, |name| NAME_LABELS.iter().any(|l| l.as_bytes() == name))?,
            ),
            b"ownerReferences" => owners.fill(self.owner_kinds(at)?),
            _ => self.other(member, at),
        })?;
        let metadata = Metadata {
            has_annotations: annotations.0.as_ref().is_some_and(|(_, object)| *object),
            name: name.0.flatten(),
            generate_name: generate_name.0.flatten(),
            namespace: namespace.0.flatten(),
            annotations: annotations.0.map(|(a, _)| a).unwrap_or_default(),
            labels: labels.0.unwrap_or_default(),
            owner_kinds: owners.0.unwrap_or_default(),
        };
        Some((metadata, end))
    }

    /// The kinds of `ownerReferences`: each entry an object, its `kind` taken when a string.
    fn owner_kinds(&self, at: usize) -> Option<(Vec<&'a str>, usize)> {
        if self.bytes.get(at)? == &b'n' {
            return self.null(at).map(|end| (Vec::new(), end));
        }
        let mut kinds = Vec::new();
        let end = elements(self.bytes, at, |at| {
            let mut kind = Slot::default();
            let end = members(self.bytes, at, |name, at| match name {
                b"kind" => kind.fill(self.loose_text(at)?),
                b"name" | b"controller" => self.checked(at),
                _ => self.other(name, at),
            })?;
            kinds.extend(kind.0.flatten());
            Some(end)
        })?;
        Some((kinds, end))
    }

    fn spec(&self, at: usize) -> Option<(Spec<'a>, usize)> {
        let mut restart_policy = Slot::default();
        let mut share = Slot::default();
        let mut volumes = Slot::default();
        let mut lists: [Slot<Option<Vec<ContainerSpec<'a>>>>; 2] = Default::default();
        let end = members(self.bytes, at, |name, at| match name {
            b"restartPolicy" => restart_policy.fill(self.optional_text(at)?),
            b"shareProcessNamespace" => share.fill(self.scalar(at)?),
            b"volumes" => volumes.fill(self.volumes(at)?),
            b"initContainers" => lists[0].fill(self.containers(at, Section::InitContainers)?),
            b"containers" => lists[1].fill(self.containers(at, Section::Containers)?),
            b"template" | b"jobTemplate" | b"volumeClaimTemplates" => None,
            _ => self.other(name, at),
        })?;
        let [init, main] = lists;
        let (init, main) = (init.0.flatten(), main.0.flatten());
        let sections = [init.is_some(), main.is_some()];
        let mut containers = init.unwrap_or_default();
        containers.extend(main.unwrap_or_default());
        let spec = Spec {
            sections,
            restart_policy: restart_policy.0.flatten(),
            share_process_namespace: share.0.and_then(|v| v.as_bool()).unwrap_or(false),
            volumes: volumes.0.unwrap_or_default(),
            containers,
        };
        Some((spec, end))
    }

    /// One section's containers, `null` for none.
    fn containers(
        &self,
        at: usize,
        section: Section,
    ) -> Option<(Option<Vec<ContainerSpec<'a>>>, usize)> {
        if self.bytes.get(at)? == &b'n' {
            return self.null(at).map(|end| (None, end));
        }
        let mut list = Vec::new();
        let end = elements(self.bytes, at, |at| {
            let (container, end) = self.container(at, section, list.len())?;
            list.push(container);
            Some(end)
        })?;
        Some((Some(list), end))
    }

    fn container(
        &self,
        at: usize,
        section: Section,
        index: usize,
    ) -> Option<(ContainerSpec<'a>, usize)> {
        let mut name = Slot::default();
        let mut image = Slot::default();
        let mut command = Slot::default();
        let mut args = Slot::default();
        let mut restart_policy = Slot::default();
        let mut env = Slot::default();
        let mut env_from = Slot::default();
        let mut working_dir = Slot::default();
        let mut mounts = Slot::default();
        let mut ports = Slot::default();
        let end = members(self.bytes, at, |member, at| match member {
            b"name" => name.fill(self.optional_text(at)?),
            b"image" => image.fill(self.optional_text(at)?),
            b"command" => command.fill(self.words(at)?),
            b"args" => args.fill(self.words(at)?),
            // `extract` reads an init container's as a string, and no other container's.
            b"restartPolicy" if section == Section::InitContainers => {
                restart_policy.fill(self.optional_text(at)?)
            }
            b"restartPolicy" => restart_policy.fill(self.loose_text(at)?),
            b"env" if self.env => env.fill(self.env(at)?),
            b"env" => env.fill((Vec::new(), checked_env_list(self.bytes, at)?)),
            b"envFrom" => env_from.fill(self.non_empty(at)?),
            b"workingDir" => working_dir.fill(self.loose_text(at)?),
            b"volumeMounts" => mounts.fill(self.mounts(at)?),
            b"ports" => ports.fill(self.non_empty(at)?),
            _ => self.other(member, at),
        })?;
        let key = section.as_str();
        let mut pointer = String::with_capacity(key.len() + 12);
        let _ = write!(pointer, "/spec/{key}/{index}");
        let container = ContainerSpec {
            name: name.0.flatten().unwrap_or(""),
            section,
            index,
            pointer: Lent::Owned(pointer),
            image: image.0.flatten().unwrap_or(""),
            command: command.0.flatten().map(Lent::Owned),
            args: args.0.flatten().map(Lent::Owned),
            native_sidecar: section == Section::InitContainers
                && restart_policy.0.flatten() == Some("Always"),
            env: Lent::Owned(env.0.unwrap_or_default()),
            env_from: env_from.0.unwrap_or(false),
            working_dir: working_dir.0.flatten(),
            mounts: Lent::Owned(mounts.0.unwrap_or_default()),
            has_ports: ports.0.unwrap_or(false),
        };
        Some((container, end))
    }

    /// A container's `env`: the entries that have a name, in order.
    fn env(&self, at: usize) -> Option<(Vec<EnvEntry<'a>>, usize)> {
        if self.bytes.get(at)? == &b'n' {
            return self.null(at).map(|end| (Vec::new(), end));
        }
        let mut entries = Vec::new();
        let end = elements(self.bytes, at, |at| {
            // Not an object: no entry (the lean cut keeps it whole).
            if self.bytes.get(at) != Some(&b'{') {
                return self.checked(at);
            }
            let mut name = Slot::default();
            let mut value = Slot::default();
            let mut value_from = Slot::default();
            let end = members(self.bytes, at, |member, at| match member {
                b"name" => name.fill(self.optional_text(at)?),
                b"value" => value.fill(self.loose_text(at)?),
                // Set unless `null`.
                b"valueFrom" => {
                    value_from.fill((self.bytes.get(at) != Some(&b'n'), self.checked(at)?))
                }
                _ => self.other(member, at),
            })?;
            if let Some(name) = name.0.flatten() {
                let value = if value_from.0.unwrap_or(false) {
                    EnvValue::FromElsewhere
                } else {
                    EnvValue::Literal(value.0.flatten().unwrap_or(""))
                };
                entries.push(EnvEntry { name, value });
            }
            Some(end)
        })?;
        Some((entries, end))
    }

    /// A container's `volumeMounts`.
    fn mounts(&self, at: usize) -> Option<(Vec<VolumeMount<'a>>, usize)> {
        if self.bytes.get(at)? == &b'n' {
            return self.null(at).map(|end| (Vec::new(), end));
        }
        let mut mounts = Vec::new();
        let end = elements(self.bytes, at, |at| {
            let empty = VolumeMount {
                volume: "",
                path: "",
                sub_path: None,
            };
            if self.bytes.get(at) != Some(&b'{') {
                mounts.push(empty);
                return self.checked(at);
            }
            let (mut volume, mut path, mut sub_path) =
                (Slot::default(), Slot::default(), Slot::default());
            let end = members(self.bytes, at, |member, at| match member {
                b"name" => volume.fill(self.optional_text(at)?),
                b"mountPath" => path.fill(self.optional_text(at)?),
                b"subPath" => sub_path.fill(self.loose_text(at)?),
                _ => self.other(member, at),
            })?;
            mounts.push(VolumeMount {
                volume: volume.0.flatten().unwrap_or(""),
                path: path.0.flatten().unwrap_or(""),
                sub_path: sub_path.0.flatten(),
            });
            Some(end)
        })?;
        Some((mounts, end))
    }

    /// The pod's `volumes`: entries that are objects (others are left out).
    fn volumes(&self, at: usize) -> Option<(Vec<Volume<'a>>, usize)> {
        if self.bytes.get(at)? != &b'[' {
            // `extract` reads no volumes from anything else; the lean cut keeps it whole.
            return self.checked(at).map(|end| (Vec::new(), end));
        }
        let mut volumes = Vec::new();
        let end = elements(self.bytes, at, |at| {
            if self.bytes.get(at) != Some(&b'{') {
                return self.checked(at);
            }
            let (volume, end) = self.volume(at)?;
            volumes.push(volume);
            Some(end)
        })?;
        Some((volumes, end))
    }

    fn volume(&self, at: usize) -> Option<(Volume<'a>, usize)> {
        let mut name = Slot::default();
        let mut config_map = Slot::default();
        let mut projected = Slot::default();
        let (mut claim, mut ephemeral) = (Slot::default(), Slot::default());
        let is_null = |at: usize| self.bytes.get(at) == Some(&b'n');
        let end = members(self.bytes, at, |member, at| match member {
            // `null` members are read as absent.
            b"name" => name.fill(self.loose_text(at)?),
            b"configMap" if is_null(at) => self.null(at),
            b"configMap" => config_map.fill(self.config_map_files(at, true)?),
            b"projected" if is_null(at) => self.null(at),
            b"projected" => projected.fill(self.projected(at)?),
            b"persistentVolumeClaim" => claim.fill((!is_null(at), self.checked(at)?)),
            b"ephemeral" => ephemeral.fill((!is_null(at), self.checked(at)?)),
            _ => self.other(member, at),
        })?;
        let persistent = claim.0.unwrap_or(false) || ephemeral.0.unwrap_or(false);
        let source = match (config_map.0, projected.0) {
            (Some(files), _) => VolumeSource::ConfigMap(files),
            (None, Some((default_mode, config_maps))) => VolumeSource::Projected {
                default_mode,
                config_maps,
            },
            (None, None) if persistent => VolumeSource::Persistent,
            (None, None) => VolumeSource::Other,
        };
        let volume = Volume {
            name: name.0.flatten().unwrap_or(""),
            source,
        };
        Some((volume, end))
    }

    /// A `configMap` volume source or projection (kept whole by the lean cut): its name, items
    /// and, for a volume, `defaultMode`. Anything but an object reads as no files named.
    fn config_map_files(&self, at: usize, volume: bool) -> Option<(ConfigMapFiles<'a>, usize)> {
        let mut files = ConfigMapFiles {
            name: None,
            items: None,
            default_mode: None,
        };
        if self.bytes.get(at) != Some(&b'{') {
            return self.checked(at).map(|end| (files, end));
        }
        let (mut name, mut items, mut mode) = (Slot::default(), Slot::default(), Slot::default());
        let end = members(self.bytes, at, |member, at| match member {
            b"name" => name.fill(self.loose_text(at)?),
            b"items" => items.fill(self.items(at)?),
            b"defaultMode" if volume => mode.fill(self.mode(at)?),
            // Kept whole by the lean cut: its name and value checked.
            _ => {
                kept_name(member)?;
                self.checked(at)
            }
        })?;
        files.name = name.0.flatten();
        files.items = items.0.flatten();
        files.default_mode = mode.0.flatten();
        Some((files, end))
    }

    /// `items` of a ConfigMap source: entries with a string key and path; `None` when not an
    /// array.
    fn items(&self, at: usize) -> Option<(Option<Vec<KeyToPath<'a>>>, usize)> {
        if self.bytes.get(at)? != &b'[' {
            return self.checked(at).map(|end| (None, end));
        }
        let mut items = Vec::new();
        let end = elements(self.bytes, at, |at| {
            if self.bytes.get(at) != Some(&b'{') {
                return self.checked(at);
            }
            let (mut key, mut path, mut mode) = (Slot::default(), Slot::default(), Slot::default());
            let end = members(self.bytes, at, |member, at| match member {
                b"key" => key.fill(self.loose_text(at)?),
                b"path" => path.fill(self.loose_text(at)?),
                b"mode" => mode.fill(self.mode(at)?),
                _ => {
                    kept_name(member)?;
                    self.checked(at)
                }
            })?;
            if let (Some(key), Some(path)) = (key.0.flatten(), path.0.flatten()) {
                items.push(KeyToPath {
                    key,
                    path,
                    mode: mode.0.flatten(),
                });
            }
            Some(end)
        })?;
        Some((Some(items), end))
    }

    /// A file mode as `volumes::mode_of` reads it.
    fn mode(&self, at: usize) -> Option<(Option<u64>, usize)> {
        let (value, end) = self.scalar(at)?;
        Some((mode_of(Some(&value)), end))
    }

    /// A `projected` volume: its `defaultMode` and the files of its ConfigMap sources.
    fn projected(&self, at: usize) -> Option<(Projected<'a>, usize)> {
        if self.bytes.get(at) != Some(&b'{') {
            return self.checked(at).map(|end| ((None, Vec::new()), end));
        }
        let (mut mode, mut sources) = (Slot::default(), Slot::default());
        let end = members(self.bytes, at, |member, at| match member {
            b"defaultMode" => mode.fill(self.mode(at)?),
            b"sources" => sources.fill(self.sources(at)?),
            _ => self.other(member, at),
        })?;
        Some(((mode.0.flatten(), sources.0.unwrap_or_default()), end))
    }

    /// The ConfigMap projections among a projected volume's `sources`.
    fn sources(&self, at: usize) -> Option<(Vec<ConfigMapFiles<'a>>, usize)> {
        if self.bytes.get(at)? != &b'[' {
            return self.checked(at).map(|end| (Vec::new(), end));
        }
        let mut found = Vec::new();
        let end = elements(self.bytes, at, |at| {
            if self.bytes.get(at) != Some(&b'{') {
                return self.checked(at);
            }
            let mut config_map = Slot::default();
            let end = members(self.bytes, at, |member, at| match member {
                b"configMap" if self.bytes.get(at) == Some(&b'n') => self.null(at),
                b"configMap" => config_map.fill(self.config_map_files(at, false)?),
                _ => self.other(member, at),
            })?;
            found.extend(config_map.0);
            Some(end)
        })?;
        Some((found, end))
    }
}

/// Whether `raw` has a byte below 0x20, looked for eight bytes at a time.
fn has_control(raw: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    let mut chunks = raw.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        // A byte below 0x20 borrows from its high bit: exact for the lowest such byte, and
        // any flag at all means there is one.
        if word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b < 0x20)
}

/// A member name the lean cut decodes (serde_json rejects control characters and bytes that
/// are not UTF-8); one written with escapes is left to the lean scan, which decodes it.
fn kept_name(name: &[u8]) -> Option<&str> {
    if name.iter().any(|&b| b < 0x20 || b == b'\\') {
        return None;
    }
    std::str::from_utf8(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::workload::{extract, template_pointer};
    use crate::server::arbitrary_json::{Shape, values};
    use crate::server::lean_scan::scan;
    use crate::server::object::{Lean, LeanWithoutEnv};
    use proptest::prelude::*;
    use serde_json::{Map, json};

    const PREFIX: &str = r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"shop","operation":"CREATE","object":"#;
    const SUFFIX: &str = r#","oldObject":null,"dryRun":false}}"#;

    /// Whether the reader takes the object written as `object`; when it does, the lean scan
    /// reads the same review and `extract` gives the same workload from its lean cut.
    fn agrees(object: &str) -> bool {
        // Without env lists too, whatever that reader takes.
        read_and_extracted::<LeanWithoutEnv>(object);
        read_and_extracted::<Lean>(object).0
    }

    /// Whether the reader takes `object`, and whether the lean scan and `extract` give it a
    /// workload; when both, the same one.
    fn read_and_extracted<C: Cut + std::fmt::Debug>(object: &str) -> (bool, bool) {
        let body = format!("{PREFIX}{object}{SUFFIX}");
        let texts = Bump::new();
        let read = read_pod::<C>(body.as_bytes(), PREFIX.len(), &texts);
        let scanned = scan::<C>(body.as_bytes());
        let lean = scanned.as_ref().and_then(|r| r.object.as_ref());
        let expected = match lean.map(extract) {
            Some(Ok(Some(w))) => Some(w),
            _ => None,
        };
        let Some((pod, end)) = read else {
            return (false, expected.is_some());
        };
        let workload = &pod.workload;
        assert_eq!(end, PREFIX.len() + object.len(), "{object}");
        let Some(expected) = expected else {
            panic!("read an object the lean scan and extract do not take: {object}");
        };
        assert_eq!(format!("{workload:?}"), format!("{expected:?}"), "{object}");
        assert_eq!(pod.script_view(), script_view_of(lean.unwrap()), "{object}");
        (true, true)
    }

    /// What [`PodRead::script_view`] keeps of the lean cut, taken from the cut.
    fn script_view_of(lean: &Value) -> Value {
        let mut view = json!({"spec": {}});
        if let Some(metadata) = lean.get("metadata") {
            view["metadata"] = json!({});
            if let Some(annotations) = metadata.get("annotations").and_then(Value::as_object) {
                let strings: Map<String, Value> = annotations
                    .iter()
                    .filter(|(_, v)| v.is_string())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                view["metadata"]["annotations"] = Value::Object(strings);
            }
        }
        for section in ["initContainers", "containers"] {
            if let Some(list) = lean["spec"].get(section).and_then(Value::as_array) {
                let containers = list
                    .iter()
                    .map(|c| {
                        let mut kept = Map::new();
                        for key in ["command", "args"] {
                            if let Some(words) = c.get(key).filter(|w| w.is_array()) {
                                kept.insert(key.to_string(), words.clone());
                            }
                        }
                        Value::Object(kept)
                    })
                    .collect();
                view["spec"][section] = Value::Array(containers);
            }
        }
        view
    }

    /// `value` written compactly, pretty, and with the escapes Go's encoder writes for `&`,
    /// `<` and `>` (the apiserver's): how many of the three the reader took.
    fn agrees_written_every_way(value: &Value) -> usize {
        let compact = value.to_string();
        let go = compact
            .replace('&', "\\u0026")
            .replace('<', "\\u003c")
            .replace('>', "\\u003e");
        let pretty = serde_json::to_string_pretty(value).unwrap();
        [compact, go, pretty].iter().filter(|o| agrees(o)).count()
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "web-", "namespace": "shop",
                "labels": {"app": "web", "tier": "front", "app.kubernetes.io/name": 3},
                "annotations": {"a": "b", "n": 1, "pidone.io/mutations": "exec:app"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "controller": true},
                    {"name": "x"}],
                "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]},
            "spec": {
                "restartPolicy": "Always",
                "shareProcessNamespace": true,
                "affinity": {"nodeAffinity": {"x": [1, 2.5, null, true]}},
                "volumes": [
                    {"name": "v", "configMap": {"name": "scripts", "defaultMode": 493,
                        "items": [{"key": "run.sh", "path": "run.sh", "mode": 0o755},
                            {"key": "k"}, 3]}, "extra": 1},
                    {"name": "octal", "configMap": {"name": "s", "defaultMode": 755.0}},
                    {"name": "text", "configMap": {"name": "s", "defaultMode": "0644"}},
                    {"name": "p", "projected": {"defaultMode": 420, "sources": [
                        {"serviceAccountToken": {"path": "token"}},
                        {"configMap": {"name": "ca", "items": [{"key": "a", "path": "b"}],
                            "defaultMode": 1}},
                        {"configMap": null}]}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "d"}},
                    {"name": "gone", "persistentVolumeClaim": null, "configMap": null},
                    {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}},
                    {"name": "e", "emptyDir": {}},
                    "not a volume"],
                "initContainers": [{"name": "i", "image": "busybox", "restartPolicy": "Always",
                    "env": [{"name": "A", "value": "1"}]}],
                "containers": [{"name": "app", "image": "app:1",
                    "command": ["/bin/sh", "-c", "set -e\nsetup \"$A\" && exec app > /dev/null"],
                    "args": null,
                    "restartPolicy": 7,
                    "workingDir": "/srv",
                    "env": [{"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}},
                        {"name": "C", "valueFrom": null, "value": "c"},
                        {"name": "D", "value": 3}, {"value": "no name"}, "x"],
                    "envFrom": [{"configMapRef": {"name": "e"}}],
                    "volumeMounts": [{"name": "v", "mountPath": "/s", "readOnly": true,
                        "subPath": "run.sh"}, 1],
                    "livenessProbe": {"exec": {"command": ["true"]}},
                    "ports": [{"containerPort": 80}]},
                    {"name": "side", "image": "agent:2", "ports": [], "envFrom": [],
                        "workingDir": 1}]
            },
            "status": {"phase": "Pending"}
        })
    }

    #[test]
    fn a_pod_is_read_as_extract_reads_its_lean_cut() {
        assert_eq!(agrees_written_every_way(&pod()), 3);
        let body: Value =
            serde_json::from_slice(include_bytes!("../../benches/fixtures/pod-review.json"))
                .unwrap();
        assert_eq!(agrees_written_every_way(&body["request"]["object"]), 3);
        assert_eq!(
            agrees_written_every_way(&json!({"kind": "Pod", "spec": {}})),
            3
        );
        // Members in the apiserver's order, not the names' (a `serde_json::Map` writes them
        // sorted): maps read in their names' order.
        assert!(agrees(
            r#"{"spec":{"restartPolicy":"Never","containers":[{"image":"x","name":"a",
            "command":["sh","-c","a\nb \u0026\u0026 c"]}]},"kind":"Pod","metadata":{
            "labels":{"name":"n","app":"a"},"annotations":{"z":"1","a":"2","m":"3"},
            "namespace":"ns","name":"p"}}"#
        ));
    }

    #[test]
    fn what_the_reader_does_not_take_is_left_to_the_lean_scan() {
        let mut unread: Vec<String> = [
            json!({"kind": "Deployment", "spec": {"template": {"spec": {}}}}),
            json!({"spec": {}}),
            json!({"kind": "Pod"}),
            json!({"kind": "Pod", "spec": []}),
            json!({"kind": "Pod", "metadata": null, "spec": {}}),
            json!({"kind": "Pod", "metadata": {"name": 1}, "spec": {}}),
            json!({"kind": "Pod", "metadata": {"annotations": "a"}, "spec": {}}),
            json!({"kind": "Pod", "metadata": {"ownerReferences": {}}, "spec": {}}),
            json!({"kind": "Pod", "spec": {"containers": {}}}),
            json!({"kind": "Pod", "spec": {"containers": [1]}}),
            json!({"kind": "Pod", "spec": {"containers": [{"command": "sh"}]}}),
            json!({"kind": "Pod", "spec": {"containers": [{"command": ["sh", 1]}]}}),
            json!({"kind": "Pod", "spec": {"containers": [{"env": {}}]}}),
            json!({"kind": "Pod", "spec": {"containers": [{"env": [{"name": 1}]}]}}),
            json!({"kind": "Pod", "spec": {"containers": [{"volumeMounts": [{"name": 1}]}]}}),
            json!({"kind": "Pod", "spec": {"initContainers": [{"restartPolicy": 1}]}}),
            json!({"kind": "Pod", "spec": {"restartPolicy": 1}}),
            json!({"kind": "Pod", "spec": {"template": {}}}),
            json!({"kind": "Pod", "template": {}, "spec": {}}),
        ]
        .iter()
        .map(Value::to_string)
        .collect();
        unread.extend(
            [
                // Written twice, or with escapes in a name.
                r#"{"kind":"Pod","kind":"Pod","spec":{}}"#,
                r#"{"kind":"Pod","spec":{"containers":[{"name":"a","name":"b"}]}}"#,
                r#"{"kind":"Pod","metadata":{"annotations":{"a":"1","a":"2"}},"spec":{}}"#,
                r#"{"kind":"Pod","spec":{"volumes":[{"persistentVolumeClaim":{},"persistentVolumeClaim":null}]}}"#,
                r#"{"kind":"Pod","sp\u0065c":{}}"#,
                r#"{"kind":"Pod","metadata":{"annotations":{"a\"b":"c"}},"spec":{}}"#,
                r#"{"kind":"Pod","metadata":{"annotations":{"kubernetes.io/config.mirror":1}},"spec":{}}"#,
                r#"{"kind":"Pod","spec":{"volumes":[{"configMap":{"n\u0061me":"x"}}]}}"#,
                // What serde_json refuses in what the lean cut keeps.
                "{\"kind\":\"Pod\",\"spec\":{\"containers\":[{\"name\":\"a\u{1}\"}]}}",
                r#"{"kind":"Pod","spec":{"containers":[{"envFrom":[tru]}]}}"#,
                "{\"kind\":\"Pod\",\"spec\":{\"volumes\":[{\"configMap\":{\"\u{1}\":1}}]}}",
            ]
            .map(str::to_string),
        );
        for object in unread {
            assert!(!agrees(&object), "{object}");
        }
    }

    /// The pod templates of the public manifests under tests/fixtures, each made a Pod.
    #[test]
    fn the_fixtures_pod_templates_are_read_as_extract_reads_them() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut files = Vec::new();
        for dir in [
            "roundtrip/static",
            "roundtrip/charts",
            "side_agents",
            "examples",
        ] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    files.push(path);
                }
            }
        }
        let (mut pods, mut read) = (0, 0);
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            for doc in text.split("\n---") {
                let Ok(object) = serde_saphyr::from_str::<Value>(doc) else {
                    continue;
                };
                let Some(kind) = object.get("kind").and_then(Value::as_str) else {
                    continue;
                };
                let Some(pointer) = template_pointer(kind) else {
                    continue;
                };
                let template = if pointer.is_empty() {
                    &object
                } else {
                    match object.pointer(pointer) {
                        Some(t) => t,
                        None => continue,
                    }
                };
                let mut metadata = template.get("metadata").cloned().unwrap_or(json!({}));
                if let Some(m) = metadata.as_object_mut() {
                    m.insert("name".into(), json!("p"));
                    m.insert("namespace".into(), json!("n"));
                }
                let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
                    "spec": template.get("spec").cloned().unwrap_or(Value::Null)});
                pods += 3;
                read += agrees_written_every_way(&pod);
            }
        }
        assert!(pods >= 300, "only {pods} pod templates found");
        assert_eq!(
            read, pods,
            "the reader left some fixtures' Pods to the lean scan"
        );
    }

    /// Some value, mostly of the type `extract` wants, sometimes `null` or anything else.
    fn mostly(right: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
        let junk = values(Shape {
            names: &["name", "kind", "configMap", "command"],
            other_names: "[a-z\"\\\\]{0,4}",
            strings: "[a-z\"\\\\\n]{0,6}",
            depth: 2,
            size: 6,
            width: 3,
        });
        prop_oneof![40 => right, 1 => Just(Value::Null), 1 => junk].boxed()
    }

    fn text() -> BoxedStrategy<Value> {
        prop_oneof![
            "[a-z0-9/. -]{0,10}",
            "[ -~\n\t&<>é]{0,16}",
            prop::sample::select(vec!["Always", "Never", "OnFailure", "/bin/sh", "-c"])
                .prop_map(str::to_string),
        ]
        .prop_map(Value::String)
        .boxed()
    }

    /// An object with each of `members` present or not (names sorted and unique, as a
    /// `serde_json::Map` writes them).
    fn object(members: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
        members
            .into_iter()
            .map(|(name, value)| prop::option::weighted(0.7, value).prop_map(move |v| (name, v)))
            .collect::<Vec<_>>()
            .prop_map(|found| {
                let map: Map<String, Value> = found
                    .into_iter()
                    .filter_map(|(name, v)| Some((name.to_string(), v?)))
                    .collect();
                Value::Object(map)
            })
            .boxed()
    }

    fn list(item: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
        prop::collection::vec(item, 0..4)
            .prop_map(Value::Array)
            .boxed()
    }

    fn string_map(names: &'static [&'static str]) -> BoxedStrategy<Value> {
        prop::collection::btree_map(prop::sample::select(names), mostly(text()), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
            .boxed()
    }

    fn mode() -> BoxedStrategy<Value> {
        prop_oneof![
            (0u64..5000).prop_map(Value::from),
            prop::sample::select(vec![755.0, 644.5, -1.0, 1e7]).prop_map(Value::from),
            prop::sample::select(vec!["0755", "0o644", "x", " 7 "]).prop_map(Value::from),
        ]
        .boxed()
    }

    fn config_map(volume: bool) -> BoxedStrategy<Value> {
        let item = object(vec![
            ("key", mostly(text())),
            ("path", mostly(text())),
            ("mode", mode()),
        ]);
        let mut members = vec![("name", mostly(text())), ("items", mostly(list(item)))];
        members.push(("optional", any::<bool>().prop_map(Value::Bool).boxed()));
        if volume {
            members.push(("defaultMode", mode()));
        }
        mostly(object(members))
    }

    fn container() -> BoxedStrategy<Value> {
        let words = mostly(list(mostly(text())));
        let env = object(vec![
            ("name", mostly(text())),
            ("value", mostly(text())),
            ("valueFrom", mostly(Just(json!({"fieldRef": {}})).boxed())),
        ]);
        let mount = object(vec![
            ("name", mostly(text())),
            ("mountPath", mostly(text())),
            ("subPath", mostly(text())),
            ("readOnly", Just(json!(true)).boxed()),
        ]);
        object(vec![
            ("name", mostly(text())),
            ("image", mostly(text())),
            ("command", words.clone()),
            ("args", words),
            ("restartPolicy", mostly(text())),
            ("env", mostly(list(mostly(env)))),
            (
                "envFrom",
                mostly(list(Just(json!({"secretRef": {}})).boxed())),
            ),
            ("workingDir", mostly(text())),
            ("volumeMounts", mostly(list(mostly(mount)))),
            (
                "ports",
                mostly(list(Just(json!({"containerPort": 1})).boxed())),
            ),
            (
                "livenessProbe",
                mostly(Just(json!({"exec": {"command": ["x"]}})).boxed()),
            ),
        ])
    }

    fn pods() -> BoxedStrategy<Value> {
        let volume = object(vec![
            ("name", mostly(text())),
            ("configMap", config_map(true)),
            (
                "projected",
                mostly(object(vec![
                    ("defaultMode", mode()),
                    (
                        "sources",
                        mostly(list(object(vec![
                            ("configMap", config_map(false)),
                            ("secret", Just(json!({"name": "s"})).boxed()),
                        ]))),
                    ),
                ])),
            ),
            (
                "persistentVolumeClaim",
                mostly(Just(json!({"claimName": "c"})).boxed()),
            ),
            ("ephemeral", mostly(Just(json!({})).boxed())),
            ("emptyDir", Just(json!({})).boxed()),
        ]);
        let owner = object(vec![
            ("kind", mostly(text())),
            ("name", mostly(text())),
            ("controller", any::<bool>().prop_map(Value::Bool).boxed()),
        ]);
        let metadata = object(vec![
            ("name", mostly(text())),
            ("generateName", mostly(text())),
            ("namespace", mostly(text())),
            (
                "annotations",
                mostly(string_map(&["a", "b/c", "pidone.io/mutations", "é"])),
            ),
            (
                "labels",
                mostly(string_map(&["app", "name", "component", "tier"])),
            ),
            ("ownerReferences", mostly(list(mostly(owner)))),
            ("uid", text()),
        ]);
        let spec = object(vec![
            ("restartPolicy", mostly(text())),
            (
                "shareProcessNamespace",
                mostly(any::<bool>().prop_map(Value::Bool).boxed()),
            ),
            ("volumes", mostly(list(mostly(volume)))),
            ("initContainers", mostly(list(container()))),
            ("containers", mostly(list(container()))),
            ("nodeName", text()),
        ]);
        object(vec![
            ("apiVersion", Just(json!("v1")).boxed()),
            (
                "kind",
                prop_oneof![9 => Just(json!("Pod")), 1 => text()].boxed(),
            ),
            ("metadata", mostly(metadata)),
            ("spec", spec),
            ("status", Just(json!({"phase": "Pending"})).boxed()),
        ])
    }

    /// Whatever the reader takes of 600 generated Pods, it reads as `extract` reads the lean
    /// cut; and it takes most of those the lean scan and `extract` take.
    #[test]
    fn generated_pods_are_read_as_extract_reads_them() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let strategy = pods();
        let (mut extracted, mut read) = (0, 0);
        for _ in 0..600 {
            let pod = strategy.new_tree(&mut runner).unwrap().current();
            let text = pod.to_string();
            let (by_reader, by_extract) = read_and_extracted::<Lean>(&text);
            extracted += usize::from(by_extract);
            read += usize::from(by_reader);
            agrees_written_every_way(&pod);
        }
        assert!(
            read * 10 >= extracted * 9,
            "read {read} of the {extracted} extract reads"
        );
    }
}
