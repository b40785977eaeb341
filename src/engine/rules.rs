//! Rule identifiers: stable, they appear in messages, metrics, annotations, JSON and SARIF.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    ShellNoExec,
    MultiProcess,
    ShellResident,
    ScriptEntrypoint,
    SideAgent,
    SidecarStopHack,
    ShellUnparsed,
    SignalDeafPid1,
}

impl RuleId {
    pub const ALL: [RuleId; 8] = [
        RuleId::ShellNoExec,
        RuleId::MultiProcess,
        RuleId::ShellResident,
        RuleId::ScriptEntrypoint,
        RuleId::SideAgent,
        RuleId::SidecarStopHack,
        RuleId::ShellUnparsed,
        RuleId::SignalDeafPid1,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::ShellNoExec => "shell-no-exec",
            RuleId::MultiProcess => "multi-process",
            RuleId::ShellResident => "shell-resident",
            RuleId::ScriptEntrypoint => "script-entrypoint",
            RuleId::SideAgent => "side-agent",
            RuleId::SidecarStopHack => "sidecar-stop-hack",
            RuleId::ShellUnparsed => "shell-unparsed",
            RuleId::SignalDeafPid1 => "signal-deaf-pid1",
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown rule `{0}` (known: shell-no-exec, multi-process, shell-resident, script-entrypoint, side-agent, sidecar-stop-hack, shell-unparsed, signal-deaf-pid1)"
)]
pub struct UnknownRule(pub String);

impl FromStr for RuleId {
    type Err = UnknownRule;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RuleId::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRule(s.to_string()))
    }
}
