//! The `pidone` command: a dispatcher; each subcommand lives in `pidone::cli`.

use clap::{Parser, Subcommand};
use pidone::cli;
use std::process::ExitCode;

// mimalloc instead of glibc malloc: the webhook allocates and frees a tree of small values per
// review (the parsed Pod, the evaluation, the patch), and under load a third of its CPU time
// went to glibc malloc/free; mimalloc's thread-local free lists make that a fraction.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Serve the admission webhooks over HTTPS (and metrics on a plain admin port).
    Serve(Box<cli::serve::ServeArgs>),
    /// Check manifests (files, directories, stdin) or a live cluster and report what pidone would do.
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
    // Parse workers are this binary re-executed (`pidone __parse-worker`); never returns then.
    pidone::sandbox::run_if_worker();
    // One crypto provider for the whole process; the server also names ring explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => match cli::serve::run(*args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pidone: {e:#}");
                ExitCode::FAILURE
            }
        },
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
