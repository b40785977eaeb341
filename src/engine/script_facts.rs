//! The facts the shell walk reads from a parsed script: how it ends, what it starts in the
//! background, its traps and commands. Kept apart from the parsing so that the walk and the
//! analyzers depend on these types and not on each other.

use serde::{Deserialize, Serialize};

/// How the main flow of a script ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Ending {
    /// Every live path ends by `exec`ing a program (as written, e.g. `"$@"`).
    Exec { program: String },
    /// A program runs in the foreground without `exec`, as the last thing the shell does.
    Foreground {
        program: String,
        /// Byte offsets where inserting `exec ` makes each live path exec its program.
        insert_at: Vec<usize>,
        /// The program is the script's only command.
        only_command: bool,
    },
    /// The last thing is a pipeline of several programs.
    Pipeline { programs: Vec<String> },
    /// A program followed by more commands (exit status handling, cleanup).
    Trailing { program: String, after: String },
    /// Nothing long-running in the foreground: builtins, `wait`, finite loops.
    Nothing,
}

/// Context-free facts about a script: what it runs and how it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptFacts {
    pub ending: Ending,
    /// Programs started in the background (`&`, or by a daemonising flag), outside endless loops.
    pub background: Vec<String>,
    /// An endless loop (`while true`, `while :`, `until false`) in the main flow.
    pub endless_loop: bool,
    /// A `trap` on TERM, INT, HUP or QUIT: the shell means to handle signals itself.
    pub signal_trap: bool,
    /// A process supervisor the script runs, if any.
    pub supervisor: Option<String>,
    /// A hand-made way to stop another container (`/quitquitquit`, `pkill`, `killall`).
    pub stop_hack: Option<String>,
    /// Paths the script creates or writes as signals (`touch`, `: > file`).
    pub touched: Vec<String>,
    /// The final command the shell runs (exec'd or in the foreground), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<FinalCommand>,
    /// Every `trap` in the script: its action and signals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traps: Vec<Trap>,
    /// The simple commands the script runs (and the operands of its `[[ ]]` tests), as unquoted
    /// words, at most [`MAX_RECORDED_COMMANDS`] of them: what side-agent evidence reads.
    #[serde(default)]
    pub commands: Vec<Vec<String>>,
}

/// How many commands [`ScriptFacts::commands`] keeps, and how many words of each.
pub const MAX_RECORDED_COMMANDS: usize = 128;
pub const MAX_RECORDED_WORDS: usize = 32;

impl ScriptFacts {
    /// Records one command's words, within the bounds.
    pub fn record_command(&mut self, words: impl IntoIterator<Item = String>) {
        if self.commands.len() < MAX_RECORDED_COMMANDS {
            let words: Vec<String> = words.into_iter().take(MAX_RECORDED_WORDS).collect();
            if !words.is_empty() {
                self.commands.push(words);
            }
        }
    }
}

/// How the final command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FinalKind {
    /// A program.
    #[default]
    Program,
    /// `.`/`source FILE`: the file's text runs in this shell.
    Source,
    /// `eval ...`: text built at run time.
    Eval,
}

/// The final command of a script and where it sits: what decides whether a shell execs it
/// by itself (see `crate::engine::dialect`) and what `exec` may be put before.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FinalCommand {
    pub kind: FinalKind,
    /// Its words as written, from the program word on (after `exec` and its options).
    pub argv: Vec<String>,
    /// Inside `{ }`, `if`, `case` or a loop.
    pub compound: bool,
    /// Inside a pipeline or a function.
    pub nested: bool,
    /// Inside `( )`.
    #[serde(default)]
    pub subshell: bool,
    /// It has a redirect (`>log`, `2>&1`, `<in`).
    pub redirect: bool,
    /// Negated (`! cmd`).
    pub negated: bool,
}

/// One `trap ACTION SIGNAL...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trap {
    pub action: String,
    pub signals: Vec<String>,
}
