//! Durations in configuration files, written as people write them (`250ms`, `2s`, `10m`).

use serde::{Deserialize, Deserializer};
use std::time::Duration;

pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(text.trim()).map_err(|e| {
        serde::de::Error::custom(format!("`{text}` is not a duration like 2s or 10m: {e}"))
    })
}

pub fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}
