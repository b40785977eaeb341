//! The kubelet's `$(VAR)` expansion of `command` and `args`, done before classification so a
//! launch reads as the container runs it (`$(SH) -c "$(SCRIPT)"` with literal env values).
//!
//! The kubelet replaces `$(NAME)` with the value of the container's env var NAME (values set
//! with `value:` are known here; `valueFrom` and `envFrom` are only known at run time), turns
//! `$$` into `$`, and leaves any other reference as written, which the shell then reads as a
//! command substitution.

use crate::engine::workload::{EnvEntry, EnvValue};
use std::cell::OnceCell;
use std::collections::HashMap;

/// One env var of the container: its name and, when set literally, its (expanded) value.
pub type EnvVar = (String, Option<String>);

/// A container's environment as the kubelet builds it: literal values expanded against the
/// entries before them; `valueFrom` entries have no value known at admission. Built the first
/// time something reads it: most launches have no `$(VAR)`, no tini and no unparsed script,
/// and never need it.
#[derive(Debug, Default)]
pub struct Environment<'a> {
    /// The container's `env` entries, when the environment is a container's.
    container: Option<&'a [EnvEntry<'a>]>,
    built: OnceCell<Built>,
}

#[derive(Debug, Default)]
struct Built {
    vars: Vec<EnvVar>,
    /// Where each name is in `vars`.
    index: HashMap<String, usize>,
}

impl Built {
    fn of(vars: Vec<EnvVar>) -> Built {
        let mut built = Built::default();
        for (name, value) in vars {
            built.set(name, value);
        }
        built
    }

    fn get(&self, name: &str) -> Option<&Option<String>> {
        let &at = self.index.get(name)?;
        self.vars.get(at).map(|(_, v)| v)
    }

    /// A name set again replaces the earlier value, in its place.
    fn set(&mut self, name: String, value: Option<String>) {
        match self.index.get(&name) {
            Some(&at) => {
                if let Some(slot) = self.vars.get_mut(at) {
                    slot.1 = value;
                }
            }
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push((name, value));
            }
        }
    }
}

impl<'a> Environment<'a> {
    /// The environment a container's `env` entries make, built on first use.
    pub fn of(entries: &'a [EnvEntry<'a>]) -> Environment<'a> {
        Environment {
            container: Some(entries),
            built: OnceCell::new(),
        }
    }

    /// No variables (a script read from a file: the kubelet expands nothing in it).
    pub fn none() -> Environment<'static> {
        Environment::default()
    }

    /// Given variables, in order (a name given twice keeps its last value).
    pub fn from_vars(vars: Vec<EnvVar>) -> Environment<'static> {
        Environment {
            container: None,
            built: OnceCell::from(Built::of(vars)),
        }
    }

    /// Whether a container's variables were read (built): an analysis that never read them
    /// holds whatever the container's `env` says.
    pub fn was_read(&self) -> bool {
        self.container.is_some() && self.built.get().is_some()
    }

    fn built(&self) -> &Built {
        self.built
            .get_or_init(|| self.container.map(build).unwrap_or_default())
    }

    /// Every variable, each name once.
    pub fn vars(&self) -> &[EnvVar] {
        &self.built().vars
    }

    /// The variable `name`: `Some(None)` when it is set from elsewhere (`valueFrom`).
    pub fn get(&self, name: &str) -> Option<&Option<String>> {
        self.built().get(name)
    }

    /// The literal value of `name`, when it is set literally.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name)?.as_deref()
    }
}

fn build(entries: &[EnvEntry<'_>]) -> Built {
    let mut env = Built::default();
    env.vars.reserve(entries.len());
    env.index.reserve(entries.len());
    for entry in entries {
        let value = match entry.value {
            EnvValue::FromElsewhere => None,
            EnvValue::Literal(raw) => {
                let expanded = expand_with(raw, |n| env.get(n), false);
                // A value that refers to an unknown one is unknown itself.
                expanded.unknown.is_empty().then_some(expanded.text)
            }
        };
        env.set(entry.name.to_string(), value);
    }
    env
}

/// A replaced stretch of the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edit {
    /// Byte range in the original text.
    pub start: usize,
    pub end: usize,
    /// Length of what replaced it.
    pub new_len: usize,
}

/// Text after expansion.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expanded {
    pub text: String,
    /// References whose values are set at run time, each replaced by a placeholder word of the
    /// same length (so a parser reads one word, not a command substitution).
    pub unknown: Vec<String>,
    pub edits: Vec<Edit>,
}

impl Expanded {
    /// Maps a byte offset in the expanded text back to the original, unless it falls inside
    /// replaced text.
    pub fn original_offset(&self, offset: usize) -> Option<usize> {
        let mut shift: isize = 0;
        for e in &self.edits {
            let new_start = (e.start as isize + shift) as usize;
            let new_end = new_start + e.new_len;
            if offset < new_start {
                break;
            }
            if offset < new_end {
                return (offset == new_start).then_some(e.start);
            }
            shift += e.new_len as isize - (e.end - e.start) as isize;
        }
        let original = offset as isize - shift;
        (original >= 0).then_some(original as usize)
    }

    pub fn changed(&self) -> bool {
        !self.edits.is_empty()
    }
}

/// The placeholder for an unknown `$(NAME)`: `_NAME__`, as long as the reference.
pub fn placeholder(name: &str) -> String {
    format!("_{}__", name.replace(['.', '-'], "_"))
}

/// Expands `$(NAME)` references. `env_from`: the container also takes env from ConfigMaps or
/// Secrets, so a name it does not list may still be defined at run time.
pub fn expand(text: &str, env: &Environment<'_>, env_from: bool) -> Expanded {
    // Only a `$(NAME)` reference reads the environment (and so builds it).
    expand_with(text, |name| env.get(name), env_from)
}

fn expand_with<'e>(
    text: &str,
    lookup: impl Fn(&str) -> Option<&'e Option<String>>,
    env_from: bool,
) -> Expanded {
    let mut out = Expanded {
        text: String::with_capacity(text.len()),
        ..Expanded::default()
    };
    if !text.contains('$') {
        out.text.push_str(text);
        return out;
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => {
                // `$$` -> `$`
                out.text.push_str(&text[copied..i]);
                out.text.push('$');
                out.edits.push(Edit {
                    start: i,
                    end: i + 2,
                    new_len: 1,
                });
                i += 2;
                copied = i;
            }
            Some(b'(') => {
                let name_start = i + 2;
                let name_len = text[name_start..]
                    .find(|c: char| {
                        !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
                    })
                    .unwrap_or(text.len() - name_start);
                let name = &text[name_start..name_start + name_len];
                let closes = bytes.get(name_start + name_len) == Some(&b')');
                let end = name_start + name_len + 1;
                if !closes || name.is_empty() {
                    i += 2;
                    continue;
                }
                let replacement = match lookup(name) {
                    Some(Some(value)) => Some(value.clone()),
                    Some(None) => {
                        out.unknown.push(name.to_string());
                        Some(placeholder(name))
                    }
                    None if env_from => {
                        out.unknown.push(name.to_string());
                        Some(placeholder(name))
                    }
                    None => None,
                };
                match replacement {
                    Some(r) => {
                        out.text.push_str(&text[copied..i]);
                        out.edits.push(Edit {
                            start: i,
                            end,
                            new_len: r.len(),
                        });
                        out.text.push_str(&r);
                        i = end;
                        copied = i;
                    }
                    None => i = end,
                }
            }
            _ => i += 1,
        }
    }
    out.text.push_str(&text[copied..]);
    out
}

/// Whether `text` holds a placeholder of an unknown reference.
pub fn has_placeholder(text: &str, unknown: &[String]) -> bool {
    unknown.iter().any(|n| text.contains(&placeholder(n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::workload::{ContainerSpec, extract};
    use serde_json::{Value, json};

    /// A Pod whose one container is `c` (with a name added).
    fn pod(mut c: Value) -> Value {
        c["name"] = json!("app");
        json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [c]}})
    }

    /// The container of a [`pod`], as the engine reads it.
    fn only_container(pod: &Value) -> ContainerSpec<'_> {
        extract(pod).unwrap().unwrap().containers.remove(0)
    }

    #[test]
    fn literal_values_expand_unknown_ones_get_placeholders() {
        let p = pod(json!({"env": [
            {"name": "SH", "value": "/bin/ash"},
            {"name": "DIR", "value": "/srv"},
            {"name": "APP", "value": "$(DIR)/app"},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
        ]}));
        let c = only_container(&p);
        let env = Environment::of(&c.env);
        let from = c.env_from;
        assert!(!from);
        let e = expand(
            "$(SH) -c 'exec $(APP) --node=$(NODE) $(hostname) $$(SH)'",
            &env,
            from,
        );
        assert_eq!(
            e.text,
            "/bin/ash -c 'exec /srv/app --node=_NODE__ $(hostname) $(SH)'"
        );
        assert_eq!(e.unknown, vec!["NODE".to_string()]);
        // Offsets outside replacements map back; inside do not.
        let at = e.text.find("exec").unwrap();
        assert_eq!(
            e.original_offset(at),
            Some(at - "/bin/ash".len() + "$(SH)".len())
        );
        assert_eq!(e.original_offset(e.text.find("/srv").unwrap() + 1), None);
    }

    #[test]
    fn built_on_first_read_and_a_name_set_again_replaces_its_value() {
        let p = pod(json!({"env": [
            {"name": "A", "value": "x"},
            {"name": "B", "value": "1"},
            {"name": "A", "value": "$(A)y"},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"value": "no name"}
        ]}));
        let c = only_container(&p);
        let env = Environment::of(&c.env);
        assert!(env.built.get().is_none(), "nothing read yet");
        // The second A expands against the first.
        assert_eq!(env.value("A"), Some("xy"));
        assert_eq!(env.get("B"), Some(&None));
        assert_eq!(env.get("C"), None);
        assert_eq!(env.vars().len(), 2);
        assert_eq!(expand("$(A) $(B) $(C)", &env, false).text, "xy _B__ $(C)");
    }

    #[test]
    fn thousands_of_env_vars_build_in_linear_time() {
        use std::time::{Duration, Instant};
        let container = |n: usize| {
            let env: Vec<Value> = (0..n)
                .map(|i| json!({"name": format!("V{}", i % (n / 2)), "value": "v"}))
                .collect();
            pod(json!({ "env": env }))
        };
        let (small, large) = (container(4_000), container(32_000));
        // The best of three runs: a shared machine only ever makes a run slower.
        let (small, large) = (only_container(&small), only_container(&large));
        let time = |c: &ContainerSpec<'_>| {
            (0..3)
                .map(|_| {
                    let started = Instant::now();
                    assert!(!Environment::of(&c.env).vars().is_empty());
                    started.elapsed()
                })
                .min()
                .unwrap_or_default()
        };
        let (t_small, t_large) = (time(&small), time(&large));
        // 8 times the variables: well under 64 times the time (what quadratic would take).
        assert!(
            t_large < t_small * 24 + Duration::from_millis(20),
            "{t_small:?} -> {t_large:?}"
        );
    }

    #[test]
    fn a_non_empty_env_from_list_is_read_as_env_from() {
        for (c, expected) in [
            (
                json!({"envFrom": [{"configMapRef": {"name": "cfg"}}]}),
                true,
            ),
            (json!({"envFrom": []}), false),
            (json!({"envFrom": null}), false),
            (json!({}), false),
        ] {
            let p = pod(c.clone());
            assert_eq!(only_container(&p).env_from, expected, "{c}");
        }
    }

    #[test]
    fn env_from_makes_unlisted_names_unknown() {
        let e = expand("$(CMD)", &Environment::none(), true);
        assert_eq!(e.text, "_CMD__");
        assert!(has_placeholder(&e.text, &e.unknown));
        assert_eq!(expand("$(CMD)", &Environment::none(), false).text, "$(CMD)");
    }
}
