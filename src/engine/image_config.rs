//! What an image runs by default, as the caller looked it up from a registry: the engine only
//! reads it.

use serde::{Deserialize, Serialize};

/// What an image runs when the pod does not say: its config's `Entrypoint` and `Cmd`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// The digest the look-up resolved the reference to.
    pub digest: String,
    /// The config's `WorkingDir` and `User` (empty when the image sets none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
}
