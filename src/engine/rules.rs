//! The rules: their identifiers (stable: they appear in messages, metrics, annotations, JSON
//! and SARIF) and, in one table, what pidone knows about each (default action, harm, summary).
//! `pidone explain`'s long texts live in `explain.rs`; how a rule is detected, in the code that
//! detects it.

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

    /// This rule's row of [`RULES`].
    pub fn info(self) -> &'static RuleInfo {
        &RULES[self as usize]
    }

    pub fn as_str(self) -> &'static str {
        self.info().name
    }
}

/// What enforce mode does with a finding. Ordered by severity (`Ignore` lowest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Ignore,
    Warn,
    Mutate,
    Deny,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Ignore => "ignore",
            Action::Warn => "warn",
            Action::Mutate => "mutate",
            Action::Deny => "deny",
        }
    }
}

/// How much harm a launch does when its pod is stopped (reports' severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Harm {
    Low,
    Medium,
    High,
}

/// One rule's facts.
#[derive(Debug)]
pub struct RuleInfo {
    pub id: RuleId,
    pub name: &'static str,
    /// What enforce mode does unless the configuration says otherwise.
    pub default_action: Action,
    pub harm: Harm,
    /// One line, for tables and SARIF.
    pub summary: &'static str,
}

/// Every rule, in the order of [`RuleId`].
pub const RULES: [RuleInfo; 8] = [
    RuleInfo {
        id: RuleId::ShellNoExec,
        name: "shell-no-exec",
        default_action: Action::Mutate,
        // The program never sees SIGTERM: every stop waits out the grace period, then SIGKILL.
        harm: Harm::Medium,
        summary: "A shell runs the app without exec: the shell is PID 1 and swallows SIGTERM.",
    },
    RuleInfo {
        id: RuleId::MultiProcess,
        name: "multi-process",
        default_action: Action::Deny,
        // Several programs, none forwarding SIGTERM: killed mid-write after the grace period.
        harm: Harm::High,
        summary: "Several long-running programs share one container with no init to signal them.",
    },
    RuleInfo {
        id: RuleId::ShellResident,
        name: "shell-resident",
        default_action: Action::Warn,
        harm: Harm::Low,
        summary: "A shell must stay PID 1 (loops, traps, commands after the app).",
    },
    RuleInfo {
        id: RuleId::ScriptEntrypoint,
        name: "script-entrypoint",
        default_action: Action::Warn,
        harm: Harm::Low,
        summary: "The container runs a script file whose text pidone cannot see.",
    },
    RuleInfo {
        id: RuleId::SideAgent,
        name: "side-agent",
        default_action: Action::Mutate,
        harm: Harm::Medium,
        summary: "A side agent runs in containers next to the app instead of as a native sidecar.",
    },
    RuleInfo {
        id: RuleId::SidecarStopHack,
        name: "sidecar-stop-hack",
        default_action: Action::Warn,
        harm: Harm::Low,
        summary: "A Job container stops its sidecar by hand.",
    },
    RuleInfo {
        id: RuleId::ShellUnparsed,
        name: "shell-unparsed",
        default_action: Action::Warn,
        harm: Harm::Low,
        summary: "A shell script pidone would not or could not parse.",
    },
    RuleInfo {
        id: RuleId::SignalDeafPid1,
        name: "signal-deaf-pid1",
        default_action: Action::Warn,
        harm: Harm::Low,
        summary: "The program at PID 1 installs no SIGTERM handler (sleep, tail, cat...).",
    },
];

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown rule `{0}` (known: {known})", known = known_names())]
pub struct UnknownRule(pub String);

fn known_names() -> String {
    RULES.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
}

impl FromStr for RuleId {
    type Err = UnknownRule;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RuleId::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRule(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_the_order_of_the_ids() {
        for (i, rule) in RuleId::ALL.into_iter().enumerate() {
            assert_eq!(RULES[i].id, rule);
            assert_eq!(rule.info().id, rule);
            assert_eq!(rule.as_str().parse::<RuleId>().ok(), Some(rule));
        }
    }
}
