//! Command line parsing for `pidone-init`.
//!
//! Hand-written on purpose: the binary must stay small and depend on nothing but `std` and
//! `libc`. Options follow getopt conventions: short flags may be clustered (`-gs`), `-e`
//! takes its value attached (`-e143`) or as the next argument, and the first argument that
//! is not an option (or everything after `--`) is the command.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// What the user asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Run a command under the init.
    Run(RunOptions),
    /// Copy this executable to a path.
    Install(PathBuf),
    /// Print the version.
    Version,
    /// Print the help text.
    Help,
}

/// Options for running a command.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// `-g`: forward signals to the child's whole process group.
    pub group: bool,
    /// `-s`: register as child subreaper. Already the default when not PID 1; accepted so
    /// that tini command lines keep working.
    pub subreaper: bool,
    /// `-e CODE`: exit codes of the main child that are reported as 0.
    pub remap_to_zero: Vec<u8>,
    /// The command and its arguments; never empty.
    pub command: Vec<OsString>,
}

/// A usage error, printed as `pidone-init: <error>` followed by a hint, with exit code 2.
#[derive(Debug, PartialEq, Eq)]
pub enum UsageError {
    UnknownOption(String),
    MissingValue(&'static str),
    BadExitCode(String),
    MissingCommand,
    InstallExtra(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::UnknownOption(opt) => write!(f, "unknown option '{opt}'"),
            UsageError::MissingValue(opt) => write!(f, "option '{opt}' needs a value"),
            UsageError::BadExitCode(value) => {
                write!(f, "-e needs an exit code from 0 to 255, got '{value}'")
            }
            UsageError::MissingCommand => write!(f, "missing command to run (after --)"),
            UsageError::InstallExtra(arg) => {
                write!(f, "--install takes exactly one PATH, unexpected '{arg}'")
            }
        }
    }
}

pub const USAGE: &str = "\
Usage: pidone-init [-g] [-s] [-e CODE]... [--] CMD [ARG]...
       pidone-init --install PATH
       pidone-init --version | --help

Runs CMD as its child, forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and
SIGWINCH to it, reaps every zombie, and exits with the child's exit code (128+N if the
child died of signal N).

Options:
  -g            forward signals to the child's whole process group
  -s            register as child subreaper (default when not running as PID 1)
  -e CODE       exit with 0 when the child's exit code is CODE (0-255, repeatable)
  --install PATH
                copy this executable to PATH (mode 0755, atomically) and exit
  --version     print the version and exit
  --help        print this help and exit
";

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Action, UsageError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut args = args.into_iter();
    let mut opts = RunOptions::default();

    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            // Not UTF-8: cannot be one of our options, so it is the command.
            opts.command.push(arg);
            break;
        };
        match text {
            "--" => break,
            "--help" | "-h" => return Ok(Action::Help),
            "--version" | "-V" => return Ok(Action::Version),
            "--install" => {
                let path = args.next().ok_or(UsageError::MissingValue("--install"))?;
                if let Some(extra) = args.next() {
                    return Err(UsageError::InstallExtra(
                        extra.to_string_lossy().into_owned(),
                    ));
                }
                return Ok(Action::Install(PathBuf::from(path)));
            }
            _ if text.starts_with("--install=") => {
                if let Some(extra) = args.next() {
                    return Err(UsageError::InstallExtra(
                        extra.to_string_lossy().into_owned(),
                    ));
                }
                let path = &text["--install=".len()..];
                if path.is_empty() {
                    return Err(UsageError::MissingValue("--install"));
                }
                return Ok(Action::Install(PathBuf::from(path)));
            }
            _ if text.starts_with("--") => {
                return Err(UsageError::UnknownOption(text.to_owned()));
            }
            _ if text.starts_with('-') && text.len() > 1 => {
                let flags = &text[1..];
                for (i, flag) in flags.char_indices() {
                    match flag {
                        'g' => opts.group = true,
                        's' => opts.subreaper = true,
                        'h' => return Ok(Action::Help),
                        'e' => {
                            let rest = &flags[i + 1..];
                            let value = if rest.is_empty() {
                                let next = args.next().ok_or(UsageError::MissingValue("-e"))?;
                                next.to_string_lossy().into_owned()
                            } else {
                                rest.to_owned()
                            };
                            opts.remap_to_zero.push(parse_exit_code(&value)?);
                            break;
                        }
                        other => return Err(UsageError::UnknownOption(format!("-{other}"))),
                    }
                }
            }
            _ => {
                opts.command.push(arg);
                break;
            }
        }
    }

    opts.command.extend(args);
    if opts.command.is_empty() {
        return Err(UsageError::MissingCommand);
    }
    Ok(Action::Run(opts))
}

fn parse_exit_code(value: &str) -> Result<u8, UsageError> {
    value
        .parse::<u8>()
        .map_err(|_| UsageError::BadExitCode(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Action, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn run(args: &[&str]) -> RunOptions {
        match parse_strs(args) {
            Ok(Action::Run(opts)) => opts,
            other => panic!("expected Run for {args:?}, got {other:?}"),
        }
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn plain_command_after_double_dash() {
        let opts = run(&["--", "nginx", "-g", "daemon off;"]);
        assert_eq!(opts.command, os(&["nginx", "-g", "daemon off;"]));
        assert!(!opts.group);
        assert!(opts.remap_to_zero.is_empty());
    }

    #[test]
    fn command_without_double_dash_stops_option_parsing() {
        let opts = run(&["-g", "app", "-e", "3", "--", "x"]);
        assert!(opts.group);
        assert_eq!(opts.command, os(&["app", "-e", "3", "--", "x"]));
        assert!(opts.remap_to_zero.is_empty());
    }

    #[test]
    fn flags_and_repeated_exit_codes() {
        let opts = run(&["-g", "-s", "-e", "143", "-e130", "--", "app"]);
        assert!(opts.group);
        assert!(opts.subreaper);
        assert_eq!(opts.remap_to_zero, vec![143, 130]);
        assert_eq!(opts.command, os(&["app"]));
    }

    #[test]
    fn clustered_flags() {
        let opts = run(&["-gse", "143", "app"]);
        assert!(opts.group && opts.subreaper);
        assert_eq!(opts.remap_to_zero, vec![143]);
        let opts = run(&["-ge1", "app"]);
        assert_eq!(opts.remap_to_zero, vec![1]);
    }

    #[test]
    fn arguments_after_double_dash_are_never_options() {
        let opts = run(&["--", "--help"]);
        assert_eq!(opts.command, os(&["--help"]));
        let opts = run(&["--", "-g"]);
        assert!(!opts.group);
        assert_eq!(opts.command, os(&["-g"]));
    }

    #[test]
    fn install_version_help() {
        assert_eq!(
            parse_strs(&["--install", "/.pidone/init"]),
            Ok(Action::Install(PathBuf::from("/.pidone/init")))
        );
        assert_eq!(
            parse_strs(&["--install=/x/init"]),
            Ok(Action::Install(PathBuf::from("/x/init")))
        );
        assert_eq!(parse_strs(&["--version"]), Ok(Action::Version));
        assert_eq!(parse_strs(&["--help"]), Ok(Action::Help));
        assert_eq!(parse_strs(&["-h"]), Ok(Action::Help));
    }

    #[test]
    fn usage_errors_name_the_problem() {
        assert_eq!(parse_strs(&[]), Err(UsageError::MissingCommand));
        assert_eq!(parse_strs(&["--"]), Err(UsageError::MissingCommand));
        assert_eq!(parse_strs(&["-g"]), Err(UsageError::MissingCommand));
        assert_eq!(
            parse_strs(&["-x", "app"]),
            Err(UsageError::UnknownOption("-x".into()))
        );
        assert_eq!(
            parse_strs(&["--frobnicate"]),
            Err(UsageError::UnknownOption("--frobnicate".into()))
        );
        assert_eq!(parse_strs(&["-e"]), Err(UsageError::MissingValue("-e")));
        assert_eq!(
            parse_strs(&["-e", "256", "app"]),
            Err(UsageError::BadExitCode("256".into()))
        );
        assert_eq!(
            parse_strs(&["-e", "-1", "app"]),
            Err(UsageError::BadExitCode("-1".into()))
        );
        assert_eq!(
            parse_strs(&["-e", "abc", "app"]),
            Err(UsageError::BadExitCode("abc".into()))
        );
        assert_eq!(
            parse_strs(&["--install"]),
            Err(UsageError::MissingValue("--install"))
        );
        assert_eq!(
            parse_strs(&["--install", "/a", "/b"]),
            Err(UsageError::InstallExtra("/b".into()))
        );
        assert!(
            UsageError::BadExitCode("256".into())
                .to_string()
                .contains("256")
        );
        assert!(
            UsageError::UnknownOption("-x".into())
                .to_string()
                .contains("'-x'")
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_argument_is_the_command() {
        use std::os::unix::ffi::OsStringExt;
        let weird = OsString::from_vec(vec![0xff, b'a']);
        let opts = match parse(vec![OsString::from("-g"), weird.clone()]) {
            Ok(Action::Run(opts)) => opts,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(opts.command, vec![weird]);
    }
}
