//! What a shell script does, read from brush-parser's syntax tree.
//!
//! [`analyze_script`] is the pure analysis. The engine never calls it on the request path:
//! callers resolve scripts into verdicts with containment around it (pre-screen, worker
//! processes, cache; see [`crate::resolve`]).

pub use crate::engine::script_facts::{
    Ending, FinalCommand, FinalKind, MAX_RECORDED_COMMANDS, MAX_RECORDED_WORDS, ScriptFacts, Trap,
};
use serde::{Deserialize, Serialize};

/// Which grammar to parse with: POSIX sh for sh-family shells, bash for bash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
