//! What a shell script does, read from brush-parser's syntax tree.
//!
//! [`analyze_script`] is the pure analysis; [`ScriptAnalyzer`] lets callers put containment
//! (pre-screen, worker processes, cache) around it without the engine knowing.

use serde::{Deserialize, Serialize};

/// Which grammar to parse with: POSIX sh for sh-family shells, bash for bash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Sh,
    Bash,
}

/// Why a script was not analysed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum UnparsedReason {
    /// Larger than the configured cap.
    TooLarge { bytes: usize, limit: usize },
    /// Nested deeper than the configured cap.
    TooDeep { depth: usize, limit: usize },
    /// A construct known to make the parser misbehave.
    Hostile { what: String },
    /// The parser rejected the script.
    Syntax {
        message: String,
        line: Option<usize>,
        column: Option<usize>,
    },
    /// The parser ran out of time or memory, or its worker died.
    GaveUp { what: String },
}

impl std::fmt::Display for UnparsedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnparsedReason::TooLarge { bytes, limit } => {
                write!(f, "script is too large ({bytes} bytes, limit {limit})")
            }
            UnparsedReason::TooDeep { depth, limit } => {
                write!(f, "script nests too deep ({depth} levels, limit {limit})")
            }
            UnparsedReason::Hostile { what } => write!(f, "script not parsed: {what}"),
            UnparsedReason::Syntax {
                message,
                line: Some(line),
                column: Some(column),
            } => write!(f, "parse error at {line}:{column}: {message}"),
            UnparsedReason::Syntax { message, .. } => write!(f, "parse error: {message}"),
            UnparsedReason::GaveUp { what } => write!(f, "the parser gave up: {what}"),
        }
    }
}

/// The outcome of analysing one script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum ScriptVerdict {
    Parsed(ScriptFacts),
    Unparsed(UnparsedReason),
}

/// Anything that turns a script into a verdict. The engine calls it; it must not panic.
pub trait ScriptAnalyzer: Send + Sync {
    fn analyze(&self, dialect: Dialect, script: &str) -> ScriptVerdict;

    /// Whether the analyzer honours `sandbox::without_parsing` (answers from its cache and
    /// pre-screen only when asked), so a caller may try it where blocking is not allowed.
    fn answers_without_parsing(&self) -> bool {
        false
    }
}

/// Analyses in the calling thread with no containment: for trusted input and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct InProcessAnalyzer;

impl ScriptAnalyzer for InProcessAnalyzer {
    fn analyze(&self, dialect: Dialect, script: &str) -> ScriptVerdict {
        analyze_script(dialect, script)
    }
}

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

/// Parses and analyses a script. Pure: no I/O; must be contained by the caller for hostile input.
pub fn analyze_script(dialect: Dialect, script: &str) -> ScriptVerdict {
    match parse(dialect, script) {
        Ok(program) => ScriptVerdict::Parsed(crate::engine::shell_walk::facts(&program, script)),
        Err(reason) => ScriptVerdict::Unparsed(reason),
    }
}

/// Parses with the dialect's grammar; sh-family scripts that use bash syntax get a second try
/// in bash mode (images' `sh` is often bash).
pub fn parse(dialect: Dialect, script: &str) -> Result<brush_parser::ast::Program, UnparsedReason> {
    let first = parse_once(dialect == Dialect::Sh, script);
    match (first, dialect) {
        (Ok(p), _) => Ok(p),
        (Err(_), Dialect::Sh) if !has_long_paren_run(script) => {
            parse_once(false, script).map_err(syntax_reason)
        }
        (Err(e), _) => Err(syntax_reason(e)),
    }
}

/// Bash mode takes exponential time on runs of `(`; never retry those in bash mode.
fn has_long_paren_run(script: &str) -> bool {
    let mut run = 0;
    for b in script.bytes() {
        if b == b'(' {
            run += 1;
            if run >= 8 {
                return true;
            }
        } else if !b.is_ascii_whitespace() {
            run = 0;
        }
    }
    false
}

fn parse_once(
    sh_mode: bool,
    script: &str,
) -> Result<brush_parser::ast::Program, brush_parser::ParseError> {
    let options = brush_parser::ParserOptions {
        sh_mode,
        ..Default::default()
    };
    brush_parser::Parser::new(script.as_bytes(), &options).parse_program()
}

fn syntax_reason(e: brush_parser::ParseError) -> UnparsedReason {
    let (line, column) = match &e {
        brush_parser::ParseError::ParsingNear(p) => (Some(p.line), Some(p.column)),
        brush_parser::ParseError::Tokenizing {
            position: Some(p), ..
        } => (Some(p.line), Some(p.column)),
        _ => (None, None),
    };
    let message = match &e {
        brush_parser::ParseError::Tokenizing { inner, .. } => inner.to_string(),
        brush_parser::ParseError::ParsingAtEndOfInput => "unexpected end of script".to_string(),
        _ => "syntax error".to_string(),
    };
    UnparsedReason::Syntax {
        message,
        line,
        column,
    }
}
