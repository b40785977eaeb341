//! The kubelet's `$(VAR)` expansion of `command` and `args`, done before classification so a
//! launch reads as the container runs it (`$(SH) -c "$(SCRIPT)"` with literal env values).
//!
//! The kubelet replaces `$(NAME)` with the value of the container's env var NAME (values set
//! with `value:` are known here; `valueFrom` and `envFrom` are only known at run time), turns
//! `$$` into `$`, and leaves any other reference as written, which the shell then reads as a
//! command substitution.

use serde_json::Value;

/// One env var of the container: its name and, when set literally, its (expanded) value.
pub type EnvVar = (String, Option<String>);

/// The container's environment as the kubelet builds it: literal values expanded against the
/// entries before them; `valueFrom` entries have no value known at admission.
pub fn environment(container: &Value) -> (Vec<EnvVar>, bool) {
    let mut env: Vec<EnvVar> = Vec::new();
    if let Some(items) = container.get("env").and_then(Value::as_array) {
        for item in items {
            let Some(name) = item.get("name").and_then(Value::as_str) else {
                continue;
            };
            let value = if item.get("valueFrom").is_some_and(|v| !v.is_null()) {
                None
            } else {
                let raw = item.get("value").and_then(Value::as_str).unwrap_or("");
                let expanded = expand(raw, &env, false);
                // A value that refers to an unknown one is unknown itself.
                expanded.unknown.is_empty().then_some(expanded.text)
            };
            env.retain(|(n, _)| n != name);
            env.push((name.to_string(), value));
        }
    }
    let env_from = container
        .get("envFrom")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    (env, env_from)
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
pub fn expand(text: &str, env: &[EnvVar], env_from: bool) -> Expanded {
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
                let known = env.iter().rev().find(|(n, _)| n == name);
                let replacement = match known {
                    Some((_, Some(value))) => Some(value.clone()),
                    Some((_, None)) => {
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
    use serde_json::json;

    #[test]
    fn literal_values_expand_unknown_ones_get_placeholders() {
        let c = json!({"env": [
            {"name": "SH", "value": "/bin/ash"},
            {"name": "DIR", "value": "/srv"},
            {"name": "APP", "value": "$(DIR)/app"},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
        ]});
        let (env, from) = environment(&c);
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
    fn env_from_makes_unlisted_names_unknown() {
        let e = expand("$(CMD)", &[], true);
        assert_eq!(e.text, "_CMD__");
        assert!(has_placeholder(&e.text, &e.unknown));
        assert_eq!(expand("$(CMD)", &[], false).text, "$(CMD)");
    }
}
