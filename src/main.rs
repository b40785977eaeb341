//! The `pidone` command: a dispatcher; each subcommand lives in `pidone::cli`.

use clap::{Parser, Subcommand};
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
    Serve(pidone::cli::serve::ServeArgs),
}

fn main() -> ExitCode {
    // One crypto provider for the whole process; the server also names ring explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        Command::Serve(args) => serve(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pidone: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: pidone::cli::serve::ServeArgs) -> anyhow::Result<()> {
    pidone::cli::serve::run(args)?;
    Ok(())
}
