//! Validation of objects against a CustomResourceDefinition's `openAPIV3Schema`, the way the
//! apiserver treats a structural schema: types, `required`, `enum`, `format` ranges of integers,
//! `items`, `additionalProperties`, and unknown fields, which the apiserver would prune
//! silently (so here they are errors: a field pidone writes that the CRD does not know is lost).
//! `metadata` is checked for the ObjectMeta fields pidone sets.

use serde_json::Value;

/// The `openAPIV3Schema` of `version` in a CRD file (YAML).
pub fn schema_of(crd_yaml: &str, version: &str) -> Value {
    let crd: Value = serde_saphyr::from_str(crd_yaml).expect("CRD YAML");
    crd["spec"]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| panic!("no version {version} in the CRD"))["schema"]["openAPIV3Schema"]
        .clone()
}

/// The CRD's group, kinds and scope.
pub fn names_of(crd_yaml: &str) -> (String, String, String) {
    let crd: Value = serde_saphyr::from_str(crd_yaml).expect("CRD YAML");
    (
        crd["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        crd["spec"]["names"]["kind"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        crd["spec"]["scope"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Every violation of `schema` by `value`, each with its path.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, "", &mut errors, true);
    errors
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>, root: bool) {
    let at = if path.is_empty() { "." } else { path };
    if let Some(want) = schema.get("type").and_then(Value::as_str) {
        let got = type_name(value);
        let ok = got == want || (want == "number" && got == "integer");
        if !ok {
            errors.push(format!("{at}: expected {want}, found {got}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(n) = value.as_i64() {
        let (min, max) = match schema.get("format").and_then(Value::as_str) {
            Some("int32") => (i64::from(i32::MIN), i64::from(i32::MAX)),
            _ => (i64::MIN, i64::MAX),
        };
        if n < min || n > max {
            errors.push(format!("{at}: {n} out of range for its format"));
        }
        if let Some(m) = schema.get("minimum").and_then(Value::as_i64)
            && n < m
        {
            errors.push(format!("{at}: {n} < minimum {m}"));
        }
    }
    if let (Some(s), Some(max)) = (
        value.as_str(),
        schema.get("maxLength").and_then(Value::as_u64),
    ) && s.chars().count() as u64 > max
    {
        errors.push(format!("{at}: longer than {max}"));
    }
    match value {
        Value::Object(map) => {
            if root && path.is_empty() {
                // metadata: ObjectMeta, validated by the apiserver itself.
                if let Some(meta) = map.get("metadata") {
                    check_metadata(meta, errors);
                }
            }
            for key in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !map.contains_key(key) {
                    errors.push(format!("{at}: missing required field {key}"));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let preserve = schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                if root && path.is_empty() && key == "metadata" {
                    continue;
                }
                match properties.and_then(|p| p.get(key)) {
                    Some(s) => check(s, child, &child_path, errors, false),
                    None => match additional {
                        Some(s) if s.is_object() => check(s, child, &child_path, errors, false),
                        Some(Value::Bool(true)) => {}
                        _ if preserve => {}
                        _ => errors.push(format!(
                            "{child_path}: unknown field (the apiserver would drop it)"
                        )),
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{path}[{i}]"), errors, false);
                }
            }
        }
        _ => {}
    }
}

fn check_metadata(meta: &Value, errors: &mut Vec<String>) {
    let Some(map) = meta.as_object() else {
        errors.push(".metadata: not an object".into());
        return;
    };
    for (key, v) in map {
        match key.as_str() {
            "name" | "namespace" => {
                let ok = v.as_str().is_some_and(|s| {
                    !s.is_empty()
                        && s.len() <= 253
                        && s.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
                        })
                });
                if !ok {
                    errors.push(format!(".metadata.{key}: not a DNS subdomain: {v}"));
                }
            }
            "labels" | "annotations" => {
                if !v
                    .as_object()
                    .is_some_and(|m| m.values().all(Value::is_string))
                {
                    errors.push(format!(".metadata.{key}: not a map of strings"));
                }
            }
            "ownerReferences" => {
                for (i, r) in v.as_array().into_iter().flatten().enumerate() {
                    for field in ["apiVersion", "kind", "name", "uid"] {
                        if !r.get(field).is_some_and(Value::is_string) {
                            errors.push(format!(".metadata.ownerReferences[{i}].{field}: missing"));
                        }
                    }
                }
            }
            other => errors.push(format!(".metadata.{other}: not a field pidone should set")),
        }
    }
    if !map.contains_key("name") {
        errors.push(".metadata.name: missing".into());
    }
}
