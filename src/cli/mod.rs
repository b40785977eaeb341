//! Subcommands of the `pidone` binary, one module each; `src/main.rs` only dispatches.

pub mod logging;
pub mod serve;
