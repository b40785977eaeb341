//! `--install PATH`: copy this executable somewhere, atomically, without needing a shell.
//!
//! Used by the init container that pidone injects: it runs `pidone-init --install
//! /.pidone/init` in an image that may have no shell and no `cp`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const SELF_EXE: &str = "/proc/self/exe";

/// Copies `/proc/self/exe` to `dest` with mode 0755: writes a temporary file beside `dest`,
/// syncs it, and renames it over `dest`, so readers never see a partial file.
pub fn install(dest: &Path) -> io::Result<()> {
    install_from(Path::new(SELF_EXE), dest)
}

fn install_from(src: &Path, dest: &Path) -> io::Result<()> {
    let file_name = dest
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);

    let result = write_then_rename(src, &tmp, dest);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_then_rename(src: &Path, tmp: &Path, dest: &Path) -> io::Result<()> {
    let mut input = File::open(src)?;
    let mut output = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(tmp)?;
    io::copy(&mut input, &mut output)?;
    // The umask may have cleared bits at creation: set the mode explicitly.
    output.set_permissions(fs::Permissions::from_mode(0o755))?;
    output.sync_all()?;
    drop(output);
    fs::rename(tmp, dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pidone-init-install-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    }

    #[test]
    fn copies_with_mode_0755_and_replaces_existing() {
        let dir = scratch_dir("copy");
        let src = dir.join("src");
        fs::write(&src, b"binary bytes").expect("write src");
        let dest = dir.join("init");
        fs::write(&dest, b"old").expect("write old dest");
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o600)).expect("chmod");

        install_from(&src, &dest).expect("install");

        assert_eq!(fs::read(&dest).expect("read dest"), b"binary bytes");
        let mode = fs::metadata(&dest).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755);
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .expect("read dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn missing_directory_is_an_error_and_leaves_nothing() {
        let dir = scratch_dir("missing");
        let src = dir.join("src");
        fs::write(&src, b"x").expect("write src");
        let err = install_from(&src, &dir.join("nope/init")).expect_err("must fail");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn installs_own_executable() {
        let dir = scratch_dir("self");
        let dest = dir.join("init");
        install(&dest).expect("install self");
        let own = fs::read(SELF_EXE).expect("read self");
        assert_eq!(fs::read(&dest).expect("read dest"), own);
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
