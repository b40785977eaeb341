//! The `parser:` section: limits that keep hostile scripts from hurting the parser. Its own
//! module because the script analyzers take it (on reload) without the rest of the config.

use crate::engine::durations::{duration, ser_duration};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Limits that keep hostile scripts from hurting the parser (and so the webhook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ParserConfig {
    /// Scripts larger than this are not parsed.
    pub max_script_bytes: usize,
    /// Nesting deeper than this (brackets, compound commands) is not parsed.
    pub max_depth: usize,
    /// Wall-clock budget for one parse in a worker.
    #[serde(deserialize_with = "duration", serialize_with = "ser_duration")]
    pub deadline: Duration,
    /// When the parse workers could not parse a script for reasons of their own (all busy, the
    /// review's time ran out), answer the review 429 (the apiserver retries it) instead of
    /// deciding with the script `unparsed`.
    pub fail_closed: bool,
}

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig {
            max_script_bytes: 64 * 1024,
            max_depth: 64,
            deadline: Duration::from_millis(250),
            fail_closed: false,
        }
    }
}
