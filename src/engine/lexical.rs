//! A conservative lexical scan for scripts that were not parsed (docs/design.md section 5.2).
//!
//! An `unparsed` launch only warns, so padding that trips the pre-screen (a comment full of
//! `(`, 64 KiB of comments, a huge fd number, a here-document with a substituted delimiter)
//! must not hide a launch that would be denied. This scan reads the script once, left to
//! right, skipping comments, quoted text and here-document bodies, and reports the first sign
//! of several long-running programs: an unquoted background `&`, a pipeline, `wait`, `coproc`,
//! a process supervisor or a daemonising program. Scripts handed to a nested shell (`sh -c`,
//! `su -c`, `eval`) are scanned too, to a bounded depth.
//!
//! Time is linear in the script's length (each byte is looked at a bounded number of times,
//! times the nesting bound) and memory is bounded by the length; no recursion follows the
//! script's own nesting. It never panics: every index is checked.

use crate::engine::daemons;
use crate::engine::kubelet::Environment;
use crate::engine::launchers::{self, Peeled, ScriptSource, basename, shell_family};
use std::cell::Cell;

/// How many scripts-in-scripts (`sh -c "sh -c '...'"`) are scanned.
const MAX_NESTED: usize = 4;
/// Open `case` statements tracked per level; deeper ones are read as plain commands.
const MAX_CASES: usize = 256;
/// Open `$(`, backquote and arithmetic levels tracked; deeper ones are read flat.
const MAX_FRAMES: usize = 256;

/// The first sign of several long-running programs, in words for messages.
pub fn scan(script: &str) -> Option<String> {
    scan_with_env(script, &Environment::none())
}

/// [`scan`], reading `$NAME` in nested scripts (`sh -c "$SCRIPT"`) from the container's
/// literal env values.
pub fn scan_with_env(script: &str, env: &Environment<'_>) -> Option<String> {
    let budget = Budget {
        left: Cell::new(None),
        script_len: script.len(),
        env,
    };
    scan_nested(script, 0, &budget)
}

/// Nested scripts are words of the script (or env values): together they may be scanned at
/// most a few times over, never once per reference (`sh -c "$S"` a thousand times). Counted
/// from the first nested script on, so a script without one never reads the environment.
struct Budget<'a, 'e> {
    left: Cell<Option<usize>>,
    script_len: usize,
    env: &'a Environment<'e>,
}

impl Budget<'_, '_> {
    /// Takes `bytes` from the budget, or says there is not enough left.
    fn take(&self, bytes: usize) -> bool {
        let left = self.left.get().unwrap_or_else(|| {
            let env_bytes: usize = self
                .env
                .vars()
                .iter()
                .map(|(_, v)| v.as_ref().map_or(0, String::len))
                .sum();
            MAX_NESTED.saturating_mul(self.script_len.saturating_add(env_bytes))
        });
        let enough = bytes <= left;
        self.left
            .set(Some(if enough { left - bytes } else { left }));
        enough
    }
}

fn scan_nested(script: &str, depth: usize, budget: &Budget<'_, '_>) -> Option<String> {
    let mut s = Scanner {
        budget,
        b: script.as_bytes(),
        text: script,
        i: 0,
        frames: vec![Frame::command(false)],
        heredocs: Vec::new(),
        depth,
        found: None,
    };
    s.run();
    s.found
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaseState {
    /// After `case`: the subject, until `in`.
    Subject,
    /// Patterns, until `)`.
    Pattern,
    /// A branch's commands, until `;;` or `esac`.
    Body,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Command,
    /// Inside `"..."`.
    DQuote,
    /// Inside `$((...))` or `((...))`: `&` and `|` are arithmetic.
    Arith,
}

/// One level of reading: the script itself, a command substitution, a backquote, a double
/// quote or an arithmetic expression.
#[derive(Debug)]
struct Frame {
    mode: Mode,
    /// A backquoted command substitution (closed by a backquote, not `)`).
    backquote: bool,
    /// A `$(` command substitution: its output is awaited, so a pipeline in it is finite.
    substitution: bool,
    /// `(` opened in this frame and not closed.
    parens: usize,
    /// The words of the command being read.
    words: Vec<String>,
    word: String,
    /// The current word has started (it may be empty text, as `""`).
    in_word: bool,
    /// The next word is a redirect's target, not part of the command.
    redirect_target: bool,
    /// Inside `[[ ... ]]`.
    test: bool,
    /// After `for`/`select`: words until `do` are not commands.
    loop_header: bool,
    cases: Vec<CaseState>,
}

impl Frame {
    fn command(substitution: bool) -> Frame {
        Frame {
            mode: Mode::Command,
            backquote: false,
            substitution,
            parens: 0,
            words: Vec::new(),
            word: String::new(),
            in_word: false,
            redirect_target: false,
            test: false,
            loop_header: false,
            cases: Vec::new(),
        }
    }

    fn other(mode: Mode) -> Frame {
        Frame {
            mode,
            ..Frame::command(false)
        }
    }
}

/// What ended a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// `;`, newline, `&&`, `||`, a parenthesis, the end.
    Plain,
    Background,
    Pipe,
    /// `;;`, `;&`, `;;&`.
    CaseBranch,
}

struct Scanner<'a> {
    /// Bytes of nested scripts that may still be scanned, and the environment.
    budget: &'a Budget<'a, 'a>,
    b: &'a [u8],
    text: &'a str,
    i: usize,
    frames: Vec<Frame>,
    /// Here-documents whose bodies start at the next newline: (delimiter, strip tabs).
    heredocs: Vec<(String, bool)>,
    depth: usize,
    found: Option<String>,
}

const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "{", "}", "!", "time",
    "function", "in", "esac",
];

impl Scanner<'_> {
    fn peek(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }

    fn frame(&mut self) -> &mut Frame {
        // The stack always holds the script's own frame: it is pushed first and never popped.
        let last = self.frames.len().saturating_sub(1);
        &mut self.frames[last]
    }

    fn push_char(&mut self, c: char) {
        let f = self.frame();
        f.word.push(c);
        f.in_word = true;
    }

    /// Pushes the text from `start` to the current position (a multi-byte character or a
    /// quoted stretch) into the word.
    fn push_text(&mut self, start: usize, end: usize) {
        let piece = self.text.get(start..end).unwrap_or("").to_string();
        let f = self.frame();
        f.word.push_str(&piece);
        f.in_word = true;
    }

    fn run(&mut self) {
        while self.i < self.b.len() && self.found.is_none() {
            let mode = self.frame().mode;
            match mode {
                Mode::Command => self.command_byte(),
                Mode::DQuote => self.dquote_byte(),
                Mode::Arith => self.arith_byte(),
            }
        }
        if self.found.is_none() {
            // Close whatever is open: the end of the script ends every command.
            while self.frames.len() > 1 {
                self.end_command(End::Plain);
                self.frames.pop();
            }
            self.end_command(End::Plain);
        }
    }

    fn push_frame(&mut self, frame: Frame) -> bool {
        if self.frames.len() >= MAX_FRAMES {
            return false;
        }
        self.frames.push(frame);
        true
    }

    fn pop_frame(&mut self) {
        if self.frames.len() > 1 {
            self.frames.pop();
        }
    }

    fn command_byte(&mut self) {
        let c = self.b[self.i];
        match c {
            b' ' | b'\t' | b'\r' => {
                self.end_word();
                self.i += 1;
            }
            b'\n' => {
                self.end_command(End::Plain);
                self.i += 1;
                self.skip_heredoc_bodies();
            }
            b'\\' => {
                match self.peek(1) {
                    Some(b'\n') => {}
                    Some(_) => {
                        let start = self.i + 1;
                        let end = next_char_end(self.text, start);
                        self.push_text(start, end);
                        self.i = end;
                        return;
                    }
                    None => {}
                }
                self.i += 2;
            }
            b'#' if !self.frame().in_word => {
                while self.i < self.b.len() && self.b[self.i] != b'\n' {
                    self.i += 1;
                }
            }
            b'\'' => {
                let start = self.i + 1;
                let end = find_byte(self.b, start, b'\'');
                self.push_text(start, end);
                self.i = end + 1;
            }
            b'"' => {
                self.frame().in_word = true;
                self.i += 1;
                self.push_frame(Frame::other(Mode::DQuote));
            }
            b'`' => self.backquote(),
            b'$' => self.dollar(),
            b'(' => {
                let at_command = self.at_command_position();
                if at_command && self.peek(1) == Some(b'(') {
                    // `((...))`: arithmetic.
                    self.i += 2;
                    if !self.push_frame(Frame::other(Mode::Arith)) {
                        self.frame().parens += 1;
                    }
                    return;
                }
                self.end_command(End::Plain);
                if !self.in_case_pattern() {
                    self.frame().parens += 1;
                }
                self.i += 1;
            }
            b')' => {
                if self.in_case_pattern() {
                    self.end_word();
                    self.frame().words.clear();
                    if let Some(state) = self.frame().cases.last_mut() {
                        *state = CaseState::Body;
                    }
                    self.i += 1;
                    return;
                }
                self.end_command(End::Plain);
                self.i += 1;
                let f = self.frame();
                if f.parens > 0 {
                    f.parens -= 1;
                } else if f.substitution && !f.backquote {
                    self.pop_frame();
                }
            }
            b';' => {
                if self.peek(1) == Some(b';') {
                    self.i += if self.peek(2) == Some(b'&') { 3 } else { 2 };
                    self.end_command(End::CaseBranch);
                } else if self.peek(1) == Some(b'&') {
                    self.i += 2;
                    self.end_command(End::CaseBranch);
                } else {
                    self.i += 1;
                    self.end_command(End::Plain);
                }
            }
            b'&' => match self.peek(1) {
                Some(b'&') => {
                    self.i += 2;
                    self.end_command(End::Plain);
                }
                Some(b'>') => {
                    self.i += if self.peek(2) == Some(b'>') { 3 } else { 2 };
                    self.redirect();
                }
                _ => {
                    self.i += 1;
                    self.end_command(End::Background);
                }
            },
            b'|' => match self.peek(1) {
                Some(b'|') => {
                    self.i += 2;
                    self.end_command(End::Plain);
                }
                Some(b'&') => {
                    self.i += 2;
                    self.end_command(End::Pipe);
                }
                _ => {
                    self.i += 1;
                    if self.in_case_pattern() || self.frame().test {
                        self.end_word();
                    } else {
                        self.end_command(End::Pipe);
                    }
                }
            },
            b'<' | b'>' => self.redirect_operator(c),
            _ => {
                let start = self.i;
                let end = next_char_end(self.text, start);
                self.push_text(start, end);
                self.i = end;
            }
        }
    }

    fn dquote_byte(&mut self) {
        let c = self.b[self.i];
        match c {
            b'"' => {
                self.i += 1;
                // Hand the quoted text to the word of the frame below.
                let text = std::mem::take(&mut self.frame().word);
                self.pop_frame();
                let f = self.frame();
                f.word.push_str(&text);
                f.in_word = true;
            }
            b'\\' => {
                let start = self.i + 1;
                let end = next_char_end(self.text, start);
                if self.peek(1) != Some(b'\n') {
                    self.push_text(start, end);
                }
                self.i = end.max(self.i + 2);
            }
            b'`' => self.backquote(),
            b'$' => self.dollar(),
            _ => {
                let start = self.i;
                let end = next_char_end(self.text, start);
                self.push_text(start, end);
                self.i = end;
            }
        }
    }

    fn arith_byte(&mut self) {
        match self.b[self.i] {
            b'(' => self.frame().parens += 1,
            b')' => {
                let f = self.frame();
                if f.parens > 0 {
                    f.parens -= 1;
                } else {
                    // `))` closes: skip the second one.
                    if self.peek(1) == Some(b')') {
                        self.i += 1;
                    }
                    self.pop_frame();
                    self.frame().in_word = true;
                }
            }
            b'`' => {
                self.backquote();
                return;
            }
            b'$' if self.peek(1) == Some(b'(') => {
                self.dollar();
                return;
            }
            _ => {}
        }
        self.i += 1;
    }

    fn backquote(&mut self) {
        self.i += 1;
        if self.frame().backquote {
            self.end_command(End::Plain);
            self.pop_frame();
            self.frame().in_word = true;
            return;
        }
        self.frame().in_word = true;
        let mut f = Frame::command(true);
        f.backquote = true;
        self.push_frame(f);
    }

    fn dollar(&mut self) {
        match (self.peek(1), self.peek(2)) {
            (Some(b'('), Some(b'(')) => {
                self.i += 3;
                self.frame().in_word = true;
                self.push_frame(Frame::other(Mode::Arith));
            }
            (Some(b'('), _) => {
                self.i += 2;
                self.frame().in_word = true;
                if !self.push_frame(Frame::command(true)) {
                    self.frame().parens += 1;
                }
            }
            (Some(b'\''), _) if self.frame().mode == Mode::Command => {
                // `$'...'`: backslash escapes inside.
                let mut j = self.i + 2;
                while j < self.b.len() && self.b[j] != b'\'' {
                    j += if self.b[j] == b'\\' { 2 } else { 1 };
                }
                let end = j.min(self.b.len());
                self.push_text(self.i + 2, end);
                self.i = end + 1;
            }
            _ => {
                self.push_char('$');
                self.i += 1;
            }
        }
    }

    fn redirect_operator(&mut self, c: u8) {
        // A word of digits (or `{name}`) right before the operator is its fd, not a word.
        {
            let f = self.frame();
            let fd = f.in_word
                && !f.word.is_empty()
                && (f.word.bytes().all(|b| b.is_ascii_digit())
                    || (f.word.starts_with('{') && f.word.ends_with('}')));
            if fd {
                f.word.clear();
                f.in_word = false;
            } else {
                self.end_word();
            }
        }
        if c == b'<' && self.peek(1) == Some(b'<') {
            if self.peek(2) == Some(b'<') {
                self.i += 3;
                self.redirect();
                return;
            }
            let strip = self.peek(2) == Some(b'-');
            self.i += if strip { 3 } else { 2 };
            self.heredoc_delimiter(strip);
            return;
        }
        self.i += 1;
        if matches!(self.peek(0), Some(b'>' | b'&' | b'|')) {
            self.i += 1;
        }
        self.redirect();
    }

    fn redirect(&mut self) {
        self.frame().redirect_target = true;
    }

    /// Reads a here-document's delimiter word (quotes removed, `$(...)` kept as written).
    fn heredoc_delimiter(&mut self, strip: bool) {
        while matches!(self.peek(0), Some(b' ' | b'\t')) {
            self.i += 1;
        }
        let mut delim = String::new();
        let mut parens = 0usize;
        while let Some(c) = self.peek(0) {
            match c {
                b'\'' | b'"' => {
                    let end = find_byte(self.b, self.i + 1, c);
                    delim.push_str(self.text.get(self.i + 1..end).unwrap_or(""));
                    self.i = end + 1;
                }
                b'\\' => {
                    let end = next_char_end(self.text, self.i + 1);
                    delim.push_str(self.text.get(self.i + 1..end).unwrap_or(""));
                    self.i = end;
                }
                b'(' => {
                    parens += 1;
                    delim.push('(');
                    self.i += 1;
                }
                b')' if parens > 0 => {
                    parens -= 1;
                    delim.push(')');
                    self.i += 1;
                }
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b')' => break,
                _ => {
                    let end = next_char_end(self.text, self.i);
                    delim.push_str(self.text.get(self.i..end).unwrap_or(""));
                    self.i = end;
                }
            }
        }
        self.heredocs.push((delim, strip));
    }

    /// After a newline: skips the bodies of the here-documents opened on the line before.
    fn skip_heredoc_bodies(&mut self) {
        for (delim, strip) in std::mem::take(&mut self.heredocs) {
            while self.i < self.b.len() {
                let end = find_byte(self.b, self.i, b'\n');
                let line = self.text.get(self.i..end).unwrap_or("");
                let line = if strip {
                    line.trim_start_matches('\t')
                } else {
                    line
                };
                self.i = (end + 1).min(self.b.len().max(end));
                if line == delim {
                    break;
                }
            }
        }
    }

    fn in_case_pattern(&mut self) -> bool {
        matches!(
            self.frame().cases.last(),
            Some(CaseState::Pattern | CaseState::Subject)
        )
    }

    fn at_command_position(&mut self) -> bool {
        let f = self.frame();
        !f.in_word && f.words.is_empty()
    }

    fn end_word(&mut self) {
        let f = self.frame();
        if !f.in_word {
            return;
        }
        let word = std::mem::take(&mut f.word);
        f.in_word = false;
        if f.redirect_target {
            f.redirect_target = false;
            return;
        }
        // Words of a `case` header and patterns are not commands.
        match f.cases.last().copied() {
            Some(CaseState::Subject) => {
                if word == "in"
                    && let Some(s) = f.cases.last_mut()
                {
                    *s = CaseState::Pattern;
                }
                return;
            }
            Some(CaseState::Pattern) => {
                if word == "esac" {
                    f.cases.pop();
                }
                return;
            }
            _ => {}
        }
        if f.words.is_empty() {
            if f.loop_header {
                if word == "do" {
                    f.loop_header = false;
                }
                return;
            }
            if f.test {
                if word == "]]" {
                    f.test = false;
                }
                return;
            }
            match word.as_str() {
                "case" => {
                    if f.cases.len() < MAX_CASES {
                        f.cases.push(CaseState::Subject);
                    }
                    return;
                }
                "esac" => {
                    f.cases.pop();
                    return;
                }
                "for" | "select" => {
                    f.loop_header = true;
                    return;
                }
                "[[" => {
                    f.test = true;
                    return;
                }
                w if KEYWORDS.contains(&w) => return,
                w if is_assignment(w) => return,
                _ => {}
            }
        }
        if f.test {
            if word == "]]" {
                f.test = false;
            }
            return;
        }
        f.words.push(word);
    }

    fn end_command(&mut self, end: End) {
        self.end_word();
        let f = self.frame();
        let words = std::mem::take(&mut f.words);
        f.redirect_target = false;
        let substitution = f.substitution;
        if end == End::CaseBranch
            && let Some(state) = f.cases.last_mut()
        {
            *state = CaseState::Pattern;
        }
        if self.found.is_some() {
            return;
        }
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        if let Some(why) = self.judge(&refs) {
            self.found = Some(why);
            return;
        }
        match end {
            End::Background if !refs.is_empty() => {
                self.found = Some(format!("a background job (`{} &`)", shown(&refs)));
            }
            End::Pipe if !refs.is_empty() && !substitution => {
                self.found = Some(format!("a pipeline (`{} | ...`)", shown(&refs)));
            }
            _ => {}
        }
    }

    /// What one simple command says about the launch.
    fn judge(&self, words: &[&str]) -> Option<String> {
        let mut words = words;
        // Bounded: each step drops at least one word.
        loop {
            let first = *words.first()?;
            match basename(first) {
                // Builtins and keywords; launchers (`nohup`, `env`...) are the table's, below.
                "exec" | "command" | "builtin" | "time" | "then" | "do" | "else" => {
                    words = skip_flags(&words[1..]);
                    continue;
                }
                "wait" => return Some("`wait` for background jobs".into()),
                "coproc" => return Some("a coprocess (`coproc`)".into()),
                "eval" => {
                    let text = words[1..].join(" ");
                    return self.nested(&text);
                }
                _ => {}
            }
            if launchers::is_supervisor(first) {
                return Some(format!("process supervisor {}", basename(first)));
            }
            if daemons::daemonizes(first, &words[1..]) {
                return Some(format!(
                    "{} daemonises (a second long-running process)",
                    basename(first)
                ));
            }
            if shell_family(first).is_some()
                || (launchers::is_busybox(first)
                    && words.get(1).is_some_and(|w| shell_family(w).is_some()))
            {
                let rest = if launchers::is_busybox(first) {
                    &words[2..]
                } else {
                    &words[1..]
                };
                return shell_script(rest).and_then(|script| self.nested(script));
            }
            match launchers::peel(words, &Environment::none()) {
                Peeled::Runs { next, .. } | Peeled::Init { next, .. } => {
                    words = words.get(next..).unwrap_or(&[]);
                }
                Peeled::Script { script, .. } => {
                    let text = match script {
                        ScriptSource::Word(i) => {
                            words.get(i).map(|w| launchers::command_text(w).to_string())
                        }
                        ScriptSource::Joined(i) => Some(words.get(i..).unwrap_or(&[]).join(" ")),
                    };
                    return text.and_then(|t| self.nested(&t));
                }
                Peeled::Split { index, .. } => {
                    let text = words.get(index).map(|w| launchers::split_text(w))?;
                    return self.nested(text);
                }
                Peeled::Program | Peeled::NoCommand { .. } => return None,
            }
        }
    }

    fn nested(&self, script: &str) -> Option<String> {
        if self.depth + 1 >= MAX_NESTED {
            return None;
        }
        // `sh -c "$SCRIPT"`: the script is the env var's value, when it is known.
        let name = script
            .strip_prefix("${")
            .and_then(|r| r.strip_suffix('}'))
            .or_else(|| script.strip_prefix('$'));
        let script = match name {
            Some(name)
                if !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                self.budget.env.value(name).unwrap_or(script)
            }
            _ => script,
        };
        if !self.budget.take(script.len()) {
            return None;
        }
        scan_nested(script, self.depth + 1, self.budget)
            .map(|why| format!("{why} in a nested script"))
    }
}

/// The `-c` script among a shell's arguments.
fn shell_script<'w>(args: &[&'w str]) -> Option<&'w str> {
    let mut command_mode = false;
    let mut i = 0;
    while let Some(&a) = args.get(i) {
        if a == "--" || a == "-" {
            i += 1;
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            i += if matches!(long, "rcfile" | "init-file") {
                2
            } else {
                1
            };
            continue;
        }
        if (a.starts_with('-') || a.starts_with('+')) && a.len() > 1 {
            let takes = a
                .bytes()
                .skip(1)
                .filter(|b| matches!(b, b'o' | b'O'))
                .count();
            if a.bytes().skip(1).any(|b| b == b'c') {
                command_mode = true;
            }
            i += 1 + takes;
            continue;
        }
        break;
    }
    if command_mode {
        args.get(i).copied()
    } else {
        None
    }
}

fn skip_flags<'a, 'w>(words: &'a [&'w str]) -> &'a [&'w str] {
    let n = words.iter().take_while(|w| w.starts_with('-')).count();
    &words[n..]
}

fn shown(words: &[&str]) -> String {
    let mut s: String = words.iter().take(3).copied().collect::<Vec<_>>().join(" ");
    if s.len() > 40 {
        let mut cut = 40;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || b == b'_' || b == b'[' || b == b']' || b == b'+'
                })
                && !name.as_bytes()[0].is_ascii_digit()
        }
        None => false,
    }
}

/// Index of the next `c` at or after `from`, or the end.
fn find_byte(b: &[u8], from: usize, c: u8) -> usize {
    let from = from.min(b.len());
    b[from..]
        .iter()
        .position(|&x| x == c)
        .map_or(b.len(), |p| from + p)
}

/// The end of the character starting at `at` (at least `at + 1`, at most the end).
fn next_char_end(text: &str, at: usize) -> usize {
    let mut end = (at + 1).min(text.len());
    while end < text.len() && !text.is_char_boundary(end) {
        end += 1;
    }
    end.max(at + 1)
}

#[cfg(test)]
mod tests {
    use super::scan;

    #[test]
    fn multi_signs_are_found() {
        for s in [
            "/a & /b & wait",
            "# (((((((((((((((((((\n/a &\nexec /b",
            "x=1; /app/server | tee /log",
            "sshd; exec app",
            "service nginx start && exec app",
            "redis-server --daemonize yes\nexec app",
            "exec supervisord -n",
            "sh -c '/a & /b'",
            "su app -c \"/a & wait\"",
            "eval '/a & /b'",
            "cat <<$(x)\nhello\n$(x)\n/a & /b & wait",
            "echo 999999999999>/dev/null; /a & exec /b",
            "\"/a\" & exec /b",
            "coproc /agent\nexec /app",
            "env -S 'sh -c \"a & b\"'",
            "tini -- sh -c 'a | b'",
            "nohup -- sh -c 'a & b'",
            "exec nohup sshd",
            "( /a & ); exec /b",
            "x=$(/a & ); exec /b",
            "if true; then /a & fi; exec /b",
        ] {
            assert!(scan(s).is_some(), "{s:?}");
        }
    }

    #[test]
    fn quiet_scripts_stay_quiet() {
        for s in [
            "# ((((( a & b | c\nexec /app",
            "echo 'a & b | c'; exec /app",
            "echo \"a & b\"; exec /app 2>&1",
            "exec /app >/log 2>&1",
            "[ -f x ] && exec /app || exit 1",
            "case $1 in a|b) exec /a;; *) exec /b;; esac",
            "x=$((1 & 3 | 4)); exec /app",
            "cat <<EOF\na & b | c\nEOF\nexec /app",
            "cat <<-'E'\n\ta & b\n\tE\nexec /app",
            "v=$(cat /f | cut -c1); exec /app",
            "[[ $x == a || $y =~ a|b ]] && exec /app",
            "exec /app &>/dev/null",
            "sshd -D",
            "echo wait; exec app",
            "for p in a b; do echo $p; done; exec /app",
            "exec nohup /app",
        ] {
            assert_eq!(scan(s), None, "{s:?}");
        }
    }

    #[test]
    fn time_is_linear_in_the_length() {
        use std::time::{Duration, Instant};
        let env = crate::engine::kubelet::Environment::from_vars(vec![(
            "S".to_string(),
            Some("sh -c \"$S\"; ".repeat(2000)),
        )]);
        for piece in [
            "sh -c \"$S\"; ",
            "$(",
            "`",
            "\"$(",
            "case x in ",
            "cat <<E\n",
            "((",
            "$((",
            "eval eval eval ",
            "sh -c 'sh -c \"sh -c x\"' ",
            "{ ",
            "a\\\n",
        ] {
            let small = piece.repeat(2_000);
            let large = piece.repeat(16_000);
            // The best of three runs: a shared machine only ever makes a run slower.
            let time = |s: &str| {
                (0..3)
                    .map(|_| {
                        let started = Instant::now();
                        let _ = super::scan_with_env(s, &env);
                        started.elapsed()
                    })
                    .min()
                    .unwrap_or_default()
            };
            let (t_small, t_large) = (time(&small), time(&large));
            // 8 times the input: well under 64 times the time (what quadratic would take),
            // with room for a noisy machine.
            assert!(
                t_large < t_small * 40 + Duration::from_millis(50),
                "{piece:?}: {t_small:?} -> {t_large:?}"
            );
        }
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for s in [
            "\"",
            "'",
            "$(",
            "$((",
            "`",
            "\\",
            "<<",
            "<<-",
            "((((",
            "))))",
            "$'\\",
            "é&",
            "a\\é",
            "cat <<\"",
            "case",
            "case x in",
            "esac esac",
            "\"$(\"`'",
            "&",
            "|",
            ";;&",
        ] {
            let _ = scan(s);
        }
    }
}
