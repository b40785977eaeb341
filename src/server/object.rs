//! The object of a review, parsed for analysis, in one of two cuts:
//!
//! - [`Full`]: a `serde_json::Value` of the raw JSON without the parts pidone never reads,
//!   `metadata.managedFields` and `status`. Those are most of the allocations of parsing a
//!   Pod the apiserver sends (managed fields list every field every manager set), and nothing
//!   in the engine or the planner looks at them. Patches computed on this value stay valid for
//!   the real object: they never address the pruned parts.
//! - [`Lean`]: only what the engine reads to evaluate a launch (identity, annotations, the
//!   labels that name a workload, `restartPolicy`, the owner references' kind, name and
//!   controller flag, and per container its name, image, command, args, whether it declares
//!   ports, restart policy, env (names, literal values and whether a value comes from elsewhere: the
//!   kubelet expands `$(VAR)` in command and args from them), `envFrom`, `workingDir` and
//!   volume mounts), and the pod's volumes (ConfigMap ones whole, projected ones' mode and
//!   ConfigMap sources: scripts come from them),
//!   every array element kept so that JSON Pointers stay the same.
//!   The rest is skipped without allocating. Evaluating it gives the same result as
//!   evaluating the full object (tested over every fixture). /mutate plans on it only a patch
//!   that lies where it keeps values whole (see [`crate::server::plan::within_cut`]).
//! - [`LeanWithoutEnv`]: the lean cut without the containers' `env` lists, which are most of
//!   a typical pod's decoding and which an evaluation reads only for a `$(VAR)` to expand, a
//!   variable a launcher reads or an unparsed script to scan (`Evaluation::env_read` says
//!   so, and the caller decodes the lean cut and evaluates again). The lists are checked as
//!   they are skipped: one whose shape the engine would report fails the decoding instead,
//!   and the caller decodes the lean cut.
//! - [`FullWithoutEnv`]: the full cut of a body whose checked env lists were cut to `[]`
//!   before decoding (see [`crate::server::review_cuts`]), on /mutate: evaluated and planned
//!   on as the full cut, unless the evaluation or the planner's re-checks read `env`, or the
//!   patch writes a member named `env` (see [`crate::server::plan::independent_of_env`]).

use crate::engine::side_agents::NAME_LABELS;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::fmt;

/// Parses an object, leaving out `metadata.managedFields` and `status`.
pub fn parse(json: &str) -> Result<Value, serde_json::Error> {
    parse_with(json, Pruned::TOP)
}

/// Parses only what evaluation reads (see [`Lean`]).
pub fn parse_lean(json: &str) -> Result<Value, serde_json::Error> {
    parse_with(json, Pruned::LEAN_TOP)
}

/// Parses what evaluation reads without the containers' `env` (see [`LeanWithoutEnv`]).
pub fn parse_lean_without_env(json: &str) -> Result<Value, serde_json::Error> {
    parse_with(json, Pruned::LEAN_TOP_WITHOUT_ENV)
}

fn parse_with(json: &str, seed: Pruned) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// How much of an object a review decodes.
pub trait Cut {
    #[doc(hidden)]
    const ROOT: Pruned;
    /// Whether the cut is the whole object (all a planner reads).
    const WHOLE: bool;
    /// Whether the containers' `env` lists are surely in it: when not, a decision that would
    /// depend on them stops, and the review is decoded again with them.
    const ENV: bool = true;
}

/// Everything but `metadata.managedFields` and `status`: for planning patches and comparing
/// pod templates.
#[derive(Debug, Clone, Copy, Default)]
pub struct Full;

/// The whole cut of a body whose containers' `env` lists may have been cut to `[]` (see
/// `review_cuts`): an evaluation that reads them, or a patch that depends on them, needs the
/// whole cut of the body with them.
#[derive(Debug, Clone, Copy, Default)]
pub struct FullWithoutEnv;

/// What evaluation reads, nothing else.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lean;

/// What evaluation reads, without the containers' `env` (checked, not kept).
#[derive(Debug, Clone, Copy, Default)]
pub struct LeanWithoutEnv;

impl Cut for Full {
    const ROOT: Pruned = Pruned::TOP;
    const WHOLE: bool = true;
}

impl Cut for FullWithoutEnv {
    const ROOT: Pruned = Pruned::TOP;
    const WHOLE: bool = true;
    const ENV: bool = false;
}

impl Cut for Lean {
    const ROOT: Pruned = Pruned::LEAN_TOP;
    const WHOLE: bool = false;
}

impl Cut for LeanWithoutEnv {
    const ROOT: Pruned = Pruned::LEAN_TOP_WITHOUT_ENV;
    const WHOLE: bool = false;
    const ENV: bool = false;
}

/// For `#[serde(deserialize_with)]`: the object inside a review, parsed in the same pass as the
/// review; JSON `null` gives `None`.
pub fn deserialize<'de, C: Cut, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    match C::ROOT.deserialize(d)? {
        Value::Null => Ok(None),
        v => Ok(Some(v)),
    }
}

/// Where the parser is in the object, and whether the containers' `env` is kept: which keys
/// it keeps.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    at: At,
    env: bool,
}

impl Pruned {
    pub const TOP: Pruned = Pruned {
        at: At::Top,
        env: true,
    };
    pub const LEAN_TOP: Pruned = Pruned {
        at: At::LeanTop,
        env: true,
    };
    pub const LEAN_TOP_WITHOUT_ENV: Pruned = Pruned {
        at: At::LeanTop,
        env: false,
    };

    /// `key` is the member's name as decoded (its UTF-8 bytes).
    fn step(self, key: &[u8]) -> Step {
        if !self.env && self.at == At::LeanContainer && key == b"env" {
            return Step::CheckEnv;
        }
        self.at.step(key)
    }

    /// The state inside a value at `at`.
    fn entering(self, at: At) -> Pruned {
        Pruned { at, env: self.env }
    }
}

/// What a cut does with the value of one member, for a reader of the body's bytes
/// ([`crate::server::lean_scan`]): the decisions this module's visitor makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// Decoded whole.
    Keep,
    /// Left out.
    Skip,
    /// Read member by member (or element by element) in this state.
    Into(Pruned),
    /// A container's `env`, left out after its shape is checked.
    CheckEnv,
}

impl Pruned {
    /// What this cut does with the value of member `key` (its name as decoded, in UTF-8).
    pub fn member(self, key: &[u8]) -> Member {
        match self.step(key) {
            Step::Keep => Member::Keep,
            Step::Skip => Member::Skip,
            Step::Into(at) => Member::Into(self.entering(at)),
            Step::CheckEnv => Member::CheckEnv,
        }
    }

    /// The state of an array's elements when this value is an array: `None` when they are
    /// decoded whole.
    pub fn elements(self) -> Option<Pruned> {
        self.at.element().map(|at| self.entering(at))
    }
}

/// Where the parser is in the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// The object itself (full cut).
    Top,
    /// Its `metadata` (full cut).
    Metadata,
    /// The object itself (lean cut).
    LeanTop,
    /// Any `metadata`: identity and annotations.
    LeanMetadata,
    /// Any `spec`: a pod spec or a workload's spec (their keys do not overlap).
    LeanSpec,
    /// `template` or `jobTemplate`.
    LeanTemplate,
    /// `containers` or `initContainers`.
    LeanContainers,
    LeanContainer,
    /// A container's `env`.
    LeanEnvList,
    LeanEnv,
    /// A container's `volumeMounts`.
    LeanMounts,
    LeanMount,
    /// A pod's `volumes`: names and whether a claim backs them (side-agent main rules).
    LeanVolumes,
    LeanVolume,
    /// A `projected` volume: its mode and its ConfigMap sources (a service account's token
    /// volume, in every pod, lists a token and the downward API too).
    LeanProjected,
    LeanSources,
    LeanSource,
    /// A StatefulSet's `volumeClaimTemplates`: their names.
    LeanClaimTemplates,
    LeanClaimTemplate,
    /// Labels: those that name a workload (side-agent main rules).
    LeanLabels,
    /// `ownerReferences`: who owns and who controls the object.
    LeanOwners,
    LeanOwner,
    /// A container's `ports`: whether it declares any (each one an empty object).
    LeanPorts,
    LeanPort,
}

/// What to do with the value of one key.
enum Step {
    Keep,
    Skip,
    Into(At),
    /// A container's `env`, left out: skipped, failing on a shape the engine would report.
    CheckEnv,
}

impl At {
    fn step(self, key: &[u8]) -> Step {
        use At::*;
        match (self, key) {
            (Top, b"status") | (Metadata, b"managedFields") => Step::Skip,
            (Top, b"metadata") => Step::Into(Metadata),
            (Top | Metadata, _) => Step::Keep,
            (LeanTop, b"apiVersion" | b"kind") => Step::Keep,
            (LeanTop | LeanTemplate, b"metadata") => Step::Into(LeanMetadata),
            (LeanTop | LeanTemplate, b"spec") => Step::Into(LeanSpec),
            (LeanTop | LeanSpec, b"template") | (LeanSpec, b"jobTemplate") => {
                Step::Into(LeanTemplate)
            }
            // `ownerReferences`: an object with a controller owner is never patched (DESIGN
            // section 5.1), decided before evaluation; the side-agent rules read it too.
            (LeanMetadata, b"name" | b"generateName" | b"namespace" | b"annotations") => Step::Keep,
            (LeanMetadata, b"ownerReferences") => Step::Into(LeanOwners),
            (LeanOwner, b"kind" | b"name" | b"controller") => Step::Keep,
            // The side-agent rules read the workload's names, the pod's volumes and process
            // namespace, and which containers declare ports.
            (LeanMetadata, b"labels") => Step::Into(LeanLabels),
            (LeanLabels, key) if NAME_LABELS.iter().any(|l| l.as_bytes() == key) => Step::Keep,
            (LeanSpec, b"restartPolicy" | b"shareProcessNamespace") => Step::Keep,
            (LeanSpec, b"volumes") => Step::Into(LeanVolumes),
            (LeanSpec, b"volumeClaimTemplates") => Step::Into(LeanClaimTemplates),
            (LeanVolume, b"name" | b"persistentVolumeClaim" | b"ephemeral") => Step::Keep,
            // ConfigMap volumes: where the scripts a container runs may come from.
            (LeanVolume, b"configMap") => Step::Keep,
            (LeanVolume, b"projected") => Step::Into(LeanProjected),
            (LeanProjected, b"defaultMode") | (LeanSource, b"configMap") => Step::Keep,
            (LeanProjected, b"sources") => Step::Into(LeanSources),
            (LeanClaimTemplate, b"metadata") => Step::Into(LeanMetadata),
            (LeanContainer, b"ports") => Step::Into(LeanPorts),
            (LeanSpec, b"containers" | b"initContainers") => Step::Into(LeanContainers),
            (
                LeanContainer,
                b"name" | b"image" | b"command" | b"args" | b"restartPolicy" | b"envFrom"
                | b"workingDir",
            ) => Step::Keep,
            (LeanContainer, b"env") => Step::Into(LeanEnvList),
            (LeanContainer, b"volumeMounts") => Step::Into(LeanMounts),
            (LeanEnv, b"name" | b"value" | b"valueFrom") => Step::Keep,
            (LeanMount, b"name" | b"mountPath" | b"subPath") => Step::Keep,
            // A list where an object belongs: malformed, kept whole for the engine to report.
            (
                LeanContainers | LeanEnvList | LeanMounts | LeanVolumes | LeanSources
                | LeanClaimTemplates | LeanOwners | LeanPorts,
                _,
            ) => Step::Keep,
            _ => Step::Skip,
        }
    }

    /// The state of the elements when this value is an array.
    fn element(self) -> Option<At> {
        match self {
            At::LeanContainers => Some(At::LeanContainer),
            At::LeanEnvList => Some(At::LeanEnv),
            At::LeanMounts => Some(At::LeanMount),
            At::LeanVolumes => Some(At::LeanVolume),
            At::LeanSources => Some(At::LeanSource),
            At::LeanClaimTemplates => Some(At::LeanClaimTemplate),
            At::LeanOwners => Some(At::LeanOwner),
            At::LeanPorts => Some(At::LeanPort),
            _ => None,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Pruned {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pruned {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(Key(key)) = access.next_key::<Key<'de>>()? {
            match self.step(key.as_bytes()) {
                Step::Skip => {
                    access.next_value::<IgnoredAny>()?;
                }
                Step::Keep => {
                    let value = access.next_value::<Value>()?;
                    map.insert(key.into_owned(), value);
                }
                Step::Into(at) => {
                    let value = access.next_value_seed(self.entering(at))?;
                    map.insert(key.into_owned(), value);
                }
                Step::CheckEnv => access.next_value_seed(EnvCheck)?,
            }
        }
        Ok(Value::Object(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(access.size_hint().unwrap_or(0));
        match self.at.element() {
            Some(at) => {
                while let Some(item) = access.next_element_seed(self.entering(at))? {
                    items.push(item);
                }
            }
            None => {
                while let Some(item) = access.next_element::<Value>()? {
                    items.push(item);
                }
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// A container's `env` skipped by [`LeanWithoutEnv`], checked for what the engine reports
/// about it (it must be an array, and each entry's `name` a string): anything else fails the
/// decoding (serde's default for a type a visitor does not take), so that the caller decodes
/// the lean cut, where the engine reports it.
struct EnvCheck;
struct EnvEntryCheck;
struct EnvNameCheck;

impl<'de> DeserializeSeed<'de> for EnvCheck {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EnvCheck {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an env list")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        while access.next_element_seed(EnvEntryCheck)?.is_some() {}
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for EnvEntryCheck {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EnvEntryCheck {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an env entry")
    }
    // An entry that is not an object has no name: the engine passes over it.
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        while access.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = access.next_key::<Key<'de>>()? {
            if key == "name" {
                access.next_value_seed(EnvNameCheck)?;
            } else {
                access.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for EnvNameCheck {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EnvNameCheck {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an env name")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
}

/// A map key, borrowed from the body when it has no escapes: a skipped key costs no
/// allocation.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_lean_cut_keeps_what_evaluation_reads() {
        let text = r#"{"apiVersion":"batch/v1","kind":"CronJob","status":{},
            "metadata":{"name":"c","namespace":"n","labels":{"a":"b","app":"web"},"annotations":{"x":"y"},
              "ownerReferences":[{"apiVersion":"v1","kind":"K","name":"k","uid":"u","controller":true}],
              "managedFields":[{"a":1}]},
            "spec":{"schedule":"* * * * *","jobTemplate":{"metadata":{"labels":{}},"spec":{
              "backoffLimit":1,"template":{"metadata":{"annotations":{"pidone.io/ignore":"all"}},
                "spec":{"restartPolicy":"Never","volumes":[{"name":"v"}],
                  "initContainers":[{"name":"i","image":"x","restartPolicy":"Always",
                    "resources":{"limits":{}}}],
                  "containers":[{"name":"a","image":"y","command":["sh","-c","x"],
                    "args":["1"],"ports":[{"containerPort":80}],
                    "env":[{"name":"E","value":"big"},{"name":"F","valueFrom":{}}],
                    "volumeMounts":[{"name":"v","mountPath":"/v","readOnly":true}]},
                    {"name":"b"}]}}}}}}"#;
        assert_eq!(
            parse_lean(text).unwrap(),
            json!({"apiVersion":"batch/v1","kind":"CronJob",
              "metadata":{"name":"c","namespace":"n","labels":{"app":"web"},"annotations":{"x":"y"},
                "ownerReferences":[{"kind":"K","name":"k","controller":true}]},
              "spec":{"jobTemplate":{"metadata":{"labels":{}},"spec":{
                "template":{"metadata":{"annotations":{"pidone.io/ignore":"all"}},
                  "spec":{"restartPolicy":"Never","volumes":[{"name":"v"}],
                    "initContainers":[{"name":"i","image":"x","restartPolicy":"Always"}],
                    "containers":[{"name":"a","image":"y","command":["sh","-c","x"],
                      "args":["1"],"ports":[{}],"env":[{"name":"E","value":"big"},{"name":"F","valueFrom":{}}],
                      "volumeMounts":[{"name":"v","mountPath":"/v"}]},
                      {"name":"b"}]}}}}}})
        );
        // Keys with escapes are read as what they spell.
        assert_eq!(
            parse_lean(r#"{"kind":"Pod","spec":{"containers":[{"n\u0061me":"a","x\u0079":1}]}}"#)
                .unwrap(),
            json!({"kind":"Pod","spec":{"containers":[{"name":"a"}]}})
        );
        // PodTemplate keeps its template at the top.
        assert_eq!(
            parse_lean(r#"{"kind":"PodTemplate","template":{"spec":{"containers":[]},"x":1}}"#)
                .unwrap(),
            json!({"kind":"PodTemplate","template":{"spec":{"containers":[]}}})
        );
        // Malformed shapes are kept for the engine to report.
        assert_eq!(
            parse_lean(r#"{"kind":"Pod","spec":{"containers":{"a":1},"initContainers":[7,null]}}"#)
                .unwrap(),
            json!({"kind":"Pod","spec":{"containers":{"a":1},"initContainers":[7,null]}})
        );
    }

    #[test]
    fn the_cut_without_env_checks_the_env_lists_it_leaves_out() {
        let pod = |env: &str| {
            format!(
                r#"{{"kind":"Pod","spec":{{"containers":[{{"name":"a","env":{env},"envFrom":[]}}]}}}}"#
            )
        };
        for fine in [
            "null",
            "[]",
            r#"[{"name":"A","value":"1"},{"name":"B","valueFrom":{"fieldRef":{}}}]"#,
            r#"[{"n\u0061me":"A"},{"name":null},{"value":"no name"},7,"x",[1]]"#,
        ] {
            assert_eq!(
                parse_lean_without_env(&pod(fine)).unwrap(),
                json!({"kind":"Pod","spec":{"containers":[{"name":"a","envFrom":[]}]}}),
                "{fine}"
            );
        }
        // What the engine reports: the lean cut (which keeps env) is decoded instead.
        for reported in [
            "5",
            r#"{"name":"A"}"#,
            r#""A""#,
            r#"[{"name":5}]"#,
            r#"[{"name":"A"},{"n\u0061me":["B"]}]"#,
        ] {
            assert!(
                parse_lean_without_env(&pod(reported)).is_err(),
                "{reported}"
            );
            assert!(parse_lean(&pod(reported)).is_ok(), "{reported}");
        }
        // Init containers' env is left out too; nothing else is.
        let text = r#"{"kind":"Pod","spec":{"initContainers":[{"name":"i","env":[{"name":"X"}],"command":["a"]}]}}"#;
        assert_eq!(
            parse_lean_without_env(text).unwrap(),
            json!({"kind":"Pod","spec":{"initContainers":[{"name":"i","command":["a"]}]}})
        );
    }

    #[test]
    fn leaves_out_managed_fields_and_status_only() {
        let text = r#"{"kind":"Pod","metadata":{"name":"p","managedFields":[{"a":1}],
            "annotations":{"managedFields":"kept"}},"spec":{"status":"kept","x":[1,2.5,null,true]},
            "status":{"phase":"Running"}}"#;
        assert_eq!(
            parse(text).unwrap(),
            json!({"kind":"Pod","metadata":{"name":"p","annotations":{"managedFields":"kept"}},
                   "spec":{"status":"kept","x":[1,2.5,null,true]}})
        );
        assert_eq!(parse("[1]").unwrap(), json!([1]));
        assert_eq!(parse("\"s\"").unwrap(), json!("s"));
        assert!(parse("{} x").is_err());
        let deep = format!("{{\"spec\":{}{}}}", "[".repeat(1000), "]".repeat(1000));
        assert!(
            parse(&deep)
                .unwrap_err()
                .to_string()
                .contains("recursion limit")
        );
    }
}
