//! The walk over brush-parser's syntax tree that turns a script into [`ScriptFacts`].
//!
//! brush-parser has no visitor, so this is a recursion over its enums. Depth is bounded so a
//! deeply nested script cannot overflow the stack here (the parser itself is contained by the
//! caller).

use crate::engine::daemons;
use crate::engine::kubelet::Environment;
use crate::engine::launchers::{self, Peeled, basename, is_supervisor};
use crate::engine::script_facts::{Ending, FinalCommand, FinalKind, ScriptFacts, Trap};
use brush_parser::ast::{
    AndOr, AndOrList, Command, CommandPrefixOrSuffixItem, CompoundCommand, CompoundList,
    CompoundListItem, ExtendedTestExpr, FunctionBody, IoFileRedirectKind, IoFileRedirectTarget,
    IoRedirect, Pipeline, Program, SeparatorOperator, SimpleCommand,
};
use std::collections::HashMap;

/// Applies `f` to the final command of an ending that has one.
fn mark(end: End, f: impl FnOnce(&mut FinalCommand)) -> End {
    match end {
        End::Exec(p, mut last) => {
            f(&mut last);
            End::Exec(p, last)
        }
        End::Fg {
            program,
            insert_at,
            mut last,
        } => {
            f(&mut last);
            End::Fg {
                program,
                insert_at,
                last,
            }
        }
        other => other,
    }
}

/// Beyond this nesting the walk stops looking deeper (it treats the rest as opaque).
const MAX_DEPTH: usize = 200;

/// How many function calls the walk expands in one script.
const MAX_FUNCTION_EXPANSIONS: usize = 256;

/// Shell builtins and trivial utilities: running them keeps nothing alive.
const BUILTINS: &[&str] = &[
    ":", "true", "false", "echo", "printf", "wait", "set", "export", "unset", "cd", "shift",
    "read", "ulimit", "umask", "local", "readonly", "declare", "typeset", "test", "[", "alias",
    "unalias", "hash", "type", "getopts", "let", "pushd", "popd", "shopt", "break", "continue",
    "trap", "source", ".",
];

const STOP_SIGNALS: &[&str] = &[
    "TERM", "SIGTERM", "15", "INT", "SIGINT", "2", "HUP", "SIGHUP", "1", "QUIT", "SIGQUIT", "3",
];

/// The ending of a piece of script, richer than [`Ending`] while walking.
#[derive(Debug, Clone)]
enum End {
    /// Builtins only (named for messages).
    Builtin(String),
    /// Ends the shell (`exit`, `return`).
    Dead,
    Exec(String, Box<FinalCommand>),
    Fg {
        program: String,
        insert_at: Vec<usize>,
        last: Box<FinalCommand>,
    },
    Pipeline(Vec<String>),
    Trailing {
        program: String,
        after: String,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct Ctx {
    background: bool,
    endless: bool,
}

struct Walker<'a> {
    script: &'a str,
    facts: ScriptFacts,
    functions: HashMap<String, &'a FunctionBody>,
    depth: usize,
    /// Number of top-level commands, to tell "the only command" apart.
    top_level: usize,
    /// Function bodies the walk may still expand. Functions calling functions twice each
    /// would otherwise cost 2^n steps; past the budget a call counts as an unknown program.
    expansions_left: usize,
}

/// Derives the facts of a parsed script; `script` is the text it was parsed from.
pub fn facts(program: &Program, script: &str) -> ScriptFacts {
    let items: Vec<&CompoundListItem> = program
        .complete_commands
        .iter()
        .flat_map(|l| l.0.iter())
        .collect();
    let mut w = Walker {
        script,
        facts: ScriptFacts {
            ending: Ending::Nothing,
            background: Vec::new(),
            endless_loop: false,
            signal_trap: false,
            supervisor: None,
            stop_hack: None,
            touched: Vec::new(),
            last: None,
            traps: Vec::new(),
            commands: Vec::new(),
        },
        functions: HashMap::new(),
        depth: 0,
        top_level: items.len(),
        expansions_left: MAX_FUNCTION_EXPANSIONS,
    };
    let end = w.list(&items, Ctx::default());
    let only_command = w.top_level == 1;
    w.facts.ending = match end {
        End::Builtin(_) | End::Dead => Ending::Nothing,
        End::Exec(program, last) => {
            w.facts.last = Some(*last);
            Ending::Exec { program }
        }
        End::Fg {
            program,
            insert_at,
            last,
        } => {
            w.facts.last = Some(*last);
            Ending::Foreground {
                program,
                insert_at,
                only_command,
            }
        }
        End::Pipeline(programs) => Ending::Pipeline { programs },
        End::Trailing { program, after } => Ending::Trailing { program, after },
    };
    w.facts
}

fn unquote(word: &str) -> String {
    brush_parser::unquote_str(word)
}

impl<'a> Walker<'a> {
    /// Byte offset of a parser character index.
    fn byte_offset(&self, char_index: usize) -> Option<usize> {
        if self.script.is_ascii() {
            return (char_index <= self.script.len()).then_some(char_index);
        }
        self.script
            .char_indices()
            .map(|(b, _)| b)
            .chain(std::iter::once(self.script.len()))
            .nth(char_index)
    }

    fn list(&mut self, items: &[&'a CompoundListItem], ctx: Ctx) -> End {
        if self.depth > MAX_DEPTH {
            return End::Builtin(String::new());
        }
        self.depth += 1;
        let mut result = End::Builtin(String::new());
        for item in items {
            let CompoundListItem(and_or, sep) = item;
            if matches!(sep, SeparatorOperator::Async) {
                self.background(and_or, ctx);
                result = sequence(result, End::Builtin("&".into()));
                continue;
            }
            let end = self.and_or(and_or, ctx);
            result = sequence(result, end);
        }
        self.depth -= 1;
        result
    }

    fn compound_list(&mut self, list: &'a CompoundList, ctx: Ctx) -> End {
        let items: Vec<&CompoundListItem> = list.0.iter().collect();
        self.list(&items, ctx)
    }

    fn and_or(&mut self, list: &'a AndOrList, ctx: Ctx) -> End {
        let mut result = self.pipeline(&list.first, ctx);
        for next in &list.additional {
            match next {
                // `a && b`: when `a` fails the shell goes on past the list (or exits under
                // `set -e`); the path that matters is the one through `b`.
                AndOr::And(p) => {
                    let end = self.pipeline(p, ctx);
                    result = sequence(result, end);
                }
                // `a || b`: `b` runs only when `a` fails, so both paths are live.
                AndOr::Or(p) => {
                    let end = self.pipeline(p, ctx);
                    let through = sequence(result.clone(), end);
                    result = combine(vec![result, through]);
                }
            }
        }
        result
    }

    fn pipeline(&mut self, p: &'a Pipeline, ctx: Ctx) -> End {
        if p.seq.len() == 1 {
            let end = self.command(&p.seq[0], ctx);
            return if p.bang {
                mark(end, |l| l.negated = true)
            } else {
                end
            };
        }
        let mut programs = Vec::new();
        for cmd in &p.seq {
            match self.command(cmd, ctx) {
                End::Exec(prog, _)
                | End::Fg { program: prog, .. }
                | End::Trailing { program: prog, .. } => programs.push(prog),
                End::Pipeline(mut progs) => programs.append(&mut progs),
                End::Builtin(_) | End::Dead => {}
            }
        }
        match programs.len() {
            0 => End::Builtin("pipeline".into()),
            // A pipeline element runs in a subshell: inserting `exec` there does not help.
            1 => End::Fg {
                program: programs.remove(0),
                insert_at: Vec::new(),
                last: Box::new(FinalCommand {
                    nested: true,
                    ..FinalCommand::default()
                }),
            },
            _ => End::Pipeline(programs),
        }
    }

    fn command(&mut self, cmd: &'a Command, ctx: Ctx) -> End {
        match cmd {
            Command::Simple(sc) => self.simple(sc, ctx),
            Command::Compound(cc, redirects) => {
                let end = self.compound(cc, ctx);
                let subshell = matches!(cc, CompoundCommand::Subshell(_));
                mark(end, |l| {
                    if subshell {
                        l.subshell = true;
                    } else {
                        l.compound = true;
                    }
                    if redirects.is_some() {
                        l.redirect = true;
                    }
                })
            }
            Command::Function(def) => {
                self.functions.insert(def.fname.value.clone(), &def.body);
                End::Builtin("function".into())
            }
            Command::ExtendedTest(test, _) => {
                let mut words = vec!["[[".to_string()];
                test_words(&test.expr, &mut words);
                self.facts.record_command(words);
                End::Builtin("[[".into())
            }
        }
    }

    fn compound(&mut self, cc: &'a CompoundCommand, ctx: Ctx) -> End {
        if self.depth > MAX_DEPTH {
            return End::Builtin(String::new());
        }
        self.depth += 1;
        let end = match cc {
            CompoundCommand::BraceGroup(b) => self.compound_list(&b.list, ctx),
            CompoundCommand::Subshell(s) => match self.compound_list(&s.list, ctx) {
                // The subshell is a child: even its `exec` leaves the parent shell as PID 1.
                End::Exec(program, last) | End::Fg { program, last, .. } => End::Fg {
                    program,
                    insert_at: Vec::new(),
                    last,
                },
                other => other,
            },
            CompoundCommand::IfClause(i) => {
                self.compound_list(&i.condition, ctx);
                let mut branches = vec![self.compound_list(&i.then, ctx)];
                let mut has_else = false;
                for e in i.elses.iter().flatten() {
                    if let Some(cond) = &e.condition {
                        self.compound_list(cond, ctx);
                    } else {
                        has_else = true;
                    }
                    branches.push(self.compound_list(&e.body, ctx));
                }
                if !has_else {
                    branches.push(End::Builtin("if".into()));
                }
                combine(branches)
            }
            CompoundCommand::CaseClause(c) => {
                let mut branches = Vec::new();
                let mut has_default = false;
                for item in &c.cases {
                    if item.patterns.iter().any(|p| p.value == "*") {
                        has_default = true;
                    }
                    branches.push(match &item.cmd {
                        Some(list) => self.compound_list(list, ctx),
                        None => End::Builtin("case".into()),
                    });
                }
                if !has_default {
                    branches.push(End::Builtin("case".into()));
                }
                combine(branches)
            }
            CompoundCommand::WhileClause(w) | CompoundCommand::UntilClause(w) => {
                let until = matches!(cc, CompoundCommand::UntilClause(_));
                let endless = is_endless_condition(&w.0, until);
                self.compound_list(&w.0, ctx);
                let inner = Ctx {
                    endless: ctx.endless || endless,
                    ..ctx
                };
                self.compound_list(&w.1.list, inner);
                if endless && !ctx.background {
                    self.facts.endless_loop = true;
                }
                End::Builtin("loop".into())
            }
            CompoundCommand::ForClause(f) => {
                self.compound_list(&f.body.list, ctx);
                End::Builtin("for".into())
            }
            CompoundCommand::ArithmeticForClause(f) => {
                let endless = f.condition.is_none();
                let inner = Ctx {
                    endless: ctx.endless || endless,
                    ..ctx
                };
                self.compound_list(&f.body.list, inner);
                if endless && !ctx.background {
                    self.facts.endless_loop = true;
                }
                End::Builtin("for".into())
            }
            CompoundCommand::Arithmetic(_) => End::Builtin("((".into()),
            CompoundCommand::Coprocess(c) => {
                let inner = Ctx {
                    background: true,
                    ..ctx
                };
                let end = self.command(&c.body, inner);
                self.note_background(end, ctx, "coproc");
                End::Builtin("coproc".into())
            }
        };
        self.depth -= 1;
        end
    }

    fn background(&mut self, list: &'a AndOrList, ctx: Ctx) {
        let inner = Ctx {
            background: true,
            ..ctx
        };
        let end = self.and_or(list, inner);
        self.note_background(end, ctx, "background job");
    }

    fn note_background(&mut self, end: End, ctx: Ctx, fallback: &str) {
        if ctx.endless {
            // A restart loop: the loop, not the job, keeps the shell alive.
            return;
        }
        match end {
            End::Exec(p, _) | End::Fg { program: p, .. } | End::Trailing { program: p, .. } => {
                self.facts.background.push(p)
            }
            End::Pipeline(mut ps) => self.facts.background.append(&mut ps),
            End::Builtin(name) if name == "loop" || name == "for" => {
                self.facts.background.push(fallback.into())
            }
            End::Builtin(_) | End::Dead => {}
        }
    }

    fn simple(&mut self, sc: &'a SimpleCommand, ctx: Ctx) -> End {
        let Some(name_word) = &sc.word_or_name else {
            return End::Builtin("assignment".into());
        };
        let name = unquote(&name_word.value);
        let words = sc
            .suffix
            .iter()
            .flat_map(|s| s.0.iter())
            .filter_map(|item| match item {
                CommandPrefixOrSuffixItem::Word(w) => Some(w),
                _ => None,
            });
        let args: Vec<String> = words.clone().map(|w| unquote(&w.value)).collect();
        // The words as written, so the caller can bind `"$@"` and read nested scripts.
        let raw: Vec<String> = std::iter::once(name_word.value.clone())
            .chain(words.map(|w| w.value.clone()))
            .collect();
        let redirect = sc
            .suffix
            .iter()
            .flat_map(|s| s.0.iter())
            .chain(sc.prefix.iter().flat_map(|p| p.0.iter()))
            .any(|item| matches!(item, CommandPrefixOrSuffixItem::IoRedirect(_)));
        let last = |from: usize, kind: FinalKind| {
            Box::new(FinalCommand {
                kind,
                argv: raw.get(from..).unwrap_or_default().to_vec(),
                redirect,
                ..FinalCommand::default()
            })
        };
        self.note_side_effects(&name, &args, sc);
        self.facts
            .record_command(std::iter::once(name.clone()).chain(args.iter().cloned()));

        let base = basename(&name).to_string();
        match base.as_str() {
            "exec" => {
                let program = args.iter().enumerate().find(|(i, a)| {
                    !(a.starts_with('-') || (*i > 0 && args.get(i - 1).is_some_and(|p| p == "-a")))
                });
                return match program {
                    None => End::Builtin("exec".into()),
                    // `exec echo done` replaces the shell with a builtin's namesake: no app.
                    Some((_, p)) if BUILTINS.contains(&basename(p)) => {
                        End::Builtin(format!("exec {p}"))
                    }
                    Some((i, p)) => {
                        let program = unwrap_program(&args[i..]).unwrap_or_else(|| p.clone());
                        if is_supervisor(&program) {
                            self.facts.supervisor.get_or_insert(program.clone());
                        }
                        // Keep the word as written so `"$@"` can be resolved by the caller.
                        let written = raw.get(i + 1).cloned().unwrap_or(program.clone());
                        End::Exec(
                            if written.contains('$') {
                                written
                            } else {
                                program
                            },
                            last(i + 1, FinalKind::Program),
                        )
                    }
                };
            }
            "exit" | "return" => return End::Dead,
            "trap" => {
                let rest: Vec<&String> = args.iter().skip_while(|a| *a == "--").collect();
                if let Some((action, signals)) = rest.split_first() {
                    self.facts.traps.push(Trap {
                        action: (*action).clone(),
                        signals: signals.iter().map(|s| (*s).clone()).collect(),
                    });
                }
                if args.first().is_some_and(|a| a != "-")
                    && args
                        .iter()
                        .skip(1)
                        .any(|s| STOP_SIGNALS.contains(&s.as_str()))
                {
                    self.facts.signal_trap = true;
                }
                return End::Builtin("trap".into());
            }
            // `. FILE` / `source FILE`: the file's text runs in this shell, unseen.
            "." | "source" if !args.is_empty() => {
                return End::Fg {
                    program: args[0].clone(),
                    insert_at: Vec::new(),
                    last: last(0, FinalKind::Source),
                };
            }
            // Text built at run time; `exec eval` would fail, so no insertion point.
            "eval" => {
                return End::Fg {
                    program: "eval".into(),
                    insert_at: Vec::new(),
                    last: last(0, FinalKind::Eval),
                };
            }
            _ => {}
        }
        if BUILTINS.contains(&base.as_str()) {
            return End::Builtin(base);
        }
        if let Some(body) = self.functions.get(name.as_str()).copied() {
            if self.depth > MAX_DEPTH {
                return End::Builtin(String::new());
            }
            if self.expansions_left == 0 {
                return End::Fg {
                    program: name,
                    insert_at: Vec::new(),
                    last: Box::new(FinalCommand {
                        nested: true,
                        ..FinalCommand::default()
                    }),
                };
            }
            self.expansions_left -= 1;
            self.depth += 1;
            // Called functions run in this shell: their ending is the call's ending, but their
            // text lives elsewhere, so no exec insertion here.
            let end = match self.compound(&body.0, ctx) {
                End::Fg { program, last, .. } => End::Fg {
                    program,
                    insert_at: Vec::new(),
                    last: Box::new(FinalCommand {
                        nested: true,
                        ..*last
                    }),
                },
                other => other,
            };
            self.depth -= 1;
            return end;
        }
        let mut all = vec![name.clone()];
        all.extend(args.iter().cloned());
        let (program, at) = match unwrap_at(&all) {
            Some(at) => (all[at].clone(), at),
            None => (name.clone(), 0),
        };
        let after: Vec<&str> = all
            .get(at + 1..)
            .unwrap_or_default()
            .iter()
            .map(String::as_str)
            .collect();
        if daemons::daemonizes(&program, &after) {
            if !ctx.endless {
                self.facts.background.push(program);
            }
            return End::Builtin("daemon".into());
        }
        if is_supervisor(&program) {
            self.facts.supervisor.get_or_insert(program.clone());
        }
        // `command app`/`builtin x`: `exec command` would look for a `command` program.
        let insertable = !matches!(base.as_str(), "command" | "builtin" | "time");
        let insert_at = name_word
            .loc
            .as_ref()
            .filter(|_| insertable)
            .and_then(|loc| self.byte_offset(loc.start.index))
            .into_iter()
            .collect();
        End::Fg {
            program,
            insert_at,
            last: last(0, FinalKind::Program),
        }
    }

    fn note_side_effects(&mut self, name: &str, args: &[String], sc: &SimpleCommand) {
        let base = basename(name);
        match base {
            "curl" | "wget" | "http" | "nc" => {
                if let Some(url) = args.iter().find(|a| {
                    a.contains("quitquitquit")
                        || a.contains(":4191/shutdown")
                        || a.contains("/quitquitquit")
                }) {
                    self.facts.stop_hack.get_or_insert(format!("{base} {url}"));
                }
            }
            "pkill" | "killall" => {
                let target = args
                    .iter()
                    .rfind(|a| !a.starts_with('-'))
                    .cloned()
                    .unwrap_or_default();
                self.facts
                    .stop_hack
                    .get_or_insert(format!("{base} {target}").trim_end().to_string());
            }
            "touch" => {
                for a in args.iter().filter(|a| !a.starts_with('-')) {
                    self.facts.touched.push(a.clone());
                }
            }
            ":" | "true" | "echo" | "printf" | "date" => {
                for item in sc
                    .suffix
                    .iter()
                    .flat_map(|s| s.0.iter())
                    .chain(sc.prefix.iter().flat_map(|p| p.0.iter()))
                {
                    if let CommandPrefixOrSuffixItem::IoRedirect(IoRedirect::File(
                        _,
                        kind,
                        IoFileRedirectTarget::Filename(w),
                    )) = item
                        && matches!(
                            kind,
                            IoFileRedirectKind::Write | IoFileRedirectKind::Clobber
                        )
                    {
                        self.facts.touched.push(unquote(&w.value));
                    }
                }
            }
            _ => {}
        }
    }
}

/// The operands of a `[[ ]]` test, with their operators (`-f`, `=`), in order.
fn test_words(expr: &ExtendedTestExpr, out: &mut Vec<String>) {
    match expr {
        ExtendedTestExpr::And(a, b) | ExtendedTestExpr::Or(a, b) => {
            test_words(a, out);
            test_words(b, out);
        }
        ExtendedTestExpr::Not(e) | ExtendedTestExpr::Parenthesized(e) => {
            out.push("!".into());
            test_words(e, out);
        }
        ExtendedTestExpr::UnaryTest(predicate, word) => {
            out.push(predicate.to_string());
            out.push(unquote(&word.value));
        }
        ExtendedTestExpr::BinaryTest(predicate, left, right) => {
            out.push(unquote(&left.value));
            out.push(predicate.to_string());
            out.push(unquote(&right.value));
        }
    }
}

/// Skips launchers (`nohup x`, `env A=b x`, `su-exec u x`) to the program that really runs;
/// `None` when the words run no program.
fn unwrap_program(argv: &[String]) -> Option<String> {
    unwrap_at(argv).and_then(|at| argv.get(at).cloned())
}

/// The index of the program [`unwrap_program`] finds.
fn unwrap_at(argv: &[String]) -> Option<usize> {
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut at = 0;
    // Bounded: each launcher consumes at least its own word.
    while at < words.len() {
        let first = words[at];
        if matches!(first, "command" | "builtin" | "time") {
            at += 1;
            continue;
        }
        match launchers::peel(&words[at..], &Environment::none()) {
            Peeled::Runs { next, .. } | Peeled::Init { next, .. } => at += next,
            Peeled::Program => return Some(at),
            // A launcher that runs a script or nothing: the launcher is the program.
            Peeled::Script { .. } | Peeled::Split { .. } | Peeled::NoCommand { .. } => {
                return Some(at);
            }
        }
    }
    None
}

fn is_endless_condition(cond: &CompoundList, until: bool) -> bool {
    let [CompoundListItem(and_or, _)] = cond.0.as_slice() else {
        return false;
    };
    if !and_or.additional.is_empty() || and_or.first.seq.len() != 1 || and_or.first.bang {
        return false;
    }
    let Command::Simple(sc) = &and_or.first.seq[0] else {
        return false;
    };
    let Some(name) = &sc.word_or_name else {
        return false;
    };
    let name = unquote(&name.value);
    if until {
        name == "false"
    } else {
        matches!(name.as_str(), "true" | ":" | "sleep")
            || (name == "[" && sc.suffix.as_ref().is_some_and(|s| s.0.len() == 2))
    }
}

/// The ending of `a; b`: what runs last decides, and nothing after `exec` or `exit` runs.
fn sequence(before: End, next: End) -> End {
    match (before, next) {
        (e @ (End::Exec(..) | End::Dead), _) => e,
        // A sourced file before more commands is setup, like any builtin.
        (End::Fg { last, .. }, next) if last.kind == FinalKind::Source => next,
        (End::Fg { program, .. }, End::Builtin(after)) => End::Trailing { program, after },
        (End::Fg { program, .. }, End::Dead) => End::Trailing {
            program,
            after: "exit".into(),
        },
        (End::Pipeline(ps), End::Builtin(after)) => End::Trailing {
            program: ps.join(" | "),
            after,
        },
        (End::Pipeline(ps), End::Dead) => End::Trailing {
            program: ps.join(" | "),
            after: "exit".into(),
        },
        (End::Trailing { program, after }, End::Builtin(more)) => End::Trailing {
            program,
            after: if more.is_empty() {
                after
            } else {
                format!("{after}; {more}")
            },
        },
        (End::Trailing { program, after }, End::Dead) => End::Trailing {
            program,
            after: format!("{after}; exit"),
        },
        (End::Builtin(_), next) => next,
        (_, next) => next,
    }
}

/// The ending of branches (if/case): dead branches do not count; every live one must exec.
fn combine(branches: Vec<End>) -> End {
    let live: Vec<End> = branches
        .into_iter()
        .filter(|b| !matches!(b, End::Dead))
        .collect();
    if live.is_empty() {
        return End::Dead;
    }
    if let Some(End::Exec(p, last)) = live.first()
        && live.iter().all(|b| matches!(b, End::Exec(..)))
    {
        return End::Exec(p.clone(), last.clone());
    }
    if let Some(p) = live.iter().find(|b| matches!(b, End::Pipeline(_))) {
        return p.clone();
    }
    if let Some(t) = live.iter().find(|b| matches!(b, End::Trailing { .. })) {
        return t.clone();
    }
    let mut first = None;
    let mut insert_at = Vec::new();
    for b in &live {
        if let End::Fg {
            program: p,
            insert_at: at,
            last,
        } = b
        {
            first.get_or_insert_with(|| (p.clone(), last.clone()));
            insert_at.extend_from_slice(at);
        }
    }
    if let Some((program, last)) = first {
        return End::Fg {
            program,
            insert_at,
            last,
        };
    }
    if let Some(End::Exec(p, last)) = live.iter().find(|b| matches!(b, End::Exec(..))) {
        // Some branches exec, others run only builtins and fall through.
        return End::Fg {
            program: p.clone(),
            insert_at: Vec::new(),
            last: last.clone(),
        };
    }
    End::Builtin("if".into())
}

#[cfg(test)]
mod tests {
    use crate::engine::script::{Dialect, ScriptVerdict, analyze_script};
    use std::time::{Duration, Instant};

    #[test]
    fn nested_function_calls_are_bounded() {
        // f0 calls f1 twice, f1 calls f2 twice...: 2^40 expansions without a budget.
        let mut script = String::from("f40() { /app/server; }\n");
        for i in (0..40).rev() {
            script.push_str(&format!("f{i}() {{ f{n}; f{n}; }}\n", n = i + 1));
        }
        script.push_str("f0\n");
        let started = Instant::now();
        let verdict = analyze_script(Dialect::Sh, &script);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(verdict, ScriptVerdict::Parsed(_)));
    }
}
