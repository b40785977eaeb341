//! A linear pre-screen that turns away scripts brush-parser cannot be trusted with.
//!
//! brush-parser 0.4.0 misbehaves on a few cheap inputs: a here-document delimiter starting
//! with `$(` or `$[` makes its tokenizer allocate without end, runs of `(` take exponential
//! time in bash mode, deep nesting overflows the stack, and a redirect file descriptor that
//! does not fit in 32 bits panics. This module looks for those shapes without parsing: one
//! pass over the bytes, no recursion, and memory bounded by the configured depth limit (never
//! by the script's nesting). It is a first line of defence, not a parser: anything it misses
//! must still be contained by the caller (worker processes, see `crate::sandbox`).

use crate::engine::config::ParserConfig;
use crate::engine::script::{Dialect, UnparsedReason};

/// Most `(` accepted in a row (blanks and `$` between them ignored), and most open at once.
/// Bash mode backtracks over unclosed `(`, doubling its time with each one past about 16:
/// 20 in a row take 82 ms, 30 take 53 s; `((((x` six times (24 open, in runs of 4) 1.5 s.
pub const MAX_PAREN_RUN: usize = 16;

/// A redirect file descriptor with more digits than this is turned away (`i32::MAX` has 10).
pub const MAX_FD_DIGITS: usize = 9;

/// Which check turned a script away. [`PrescreenCheck::as_str`] is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrescreenCheck {
    TooLarge,
    TooDeep,
    ParenRun,
    HereDocDelimiter,
    FdOverflow,
}

impl PrescreenCheck {
    pub const ALL: [PrescreenCheck; 5] = [
        PrescreenCheck::TooLarge,
        PrescreenCheck::TooDeep,
        PrescreenCheck::ParenRun,
        PrescreenCheck::HereDocDelimiter,
        PrescreenCheck::FdOverflow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PrescreenCheck::TooLarge => "too-large",
            PrescreenCheck::TooDeep => "too-deep",
            PrescreenCheck::ParenRun => "paren-run",
            PrescreenCheck::HereDocDelimiter => "heredoc-delimiter",
            PrescreenCheck::FdOverflow => "fd-overflow",
        }
    }

    /// Position in [`PrescreenCheck::ALL`].
    pub fn index(self) -> usize {
        match self {
            PrescreenCheck::TooLarge => 0,
            PrescreenCheck::TooDeep => 1,
            PrescreenCheck::ParenRun => 2,
            PrescreenCheck::HereDocDelimiter => 3,
            PrescreenCheck::FdOverflow => 4,
        }
    }
}

/// A script the pre-screen turned away: which check, and the reason users see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub check: PrescreenCheck,
    pub reason: UnparsedReason,
}

impl Rejection {
    fn hostile(check: PrescreenCheck, what: String) -> Rejection {
        Rejection {
            check,
            reason: UnparsedReason::Hostile { what },
        }
    }
}

/// Checks a script before it is parsed. `Ok(())` means the known hazards are absent.
pub fn prescreen(dialect: Dialect, script: &str, limits: &ParserConfig) -> Result<(), Rejection> {
    if script.len() > limits.max_script_bytes {
        return Err(Rejection {
            check: PrescreenCheck::TooLarge,
            reason: UnparsedReason::TooLarge {
                bytes: script.len(),
                limit: limits.max_script_bytes,
            },
        });
    }
    let bytes = script.as_bytes();
    raw_hazards(bytes)?;
    // sh-family scripts that fail in sh mode are parsed again in bash mode, and the two modes
    // may read `$'...'` differently: check both readings when it matters.
    let ansi_c = bytes.windows(2).any(|w| w == b"$'");
    let readings: &[bool] = match (dialect, ansi_c) {
        (Dialect::Bash, _) => &[true],
        (Dialect::Sh, false) => &[false],
        (Dialect::Sh, true) => &[false, true],
    };
    for &bash in readings {
        let scan = Nesting::new(bytes, limits.max_depth, bash).scan();
        if scan.open_parens > MAX_PAREN_RUN {
            return Err(paren_rejection());
        }
        if scan.heredoc_on_last_line {
            return Err(Rejection::hostile(
                PrescreenCheck::HereDocDelimiter,
                "a here-document operator on the script's last line (it can have no body) \
                 can make the parser allocate without end"
                    .into(),
            ));
        }
        let depth = scan.depth;
        if depth > limits.max_depth {
            return Err(Rejection {
                check: PrescreenCheck::TooDeep,
                reason: UnparsedReason::TooDeep {
                    depth,
                    limit: limits.max_depth,
                },
            });
        }
    }
    Ok(())
}

/// Byte patterns that are hazards wherever they appear (quoting is ignored on purpose: a
/// false alarm costs a warning, a miss costs a parser worker).
fn raw_hazards(b: &[u8]) -> Result<(), Rejection> {
    let mut paren_run = 0usize;
    let mut digits = 0usize;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'(' => {
                paren_run += 1;
                if paren_run > MAX_PAREN_RUN {
                    return Err(paren_rejection());
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' | b'$' => {}
            _ => paren_run = 0,
        }
        if c.is_ascii_digit() {
            digits += 1;
            continue;
        }
        if (c == b'<' || c == b'>') && digits > MAX_FD_DIGITS {
            return Err(Rejection::hostile(
                PrescreenCheck::FdOverflow,
                format!("a redirect's file descriptor number has more than {MAX_FD_DIGITS} digits"),
            ));
        }
        digits = 0;
        if c == b'<' && heredoc_hazard(b, i) {
            return Err(Rejection::hostile(
                PrescreenCheck::HereDocDelimiter,
                "a here-document delimiter starting with `$(` or `$[` makes the parser \
                 allocate without end"
                    .into(),
            ));
        }
    }
    Ok(())
}

fn paren_rejection() -> Rejection {
    Rejection::hostile(
        PrescreenCheck::ParenRun,
        format!(
            "more than {MAX_PAREN_RUN} `(` in a row or open at once make the parser take \
             exponential time"
        ),
    )
}

/// `<<` or `<<-` (not `<<<`) at `i`, then optional blanks, then `$(` or `$[`.
fn heredoc_hazard(b: &[u8], i: usize) -> bool {
    if b.get(i + 1) != Some(&b'<') || (i > 0 && b[i - 1] == b'<') {
        return false;
    }
    let mut j = i + 2;
    if b.get(j) == Some(&b'<') {
        return false;
    }
    if b.get(j) == Some(&b'-') {
        j += 1;
    }
    while matches!(b.get(j), Some(b' ' | b'\t')) {
        j += 1;
    }
    b.get(j) == Some(&b'$') && matches!(b.get(j + 1), Some(b'(' | b'['))
}

/// What an open construct is, so its closer can be told apart from a stray one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// `(`, `$(`.
    Paren,
    /// The inner `(` of `$((` and of `((` in command position: `<<` is a shift there.
    Arith,
    /// `{`, `${`.
    Brace,
    DoubleQuote,
    Backtick,
    If,
    Case,
    /// `while`, `until`, `for`, `select`.
    Loop,
}

/// The nesting scan: a stack of open constructs, bounded by the depth limit.
struct Nesting<'a> {
    b: &'a [u8],
    i: usize,
    stack: Vec<Frame>,
    limit: usize,
    /// Read `$'...'` as bash does (backslash escapes inside).
    bash: bool,
    /// The next word would be a command name (where reserved words are recognised).
    command_position: bool,
    /// Here-documents whose bodies start after the current line: (delimiter, strip tabs).
    pending_heredocs: Vec<(&'a [u8], bool)>,
    /// Consecutive `!` words: the parser recurses once per `!` inside `[[ ]]`.
    bangs: usize,
    /// `Frame::Paren` and `Frame::Arith` entries on the stack.
    open_parens: usize,
    /// A here-document operator since the last newline.
    heredoc_on_line: bool,
}

/// What the nesting scan found.
struct Scan {
    /// Deepest nesting (stops counting past the limit).
    depth: usize,
    /// Most `(` open at once.
    open_parens: usize,
    /// The script ends on a line with a here-document operator. brush-parser 0.4.0 allocates
    /// without end on some of these (`<<"" `, `<<\f `, `<<$(  ` at the end of the script);
    /// none is valid anyway: the here-document has no body.
    heredoc_on_last_line: bool,
}

impl<'a> Nesting<'a> {
    fn new(b: &'a [u8], limit: usize, bash: bool) -> Nesting<'a> {
        Nesting {
            b,
            i: 0,
            stack: Vec::with_capacity(limit.min(1024) + 1),
            limit,
            bash,
            command_position: true,
            pending_heredocs: Vec::new(),
            bangs: 0,
            open_parens: 0,
            heredoc_on_line: false,
        }
    }

    /// Scans the whole script, stopping early once past a limit.
    fn scan(mut self) -> Scan {
        let mut max = 0;
        let mut max_parens = 0;
        while self.i < self.b.len() {
            self.step();
            max = max.max(self.stack.len() + self.bangs);
            max_parens = max_parens.max(self.open_parens);
            if max > self.limit || max_parens > MAX_PAREN_RUN {
                break;
            }
        }
        Scan {
            depth: max,
            open_parens: max_parens,
            heredoc_on_last_line: self.heredoc_on_line && self.i >= self.b.len(),
        }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.b.get(self.i + ahead).copied()
    }

    fn top(&self) -> Option<Frame> {
        self.stack.last().copied()
    }

    fn push(&mut self, f: Frame) {
        if matches!(f, Frame::Paren | Frame::Arith) {
            self.open_parens += 1;
        }
        self.stack.push(f);
    }

    fn pop(&mut self) {
        if matches!(self.stack.pop(), Some(Frame::Paren | Frame::Arith)) {
            self.open_parens -= 1;
        }
    }

    fn pop_if(&mut self, f: Frame) {
        if self.top() == Some(f) {
            self.pop();
        }
    }

    fn step(&mut self) {
        if self.top() == Some(Frame::DoubleQuote) {
            self.step_double_quoted();
        } else {
            self.step_code();
        }
    }

    fn step_double_quoted(&mut self) {
        match (self.b[self.i], self.peek(1)) {
            (b'\\', _) => self.i += 2,
            (b'"', _) => {
                self.pop();
                self.i += 1;
            }
            (b'$', Some(b'(')) => self.open_dollar_paren(),
            (b'$', Some(b'{')) => {
                self.push(Frame::Brace);
                self.i += 2;
            }
            (b'`', _) => {
                self.push(Frame::Backtick);
                self.command_position = true;
                self.i += 1;
            }
            _ => self.i += 1,
        }
    }

    fn step_code(&mut self) {
        let c = self.b[self.i];
        if !matches!(c, b'!' | b' ' | b'\t' | b'\r' | b'\n') {
            self.bangs = 0;
        }
        let at_word_start = self.i == 0
            || matches!(
                self.b[self.i - 1],
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')'
            );
        match c {
            b'\\' => {
                self.i += 2;
                self.command_position = false;
            }
            b'\'' => {
                self.skip_single_quoted(false);
                self.command_position = false;
            }
            b'$' if self.peek(1) == Some(b'\'') && self.bash => {
                self.i += 1;
                self.skip_single_quoted(true);
                self.command_position = false;
            }
            b'$' if self.peek(1) == Some(b'(') => self.open_dollar_paren(),
            b'$' if self.peek(1) == Some(b'{') => {
                self.push(Frame::Brace);
                self.command_position = false;
                self.i += 2;
            }
            b'"' => {
                self.push(Frame::DoubleQuote);
                self.command_position = false;
                self.i += 1;
            }
            b'`' => {
                if self.top() == Some(Frame::Backtick) {
                    self.pop();
                    self.command_position = false;
                } else {
                    self.push(Frame::Backtick);
                    self.command_position = true;
                }
                self.i += 1;
            }
            b'#' if at_word_start => {
                while self.i < self.b.len() && self.b[self.i] != b'\n' {
                    self.i += 1;
                }
            }
            b'(' if self.command_position && self.peek(1) == Some(b'(') => {
                self.push(Frame::Paren);
                self.push(Frame::Arith);
                self.i += 2;
            }
            b'(' => {
                self.push(Frame::Paren);
                self.command_position = true;
                self.i += 1;
            }
            b')' => {
                // In a `case`, a `)` with no `(` of its own ends a pattern.
                if self.top() == Some(Frame::Arith) {
                    self.pop();
                } else {
                    self.pop_if(Frame::Paren);
                }
                self.command_position = true;
                self.i += 1;
            }
            b'{' => {
                self.push(Frame::Brace);
                self.command_position = true;
                self.i += 1;
            }
            b'}' => {
                self.pop_if(Frame::Brace);
                self.command_position = false;
                self.i += 1;
            }
            b'\n' => {
                self.i += 1;
                self.command_position = true;
                self.heredoc_on_line = false;
                self.skip_heredoc_bodies();
            }
            b';' | b'&' | b'|' => {
                self.command_position = true;
                self.i += 1;
            }
            // A here-string: not a here-document.
            b'<' if self.peek(1) == Some(b'<') && self.peek(2) == Some(b'<') => {
                self.i += 3;
                self.command_position = false;
            }
            b'<' if self.peek(1) == Some(b'<') && self.top() != Some(Frame::Arith) => {
                self.i += 2;
                self.heredoc_on_line = true;
                self.read_heredoc_delimiter();
            }
            b' ' | b'\t' | b'\r' => self.i += 1,
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'!' => self.word(),
            _ => {
                self.command_position = false;
                self.i += 1;
            }
        }
    }

    /// At `$(`: a command substitution, or an arithmetic expansion for `$((`.
    fn open_dollar_paren(&mut self) {
        self.push(Frame::Paren);
        if self.peek(2) == Some(b'(') {
            self.push(Frame::Arith);
            self.command_position = false;
            self.i += 3;
        } else {
            self.command_position = true;
            self.i += 2;
        }
    }

    /// From an opening `'` (at `self.i`) past its closing quote.
    fn skip_single_quoted(&mut self, backslash_escapes: bool) {
        self.i += 1;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' if backslash_escapes => self.i += 2,
                b'\'' => {
                    self.i += 1;
                    return;
                }
                _ => self.i += 1,
            }
        }
    }

    /// A bare word: reserved words in command position open and close compound commands.
    fn word(&mut self) {
        let start = self.i;
        while self.i < self.b.len()
            && (self.b[self.i].is_ascii_alphanumeric() || matches!(self.b[self.i], b'_' | b'!'))
        {
            self.i += 1;
        }
        let word = &self.b[start..self.i];
        if word.iter().all(|&c| c == b'!') {
            self.bangs += word.len();
        } else {
            self.bangs = 0;
        }
        let ends_word = match self.b.get(self.i) {
            None => true,
            Some(c) => matches!(
                c,
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'&' | b'|' | b'(' | b')'
            ),
        };
        if !(self.command_position && ends_word) {
            self.command_position = false;
            return;
        }
        self.command_position = match word {
            b"if" => {
                self.push(Frame::If);
                true
            }
            b"while" | b"until" => {
                self.push(Frame::Loop);
                true
            }
            b"for" | b"select" => {
                self.push(Frame::Loop);
                false
            }
            b"case" => {
                self.push(Frame::Case);
                false
            }
            b"fi" => {
                self.pop_if(Frame::If);
                false
            }
            b"done" => {
                self.pop_if(Frame::Loop);
                false
            }
            b"esac" => {
                self.pop_if(Frame::Case);
                false
            }
            b"then" | b"do" | b"else" | b"elif" | b"!" | b"time" => true,
            _ => false,
        };
    }

    /// After `<<`: note the delimiter so the body (plain text to the parser) is skipped.
    fn read_heredoc_delimiter(&mut self) {
        let strip_tabs = self.peek(0) == Some(b'-');
        if strip_tabs {
            self.i += 1;
        }
        while matches!(self.peek(0), Some(b' ' | b'\t')) {
            self.i += 1;
        }
        let start = self.i;
        while let Some(c) = self.peek(0) {
            if matches!(
                c,
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')'
            ) {
                break;
            }
            self.i += 1;
        }
        let raw = &self.b[start..self.i];
        // Quotes around the delimiter only stop expansion of the body; the terminator line is
        // the word without them. Delimiters with quotes inside are not unquoted here: their
        // body is then scanned as code, which can only over-count.
        let word = match raw {
            [b'\'', inner @ .., b'\''] | [b'"', inner @ .., b'"'] => inner,
            [b'\\', rest @ ..] => rest,
            _ => raw,
        };
        if !word.is_empty() {
            self.pending_heredocs.push((word, strip_tabs));
        }
    }

    /// At the start of a line: skip the bodies of the here-documents opened on the last line.
    fn skip_heredoc_bodies(&mut self) {
        let pending = std::mem::take(&mut self.pending_heredocs);
        for (delimiter, strip_tabs) in pending {
            while self.i < self.b.len() {
                let end = self.b[self.i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(self.b.len(), |p| self.i + p);
                let mut line = &self.b[self.i..end];
                if strip_tabs {
                    while let [b'\t', rest @ ..] = line {
                        line = rest;
                    }
                }
                self.i = (end + 1).min(self.b.len());
                if line == delimiter {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn limits() -> ParserConfig {
        ParserConfig::default()
    }

    fn check(dialect: Dialect, script: &str) -> Option<PrescreenCheck> {
        prescreen(dialect, script, &limits()).err().map(|r| r.check)
    }

    fn nested(open: &str, close: &str, depth: usize) -> String {
        let mut s = String::new();
        for _ in 0..depth {
            s.push_str(open);
        }
        s.push_str("true");
        for _ in 0..depth {
            s.push_str(close);
        }
        s
    }

    #[test]
    fn heredoc_delimiters_that_hang_the_tokenizer() {
        for script in [
            "cat <<$[ ",
            "cat <<$(  ",
            "cat <<$(( ",
            "cat << $( x",
            "cat <<-\t$[ 1",
            "x<<$(\t",
            "cat <<\"x\" <<$( y",
            // Inside quotes too: a false alarm is cheaper than a miss.
            "echo '<<$( '",
            // A here-document on the last line: no body possible.
            "\"\"<<\x0c ",
            "<<\"\" ",
            "cat <<'' ",
            "( (cat <<\r ",
            "x=1; cat <<EOF",
        ] {
            for d in [Dialect::Sh, Dialect::Bash] {
                assert_eq!(
                    check(d, script),
                    Some(PrescreenCheck::HereDocDelimiter),
                    "{script:?}"
                );
            }
        }
        // Here-strings and ordinary delimiters are fine.
        for script in [
            "cat <<< $(date)",
            "cat <<<$(date)",
            "cat <<EOF\n$(date)\nEOF\n",
            "cat <<-'EOF'\n\tx\n\tEOF\n",
            "cat <<EOF\nx\nEOF",
            "echo $((1 << 2))",
            "echo \"$(( 1 << x ))\"",
            "((x = 1 << 2))",
            "echo 'a << b'",
            "# cat <<",
        ] {
            assert_eq!(check(Dialect::Bash, script), None, "{script:?}");
        }
    }

    #[test]
    fn paren_runs() {
        let run = |n: usize, sep: &str| {
            let mut s = String::new();
            for _ in 0..n {
                s.push('(');
                s.push_str(sep);
            }
            s
        };
        for sep in ["", " ", "\t", "\n", "$"] {
            assert_eq!(
                check(Dialect::Bash, &run(30, sep)),
                Some(PrescreenCheck::ParenRun),
                "{sep:?}"
            );
            assert_eq!(
                check(Dialect::Bash, &run(MAX_PAREN_RUN + 1, sep)),
                Some(PrescreenCheck::ParenRun)
            );
        }
        assert_eq!(
            check(Dialect::Sh, &run(40, " ")),
            Some(PrescreenCheck::ParenRun)
        );
        // Unclosed `(` in short runs: bash mode backtracks over all of them.
        for script in [
            "((((x".repeat(8),
            format!("{}x{}", "(".repeat(10), "(".repeat(13)),
            "(x".repeat(17),
            format!("echo \"{}\"", "$(x".repeat(17)),
        ] {
            for d in [Dialect::Sh, Dialect::Bash] {
                assert_eq!(
                    check(d, &script),
                    Some(PrescreenCheck::ParenRun),
                    "{script:?}"
                );
            }
        }
        // Balanced nesting up to the run limit is ordinary.
        assert_eq!(
            check(Dialect::Bash, &nested("( ", " )", MAX_PAREN_RUN)),
            None
        );
        assert_eq!(check(Dialect::Bash, "echo $((1 + (2 * (3))))"), None);
    }

    #[test]
    fn deep_nesting_of_every_kind() {
        use PrescreenCheck::{ParenRun, TooDeep};
        let cases = [
            (nested("{ ", "; }", 600), TooDeep),
            (nested("if true; then ", "; fi", 600), TooDeep),
            (nested("while true; do ", "; done", 600), TooDeep),
            (nested("until false; do ", "; done", 600), TooDeep),
            (nested("for i in 1; do ", "; done", 600), TooDeep),
            (nested("case x in x) ", ";; esac", 600), TooDeep),
            (nested("x=${a:-", "}", 600), TooDeep),
            (nested("{ if true; then ", "; fi; }", 200), TooDeep),
            (format!("[[ {} a ]]", "! ".repeat(600)), TooDeep),
            (format!("[[ {} a ]]", "!".repeat(600)), TooDeep),
            // `(` in any form is capped lower (exponential time in bash mode).
            (nested("( : ; ", ")", 600), ParenRun),
            (nested("echo $(", ")", 600), ParenRun),
            (nested("echo \"$(", ")\"", 600), ParenRun),
            (nested("{ ( if true; then ", "; fi ) ; }", 200), ParenRun),
        ];
        for (script, expected) in &cases {
            for d in [Dialect::Sh, Dialect::Bash] {
                // The best of three runs: a shared machine only ever makes a run slower.
                let fastest = (0..3)
                    .map(|_| {
                        let started = Instant::now();
                        let _ = prescreen(d, script, &limits());
                        started.elapsed()
                    })
                    .min()
                    .unwrap_or_default();
                assert!(fastest < Duration::from_millis(50), "{fastest:?}");
                let r = prescreen(d, script, &limits());
                match r {
                    Err(Rejection {
                        check: TooDeep,
                        reason: UnparsedReason::TooDeep { depth, limit: 64 },
                    }) if *expected == TooDeep => assert!(depth > 64),
                    Err(Rejection { check, .. }) if check == *expected && check == ParenRun => {}
                    other => panic!("{other:?} for {}", &script[..20]),
                }
            }
        }
        // Just under the limit passes.
        assert_eq!(
            check(Dialect::Sh, &nested("if true; then ", "; fi", 60)),
            None
        );
    }

    #[test]
    fn nesting_cannot_hide_in_quotes_comments_or_heredocs() {
        let deep = nested("{ ", "; }", 100);
        // An apostrophe in a comment or a here-document body opens no quote.
        for prefix in [
            "# don't\n",
            "cat <<EOF\ndon't\nEOF\n",
            "cat <<-'EOF'\n\tdon't\n\tEOF\n",
            "echo $'it\\'s'\n",
            "echo \"it's\"\n",
            "case x in a) ;; b) ;; c) ;; d) ;; esac\n",
        ] {
            let script = format!("{prefix}{deep}");
            assert_eq!(
                check(Dialect::Bash, &script),
                Some(PrescreenCheck::TooDeep),
                "{prefix:?}"
            );
            assert_eq!(
                check(Dialect::Sh, &script),
                Some(PrescreenCheck::TooDeep),
                "{prefix:?}"
            );
        }
        // Case patterns' `)` do not pop the frames around them.
        let mut s = String::new();
        for _ in 0..100 {
            s.push_str("{ case x in a) ;; b) ;; c) ;; d) ");
        }
        assert_eq!(check(Dialect::Sh, &s), Some(PrescreenCheck::TooDeep));
    }

    #[test]
    fn fd_numbers_that_overflow() {
        for script in [
            "echo hi 2147483648>/dev/null",
            "echo hi 99999999999999999999<x",
            "exec 4294967296>&-",
            "echo '1234567890>'",
        ] {
            assert_eq!(
                check(Dialect::Sh, script),
                Some(PrescreenCheck::FdOverflow),
                "{script:?}"
            );
        }
        for script in [
            "echo hi 2>/dev/null",
            "exec 3>&1 123456789>x",
            "sleep 2147483648",
        ] {
            assert_eq!(check(Dialect::Sh, script), None, "{script:?}");
        }
    }

    #[test]
    fn size_cap() {
        let big = "a".repeat(1024 * 1024);
        let started = Instant::now();
        let r = prescreen(Dialect::Sh, &big, &limits());
        assert!(started.elapsed() < Duration::from_millis(10));
        assert_eq!(
            r.map_err(|r| r.reason),
            Err(UnparsedReason::TooLarge {
                bytes: 1024 * 1024,
                limit: 64 * 1024
            })
        );
    }

    #[test]
    fn real_scripts_pass() {
        let scripts = [
            "envsubst '$UPSTREAM_HOST' < /templates/site.conf.tmpl > /etc/nginx/conf.d/site.conf",
            "until pg_isready -h db; do echo waiting for db; sleep 2; done",
            "set -e\nif [ -f /config/app.yaml ]; then\n  cp /config/app.yaml /etc/app/\nfi\nexec /app \"$@\"",
            "trap 'kill $(jobs -p)' TERM\napp & agent &\nwait -n",
            "while true; do rsync -a /src/ /dst/; sleep 60; done",
            "case \"$ROLE\" in\n  primary) exec postgres ;;\n  (replica) exec postgres -c hot_standby=on ;;\n  *) echo unknown; exit 1 ;;\nesac",
            "for f in /docker-entrypoint.d/*.sh; do . \"$f\"; done; exec nginx -g 'daemon off;'",
            "cat > /etc/app.json <<EOF\n{\"a\": {\"b\": [1, 2, {\"c\": \"$(hostname)\"}]}}\nEOF\nexec app",
            "x=$((1 + $(date +%s) % 60)); echo \"${x:-0}\" `hostname`",
            "[[ $A =~ ^v[0-9]+ ]] && exec 3>&1 2>&3 || exit 1",
        ];
        for s in scripts {
            assert_eq!(check(Dialect::Sh, s), None, "{s:?}");
            assert_eq!(check(Dialect::Bash, s), None, "{s:?}");
        }
    }

    #[test]
    fn fixture_scripts_pass() {
        let text = include_str!("../../tests/fixtures/examples/launches.yaml");
        let mut seen = 0;
        for doc in text.split("\n---") {
            let Ok(value) = serde_saphyr::from_str::<serde_json::Value>(doc) else {
                continue;
            };
            let mut strings = Vec::new();
            collect_strings(&value, &mut strings);
            for s in strings {
                seen += 1;
                for d in [Dialect::Sh, Dialect::Bash] {
                    assert_eq!(prescreen(d, &s, &limits()), Ok(()), "{s:?}");
                }
            }
        }
        assert!(seen > 50, "only {seen} strings in the fixtures");
    }

    fn collect_strings(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
            _ => {}
        }
    }
}
