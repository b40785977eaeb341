//! `pidone audit` and `pidone fix` in bounded memory: the peak resident memory of the real
//! binary over a stream and over a stream four times as long must be about the same. Held
//! rows, a stream kept whole or a whole file's diff would make it grow by more than the extra
//! input itself, which is the bound checked here (the peak is the kernel's `VmHWM` of the
//! process, so a loaded machine changes the time, not the measure).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

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
    assert!(
        docs.len() > 20,
        "the examples hold {} documents",
        docs.len()
    );
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

/// `VmHWM` (the peak resident memory of the process's own address space) from
/// `/proc/PID/status`, once the process runs pidone: between spawn and exec the child still
/// shares, and reports, the address space of this test process.
fn peak_of(status: &str) -> Option<u64> {
    status
        .lines()
        .any(|l| l.strip_prefix("Name:").map(str::trim) == Some("pidone"))
        .then(|| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .flatten()
}

/// Runs pidone with `input` on a pipe (when given) and its output in a file, reading its
/// peak resident memory until it exits. (`ru_maxrss` of `wait4` would not do: it counts the
/// address space the child had before exec, a copy of this test process.)
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
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let mut reads = 0;
    let status = loop {
        // VmHWM only rises: the last reading before exit is within a few milliseconds of
        // the peak.
        if let Some(p) = std::fs::read_to_string(&status_file)
            .ok()
            .as_deref()
            .and_then(peak_of)
        {
            peak = peak.max(p);
            reads += 1;
        }
        if let Some(status) = child.try_wait().expect("wait for pidone") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if let Some(w) = writer {
        w.join().expect("the writer thread");
    }
    assert!(
        reads > 10,
        "pidone {args:?} ended before its memory could be read ({reads} readings)"
    );
    Run {
        peak,
        code: status.code().expect("pidone exited"),
        printed: out.metadata().expect("output size").len(),
    }
}

/// Runs the command over a stream and one four times as long; the peak may not grow by as
/// much as the input did. A peak above that is measured once more (both sizes, the lower peak
/// of each kept): one run's peak can be raised by something else than the input, never
/// lowered.
fn bounded(what: &str, args: &[&str], on_stdin: bool) {
    const SMALL: usize = 1000;
    let dir = tempfile::tempdir().expect("temporary directory");
    let inputs = [
        ("small.yaml", stream(SMALL)),
        ("large.yaml", stream(4 * SMALL)),
    ];
    let grown = (inputs[1].1.len() - inputs[0].1.len()) as u64;
    let measure = |(name, bytes): &(&str, Vec<u8>)| {
        let r = if on_stdin {
            run(args, dir.path(), Some(bytes.clone()))
        } else {
            std::fs::write(dir.path().join(name), bytes).expect("write the stream");
            let mut with_file = args.to_vec();
            with_file.push(name);
            run(&with_file, dir.path(), None)
        };
        assert!(
            matches!(r.code, 0 | 1),
            "{what} over {name} exited {}",
            r.code
        );
        r
    };
    let small = measure(&inputs[0]);
    let mut large = measure(&inputs[1]);
    // The long stream was read to its end: its output is about four times as long.
    assert!(
        large.printed > 3 * small.printed && small.printed > 0,
        "{what}: printed {} then {} bytes",
        small.printed,
        large.printed
    );
    let mut small_peak = small.peak;
    if large.peak >= small_peak + grown {
        small_peak = small_peak.min(measure(&inputs[0]).peak);
        large.peak = large.peak.min(measure(&inputs[1]).peak);
    }
    eprintln!(
        "{what}: peak {} KiB, then {} KiB over four times the input ({} KiB more input)",
        small_peak / 1024,
        large.peak / 1024,
        grown / 1024
    );
    assert!(
        large.peak < small_peak + grown,
        "{what}: peak memory {} KiB over {SMALL} workloads, {} KiB over four times as many: it grew by more than the {} KiB of extra input",
        small_peak / 1024,
        large.peak / 1024,
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
