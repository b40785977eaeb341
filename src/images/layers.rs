//! One file out of an image's layers, the way the container runtime's overlay would show it,
//! without unpacking anything: a layer is a tar stream (gzip-compressed, mostly) read once,
//! entry by entry, until the file or what hides it turns up.
//!
//! Layers are read from the top (last) layer down. In one layer, the path itself wins; a
//! whiteout (`.wh.NAME`) of the path or of a directory above it, an opaque directory above it
//! (`.wh..wh..opq`) or a file where a directory above it should be hide it in the layers below.
//! A symbolic link (the path itself or a directory on the way, `/bin -> usr/bin`) is resolved
//! inside the image root and the walk starts again from the top layer, since any layer may hold
//! the target; a hard link names a file of its own layer. All of this is synchronous over a
//! `Read`: the caller streams the blobs (see `files`). Layers are gzip (flate2), zstd (ruzstd,
//! with a bounded window) or plain tar.

use crate::engine::image_files::FileContent;
use std::io::Read;

/// Links followed for one file (Linux allows 40; images need one or two).
pub const MAX_LINKS: usize = 8;
/// Largest GNU long name or PAX header read (a path is at most 4 KiB on Linux).
pub const MAX_EXTENDED_HEADER: u64 = 64 * 1024;

/// What one layer says about the path looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerOutcome {
    /// The file is in this layer.
    Found {
        /// Relative to the image root (no leading `/`).
        path: String,
        mode: u32,
        content: FileContent,
    },
    /// Removed or shadowed here: no lower layer can provide it.
    Hidden,
    /// A link: look for `target` instead, from the top layer (`from_top`) or in this layer
    /// and those below (a hard link).
    Link { target: String, from_top: bool },
    /// Not in this layer: go on to the one below.
    NotHere,
}

/// Why a layer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("the layer is not a valid tar stream: {0}")]
    Tar(std::io::Error),
    #[error("the layer's media type {0} is not read (gzip, zstd and uncompressed layers are)")]
    MediaType(String),
}

/// Largest window a zstd frame of a layer may ask for: what `zstd -19` uses (8 MiB). The
/// decoder keeps a window's worth of output in memory; a `--long` frame (128 MiB and more) is
/// refused before it is decoded.
pub const MAX_ZSTD_WINDOW: u64 = 8 << 20;

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Docker's `...rootfs.diff.tar.gzip` and OCI's `...layer.v1.tar+gzip`, `...tar+zstd`
    /// (and their non-distributable variants), or a plain `tar`.
    pub fn of(media_type: &str) -> Result<Compression, LayerError> {
        if media_type.ends_with("tar+gzip") || media_type.ends_with("tar.gzip") {
            Ok(Compression::Gzip)
        } else if media_type.ends_with("tar+zstd") {
            Ok(Compression::Zstd)
        } else if media_type.ends_with(".tar") || media_type.ends_with("layer.v1.tar") {
            Ok(Compression::None)
        } else {
            Err(LayerError::MediaType(media_type.to_string()))
        }
    }
}

/// `a/./b//c/` -> `a/b/c`; `..` stops at the root, as inside a chroot. No leading `/`.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Where a symbolic link at `link` (relative to the root) pointing to `target` leads, inside
/// the image root.
pub fn resolve_link(link: &str, target: &str) -> String {
    if target.starts_with('/') {
        return normalize(target);
    }
    let dir = link.rsplit_once('/').map_or("", |(d, _)| d);
    normalize(&format!("{dir}/{target}"))
}

/// Whether `path` is `dir` or below it (`dir` empty: the root, above everything).
fn at_or_below(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

/// Reads one layer's tar stream for `target` (normalised, relative to the root). Reads only as
/// far as the answer: the stream may be left unfinished.
pub fn scan_layer(
    tar: impl Read,
    target: &str,
    max_file_bytes: u64,
) -> Result<LayerOutcome, LayerError> {
    let mut archive = tar::Archive::new(tar);
    let mut hidden = false;
    // Raw entries: long names (GNU) and PAX records are read here, bounded, rather than by
    // the tar reader, which would read a header of any declared size into memory.
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    for entry in archive.entries().map_err(LayerError::Tar)?.raw(true) {
        let mut entry = entry.map_err(LayerError::Tar)?;
        let kind = entry.header().entry_type();
        if kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions()
        {
            if entry.size() > MAX_EXTENDED_HEADER {
                return Err(LayerError::Tar(std::io::Error::other(format!(
                    "an extended header of {} bytes (more than {MAX_EXTENDED_HEADER})",
                    entry.size()
                ))));
            }
            if kind.is_pax_local_extensions() {
                if let Some(records) = entry.pax_extensions().map_err(LayerError::Tar)? {
                    for record in records {
                        let record = record.map_err(LayerError::Tar)?;
                        match record.key() {
                            Ok("path") => long_name = Some(record.value_bytes().to_vec()),
                            Ok("linkpath") => long_link = Some(record.value_bytes().to_vec()),
                            _ => {}
                        }
                    }
                }
            } else if !kind.is_pax_global_extensions() {
                let mut text = Vec::new();
                entry.read_to_end(&mut text).map_err(LayerError::Tar)?;
                while text.last() == Some(&0) {
                    text.pop();
                }
                if kind.is_gnu_longname() {
                    long_name = Some(text);
                } else {
                    long_link = Some(text);
                }
            }
            continue;
        }
        let raw_name = long_name
            .take()
            .unwrap_or_else(|| entry.path_bytes().into_owned());
        let link = long_link
            .take()
            .or_else(|| entry.link_name_bytes().map(|b| b.into_owned()))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let name = normalize(&String::from_utf8_lossy(&raw_name));
        if name.is_empty() {
            continue;
        }
        let (dir, base) = name.rsplit_once('/').unwrap_or(("", name.as_str()));
        if let Some(whited) = base.strip_prefix(".wh.") {
            if whited == ".wh..opq" {
                // An opaque directory hides what lower layers have inside it.
                if target != dir && at_or_below(target, dir) {
                    hidden = true;
                }
            } else {
                let removed = if dir.is_empty() {
                    whited.to_string()
                } else {
                    format!("{dir}/{whited}")
                };
                if at_or_below(target, &removed) {
                    hidden = true;
                }
            }
            continue;
        }
        if name == target {
            if kind.is_symlink() {
                return Ok(LayerOutcome::Link {
                    target: resolve_link(&name, &link),
                    from_top: true,
                });
            }
            if kind.is_hard_link() {
                return Ok(LayerOutcome::Link {
                    target: normalize(&link),
                    from_top: false,
                });
            }
            let mode = entry.header().mode().unwrap_or(0) & 0o7777;
            let content = if kind.is_dir() {
                FileContent::Unread {
                    reason: "it is a directory".into(),
                }
            } else if kind.is_file() {
                read_content(&mut entry, max_file_bytes)?
            } else {
                FileContent::Binary {
                    what: "a special file".into(),
                }
            };
            return Ok(LayerOutcome::Found {
                path: name,
                mode,
                content,
            });
        }
        if at_or_below(target, &name) {
            // A directory on the way to the target.
            if kind.is_symlink() {
                let rest = &target[name.len()..];
                return Ok(LayerOutcome::Link {
                    target: normalize(&format!("{}{rest}", resolve_link(&name, &link))),
                    from_top: true,
                });
            }
            if !kind.is_dir() {
                // A file where a directory should be: nothing below it exists.
                hidden = true;
            }
        }
    }
    Ok(if hidden {
        LayerOutcome::Hidden
    } else {
        LayerOutcome::NotHere
    })
}

/// A script's text (it starts with `#!`) up to `max_file_bytes`, or what else the file is,
/// from its first bytes.
fn read_content(entry: &mut impl Read, max_file_bytes: u64) -> Result<FileContent, LayerError> {
    let mut head = Vec::with_capacity(4);
    entry
        .by_ref()
        .take(4)
        .read_to_end(&mut head)
        .map_err(LayerError::Tar)?;
    if !head.starts_with(b"#!") {
        let what = if head == b"\x7fELF" {
            "an ELF binary"
        } else {
            "a file without a #! line"
        };
        return Ok(FileContent::Binary { what: what.into() });
    }
    let mut text = head;
    entry
        .take(max_file_bytes.saturating_sub(text.len() as u64) + 1)
        .read_to_end(&mut text)
        .map_err(LayerError::Tar)?;
    if text.len() as u64 > max_file_bytes {
        return Ok(FileContent::Unread {
            reason: format!(
                "the script is larger than {max_file_bytes} bytes, more than pidone reads"
            ),
        });
    }
    Ok(FileContent::Script {
        text: String::from_utf8_lossy(&text).into_owned(),
    })
}

/// A reader for a layer blob's bytes: decompressed as its media type says.
pub fn decompressed<'r>(raw: impl Read + 'r, compression: Compression) -> Box<dyn Read + 'r> {
    match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Compression::Zstd => Box::new(ZstdFrames {
            source: Some(raw),
            frame: None,
        }),
    }
}

/// The frames of a zstd stream decoded one after another (zstd:chunked layers have many),
/// each frame's window checked against [`MAX_ZSTD_WINDOW`] before it is decoded.
struct ZstdFrames<R: Read> {
    /// The stream between frames.
    source: Option<R>,
    frame: Option<ruzstd::decoding::StreamingDecoder<Prefixed<R>, ruzstd::decoding::FrameDecoder>>,
}

/// A reader that gives back bytes already read (a frame header) before the rest.
struct Prefixed<R> {
    head: Vec<u8>,
    at: usize,
    inner: R,
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at < self.head.len() {
            let n = buf.len().min(self.head.len() - self.at);
            buf[..n].copy_from_slice(&self.head[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

fn zstd_error(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// Reads exactly `n` more bytes into `head`; `false` at the end of the stream before any.
fn read_more(source: &mut impl Read, head: &mut Vec<u8>, n: usize) -> std::io::Result<bool> {
    let start = head.len();
    head.resize(start + n, 0);
    let mut got = 0;
    while got < n {
        match source.read(&mut head[start + got..])? {
            0 if got == 0 && start == 0 => return Ok(false),
            0 => {
                return Err(zstd_error(
                    "the zstd stream ends inside a frame header".into(),
                ));
            }
            k => got += k,
        }
    }
    Ok(true)
}

/// The window a zstd frame header asks for (RFC 8878, 3.1.1.1), after the magic number.
fn zstd_window(source: &mut impl Read, head: &mut Vec<u8>) -> std::io::Result<u64> {
    read_more(source, head, 1)?;
    let descriptor = head[head.len() - 1];
    let single_segment = descriptor & 0x20 != 0;
    if !single_segment {
        read_more(source, head, 1)?;
        let w = head[head.len() - 1];
        let base = 1u64 << (10 + u64::from(w >> 3));
        return Ok(base + (base / 8) * u64::from(w & 7));
    }
    let dictionary = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let content = [1, 2, 4, 8][usize::from(descriptor >> 6)];
    read_more(source, head, dictionary + content)?;
    let field = &head[head.len() - content..];
    let mut size = field
        .iter()
        .rev()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    if content == 2 {
        size += 256;
    }
    Ok(size)
}

impl<R: Read> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(frame) = &mut self.frame {
                let n = frame.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                // The frame ended: the stream goes on with the next one.
                if let Some(frame) = self.frame.take() {
                    self.source = Some(frame.into_inner().inner);
                }
                continue;
            }
            let Some(mut source) = self.source.take() else {
                return Ok(0);
            };
            let mut head = Vec::with_capacity(18);
            if !read_more(&mut source, &mut head, 4)? {
                return Ok(0);
            }
            let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
                // A skippable frame: its size, then that many bytes.
                let mut size = Vec::new();
                read_more(&mut source, &mut size, 4)?;
                let n = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
                std::io::copy(&mut (&mut source).take(u64::from(n)), &mut std::io::sink())?;
                self.source = Some(source);
                continue;
            }
            if magic != 0xFD2F_B528 {
                return Err(zstd_error("not a zstd frame".into()));
            }
            let window = zstd_window(&mut source, &mut head)?;
            if window > MAX_ZSTD_WINDOW {
                return Err(zstd_error(format!(
                    "a zstd frame asks for a {window}-byte window, more than pidone decodes ({MAX_ZSTD_WINDOW})"
                )));
            }
            let prefixed = Prefixed {
                head,
                at: 0,
                inner: source,
            };
            let frame = ruzstd::decoding::StreamingDecoder::new(prefixed)
                .map_err(|e| zstd_error(format!("zstd: {e}")))?;
            self.frame = Some(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar stream from `(path, kind, body or link target)` entries.
    pub(crate) fn layer(entries: &[(&str, char, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, body) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o755);
            match kind {
                'f' => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(body.len() as u64);
                    b.append_data(&mut h, path, body.as_bytes()).unwrap();
                }
                'd' => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, path, &[][..]).unwrap();
                }
                'l' | 'h' => {
                    h.set_entry_type(if *kind == 'l' {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    h.set_size(0);
                    b.append_link(&mut h, path, body).unwrap();
                }
                _ => unreachable!(),
            }
        }
        b.into_inner().unwrap()
    }

    fn scan(entries: &[(&str, char, &str)], target: &str) -> LayerOutcome {
        scan_layer(&layer(entries)[..], target, 1024).unwrap()
    }

    #[test]
    fn paths_and_links_stay_inside_the_root() {
        assert_eq!(normalize("/./usr//local/bin/"), "usr/local/bin");
        assert_eq!(normalize("../../etc/passwd"), "etc/passwd");
        assert_eq!(resolve_link("bin", "usr/bin"), "usr/bin");
        assert_eq!(
            resolve_link("usr/local/bin/run", "../lib/run.sh"),
            "usr/local/lib/run.sh"
        );
        assert_eq!(resolve_link("a/b", "/../../x"), "x");
        assert_eq!(resolve_link("a/b", "../../../../x"), "x");
    }

    #[test]
    fn the_file_its_kind_and_its_mode() {
        let found = scan(
            &[
                ("usr/", 'd', ""),
                ("./docker-entrypoint.sh", 'f', "#!/bin/sh\nexec \"$@\"\n"),
            ],
            "docker-entrypoint.sh",
        );
        let LayerOutcome::Found {
            path,
            mode,
            content,
        } = found
        else {
            panic!("{found:?}")
        };
        assert_eq!(path, "docker-entrypoint.sh");
        assert_eq!(mode, 0o755);
        assert_eq!(
            content,
            FileContent::Script {
                text: "#!/bin/sh\nexec \"$@\"\n".into()
            }
        );
        let elf = scan(&[("app", 'f', "\x7fELF\x02\x01")], "app");
        assert!(
            matches!(elf, LayerOutcome::Found { content: FileContent::Binary { ref what }, .. } if what == "an ELF binary"),
            "{elf:?}"
        );
        let plain = scan(&[("app", 'f', "echo hi\n")], "app");
        assert!(matches!(
            plain,
            LayerOutcome::Found {
                content: FileContent::Binary { .. },
                ..
            }
        ));
        assert_eq!(
            scan(&[("other", 'f', "#!/bin/sh\n")], "app"),
            LayerOutcome::NotHere
        );
    }

    #[test]
    fn a_script_over_the_size_bound_is_not_read() {
        let big = format!("#!/bin/sh\n{}", "# padding\n".repeat(200));
        let out = scan(&[("run.sh", 'f', &big)], "run.sh");
        let LayerOutcome::Found {
            content: FileContent::Unread { reason },
            ..
        } = out
        else {
            panic!("{out:?}")
        };
        assert!(reason.contains("larger than 1024 bytes"), "{reason}");
        // Exactly at the bound is read.
        let exact = format!("#!/bin/sh\n{}", "x".repeat(1024 - 10));
        assert!(matches!(
            scan(&[("run.sh", 'f', &exact)], "run.sh"),
            LayerOutcome::Found {
                content: FileContent::Script { .. },
                ..
            }
        ));
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_lower_layers() {
        assert_eq!(
            scan(&[(".wh.entrypoint.sh", 'f', "")], "entrypoint.sh"),
            LayerOutcome::Hidden
        );
        assert_eq!(
            scan(&[("usr/local/.wh.bin", 'f', "")], "usr/local/bin/run.sh"),
            LayerOutcome::Hidden
        );
        assert_eq!(
            scan(
                &[("usr/local/bin/.wh..wh..opq", 'f', "")],
                "usr/local/bin/run.sh"
            ),
            LayerOutcome::Hidden
        );
        // An opaque directory keeps its own layer's files.
        assert!(matches!(
            scan(
                &[
                    ("opt/.wh..wh..opq", 'f', ""),
                    ("opt/run.sh", 'f', "#!/bin/sh\n")
                ],
                "opt/run.sh"
            ),
            LayerOutcome::Found { .. }
        ));
        // A whiteout of a neighbour, or of a name that only shares a prefix, hides nothing.
        assert_eq!(
            scan(&[(".wh.entrypoint", 'f', "")], "entrypoint.sh"),
            LayerOutcome::NotHere
        );
        assert_eq!(
            scan(&[("usr/.wh.lo", 'f', "")], "usr/local/x"),
            LayerOutcome::NotHere
        );
        // A file where a directory should be.
        assert_eq!(
            scan(&[("opt", 'f', "x")], "opt/run.sh"),
            LayerOutcome::Hidden
        );
    }

    #[test]
    fn links_lead_elsewhere() {
        assert_eq!(
            scan(
                &[(
                    "docker-entrypoint.sh",
                    'l',
                    "usr/local/bin/docker-entrypoint.sh"
                )],
                "docker-entrypoint.sh"
            ),
            LayerOutcome::Link {
                target: "usr/local/bin/docker-entrypoint.sh".into(),
                from_top: true
            }
        );
        assert_eq!(
            scan(&[("bin", 'l', "usr/bin")], "bin/run"),
            LayerOutcome::Link {
                target: "usr/bin/run".into(),
                from_top: true
            }
        );
        assert_eq!(
            scan(
                &[("opt/a", 'f', "#!/bin/sh\n"), ("opt/b", 'h', "opt/a")],
                "opt/b"
            ),
            LayerOutcome::Link {
                target: "opt/a".into(),
                from_top: false
            }
        );
    }

    #[test]
    fn long_names_and_bounded_extended_headers() {
        let deep = format!("opt/{}/run.sh", "d".repeat(150));
        // GNU long name (the builder writes one past 100 bytes).
        let out = scan(&[(deep.as_str(), 'f', "#!/bin/sh\n")], &deep);
        assert!(
            matches!(out, LayerOutcome::Found { ref path, .. } if *path == deep),
            "{out:?}"
        );
        // PAX `path` record.
        let mut b = tar::Builder::new(Vec::new());
        let mut pax = tar::Header::new_ustar();
        let record = format!(" path={deep}\n");
        let record = format!(
            "{}{record}",
            record.len() + (record.len() + 3).to_string().len()
        );
        pax.set_entry_type(tar::EntryType::XHeader);
        pax.set_size(record.len() as u64);
        pax.set_cksum();
        b.append(&pax, record.as_bytes()).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("short").unwrap();
        h.set_size(10);
        h.set_mode(0o755);
        h.set_cksum();
        b.append(&h, &b"#!/bin/sh\n"[..]).unwrap();
        let out = scan_layer(&b.into_inner().unwrap()[..], &deep, 1024).unwrap();
        assert!(
            matches!(out, LayerOutcome::Found { ref path, .. } if *path == deep),
            "{out:?}"
        );
        // A long-name header that declares more than the bound is refused before it is read.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_size(MAX_EXTENDED_HEADER + 1);
        h.set_cksum();
        let body = vec![b'a'; (MAX_EXTENDED_HEADER + 1) as usize];
        b.append(&h, &body[..]).unwrap();
        let e = scan_layer(&b.into_inner().unwrap()[..], "x", 1024).unwrap_err();
        assert!(e.to_string().contains("extended header"), "{e}");
    }

    #[test]
    fn zstd_layers_frame_by_frame_with_a_bounded_window() {
        use ruzstd::encoding::{CompressionLevel, compress_to_vec};
        let tar = layer(&[
            ("usr/share/doc/x", 'f', &"padding\n".repeat(2000)),
            ("run.sh", 'f', "#!/bin/bash\nexec app\n"),
        ]);
        // Two frames, with a skippable frame between (as zstd:chunked writes).
        let (a, b) = tar.split_at(tar.len() / 2);
        let mut blob = compress_to_vec(a, CompressionLevel::Fastest);
        blob.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
        blob.extend_from_slice(&3u32.to_le_bytes());
        blob.extend_from_slice(b"abc");
        blob.extend(compress_to_vec(b, CompressionLevel::Fastest));
        let out = scan_layer(decompressed(&blob[..], Compression::Zstd), "run.sh", 1024).unwrap();
        assert!(
            matches!(
                out,
                LayerOutcome::Found {
                    content: FileContent::Script { .. },
                    ..
                }
            ),
            "{out:?}"
        );
        // A frame header that asks for a 128 MiB window (`zstd --long`): refused, unread.
        let mut long = 0xFD2F_B528u32.to_le_bytes().to_vec();
        long.push(0x00); // no single segment, no checksum, no dictionary
        long.push((27 - 10) << 3); // window 2^27
        long.extend_from_slice(&[0u8; 16]);
        let e = scan_layer(decompressed(&long[..], Compression::Zstd), "run.sh", 1024).unwrap_err();
        assert!(e.to_string().contains("window"), "{e}");
        // Not zstd at all.
        assert!(scan_layer(decompressed(&b"garbage!"[..], Compression::Zstd), "x", 1).is_err());
    }

    #[test]
    fn gzip_layers_and_media_types() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&layer(&[("run.sh", 'f', "#!/bin/bash\nexec app\n")]))
            .unwrap();
        let blob = gz.finish().unwrap();
        let c = Compression::of("application/vnd.oci.image.layer.v1.tar+gzip").unwrap();
        let out = scan_layer(decompressed(&blob[..], c), "run.sh", 1024).unwrap();
        assert!(matches!(
            out,
            LayerOutcome::Found {
                content: FileContent::Script { .. },
                ..
            }
        ));
        assert_eq!(
            Compression::of("application/vnd.docker.image.rootfs.diff.tar.gzip").unwrap(),
            Compression::Gzip
        );
        assert_eq!(
            Compression::of("application/vnd.oci.image.layer.v1.tar").unwrap(),
            Compression::None
        );
        assert_eq!(
            Compression::of("application/vnd.oci.image.layer.v1.tar+zstd").unwrap(),
            Compression::Zstd
        );
        assert!(Compression::of("application/vnd.oci.image.layer.v1.tar+lz4").is_err());
        // Garbage is an error, not a panic.
        assert!(scan_layer(decompressed(&b"not gzip"[..], c), "run.sh", 1024).is_err());
    }
}
