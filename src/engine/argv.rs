//! From a container's `command` and `args` to a launch: unwrap `env` and friends, recognise
//! shells and their flags, hand scripts to the analyzer, and classify (docs/design.md section 1).

use crate::engine::evaluate::ImageConfig;
use crate::engine::launch::LaunchClass;
use crate::engine::script::{
    Dialect, Ending, ScriptAnalyzer, ScriptFacts, ScriptVerdict, UnparsedReason,
};
use crate::engine::workload::ContainerSpec;
use serde::{Deserialize, Serialize};

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
}

impl ArgvField {
    pub fn as_str(self) -> &'static str {
        match self {
            ArgvField::Command => "command",
            ArgvField::Args => "args",
            ArgvField::ImageEntrypoint => "image ENTRYPOINT",
            ArgvField::ImageCmd => "image CMD",
            ArgvField::EnvSplit => "env -S string",
        }
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
    /// The shell as named in argv (`sh`, `/bin/bash`, `busybox sh`).
    pub shell: String,
    pub dialect: Dialect,
    /// Where the script text sits in the container spec.
    pub script_slot: ArgvSlot,
    /// The script as written in the spec (before kubelet `$(VAR)` expansion).
    pub script: String,
    /// `$0` and the positional parameters after the script.
    pub operands: Vec<String>,
    pub verdict: ScriptVerdict,
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
}

const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "yash", "posh",
];
const INITS: &[&str] = &[
    "tini",
    "tini-static",
    "dumb-init",
    "catatonit",
    "pidone-init",
    "init",
    "s6-svscan-init",
];
pub const SUPERVISORS: &[&str] = &[
    "supervisord",
    "s6-svscan",
    "runsvdir",
    "pm2-runtime",
    "forego",
    "honcho",
    "circusd",
    "overmind",
    "hivemind",
    "foreman",
    "multirun",
];
/// Programs that install no SIGTERM handler, so the kernel drops SIGTERM sent to them as PID 1.
pub const SIGNAL_DEAF: &[&str] = &["sleep", "tail", "cat", "yes", "read", "pause"];

pub fn basename(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
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
    SHELLS.contains(&basename(program))
}

fn is_init(program: &str) -> bool {
    let base = basename(program);
    INITS.contains(&base) || program == "/.pidone/init"
}

pub fn is_supervisor(program: &str) -> bool {
    SUPERVISORS.contains(&basename(program))
}

/// An argv entry together with where it came from.
#[derive(Debug, Clone)]
struct Arg {
    text: String,
    slot: ArgvSlot,
}

/// Replaces kubelet `$(VAR)` references to the container's env with text of the same length,
/// so the shell parser does not mistake them for command substitutions and byte offsets stay
/// valid for the original text.
pub fn mask_kubelet_refs(text: &str, env: &[&str]) -> String {
    if !text.contains("$(") || env.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("$(") {
        let escaped = rest[..pos].ends_with('$');
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let closes = after[name_len..].starts_with(')');
        if !escaped && closes && !name.is_empty() && env.contains(&name) {
            // `$(NAME)` -> `_NAME__`: same length, one shell word.
            out.push('_');
            out.push_str(&name.replace(['.', '-'], "_"));
            out.push_str("__");
            rest = &after[name_len + 1..];
        } else {
            out.push_str("$(");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Strips launchers that exec what follows (`env`, `gosu`, `nice`...) and reports an init.
fn unwrap_launchers(mut argv: &[Arg]) -> &[Arg] {
    loop {
        let Some(first) = argv.first() else {
            return argv;
        };
        match basename(&first.text) {
            "env" => {
                let mut i = 1;
                while let Some(a) = argv.get(i) {
                    let t = a.text.as_str();
                    if t == "--" {
                        i += 1;
                        break;
                    } else if t == "-u" || t == "--unset" || t == "-C" || t == "--chdir" {
                        i += 2;
                    } else if t.starts_with('-') || (t.contains('=') && !t.starts_with('=')) {
                        i += 1;
                    } else {
                        break;
                    }
                }
                argv = argv.get(i..).unwrap_or(&[]);
            }
            "nohup" | "setsid" | "stdbuf" | "chrt" | "ionice" | "nice" | "numactl" | "taskset" => {
                // These exec the rest; skip their options conservatively.
                let mut i = 1;
                while let Some(a) = argv.get(i) {
                    if a.text.starts_with('-') {
                        i += 1;
                        if matches!(a.text.as_str(), "-n" | "-c" | "-p" | "-o" | "-e" | "-i") {
                            i += 1;
                        }
                    } else {
                        break;
                    }
                }
                argv = argv.get(i..).unwrap_or(&[]);
            }
            "gosu" | "su-exec" => argv = argv.get(2..).unwrap_or(&[]),
            "busybox" if argv.get(1).is_some_and(|a| is_shell(&a.text)) => {
                // `busybox sh -c`: keep `sh` as the program, remember busybox in the name.
                argv = &argv[1..];
                return argv;
            }
            _ => return argv,
        }
    }
}

/// `env -S 'sh -c "..."'` (also `--split-string`): env splits the string into words itself,
/// so the launch inside it is what runs. Returns the argv with the string split, or `None`.
fn split_env_s(argv: &[Arg]) -> Option<Vec<Arg>> {
    let first = argv.first()?;
    if basename(&first.text) != "env" {
        return None;
    }
    let mut i = 1;
    while let Some(a) = argv.get(i) {
        let t = a.text.as_str();
        let (text, consumed) = if t == "-S" || t == "--split-string" {
            (argv.get(i + 1)?.text.as_str(), 2)
        } else if let Some(rest) = t.strip_prefix("--split-string=") {
            (rest, 1)
        } else if let Some(rest) = t.strip_prefix("-S") {
            (rest, 1)
        } else if t.starts_with('-') || t.contains('=') {
            i += 1;
            continue;
        } else {
            return None;
        };
        let words = shell_words::split(text).ok()?;
        let mut out: Vec<Arg> = argv[..i].to_vec();
        out.extend(words.into_iter().enumerate().map(|(index, text)| Arg {
            text,
            slot: ArgvSlot {
                field: ArgvField::EnvSplit,
                index,
            },
        }));
        out.extend(argv[i + consumed..].iter().cloned());
        return Some(out);
    }
    None
}

/// Parsed shell invocation flags.
struct ShellArgs {
    /// Index (in the argv after the shell) of the script operand, when `-c` was given.
    script: Option<usize>,
    /// First operand when no `-c`: a script file, or none (reads stdin).
    file: Option<usize>,
}

fn parse_shell_flags(args: &[Arg]) -> ShellArgs {
    let mut command_mode = false;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
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

/// Analyses one container's launch.
pub fn analyze(
    c: &ContainerSpec<'_>,
    long_running: bool,
    analyzer: &dyn ScriptAnalyzer,
    image: Option<&ImageConfig>,
) -> LaunchAnalysis {
    let command = c.command.as_deref().unwrap_or(&[]);
    let args = c.args.as_deref().unwrap_or(&[]);
    if command.is_empty()
        && let Some(image) = image
    {
        return analyze_with_image(c, long_running, analyzer, image, args);
    }
    let mut argv: Vec<Arg> = Vec::with_capacity(command.len() + args.len());
    for (index, text) in command.iter().enumerate() {
        argv.push(Arg {
            text: text.clone(),
            slot: ArgvSlot {
                field: ArgvField::Command,
                index,
            },
        });
    }
    let from_args = command.is_empty();
    if from_args {
        // Only `args`: the image ENTRYPOINT runs them, unless they start with a shell and -c,
        // which only makes sense when the image has no ENTRYPOINT.
        let starts_with_shell_c = args.first().is_some_and(|a| is_shell(a))
            || (args.first().is_some_and(|a| basename(a) == "busybox")
                && args.get(1).is_some_and(|a| is_shell(a)));
        let has_c = args
            .iter()
            .skip(1)
            .take(4)
            .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c'));
        if !(starts_with_shell_c && has_c) {
            return LaunchAnalysis {
                class: LaunchClass::ImageDefault,
                pid1: None,
                shell: None,
                from_args: false,
                from_image: None,
                image_argv: None,
                detail: if args.is_empty() {
                    "no command: the image ENTRYPOINT runs".into()
                } else {
                    "no command: the image ENTRYPOINT runs with these args".into()
                },
                exec_insertions: Vec::new(),
            };
        }
    }
    for (index, text) in args.iter().enumerate() {
        argv.push(Arg {
            text: text.clone(),
            slot: ArgvSlot {
                field: ArgvField::Args,
                index,
            },
        });
    }
    let mut out = classify_argv(&argv, c, long_running, analyzer);
    out.from_args = from_args;
    out
}

fn classify_argv(
    argv: &[Arg],
    c: &ContainerSpec<'_>,
    long_running: bool,
    analyzer: &dyn ScriptAnalyzer,
) -> LaunchAnalysis {
    let simple = |class: LaunchClass, pid1: Option<String>, detail: String| LaunchAnalysis {
        class,
        pid1,
        shell: None,
        from_args: false,
        from_image: None,
        image_argv: None,
        detail,
        exec_insertions: Vec::new(),
    };
    let split = split_env_s(argv);
    let argv = unwrap_launchers(split.as_deref().unwrap_or(argv));
    let Some(first) = argv.first() else {
        return simple(
            LaunchClass::ImageDefault,
            None,
            "empty command: the image ENTRYPOINT runs".into(),
        );
    };
    let program = first.text.as_str();
    if is_init(program) {
        return simple(
            LaunchClass::Direct,
            Some(program.to_string()),
            format!(
                "{} is PID 1 and forwards signals and reaps zombies",
                basename(program)
            ),
        );
    }
    if is_supervisor(program) {
        return simple(
            LaunchClass::Multi,
            Some(program.to_string()),
            format!(
                "process supervisor {} runs several programs",
                basename(program)
            ),
        );
    }
    if is_script_path(program) {
        return simple(
            LaunchClass::Script,
            Some(program.to_string()),
            format!("runs script file {program}"),
        );
    }
    if !is_shell(program) {
        return simple(
            LaunchClass::Direct,
            Some(program.to_string()),
            format!("{} runs as PID 1 without a shell", basename(program)),
        );
    }

    let rest = &argv[1..];
    let flags = parse_shell_flags(rest);
    let shell_name = if c
        .command
        .as_deref()
        .and_then(|c| c.first())
        .is_some_and(|f| basename(f) == "busybox")
    {
        format!("busybox {program}")
    } else {
        program.to_string()
    };
    let Some(script_index) = flags.script else {
        return match flags.file {
            Some(i) => {
                let file = rest[i].text.clone();
                simple(
                    LaunchClass::Script,
                    Some(file.clone()),
                    format!("{shell_name} runs script file {file}"),
                )
            }
            None => simple(
                LaunchClass::Resident,
                Some(program.to_string()),
                format!("{shell_name} reads commands from stdin and stays PID 1"),
            ),
        };
    };
    let script_arg = &rest[script_index];
    let operands: Vec<String> = rest[script_index + 1..]
        .iter()
        .map(|a| a.text.clone())
        .collect();
    let dialect = match basename(program) {
        "bash" | "zsh" | "ksh" | "mksh" => Dialect::Bash,
        _ => Dialect::Sh,
    };
    let masked = mask_kubelet_refs(&script_arg.text, &c.env);
    let verdict = analyzer.analyze(dialect, &masked);
    let mut analysis = LaunchAnalysis {
        class: LaunchClass::Unparsed,
        pid1: None,
        shell: None,
        from_args: false,
        from_image: None,
        image_argv: None,
        detail: String::new(),
        exec_insertions: Vec::new(),
    };
    match &verdict {
        ScriptVerdict::Unparsed(reason) => {
            analysis.detail = format!("{shell_name} -c script not analysed: {reason}");
        }
        ScriptVerdict::Parsed(facts) => {
            classify_script(facts, &operands, long_running, &shell_name, &mut analysis)
        }
    }
    analysis.shell = Some(ShellLaunch {
        shell: shell_name,
        dialect,
        script_slot: script_arg.slot,
        script: script_arg.text.clone(),
        operands,
        verdict,
    });
    analysis
}

/// Kubernetes' rules for the effective argv: `command` replaces ENTRYPOINT (and drops CMD),
/// `args` replace CMD; with neither, ENTRYPOINT + CMD run.
fn analyze_with_image(
    c: &ContainerSpec<'_>,
    long_running: bool,
    analyzer: &dyn ScriptAnalyzer,
    image: &ImageConfig,
    args: &[String],
) -> LaunchAnalysis {
    let mut argv: Vec<Arg> = Vec::new();
    for (index, text) in image.entrypoint.iter().enumerate() {
        argv.push(Arg {
            text: text.clone(),
            slot: ArgvSlot {
                field: ArgvField::ImageEntrypoint,
                index,
            },
        });
    }
    let (tail, field) = if c.args.is_some() {
        (args, ArgvField::Args)
    } else {
        (image.cmd.as_slice(), ArgvField::ImageCmd)
    };
    for (index, text) in tail.iter().enumerate() {
        argv.push(Arg {
            text: text.clone(),
            slot: ArgvSlot { field, index },
        });
    }
    let mut out = classify_argv(&argv, c, long_running, analyzer);
    out.detail = format!("{} (launch from the image {})", out.detail, image.digest);
    out.from_image = Some(image.digest.clone());
    out.image_argv = Some((image.entrypoint.clone(), image.cmd.clone()));
    out
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

fn classify_script(
    facts: &ScriptFacts,
    operands: &[String],
    long_running: bool,
    shell: &str,
    out: &mut LaunchAnalysis,
) {
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
        if let Some(p) = exec_program {
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
            if *only_command && is_script_path(&p) {
                out.class = LaunchClass::Script;
                out.detail = format!("{shell} runs script file {p}");
                out.pid1 = Some(p);
            } else {
                out.class = LaunchClass::NoExec;
                out.detail = format!(
                    "{shell} runs {} in the foreground without exec and stays PID 1",
                    basename(&p)
                );
                out.exec_insertions = insert_at.clone();
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
    use super::*;

    #[test]
    fn kubelet_refs_are_masked_same_length() {
        let env = vec!["NODE_NAME"];
        let text = "exec x --node=$(NODE_NAME) $(OTHER) $$(NODE_NAME)";
        let masked = mask_kubelet_refs(text, &env);
        assert_eq!(masked.len(), text.len());
        assert_eq!(masked, "exec x --node=_NODE_NAME__ $(OTHER) $$(NODE_NAME)");
    }
}
