//! Builds another target of this package (an example, the init) for a test that runs it:
//! `cargo test --all-targets` builds examples only as test harnesses, and selecting one test
//! target leaves the rest stale.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cargo build --quiet ARGS` into the target directory and profile of this test binary
/// and returns the artifact `artifact(<target>/<profile>)`. Without cargo (a test binary run
/// on its own), an existing build is used.
pub fn cargo_build(args: &[&str], artifact: impl Fn(&Path) -> PathBuf) -> Result<PathBuf, String> {
    // The test binary is <target>/<profile>/deps/<name>.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("unexpected test binary location")?;
    let built = artifact(profile_dir);
    let target_dir = profile_dir.parent().ok_or("unexpected target layout")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet"])
        .args(args)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile_dir.file_name().and_then(OsStr::to_str) {
        Some("debug") => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(other) => {
            build.args(["--profile", other]);
        }
        None => return Err("unexpected profile directory".into()),
    }
    match build.status() {
        Ok(status) if status.success() && built.is_file() => Ok(built),
        Ok(status) => Err(format!("cargo build {}: {status}", args.join(" "))),
        Err(err) if built.is_file() => {
            eprintln!(
                "cannot run cargo ({err}); using the existing {}",
                built.display()
            );
            Ok(built)
        }
        Err(err) => Err(format!("cannot run cargo build {}: {err}", args.join(" "))),
    }
}
