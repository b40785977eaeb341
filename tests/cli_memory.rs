//! `pidone audit` and `pidone fix` in bounded memory: the peak resident memory of the real
//! binary over a stream and over a stream four times as long must be about the same. Held
//! rows, a stream kept whole or a whole file's diff would make it grow by more than the extra
//! input itself, which is the bound checked here (the peak is read from the kernel when the
//! process is reaped, `ru_maxrss` of `wait4`, so a loaded machine changes the time, not the
//! measure).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A stream of `n` workloads: the labelled examples, renamed, one document each, as
/// `scripts/manifest-stream.py` writes them.
fn stream(n: usize) -> Vec<u8> {
    let examples = std::fs::read_to_string("tests/fixtures/examples/launches.yaml")
        .expect("read the examples");
    let mut docs: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in examples.lines() {
        if line.trim_end() == "---" {
            docs.push(std::mem::take(&mut current));
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs.push(current);
    docs.retain(|d| d.contains("kind:"));
    assert!(docs.len() > 20, "the examples hold {} documents", docs.len());
    let mut out = String::new();
    for i in 0..n {
        let doc = docs[i % docs.len()].trim_matches('\n');
        out.push_str("---\n");
        let mut renamed = false;
        for line in doc.lines() {
            match line.strip_prefix("  name: ") {
                Some(name) if !renamed && !name.contains(' ') => {
                    out.push_str(&format!("  name: {name}-{i}\n"));
                    renamed = true;
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    out.into_bytes()
}

/// What one run cost: its peak resident memory in bytes, its exit code, the bytes it printed.
struct Run {
    peak: u64,
    code: i32,
    printed: u64,
}

/// Runs pidone with `input` on a pipe (when given) and its output in a file, and reaps it
/// with `wait4` for its own peak resident memory.
fn run(args: &[&str], cwd: &Path, input: Option<Vec<u8>>) -> Run {
    let out = tempfile::tempfile().expect("temporary file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pidone"))
        .args(args)
        .current_dir(cwd)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(out.try_clone().expect("clone the output file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pidone");
    let writer = child.stdin.take().zip(input).map(|(mut pipe, bytes)| {
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data; `wait4` fills it and `status` for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    if let Some(w) = writer {
        w.join().expect("the writer thread");
    }
    assert!(libc::WIFEXITED(status), "pidone {args:?} did not exit: {status}");
    Run {
        // Linux reports kilobytes.
        peak: usage.ru_maxrss as u64 * 1024,
        code: libc::WEXITSTATUS(status),
        printed: out.metadata().expect("output size").len(),
    }
}

/// Runs the command over a stream and one four times as long; the peak may not grow by as
/// much as the input did.
fn bounded(what: &str, args: &[&str], on_stdin: bool) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let small = stream(1200);
    let large = stream(4800);
    let grown = (large.len() - small.len()) as u64;
    let mut runs = Vec::new();
    for (name, bytes) in [("small.yaml", small), ("large.yaml", large)] {
        let r = if on_stdin {
            run(args, dir.path(), Some(bytes))
        } else {
            std::fs::write(dir.path().join(name), &bytes).expect("write the stream");
            let mut with_file = args.to_vec();
            with_file.push(name);
            run(&with_file, dir.path(), None)
        };
        assert!(
            matches!(r.code, 0 | 1),
            "{what} over {name} exited {}",
            r.code
        );
        runs.push(r);
    }
    let (s, l) = (&runs[0], &runs[1]);
    // The long stream was read to its end: its output is about four times as long.
    assert!(
        l.printed > 3 * s.printed && s.printed > 0,
        "{what}: printed {} then {} bytes",
        s.printed,
        l.printed
    );
    assert!(
        l.peak < s.peak + grown,
        "{what}: peak memory {} KiB over {} workloads, {} KiB over four times as many: it grew by more than the {} KiB of extra input",
        s.peak / 1024,
        1200,
        l.peak / 1024,
        grown / 1024
    );
}

#[test]
fn audit_json_from_stdin_does_not_grow_with_the_stream() {
    bounded(
        "audit --format json",
        &["audit", "--format", "json", "--fail-on", "never", "-"],
        true,
    );
}

#[test]
fn audit_table_from_a_file_does_not_grow_with_the_stream() {
    bounded("audit -v", &["audit", "-v", "--fail-on", "never"], false);
}

#[test]
fn fix_from_stdin_does_not_grow_with_the_stream() {
    bounded("fix", &["fix", "-"], true);
}

#[test]
fn fix_diff_does_not_grow_with_the_file() {
    bounded("fix --diff", &["fix", "--diff"], false);
}
