//! The object of a review, parsed for analysis: a `serde_json::Value` of the raw JSON without
//! the parts pidone never reads, `metadata.managedFields` and `status`. Those are most of the
//! allocations of parsing a Pod the apiserver sends (managed fields list every field every
//! manager set), and nothing in the engine or the planner looks at them. Patches computed on
//! this value stay valid for the real object: they never address the pruned parts.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Parses an object, leaving out `metadata.managedFields` and `status`.
pub fn parse(json: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = Pruned::Top.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// For `#[serde(deserialize_with)]`: the object inside a review, parsed in the same pass as the
/// review; JSON `null` gives `None`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    match Pruned::Top.deserialize(d)? {
        Value::Null => Ok(None),
        v => Ok(Some(v)),
    }
}

#[derive(Clone, Copy)]
enum Pruned {
    /// The object itself.
    Top,
    /// Its `metadata`.
    Metadata,
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
        while let Some(key) = access.next_key::<String>()? {
            match (self, key.as_str()) {
                (Pruned::Top, "status") | (Pruned::Metadata, "managedFields") => {
                    access.next_value::<IgnoredAny>()?;
                }
                (Pruned::Top, "metadata") => {
                    let metadata = access.next_value_seed(Pruned::Metadata)?;
                    map.insert(key, metadata);
                }
                _ => {
                    let value = access.next_value::<Value>()?;
                    map.insert(key, value);
                }
            }
        }
        Ok(Value::Object(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(access.size_hint().unwrap_or(0));
        while let Some(item) = access.next_element::<Value>()? {
            items.push(item);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
