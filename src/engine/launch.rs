//! Launch classes: how a container's PID 1 comes to be (docs/design.md section 1).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LaunchClass {
    /// No shell: the program itself is PID 1.
    Direct,
    /// A shell does setup, then `exec`s the one long-running program.
    Exec,
    /// A shell runs one long-running program in the foreground without `exec`.
    NoExec,
    /// Several long-running programs: background jobs, pipelines, supervisors.
    Multi,
    /// The shell must stay: loops, commands after the app, traps.
    Resident,
    /// Finite work that exits (init containers, Job pods).
    OneShot,
    /// Runs a script file whose text pidone cannot see.
    Script,
    /// A shell script pidone would not or could not parse.
    Unparsed,
    /// No `command`: the image's ENTRYPOINT runs.
    ImageDefault,
}

impl LaunchClass {
    pub fn as_str(self) -> &'static str {
        match self {
            LaunchClass::Direct => "direct",
            LaunchClass::Exec => "exec",
            LaunchClass::NoExec => "no-exec",
            LaunchClass::Multi => "multi",
            LaunchClass::Resident => "resident",
            LaunchClass::OneShot => "one-shot",
            LaunchClass::Script => "script",
            LaunchClass::Unparsed => "unparsed",
            LaunchClass::ImageDefault => "image-default",
        }
    }
}

impl fmt::Display for LaunchClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
