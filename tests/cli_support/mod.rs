//! Runs the `pidone` binary as a user or a CI job would: arguments, an optional working
//! directory and optional stdin; stdout, stderr and the exit status come back.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `pidone ARGS` in the test's directory, with `stdin` (or an empty stdin).
pub fn pidone(args: &[&str], stdin: Option<&str>) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_pidone")).args(args), stdin)
}

/// `pidone ARGS` in `cwd`.
pub fn pidone_in(args: &[&str], cwd: &Path, stdin: Option<&str>) -> Output {
    run(
        Command::new(env!("CARGO_BIN_EXE_pidone"))
            .args(args)
            .current_dir(cwd),
        stdin,
    )
}

fn run(command: &mut Command, stdin: Option<&str>) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pidone");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("wait pidone")
}
