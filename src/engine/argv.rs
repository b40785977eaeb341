//! From a container's `command` and `args` to a launch: expand kubelet `$(VAR)` references,
//! look through launchers and inits (the table in `launchers`), recognise shells, hand scripts
//! to the resolved verdicts (with a lexical scan when they cannot be parsed), follow `exec` hand-offs,
//! and classify (docs/design.md sections 1 and 5.2).

use crate::engine::dialect;
use crate::engine::image_config::ImageConfig;
use crate::engine::kubelet::{self, Environment, Expanded};
use crate::engine::launch::LaunchClass;
use crate::engine::launchers::{self, Forwarding, Peeled, ScriptSource, ShellFamily};
use crate::engine::lexical;
use crate::engine::script::{
    Dialect, Ending, FinalKind, ScriptFacts, ScriptVerdict, UnparsedReason,
};
use crate::engine::script_verdicts::ScriptLookup;
use crate::engine::workload::ContainerSpec;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

pub use crate::engine::launchers::{
    SIGNAL_DEAF, SUPERVISORS, basename, is_signal_deaf, is_supervisor,
};

/// How many `exec` hand-offs (`exec sh -c '...'`, `exec "$@"`) are followed.
const MAX_HANDOFFS: usize = 4;

/// Which field of the container an argv entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgvField {
    Command,
    Args,
    /// The image config's `Entrypoint`.
    ImageEntrypoint,
    /// The image config's `Cmd`.
    ImageCmd,
    /// Words split out of `env -S '...'` (inside one `command` or `args` entry).
    EnvSplit,
    /// Words of a script's final `exec` (a hand-off), inside another script.
    Handoff,
}

impl ArgvField {
    pub fn as_str(self) -> &'static str {
        match self {
            ArgvField::Command => "command",
            ArgvField::Args => "args",
            ArgvField::ImageEntrypoint => "image ENTRYPOINT",
            ArgvField::ImageCmd => "image CMD",
            ArgvField::EnvSplit => "env -S string",
            ArgvField::Handoff => "exec hand-off",
        }
    }

    /// Whether the kubelet expands `$(VAR)` in this field.
    fn kubelet_expands(self) -> bool {
        matches!(self, ArgvField::Command | ArgvField::Args)
    }
}

/// Position of one argv entry in the container spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgvSlot {
    pub field: ArgvField,
    pub index: usize,
}

/// A shell running a `-c` script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShellLaunch {
    /// The shell as named in argv (`sh`, `/bin/bash`, `busybox sh`, `su -c`).
    pub shell: String,
    pub dialect: Dialect,
    /// Which shell it is, for what it does with the final command.
    #[serde(default = "default_family")]
    pub family: ShellFamily,
    /// Where the script text sits in the container spec.
    pub script_slot: ArgvSlot,
    /// The script as written in the spec (before kubelet `$(VAR)` expansion).
    pub script: String,
    /// `$0` and the positional parameters after the script.
    pub operands: Vec<String>,
    /// Shared with the verdicts the evaluation read it from.
    pub verdict: Arc<ScriptVerdict>,
}

fn default_family() -> ShellFamily {
    ShellFamily::Sh
}

/// A launcher or init the launch passes through, outermost first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Through {
    pub name: String,
    pub role: Role,
}

/// What a launcher in [`Through`] does with what it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "forwarding")]
pub enum Role {
    /// Execs it: the launcher is gone.
    Execs,
    /// Runs it as a child and stays PID 1 (`su`, `sudo`, `timeout`, `flock`).
    Stays(Forwarding),
    /// An init at PID 1.
    Init(Forwarding),
}

/// Everything pidone concluded about one container's launch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchAnalysis {
    pub class: LaunchClass,
    /// The program that ends up as PID 1, when known (direct, or exec'd by the shell).
    pub pid1: Option<String>,
    /// A shell script, when the launch is one.
    pub shell: Option<ShellLaunch>,
    /// The launch was read from `args` with no `command`: pidone assumed no ENTRYPOINT.
    pub from_args: bool,
    /// The launch (or part of it) came from the image's ENTRYPOINT/CMD, looked up by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_image: Option<String>,
    /// The resolved image's ENTRYPOINT and CMD, when the launch came from the image: what
    /// init injection pins into the pod to prefix it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_argv: Option<(Vec<String>, Vec<String>)>,
    /// Why the launch got its class, in a few words for messages.
    pub detail: String,
    /// Byte offsets in the script where `exec ` makes the final command replace the shell.
    pub exec_insertions: Vec<usize>,
    /// Launchers and inits the launch passes through, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub through: Vec<Through>,
    /// The program a `no-exec` shell runs last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_program: Option<String>,
    /// Why `exec` cannot be put before the final command, when it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_blocker: Option<String>,
    /// The analysis read the container's `env` (a `$(VAR)` to expand, a variable a launcher
    /// or a scanned script reads): a caller that left `env` out of the object must evaluate
    /// again with it.
    #[serde(skip)]
    pub env_read: bool,
}

impl LaunchAnalysis {
    fn new(class: LaunchClass, pid1: Option<String>, detail: String) -> LaunchAnalysis {
        LaunchAnalysis {
            class,
            pid1,
            shell: None,
            from_args: false,
            from_image: None,
            image_argv: None,
            detail,
            exec_insertions: Vec::new(),
            through: Vec::new(),
            final_program: None,
            exec_blocker: None,
            env_read: false,
        }
    }

    /// Runs under an init that signals the whole process group (`tini -g`, dumb-init,
    /// `pidone-init -g`): the stopgap for several programs in one container.
    pub fn under_group_init(&self) -> bool {
        self.through
            .iter()
            .any(|t| t.role == Role::Init(Forwarding::Group))
    }

    /// The launcher that stays as the parent of what it runs (`su`, `sudo`), if any.
    pub fn parent_launcher(&self) -> Option<&str> {
        self.through
            .iter()
            .find(|t| matches!(t.role, Role::Stays(_)))
            .map(|t| t.name.as_str())
    }
}

/// A program name that is a script file pidone cannot see into.
pub fn is_script_path(program: &str) -> bool {
    let base = basename(program);
    base.ends_with(".sh")
        || base.ends_with(".bash")
        || base.ends_with(".ksh")
        || base.ends_with(".zsh")
        || base == "entrypoint"
        || base.starts_with("docker-entrypoint")
}

fn is_shell(program: &str) -> bool {
    launchers::shell_family(program).is_some()
}

/// An argv entry together with where it came from: borrowed from the spec (or the image's
/// config) unless the kubelet's expansion or a launcher's word splitting made it.
#[derive(Debug, Clone)]
struct Arg<'a> {
    /// After kubelet expansion.
    text: Cow<'a, str>,
    /// As written in the spec.
    written: Cow<'a, str>,
    slot: ArgvSlot,
    /// The kubelet expansion of `written`, when it changed anything.
    expanded: Option<Expanded>,
}

impl<'a> Arg<'a> {
    fn new(text: &'a str, slot: ArgvSlot, env: &Environment<'_>, env_from: bool) -> Arg<'a> {
        // Only a `$` can be expanded: most words are taken as they are, without a copy.
        let expanded = (slot.field.kubelet_expands() && text.contains('$'))
            .then(|| kubelet::expand(text, env, env_from))
            .filter(Expanded::changed);
        Arg {
            text: expanded
                .as_ref()
                .map_or(Cow::Borrowed(text), |e| Cow::Owned(e.text.clone())),
            written: Cow::Borrowed(text),
            slot,
            expanded,
        }
    }

    /// The run-time value of a `$(VAR)` in this word is unknown.
    fn unknown(&self) -> Option<&str> {
        self.expanded
            .as_ref()
            .and_then(|e| e.unknown.first())
            .map(String::as_str)
    }
}

/// Parsed shell invocation flags.
struct ShellArgs {
    /// Index (in the argv after the shell) of the script operand, when `-c` was given.
    script: Option<usize>,
    /// First operand when no `-c`: a script file, or none (reads stdin).
    file: Option<usize>,
}

fn parse_shell_flags<S: AsRef<str>>(args: &[S]) -> ShellArgs {
    let mut command_mode = false;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.as_ref();
        if t == "--" || t == "-" {
            i += 1;
            break;
        }
        if let Some(long) = t.strip_prefix("--") {
            // --login, --posix, --norc, --noprofile, --rcfile F, --init-file F
            i += if matches!(long, "rcfile" | "init-file") {
                2
            } else {
                1
            };
            continue;
        }
        if (t.starts_with('-') || t.starts_with('+')) && t.len() > 1 {
            let flags = &t[1..];
            let mut takes = 0;
            for ch in flags.chars() {
                match ch {
                    'c' => command_mode = true,
                    'o' | 'O' => takes += 1,
                    _ => {}
                }
            }
            i += 1 + takes;
            continue;
        }
        break;
    }
    if command_mode {
        ShellArgs {
            script: (i < args.len()).then_some(i),
            file: None,
        }
    } else {
        ShellArgs {
            script: None,
            file: (i < args.len()).then_some(i),
        }
    }
}

/// What classification needs besides the argv.
struct Cx<'a> {
    long_running: bool,
    scripts: &'a ScriptLookup<'a>,
    env: Environment<'a>,
    env_from: bool,
}

/// Analyses one container's launch.
pub fn analyze(
    c: &ContainerSpec<'_>,
    long_running: bool,
    scripts: &ScriptLookup<'_>,
    image: Option<&ImageConfig>,
) -> LaunchAnalysis {
    let cx = Cx {
        long_running,
        scripts,
        env: Environment::of(&c.env),
        env_from: c.env_from,
    };
    let mut analysis = analyze_in(c, &cx, image);
    analysis.env_read = cx.env.was_read();
    analysis
}

fn analyze_in(c: &ContainerSpec<'_>, cx: &Cx<'_>, image: Option<&ImageConfig>) -> LaunchAnalysis {
    let command = c.command.as_deref().map_or(&[][..], Vec::as_slice);
    let args = c.args.as_deref().map_or(&[][..], Vec::as_slice);
    if command.is_empty()
        && let Some(image) = image
    {
        return analyze_with_image(c, cx, image, args);
    }
    let mut argv: Vec<Arg> = Vec::with_capacity(command.len() + args.len());
    for (index, text) in command.iter().enumerate() {
        let slot = ArgvSlot {
            field: ArgvField::Command,
            index,
        };
        argv.push(Arg::new(text, slot, &cx.env, cx.env_from));
    }
    let from_args = command.is_empty();
    for (index, text) in args.iter().enumerate() {
        let slot = ArgvSlot {
            field: ArgvField::Args,
            index,
        };
        argv.push(Arg::new(text, slot, &cx.env, cx.env_from));
    }
    if from_args {
        // Only `args`: the image ENTRYPOINT runs them, unless they start with a shell and -c
        // (after any number of options), which only makes sense when the image has no
        // ENTRYPOINT.
        let texts: Vec<&str> = argv.iter().map(|a| &*a.text).collect();
        let shell_at = match texts.first() {
            Some(first) if is_shell(first) => Some(1),
            Some(first)
                if launchers::is_busybox(first) && texts.get(1).is_some_and(|a| is_shell(a)) =>
            {
                Some(2)
            }
            _ => None,
        };
        let has_script = shell_at.is_some_and(|at| {
            parse_shell_flags(texts.get(at..).unwrap_or_default())
                .script
                .is_some()
        });
        if !has_script {
            return LaunchAnalysis::new(
                LaunchClass::ImageDefault,
                None,
                if args.is_empty() {
                    "no command: the image ENTRYPOINT runs".into()
                } else {
                    "no command: the image ENTRYPOINT runs with these args".into()
                },
            );
        }
    }
    let mut out = classify_argv(&argv, cx, 0);
    out.from_args = from_args;
    out
}

/// Kubernetes' rules for the effective argv: `command` replaces ENTRYPOINT (and drops CMD),
/// `args` replace CMD; with neither, ENTRYPOINT + CMD run.
fn analyze_with_image(
    c: &ContainerSpec<'_>,
    cx: &Cx<'_>,
    image: &ImageConfig,
    args: &[&str],
) -> LaunchAnalysis {
    let mut argv: Vec<Arg> = Vec::new();
    for (index, text) in image.entrypoint.iter().enumerate() {
        let slot = ArgvSlot {
            field: ArgvField::ImageEntrypoint,
            index,
        };
        argv.push(Arg::new(text, slot, &cx.env, cx.env_from));
    }
    let (tail, field): (Box<dyn Iterator<Item = &str>>, _) = if c.args.is_some() {
        (Box::new(args.iter().copied()), ArgvField::Args)
    } else {
        (
            Box::new(image.cmd.iter().map(String::as_str)),
            ArgvField::ImageCmd,
        )
    };
    for (index, text) in tail.enumerate() {
        argv.push(Arg::new(
            text,
            ArgvSlot { field, index },
            &cx.env,
            cx.env_from,
        ));
    }
    let mut out = classify_argv(&argv, cx, 0);
    out.detail = format!("{} (launch from the image {})", out.detail, image.digest);
    out.from_image = Some(image.digest.clone());
    out.image_argv = Some((image.entrypoint.clone(), image.cmd.clone()));
    out
}

/// Classifies an argv: launchers and inits are looked through, then the program decides.
/// `depth` counts `exec` hand-offs followed so far.
fn classify_argv(argv: &[Arg], cx: &Cx<'_>, depth: usize) -> LaunchAnalysis {
    let mut through: Vec<Through> = Vec::new();
    let mut owned: Vec<Arg>;
    let mut argv = argv;
    // Bounded: every step consumes at least one word, except env -S, which replaces a word
    // by the words it splits into (at most as many as the word has bytes, and only once per
    // word of the original argv).
    let mut splits = 0;
    loop {
        let Some(first) = argv.first() else {
            return finish(
                LaunchAnalysis::new(
                    LaunchClass::ImageDefault,
                    None,
                    "empty command: the image ENTRYPOINT runs".into(),
                ),
                through,
            );
        };
        if let Some(name) = first.unknown() {
            return finish(
                LaunchAnalysis::new(
                    LaunchClass::Unparsed,
                    None,
                    format!(
                        "the program comes from $({name}), whose value is only known at run time"
                    ),
                ),
                through,
            );
        }
        let words: Vec<&str> = argv.iter().map(|a| &*a.text).collect();
        if launchers::is_busybox(words[0]) && words.get(1).is_some_and(|w| is_shell(w)) {
            let shell = format!("busybox {}", basename(words[1]));
            let inner = classify_shell(&shell, ShellFamily::Busybox, &argv[2..], cx, depth);
            return finish(inner, through);
        }
        match launchers::peel(&words, &cx.env) {
            Peeled::Program => break,
            Peeled::Runs {
                launcher,
                next,
                stays,
            } => {
                through.push(Through {
                    name: launcher,
                    role: stays.map_or(Role::Execs, Role::Stays),
                });
                argv = &argv[next..];
            }
            Peeled::Init {
                init,
                next,
                forwarding,
            } => {
                through.push(Through {
                    name: init,
                    role: Role::Init(forwarding),
                });
                argv = &argv[next..];
            }
            Peeled::Split { index, next } => {
                splits += 1;
                let Some(arg) = argv.get(index) else { break };
                let text = launchers::split_text(&arg.text);
                let Ok(split) = shell_words::split(text) else {
                    return finish(
                        LaunchAnalysis::new(
                            LaunchClass::Unparsed,
                            None,
                            "env -S string that does not split into words".into(),
                        ),
                        through,
                    );
                };
                let mut words: Vec<Arg> = split
                    .into_iter()
                    .enumerate()
                    .map(|(index, text)| Arg {
                        written: Cow::Owned(text.clone()),
                        text: Cow::Owned(text),
                        slot: ArgvSlot {
                            field: ArgvField::EnvSplit,
                            index,
                        },
                        expanded: None,
                    })
                    .collect();
                words.extend(argv.get(next..).unwrap_or_default().iter().cloned());
                through.push(Through {
                    name: "env -S".into(),
                    role: Role::Execs,
                });
                owned = words;
                argv = &owned;
                if splits > 8 {
                    break;
                }
            }
            Peeled::Script {
                launcher,
                script,
                operands,
                stays,
            } => {
                through.push(Through {
                    name: launcher.clone(),
                    role: stays.map_or(Role::Execs, Role::Stays),
                });
                let script_arg = match script {
                    ScriptSource::Word(i) => argv.get(i).map(|a| Arg {
                        text: Cow::Owned(launchers::command_text(&a.text).to_string()),
                        written: Cow::Owned(launchers::command_text(&a.written).to_string()),
                        ..a.clone()
                    }),
                    ScriptSource::Joined(i) => argv.get(i).map(|a| Arg {
                        text: Cow::Owned(words.get(i..).unwrap_or_default().join(" ")),
                        written: Cow::Borrowed(""),
                        slot: ArgvSlot {
                            field: ArgvField::Handoff,
                            index: a.slot.index,
                        },
                        expanded: None,
                    }),
                };
                let Some(script_arg) = script_arg else {
                    return finish(
                        LaunchAnalysis::new(
                            LaunchClass::Resident,
                            Some(launcher.clone()),
                            format!("{launcher} without a command runs an interactive shell"),
                        ),
                        through,
                    );
                };
                let mut rest = vec![script_arg];
                rest.extend(argv.get(operands..).unwrap_or_default().iter().cloned());
                let shell = format!("{launcher} -c");
                // `su -c` hands the script to the user's login shell: unknown, read as sh.
                let inner = shell_script(&shell, ShellFamily::Sh, &rest, 0, cx, depth);
                return finish(inner, through);
            }
            Peeled::NoCommand { launcher, shell } => {
                let inner = if shell {
                    LaunchAnalysis::new(
                        LaunchClass::Resident,
                        Some(launcher.clone()),
                        format!(
                            "{launcher} without a command runs an interactive shell that stays PID 1"
                        ),
                    )
                } else {
                    LaunchAnalysis::new(
                        LaunchClass::Direct,
                        Some(launcher.clone()),
                        format!("{launcher} runs as PID 1 without a command"),
                    )
                };
                return finish(inner, through);
            }
        }
    }
    let Some(first) = argv.first() else {
        return finish(
            LaunchAnalysis::new(LaunchClass::ImageDefault, None, "empty command".into()),
            through,
        );
    };
    let program = &*first.text;
    let inner = if is_supervisor(program) {
        LaunchAnalysis::new(
            LaunchClass::Multi,
            Some(program.to_string()),
            format!(
                "process supervisor {} runs several programs",
                basename(program)
            ),
        )
    } else if is_script_path(program) {
        LaunchAnalysis::new(
            LaunchClass::Script,
            Some(program.to_string()),
            format!("runs script file {program}"),
        )
    } else if let Some(family) = launchers::shell_family(program) {
        classify_shell(program, family, &argv[1..], cx, depth)
    } else {
        LaunchAnalysis::new(
            LaunchClass::Direct,
            Some(program.to_string()),
            format!("{} runs as PID 1 without a shell", basename(program)),
        )
    };
    finish(inner, through)
}

/// A shell and its arguments (`rest` excludes the shell itself).
fn classify_shell(
    shell: &str,
    family: ShellFamily,
    rest: &[Arg],
    cx: &Cx<'_>,
    depth: usize,
) -> LaunchAnalysis {
    let texts: Vec<&str> = rest.iter().map(|a| &*a.text).collect();
    let flags = parse_shell_flags(&texts);
    match (flags.script, flags.file) {
        (Some(i), _) => shell_script(shell, family, rest, i, cx, depth),
        (None, Some(i)) => {
            let file = rest[i].text.to_string();
            LaunchAnalysis::new(
                LaunchClass::Script,
                Some(file.clone()),
                format!("{shell} runs script file {file}"),
            )
        }
        (None, None) => LaunchAnalysis::new(
            LaunchClass::Resident,
            Some(shell.to_string()),
            format!("{shell} reads commands from stdin and stays PID 1"),
        ),
    }
}

/// A shell running the script in `rest[script_index]`; the words after it are `$0`, `$1`...
fn shell_script(
    shell: &str,
    family: ShellFamily,
    rest: &[Arg],
    script_index: usize,
    cx: &Cx<'_>,
    depth: usize,
) -> LaunchAnalysis {
    let Some(script_arg) = rest.get(script_index) else {
        return LaunchAnalysis::new(
            LaunchClass::Resident,
            Some(shell.to_string()),
            format!("{shell} reads commands from stdin and stays PID 1"),
        );
    };
    let operands: Vec<String> = rest[script_index + 1..]
        .iter()
        .map(|a| a.text.to_string())
        .collect();
    let dialect = match family {
        ShellFamily::Bash | ShellFamily::Other => Dialect::Bash,
        _ => Dialect::Sh,
    };
    // What the shell runs: the script after the kubelet's expansion, with references whose
    // values are only known at run time masked as one word.
    let text = &*script_arg.text;
    let verdict = cx.scripts.verdict(dialect, text);
    let mut analysis = LaunchAnalysis::new(LaunchClass::Unparsed, None, String::new());
    match verdict.as_ref() {
        ScriptVerdict::Unparsed(reason) => {
            // Padding, comments or an unknown construct must not turn a denial into a warning.
            // Not in a walk that only collects missing scripts: the evaluation that follows
            // the script's resolution does this.
            let deferred = cx.scripts.defers(dialect, text);
            let scanned = || lexical::scan_with_env(text, &cx.env);
            let found = (!deferred).then(scanned).flatten().or_else(|| {
                if deferred {
                    return None;
                }
                // `exec "$@"` hands over to the operands: look at them as a launch.
                let positional = ["$@", "$*", "$1", "${@}", "${1}"]
                    .iter()
                    .any(|p| text.contains(p));
                if !positional || operands.len() < 2 {
                    return None;
                }
                let inner = handoff(&["\"$@\"".to_string()], &operands, cx, depth)
                    .or_else(|| handoff(&operands[1..], &[], cx, depth))?;
                (inner.class == LaunchClass::Multi)
                    .then(|| format!("operands that run {}", inner.detail))
            });
            match found {
                Some(why) => {
                    analysis.class = LaunchClass::Multi;
                    analysis.detail = format!(
                        "{shell} -c script not parsed ({reason}), and a lexical scan finds {why}"
                    );
                }
                None => analysis.detail = format!("{shell} -c script not analysed: {reason}"),
            }
        }
        ScriptVerdict::Parsed(facts) => {
            classify_script(
                facts,
                &operands,
                cx,
                shell,
                (text, family),
                &mut analysis,
                depth,
            );
            if let Some(name) = script_arg.unknown()
                && let Some(program) = analysis
                    .pid1
                    .as_deref()
                    .or(analysis.final_program.as_deref())
                && program.contains(&kubelet::placeholder(name))
            {
                analysis.class = LaunchClass::Unparsed;
                analysis.detail = format!(
                    "the script's program comes from $({name}), whose value is only known at run time"
                );
            }
        }
    }
    // Insertion points are in the expanded text; the patch edits the text as written.
    if let Some(expanded) = &script_arg.expanded
        && !analysis.exec_insertions.is_empty()
    {
        let mapped: Option<Vec<usize>> = analysis
            .exec_insertions
            .iter()
            .map(|&at| expanded.original_offset(at))
            .collect();
        match mapped {
            Some(at) => analysis.exec_insertions = at,
            None => {
                analysis.exec_insertions.clear();
                analysis.exec_blocker =
                    Some("the final command comes from a kubelet $(VAR) reference".into());
            }
        }
    }
    if !matches!(script_arg.slot.field, ArgvField::Command | ArgvField::Args) {
        analysis.exec_insertions.clear();
    }
    let slot = script_arg.slot;
    analysis.shell = Some(ShellLaunch {
        shell: shell.to_string(),
        dialect,
        family,
        script_slot: slot,
        script: script_arg.written.to_string(),
        operands,
        verdict,
    });
    analysis
}

/// Applies what the launchers in `through` do to the class of what they run (innermost
/// last): inits and launchers that stay change who is PID 1 and who gets SIGTERM.
fn finish(mut a: LaunchAnalysis, through: Vec<Through>) -> LaunchAnalysis {
    for t in through.iter().rev() {
        let forwarding = match t.role {
            Role::Execs => continue,
            Role::Stays(f) | Role::Init(f) => f,
        };
        let name = t.name.as_str();
        let init = matches!(t.role, Role::Init(_));
        a = match (a.class, forwarding) {
            // One container, one process: several programs stay several under any init.
            (LaunchClass::Multi, Forwarding::Group) => LaunchAnalysis {
                detail: format!(
                    "{} (under {name}, which signals the whole process group: a stopgap, still one container for several programs)",
                    a.detail
                ),
                ..a
            },
            (LaunchClass::Multi, Forwarding::ChildOnly) => LaunchAnalysis {
                detail: format!(
                    "{} (under {name}, which passes SIGTERM to its child only)",
                    a.detail
                ),
                ..a
            },
            (LaunchClass::Multi, Forwarding::Nothing) => LaunchAnalysis {
                detail: format!("{} (under {name}, which passes no signal on)", a.detail),
                ..a
            },
            (LaunchClass::Direct | LaunchClass::Exec, Forwarding::Nothing) => LaunchAnalysis {
                class: LaunchClass::Direct,
                pid1: Some(name.to_string()),
                detail: format!(
                    "{name} stays PID 1 as the parent of {} and passes no signal on",
                    a.pid1.as_deref().map_or("the program", basename)
                ),
                ..a
            },
            (LaunchClass::Direct | LaunchClass::Exec, _) => LaunchAnalysis {
                class: LaunchClass::Direct,
                detail: if init {
                    format!(
                        "{name} is PID 1, forwards SIGTERM to {} and reaps zombies",
                        a.pid1.as_deref().map_or("its child", basename)
                    )
                } else {
                    format!(
                        "{name} stays PID 1 as the parent of {} and passes SIGTERM to it",
                        a.pid1.as_deref().map_or("the program", basename)
                    )
                },
                pid1: Some(name.to_string()),
                ..a
            },
            (
                LaunchClass::NoExec
                | LaunchClass::Resident
                | LaunchClass::Script
                | LaunchClass::Unparsed,
                Forwarding::Group,
            ) => LaunchAnalysis {
                class: LaunchClass::Direct,
                pid1: Some(name.to_string()),
                detail: format!(
                    "{name} is PID 1 and forwards SIGTERM to the whole process group of: {}",
                    a.detail
                ),
                exec_insertions: Vec::new(),
                ..a
            },
            (
                LaunchClass::NoExec
                | LaunchClass::Resident
                | LaunchClass::Script
                | LaunchClass::Unparsed,
                Forwarding::ChildOnly,
            ) => LaunchAnalysis {
                detail: format!(
                    "{} (under {name}, which passes SIGTERM to its child only: what the shell started never gets it)",
                    a.detail
                ),
                ..a
            },
            (
                LaunchClass::NoExec
                | LaunchClass::Resident
                | LaunchClass::Script
                | LaunchClass::Unparsed,
                Forwarding::Nothing,
            ) => LaunchAnalysis {
                detail: format!("{} (under {name}, which passes no signal on)", a.detail),
                ..a
            },
            _ => a,
        };
    }
    let mut all = through;
    all.append(&mut a.through);
    a.through = all;
    a
}

/// Binds a word of an exec'd command line as written: `"$@"` to the operands, `$1` to one,
/// literal words to their text, env references with literal values to them. `None` for a
/// word whose value is only known at run time.
fn bind_word<'w>(word: &'w str, operands: &[String], env: &Environment<'_>) -> Option<Bound<'w>> {
    let quoted = word.starts_with('"') && word.ends_with('"') && word.len() >= 2;
    let inner = if quoted {
        &word[1..word.len() - 1]
    } else {
        word
    };
    match inner {
        "$@" | "${@}" | "$*" | "${*}" => {
            return Some(Bound::Many(operands.get(1..).unwrap_or_default().to_vec()));
        }
        _ => {}
    }
    if let Some(name) = inner
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| inner.strip_prefix('$'))
    {
        if let Ok(n) = name.parse::<usize>() {
            return Some(Bound::Many(operands.get(n).cloned().into_iter().collect()));
        }
        if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') && !name.is_empty() {
            let value = env.value(name)?.to_string();
            return Some(Bound::Many(if quoted {
                vec![value]
            } else {
                value.split_whitespace().map(str::to_string).collect()
            }));
        }
    }
    if inner.contains('$') || inner.contains('`') {
        return None;
    }
    Some(Bound::One(unquoted(word)))
}

/// What a word binds to: most are one literal word, borrowed where no quoting is removed.
enum Bound<'w> {
    One(Cow<'w, str>),
    Many(Vec<String>),
}

impl<'w> Bound<'w> {
    fn push_onto(self, words: &mut Vec<Cow<'w, str>>) {
        match self {
            Bound::One(word) => words.push(word),
            Bound::Many(many) => words.extend(many.into_iter().map(Cow::Owned)),
        }
    }
}

/// `word` with its quoting removed, as `brush_parser::unquote_str` removes it; borrowed when
/// there is none (most words of a command line), which that function would copy char by char.
fn unquoted(word: &str) -> Cow<'_, str> {
    if word.contains(['\\', '\'', '"']) {
        Cow::Owned(brush_parser::unquote_str(word))
    } else {
        Cow::Borrowed(word)
    }
}

/// The launch an `exec` at the end of a script hands over to, when it is worth analysing
/// again (a shell, launcher, init or supervisor) and every word is known.
fn handoff(
    argv: &[String],
    operands: &[String],
    cx: &Cx<'_>,
    depth: usize,
) -> Option<LaunchAnalysis> {
    if depth >= MAX_HANDOFFS {
        return None;
    }
    let mut words: Vec<Cow<'_, str>> = Vec::with_capacity(argv.len());
    for w in argv {
        bind_word(w, operands, &cx.env)?.push_onto(&mut words);
    }
    let first = words.first()?;
    let interesting = is_shell(first)
        || launchers::is_busybox(first)
        || is_supervisor(first)
        || !matches!(
            launchers::peel(&words.iter().map(|w| &**w).collect::<Vec<_>>(), &cx.env),
            Peeled::Program
        );
    if !interesting {
        return None;
    }
    let args: Vec<Arg> = words
        .into_iter()
        .enumerate()
        .map(|(index, text)| Arg {
            written: text.clone(),
            text,
            slot: ArgvSlot {
                field: ArgvField::Handoff,
                index,
            },
            expanded: None,
        })
        .collect();
    Some(classify_argv(&args, cx, depth + 1))
}

/// Resolves `"$@"`, `$1`... against the shell's positional parameters (`operands[0]` is `$0`).
fn resolve_positional(word: &str, operands: &[String]) -> Option<String> {
    let w = word.trim_matches('"');
    if w == "$@" || w == "$*" || w == "${@}" || w == "$1" || w == "${1}" {
        operands.get(1).cloned()
    } else {
        None
    }
}

/// Classifies a parsed script's launch (also used for scripts read from ConfigMaps).
/// Classifies a script read from a file (a ConfigMap), run by `shell` with `operands` as its
/// positional parameters. The kubelet expands nothing in a file's text, so no environment.
pub fn classify_file_script(
    facts: &ScriptFacts,
    operands: &[String],
    long_running: bool,
    scripts: &ScriptLookup<'_>,
    shell: &str,
    script: &str,
    out: &mut LaunchAnalysis,
) {
    let cx = Cx {
        long_running,
        scripts,
        env: Environment::none(),
        env_from: false,
    };
    let family = launchers::shell_family(shell).unwrap_or(ShellFamily::Sh);
    classify_script(facts, operands, &cx, shell, (script, family), out, 0);
}

fn classify_script(
    facts: &ScriptFacts,
    operands: &[String],
    cx: &Cx<'_>,
    shell: &str,
    (script, family): (&str, ShellFamily),
    out: &mut LaunchAnalysis,
    depth: usize,
) {
    let long_running = cx.long_running;
    // `exec sh -c '...'`, `exec "$@"`, `exec tini -- ...`: what the shell hands over to is
    // analysed again, to a bounded depth.
    let handed = || -> Option<LaunchAnalysis> {
        let Ending::Exec { .. } = &facts.ending else {
            return None;
        };
        let last = facts.last.as_ref()?;
        let mut inner = handoff(&last.argv, operands, cx, depth)?;
        inner.detail = format!("the script execs: {}", inner.detail);
        inner.exec_insertions.clear();
        if inner.class == LaunchClass::NoExec {
            inner.exec_blocker = Some(
                "the final command is in a script the launch hands over to with exec, which pidone does not rewrite"
                    .into(),
            );
        }
        Some(inner)
    };
    let program_of =
        |word: &str| resolve_positional(word, operands).unwrap_or_else(|| word.to_string());
    if let Some(sup) = &facts.supervisor {
        out.class = LaunchClass::Multi;
        out.pid1 = Some(sup.clone());
        out.detail = format!("the script runs process supervisor {}", basename(sup));
        return;
    }
    let exec_program = match &facts.ending {
        Ending::Exec { program } => Some(program_of(program)),
        _ => None,
    };
    if !long_running {
        // Finite work: background jobs and loops are the job itself.
        if let Some(inner) = handed() {
            *out = inner;
        } else if let Some(p) = exec_program {
            out.class = if is_script_path(&p) {
                LaunchClass::Script
            } else {
                LaunchClass::Exec
            };
            out.detail = format!("the script ends by exec'ing {}", basename(&p));
            out.pid1 = Some(p);
        } else if let Ending::Foreground {
            program,
            only_command: true,
            ..
        } = &facts.ending
            && is_script_path(&program_of(program))
        {
            let p = program_of(program);
            out.class = LaunchClass::Script;
            out.detail = format!("{shell} runs script file {p}");
            out.pid1 = Some(p);
        } else {
            out.class = LaunchClass::OneShot;
            out.detail = "finite shell work".into();
        }
        return;
    }
    let background: Vec<&String> = facts.background.iter().collect();
    let fg_long = matches!(
        facts.ending,
        Ending::Exec { .. }
            | Ending::Foreground { .. }
            | Ending::Pipeline { .. }
            | Ending::Trailing { .. }
    );
    if let Ending::Pipeline { programs } = &facts.ending {
        out.class = LaunchClass::Multi;
        out.detail = format!(
            "the script ends in a pipeline of {} programs ({})",
            programs.len(),
            programs
                .iter()
                .map(|p| basename(p))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        return;
    }
    if background.len() >= 2 || (!background.is_empty() && (fg_long || facts.endless_loop)) {
        out.class = LaunchClass::Multi;
        let mut names: Vec<&str> = background.iter().map(|p| basename(p)).collect();
        match &facts.ending {
            Ending::Exec { program } | Ending::Foreground { program, .. } => {
                names.push(basename(program))
            }
            _ => {}
        }
        out.detail = format!(
            "the shell starts several long-running programs ({})",
            names.join(", ")
        );
        return;
    }
    if let Some(inner) = handed() {
        *out = inner;
        return;
    }
    if let Some(p) = exec_program {
        out.class = if is_script_path(&p) {
            LaunchClass::Script
        } else {
            LaunchClass::Exec
        };
        out.detail = format!("the script ends by exec'ing {}", basename(&p));
        out.pid1 = Some(p);
        return;
    }
    if facts.endless_loop {
        out.class = LaunchClass::Resident;
        out.detail = "the shell runs an endless loop and stays PID 1".into();
        return;
    }
    if facts.signal_trap {
        out.class = LaunchClass::Resident;
        out.detail = "the shell traps signals and stays PID 1 as a hand-made init".into();
        return;
    }
    if let Some(bg) = background.first() {
        out.class = LaunchClass::Resident;
        out.detail = format!(
            "the shell starts {} in the background and waits for it",
            basename(bg)
        );
        return;
    }
    match &facts.ending {
        Ending::Foreground {
            program,
            insert_at,
            only_command,
        } => {
            let p = program_of(program);
            let kind = facts.last.as_ref().map_or(FinalKind::Program, |l| l.kind);
            if kind == FinalKind::Source {
                out.class = LaunchClass::Script;
                out.detail = format!("the script sources {p}, whose text pidone cannot see");
                out.pid1 = Some(p);
            } else if *only_command && is_script_path(&p) {
                out.class = LaunchClass::Script;
                out.detail = format!("{shell} runs script file {p}");
                out.pid1 = Some(p);
            } else {
                out.class = LaunchClass::NoExec;
                let truth = facts
                    .last
                    .as_ref()
                    .map(|last| dialect::truth(script, last, &facts.traps));
                out.detail = format!(
                    "{shell} runs {} as its final command without exec: {}",
                    basename(&p),
                    dialect::note(family, truth)
                );
                out.final_program = Some(p.clone());
                out.exec_insertions = insert_at.clone();
                // `su -c ...` as the final command: `exec su` still leaves su as the parent.
                let parent = facts
                    .last
                    .as_ref()
                    .and_then(|l| l.argv.first())
                    .map(|w| basename(&unquoted(w)).to_string())
                    .filter(|b| matches!(b.as_str(), "su" | "sudo" | "runuser"));
                out.exec_blocker = if let Some(parent) = parent {
                    out.exec_insertions.clear();
                    Some(format!(
                        "exec {parent} leaves {parent} as the parent of the program: use `setpriv --reuid=USER --regid=GROUP --init-groups --` or `su-exec USER`, which exec it"
                    ))
                } else if kind == FinalKind::Eval {
                    Some("the final command is eval, which exec cannot prefix (write exec inside the evaluated text)".into())
                } else if is_signal_deaf(&p) {
                    out.exec_insertions.clear();
                    Some(format!(
                        "exec alone would make {} PID 1, and it installs no SIGTERM handler either",
                        basename(&p)
                    ))
                } else if insert_at.is_empty() {
                    Some("the final command runs in a subshell, pipeline or function, where exec cannot be inserted".into())
                } else {
                    None
                };
            }
        }
        Ending::Trailing { program, after } => {
            out.class = LaunchClass::Resident;
            out.detail = format!(
                "commands run after {} ({after}), so the shell must stay PID 1",
                basename(program)
            );
        }
        Ending::Nothing => {
            out.class = LaunchClass::OneShot;
            out.detail = "the script starts no long-running program".into();
        }
        Ending::Exec { .. } | Ending::Pipeline { .. } => {}
    }
}

/// `UnparsedReason` for a script the caller refused before parsing.
pub fn unparsed(reason: UnparsedReason) -> ScriptVerdict {
    ScriptVerdict::Unparsed(reason)
}

#[cfg(test)]
mod tests {
    use super::unquoted;
    use std::borrow::Cow;

    #[test]
    fn unquoted_is_brush_unquote_and_borrows_plain_words() {
        for word in [
            "",
            "/app/checkout",
            "--port=8080",
            "\"$@\"",
            "'a b'",
            "a\\ b",
            "\"it's\"",
            "x\\\\y",
            "naïve",
            "\\",
        ] {
            assert_eq!(unquoted(word), brush_parser::unquote_str(word), "{word:?}");
        }
        assert!(matches!(unquoted("/app/checkout"), Cow::Borrowed(_)));
        assert!(matches!(unquoted("'quoted'"), Cow::Owned(_)));
    }
}
