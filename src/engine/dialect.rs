//! Which shells exec a script's final command by themselves, so that messages say what
//! happens under which shell instead of claiming every shell stays PID 1.
//!
//! Measured in PID namespaces (dash 0.5.12, bash 5.2.15, busybox 1.35.0; the test
//! `tests/shell_dialects.rs` repeats every claim made here against the installed shells):
//! - dash never execs the final command: it stays PID 1.
//! - bash (5.1 and later) execs a final simple command with no redirect, outside `{ }`, `if`,
//!   `case`, loops, subshells, functions and `eval`, not negated, when the script ends right
//!   after it (at most one newline follows), unless an EXIT trap or a trap with an action on
//!   another signal than INT and QUIT was set.
//! - busybox sh (ash) execs a final simple command, also with a redirect or inside `{ }`,
//!   `if`, `case` or `( )`, when no newline follows it in the script and no trap has an
//!   action; not in a function, `eval`, a pipeline or when negated.

use crate::engine::launchers::ShellFamily;
use crate::engine::script::{FinalCommand, FinalKind, Trap};

/// Whether a shell execs the final command itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// The final command replaces the shell as PID 1.
    Execs,
    /// The shell stays PID 1, the command runs as its child.
    Stays,
    /// Not measured: no claim either way.
    Unknown,
}

/// What each measured shell does with one script's final command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truth {
    pub dash: Fate,
    pub bash: Fate,
    pub busybox: Fate,
}

/// The text after the script's last line with a command on it (blank and comment-only lines
/// at the end are not commands).
pub fn tail(script: &str) -> &str {
    let mut end = script.len();
    loop {
        let head = &script[..end];
        let line_start = head.rfind('\n').map_or(0, |i| i + 1);
        let line = head[line_start..].trim();
        if !line.is_empty() && !line.starts_with('#') {
            return &script[end..];
        }
        if line_start == 0 {
            return "";
        }
        end = line_start - 1;
    }
}

fn is_exit(signal: &str) -> bool {
    matches!(signal, "EXIT" | "0" | "SIGEXIT")
}

fn is_int_or_quit(signal: &str) -> bool {
    matches!(signal, "INT" | "SIGINT" | "2" | "QUIT" | "SIGQUIT" | "3")
}

/// What dash, bash and busybox do with `last`, the final command of `script`.
pub fn truth(script: &str, last: &FinalCommand, traps: &[Trap]) -> Truth {
    let tail = tail(script);
    let simple = last.kind == FinalKind::Program && !last.nested && !last.negated;
    let bash_traps = traps.iter().any(|t| {
        t.action != "-"
            && t.signals
                .iter()
                .any(|s| is_exit(s) || (!t.action.is_empty() && !is_int_or_quit(s)))
    });
    let bash = if simple
        && !last.subshell
        && !last.compound
        && !last.redirect
        && !bash_traps
        && (tail.is_empty() || tail == "\n")
    {
        Fate::Execs
    } else {
        Fate::Stays
    };
    let busybox_traps = traps
        .iter()
        .any(|t| t.action != "-" && !t.action.is_empty() && !t.signals.is_empty());
    let busybox = if simple && !busybox_traps && !tail.contains('\n') {
        Fate::Execs
    } else {
        Fate::Stays
    };
    Truth {
        dash: Fate::Stays,
        bash,
        busybox,
    }
}

/// One sentence on what the shell that runs the script does with its final command.
pub fn note(family: ShellFamily, truth: Option<Truth>) -> String {
    let Some(t) = truth else {
        return "the shell stays PID 1 and ignores SIGTERM unless it execs the final command itself"
            .into();
    };
    let bash = match t.bash {
        Fate::Execs => {
            "bash 5.1 and later exec this final command themselves (older bash does not)"
        }
        Fate::Stays => "bash stays PID 1 here too",
        Fate::Unknown => "bash may stay PID 1",
    };
    let busybox = match t.busybox {
        Fate::Execs => "busybox sh execs it itself (no newline follows it)",
        Fate::Stays => "busybox sh stays PID 1 here too",
        Fate::Unknown => "busybox sh may stay PID 1",
    };
    match family {
        ShellFamily::Dash => {
            "dash never execs the final command itself: it stays PID 1 and ignores SIGTERM".into()
        }
        ShellFamily::Bash => match t.bash {
            Fate::Execs => format!(
                "{bash}; exec makes it explicit and portable"
            ),
            _ => "bash stays PID 1 here and ignores SIGTERM".into(),
        },
        ShellFamily::Busybox => match t.busybox {
            Fate::Execs => "busybox sh execs this final command itself (no newline follows it); exec makes it explicit"
                .into(),
            _ => "busybox sh stays PID 1 here and ignores SIGTERM".into(),
        },
        ShellFamily::Sh => format!(
            "if /bin/sh is dash (Debian, Ubuntu) the shell stays PID 1 and ignores SIGTERM; {bash}; {busybox}"
        ),
        ShellFamily::Other => {
            "the shell may stay PID 1 and ignore SIGTERM unless it execs the final command itself"
                .into()
        }
    }
}

/// Whether the note for `family` says the shell stays PID 1 (the claim the dialect tests check
/// against the real shells).
pub fn claims_stays(family: ShellFamily, truth: Truth) -> Option<bool> {
    match family {
        ShellFamily::Dash => Some(true),
        ShellFamily::Bash => Some(truth.bash == Fate::Stays),
        ShellFamily::Busybox => Some(truth.busybox == Fate::Stays),
        ShellFamily::Sh | ShellFamily::Other => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_is_what_follows_the_last_command_line() {
        assert_eq!(tail("a; b"), "");
        assert_eq!(tail("a\nb\n"), "\n");
        assert_eq!(tail("a\nb # c\n\n"), "\n\n");
        assert_eq!(tail("a\nb\n# c"), "\n# c");
        assert_eq!(tail("b\n   "), "\n   ");
        assert_eq!(tail(""), "");
        assert_eq!(tail("# only"), "");
    }
}
