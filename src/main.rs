//! The `pidone` command: one subcommand per job, each in its own module.

use clap::{Parser, Subcommand};
use pidone::cli;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "pidone",
    version,
    about = "Finds and fixes containers whose PID 1 swallows SIGTERM or leaks zombies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check manifests (files, directories, stdin) and report what pidone would do.
    Audit(cli::audit::AuditArgs),
    /// Print the manifests as enforce mode would admit them (or a diff with --diff).
    Fix(cli::fix::FixArgs),
    /// Explain a rule: why it matters and how to fix it by hand.
    Explain {
        /// A rule id, e.g. shell-no-exec; omit to list the rules.
        rule: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Audit(args) => cli::audit::run(args),
        Command::Fix(args) => cli::fix::run(args),
        Command::Explain { rule } => match cli::explain_cmd::run(rule.as_deref()) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pidone explain: {e}");
                ExitCode::from(cli::audit::EXIT_USAGE)
            }
        },
    }
}
