//! Reading the file a launch runs out of its image's layers: the platform manifest (as for
//! configs), then the layer blobs from the top down, each streamed from the registry through
//! the same bounded client, decompressed and scanned as it arrives (`layers`), until the file
//! turns up. Bounded by `images.scripts`: layers walked, compressed bytes read, the script's
//! size and a deadline. An answer that can change a launch (a script's text, a link) counts
//! only from a blob that matched its digest: what is left of its layer is still read and
//! hashed, not scanned; a binary or a removed file ends the read at once. Answers are cached
//! by manifest digest and path for good, by tag for `images.tagTTL`, failures briefly.

use crate::engine::image_files::{FileContent, ImageFile, ImageFiles, WantedFile};
use crate::engine::mounted_scripts::MAX_CHAIN;
use crate::images::cache::Cached;
use crate::images::layers::{self, Compression, LayerOutcome, MAX_LINKS};
use crate::images::reference;
use crate::images::registry::{self, RegistryError};
use crate::images::resolver::{
    self, CREDENTIALED, FileFlight, ImageResolver, Inner, PlatformManifest, ResolveError, Scope,
    Session, lock,
};
use bytes::Bytes;
use futures::FutureExt;
use oci_client::Reference;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long a file look-up may go on when the caller's deadline cut it short, so that a large
/// image read once is answered from the cache afterwards (bounded in bytes by
/// `images.scripts.maxBytes`; one look-up per file at a time).
pub const BACKGROUND: Duration = Duration::from_secs(30);

/// Chunks of a blob queued between the download and the scan.
const QUEUED_CHUNKS: usize = 8;

/// The answer for a file that could not be read.
fn unread(digest: &str, path: &str, reason: String) -> ImageFile {
    ImageFile {
        digest: digest.to_string(),
        path: path.to_string(),
        mode: 0,
        content: FileContent::Unread { reason },
    }
}

impl ImageResolver {
    /// Reads the wanted files, all within `deadline` from now, on behalf of `scope` (its
    /// credentials, as for configs). Every file gets an answer: one that could not be read
    /// says why. A look-up the deadline cuts short goes on in the background (up to
    /// [`BACKGROUND`]) and lands in the cache.
    pub async fn read_files(
        &self,
        wanted: &[WantedFile],
        deadline: Duration,
        scope: Scope<'_>,
    ) -> Vec<(WantedFile, ImageFile)> {
        let until = tokio::time::Instant::now() + deadline;
        let reads = wanted.iter().map(|w| self.read_file(w, until, scope));
        let files = futures::future::join_all(reads).await;
        wanted.iter().cloned().zip(files).collect()
    }

    async fn read_file(
        &self,
        wanted: &WantedFile,
        until: tokio::time::Instant,
        scope: Scope<'_>,
    ) -> ImageFile {
        // The reference as written maps to its cache key without parsing (the reference
        // grammar is a large regex) once the config look-up or a file look-up parsed it.
        let alias = lock(&self.inner.cache).alias(&wanted.image);
        let (parsed, image_key) = match alias {
            Some(key) => (None, key),
            None => match reference::parse(&wanted.image) {
                Ok(r) => {
                    let key = reference::cache_key(&r);
                    lock(&self.inner.cache).add_alias(&wanted.image, &key);
                    (Some(r), key)
                }
                Err(e) => return unread("", &wanted.path, e.to_string()),
            },
        };
        let credentialed = self.uses_credentials(&image_key, scope);
        let key = format!("{}\n{}", self.scoped_key(image_key, scope), wanted.path);
        let flight = {
            // Cache, then look-ups under way, under the flights lock: a look-up that ends
            // stores its answer before it leaves the map, so nothing slips between.
            let mut flights = lock(&self.inner.file_flights);
            match lock(&self.inner.files).get(&key, SystemTime::now()) {
                Some(Cached::Found(file)) => return file,
                Some(Cached::Failed { message, .. }) => {
                    return unread(
                        "",
                        &wanted.path,
                        format!(
                            "{message} (remembered from a look-up less than {}s ago)",
                            resolver::FAILURE_TTL.as_secs()
                        ),
                    );
                }
                None => {}
            }
            match flights.get(&key) {
                Some(flight) => flight.clone(),
                None => {
                    let r = match parsed {
                        Some(r) => r,
                        None => match reference::parse(&wanted.image) {
                            Ok(r) => r,
                            Err(e) => return unread("", &wanted.path, e.to_string()),
                        },
                    };
                    let flight = self.start_file(r, key.clone(), &wanted.path, until, credentialed);
                    flights.insert(key, flight.clone());
                    flight
                }
            }
        };
        tokio::time::timeout_at(until, flight)
            .await
            .unwrap_or_else(|_| {
                unread(
                    "",
                    &wanted.path,
                    "the registry did not answer in time (images.scripts.deadline)".into(),
                )
            })
    }

    /// Starts a file look-up on its own task: a caller that gives up does not cancel it, so
    /// its answer still lands in the cache (within [`BACKGROUND`]).
    fn start_file(
        &self,
        r: Reference,
        key: String,
        path: &str,
        until: tokio::time::Instant,
        credentialed: bool,
    ) -> FileFlight {
        let inner = Arc::clone(&self.inner);
        let path = path.to_string();
        let task_until = until.max(tokio::time::Instant::now() + BACKGROUND);
        let task_key = key.clone();
        let task_path = path.clone();
        let task = tokio::spawn(async move {
            let (key, path) = (task_key, task_path);
            let found = tokio::time::timeout_at(
                task_until,
                fetch_from_sources(&inner, &r, &path, credentialed, task_until),
            )
            .await
            .unwrap_or(Err(ResolveError::Timeout));
            let now = SystemTime::now();
            let mut flights = lock(&inner.file_flights);
            let mut cache = lock(&inner.files);
            let file = match found {
                // A bound or a broken layer: remembered briefly, as failures are (the bounds
                // may be raised).
                Ok((file, _)) if matches!(file.content, FileContent::Unread { .. }) => {
                    if let FileContent::Unread { reason } = &file.content {
                        cache.insert(
                            key.clone(),
                            Cached::Failed {
                                message: reason.clone(),
                                timeout: false,
                            },
                            false,
                            now,
                        );
                    }
                    file
                }
                Ok((file, manifest_digest)) => {
                    let pinned = reference::is_pinned(&r);
                    cache.insert(key.clone(), Cached::Found(file.clone()), pinned, now);
                    let prefix = if credentialed { CREDENTIALED } else { "" };
                    cache.insert(
                        format!(
                            "{prefix}{}\n{path}",
                            reference::digest_key(&r, &manifest_digest)
                        ),
                        Cached::Found(file.clone()),
                        true,
                        now,
                    );
                    file
                }
                Err(e) => {
                    cache.insert(
                        key.clone(),
                        Cached::Failed {
                            message: e.to_string(),
                            timeout: e.is_timeout(),
                        },
                        false,
                        now,
                    );
                    unread("", &path, e.to_string())
                }
            };
            flights.remove(&key);
            file
        });
        let inner = Arc::clone(&self.inner);
        async move {
            match task.await {
                Ok(file) => file,
                Err(e) => {
                    // The task died before clearing its entry: clear it, or the key would
                    // answer this for good.
                    lock(&inner.file_flights).remove(&key);
                    unread("", &path, format!("the look-up task failed: {e}"))
                }
            }
        }
        .boxed()
        .shared()
    }
}

/// Tries the registry's mirrors in order, then the registry itself, as config look-ups do. A
/// mirror gets half the time left.
async fn fetch_from_sources(
    inner: &Inner,
    r: &Reference,
    path: &str,
    credentialed: bool,
    until: tokio::time::Instant,
) -> Result<(ImageFile, String), ResolveError> {
    let mirrors = inner
        .mirrors
        .get(&reference::normalize_host(r.registry()))
        .cloned()
        .unwrap_or_default();
    let mut failures: Vec<String> = Vec::new();
    for mirror in mirrors {
        let mut via = r.clone();
        via.set_mirror_registry(mirror.clone());
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let attempt = tokio::time::timeout(
            left / 2,
            fetch_file(inner, r, &via, path, credentialed, until),
        );
        match attempt.await.unwrap_or(Err(ResolveError::Timeout)) {
            Ok(found) => return Ok(found),
            Err(e) => failures.push(format!("mirror {mirror}: {e}")),
        }
    }
    match fetch_file(inner, r, r, path, credentialed, until).await {
        Ok(found) => Ok(found),
        Err(e) if failures.is_empty() => Err(e),
        Err(e) => {
            failures.push(format!("{}: {e}", r.registry()));
            Err(ResolveError::Registry(failures.join("; ")))
        }
    }
}

/// Reads the image files launches run, round after round: `wanted` says which files the
/// launches need given those read so far (each round follows one more script of a chain, up
/// to [`MAX_CHAIN`] + 1 rounds), `read` reads them within the time it is given. All rounds
/// share `deadline`. `read` answering `None` (no runtime) ends the rounds.
pub fn gather(
    mut wanted: impl FnMut(&ImageFiles) -> Vec<WantedFile>,
    mut read: impl FnMut(&[WantedFile], Duration) -> Option<Vec<(WantedFile, ImageFile)>>,
    deadline: Duration,
) -> ImageFiles {
    let until = std::time::Instant::now() + deadline;
    let mut files = ImageFiles::default();
    for _ in 0..=MAX_CHAIN {
        let mut next = wanted(&files);
        next.retain(|w| !files.contains(&w.image, &w.path));
        let left = until.saturating_duration_since(std::time::Instant::now());
        if next.is_empty() || left.is_zero() {
            break;
        }
        let Some(found) = read(&next, left) else {
            break;
        };
        for (w, file) in found {
            files.insert(&w.image, &w.path, file);
        }
    }
    files
}

/// Why reading one layer stopped.
#[derive(Debug)]
enum Stop {
    /// The file cannot be read within the bounds, or the image is broken: a final answer.
    Unread(String),
    /// The registry failed: a failure, remembered briefly.
    Registry(ResolveError),
}

/// The file at `path` in the image `r`, read `via` a source (the registry or a mirror), and
/// the digest of the platform manifest it was read through (the cache key that never
/// expires).
async fn fetch_file(
    inner: &Inner,
    r: &Reference,
    via: &Reference,
    path: &str,
    credentialed: bool,
    until: tokio::time::Instant,
) -> Result<(ImageFile, String), ResolveError> {
    let (mut session, host) = resolver::session(inner, via, credentialed)?;
    let _permits = inner.permits(&host).await;
    let PlatformManifest {
        doc,
        named_digest,
        manifest_digest,
    } = resolver::platform_manifest(inner, &mut session, &host, via).await?;
    let prefix = if credentialed { CREDENTIALED } else { "" };
    let pinned_key = format!(
        "{prefix}{}\n{path}",
        reference::digest_key(r, &manifest_digest)
    );
    if let Some(Cached::Found(file)) = lock(&inner.files).get(&pinned_key, SystemTime::now()) {
        return Ok((file, manifest_digest));
    }
    let bounds = &inner.scripts;
    // Top (last) layer first.
    let top_down: Vec<&resolver::Descriptor> = doc.layers.iter().rev().collect();
    let mut target = layers::normalize(path);
    let mut start = 0;
    let mut links = 0;
    let mut walked = 0;
    let mut budget = bounds.max_bytes;
    let file = 'walk: loop {
        for (i, layer) in top_down.iter().enumerate().skip(start) {
            if walked == bounds.max_layers {
                break 'walk unread(
                    &named_digest,
                    path,
                    format!(
                        "not found in the {walked} layers pidone reads per file (images.scripts.maxLayers)"
                    ),
                );
            }
            walked += 1;
            let outcome = read_layer(
                &mut session,
                &host,
                layer,
                &target,
                bounds.max_file_bytes,
                &mut budget,
                until,
            )
            .await;
            match outcome {
                Ok(LayerOutcome::Found {
                    path: found,
                    mode,
                    content,
                }) => {
                    break 'walk ImageFile {
                        digest: named_digest,
                        path: format!("/{found}"),
                        mode,
                        content,
                    };
                }
                Ok(LayerOutcome::Hidden) => break 'walk missing(&named_digest, &target),
                Ok(LayerOutcome::Link {
                    target: next,
                    from_top,
                }) => {
                    links += 1;
                    if links > MAX_LINKS {
                        break 'walk unread(
                            &named_digest,
                            path,
                            format!("more than {MAX_LINKS} links on the way to the file"),
                        );
                    }
                    target = next;
                    start = if from_top { 0 } else { i };
                    continue 'walk;
                }
                Ok(LayerOutcome::NotHere) => {}
                Err(Stop::Unread(reason)) => break 'walk unread(&named_digest, path, reason),
                Err(Stop::Registry(e)) => return Err(e),
            }
        }
        break missing(&named_digest, &target);
    };
    Ok((file, manifest_digest))
}

fn missing(digest: &str, target: &str) -> ImageFile {
    ImageFile {
        digest: digest.to_string(),
        path: format!("/{target}"),
        mode: 0,
        content: FileContent::Missing,
    }
}

/// Streams one layer blob: the download (bounded by its declared size and the bytes left,
/// hashed) feeds a scan on a blocking thread; when the scan has its answer, the rest is only
/// hashed. The answer counts only if the blob matches its digest.
async fn read_layer(
    session: &mut Session<'_>,
    host: &str,
    layer: &resolver::Descriptor,
    target: &str,
    max_file_bytes: u64,
    budget: &mut u64,
    until: tokio::time::Instant,
) -> Result<LayerOutcome, Stop> {
    let compression =
        Compression::of(&layer.media_type).map_err(|e| Stop::Unread(e.to_string()))?;
    let size = u64::try_from(layer.size)
        .map_err(|_| Stop::Unread(format!("layer {} declares a negative size", layer.digest)))?;
    if size > *budget {
        return Err(Stop::Unread(format!(
            "reading layer {} ({size} bytes) would pass the bytes pidone reads per file (images.scripts.maxBytes)",
            layer.digest
        )));
    }
    *budget -= size;
    let response = session
        .get(&format!("blobs/{}", layer.digest), None)
        .await
        .map_err(|e| Stop::Registry(resolver::registry_error(host, e)))?;
    if !response.status().is_success() {
        return Err(Stop::Registry(resolver::registry_error(
            host,
            RegistryError::Http(format!("layer {}: {}", layer.digest, response.status())),
        )));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUED_CHUNKS);
    let deadline = until.into_std();
    let wanted = target.to_string();
    let scan = tokio::task::spawn_blocking(move || {
        let raw = Deadline {
            inner: Channel {
                rx,
                chunk: Bytes::new(),
            },
            until: deadline,
        };
        let tar = Deadline {
            inner: layers::decompressed(raw, compression),
            until: deadline,
        };
        layers::scan_layer(tar, &wanted, max_file_bytes)
    });
    let scanned =
        |joined: Result<Result<LayerOutcome, layers::LayerError>, tokio::task::JoinError>| {
            match joined {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(e)) => Err(Stop::Unread(format!("layer {}: {e}", layer.digest))),
                Err(e) => Err(Stop::Unread(format!(
                    "layer {}: the scan failed: {e}",
                    layer.digest
                ))),
            }
        };
    let mut response = response;
    let mut scan = Some(scan);
    let mut early = None;
    let mut hasher = Sha256::new();
    let mut read: u64 = 0;
    let mut tx = Some(tx);
    loop {
        let chunk = match tokio::time::timeout_at(until, response.chunk()).await {
            Err(_) => return Err(Stop::Registry(ResolveError::Timeout)),
            Ok(Err(e)) if e.is_timeout() => return Err(Stop::Registry(ResolveError::Timeout)),
            Ok(Err(e)) => {
                return Err(Stop::Registry(resolver::registry_error(
                    host,
                    RegistryError::Http(format!(
                        "reading layer {}: {}",
                        layer.digest,
                        registry::describe(&e)
                    )),
                )));
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => chunk,
        };
        read += chunk.len() as u64;
        if read > size {
            return Err(Stop::Unread(format!(
                "layer {} is larger than its declared {size} bytes",
                layer.digest
            )));
        }
        hasher.update(&chunk);
        if let Some(sender) = &tx
            && sender.send(chunk).await.is_err()
        {
            // The scan has its answer. One that can change a launch (a script's text, a link
            // to follow) counts only once the whole blob matched its digest: the rest is
            // hashed. One that cannot (a binary, a file that is not there) is final now, so
            // learning that `/manager` is an ELF binary does not cost its whole layer.
            tx = None;
            let outcome = match scan.take() {
                Some(handle) => scanned(handle.await)?,
                None => break,
            };
            if !changes_a_launch(&outcome) {
                return Ok(outcome);
            }
            early = Some(outcome);
        }
    }
    drop(tx);
    let digest = format!("sha256:{}", hex(&hasher.finalize()));
    if layer.digest.starts_with("sha256:") && digest != layer.digest {
        return Err(Stop::Unread(format!(
            "layer {} does not match its digest",
            layer.digest
        )));
    }
    match (early, scan) {
        (Some(outcome), _) => Ok(outcome),
        (None, Some(handle)) => scanned(handle.await),
        (None, None) => Err(Stop::Unread(format!(
            "layer {}: the scan ended without an answer",
            layer.digest
        ))),
    }
}

/// Whether an answer of a layer can change how a launch is classified: a script's text, or a
/// link that leads to another file.
fn changes_a_launch(outcome: &LayerOutcome) -> bool {
    matches!(
        outcome,
        LayerOutcome::Found {
            content: FileContent::Script { .. },
            ..
        } | LayerOutcome::Link { .. }
            | LayerOutcome::NotHere
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The blob's chunks as a `Read`, on the blocking side of the channel.
struct Channel {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    chunk: Bytes,
}

impl Read for Channel {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                // The download ended (or stopped): end of stream.
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// A reader that fails once the deadline passed: decompression and the tar walk are CPU work
/// a small hostile blob can make long.
struct Deadline<R> {
    inner: R,
    until: std::time::Instant,
}

impl<R: Read> Read for Deadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if std::time::Instant::now() > self.until {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the deadline passed while reading the layer",
            ));
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_reads_chunks_in_order_and_ends() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        tx.try_send(Bytes::from_static(b"hel")).unwrap();
        tx.try_send(Bytes::from_static(b"lo")).unwrap();
        drop(tx);
        let mut text = String::new();
        Channel {
            rx,
            chunk: Bytes::new(),
        }
        .read_to_string(&mut text)
        .unwrap();
        assert_eq!(text, "hello");
    }

    #[test]
    fn rounds_follow_chains_and_stop() {
        let file = |text: &str| ImageFile {
            digest: "sha256:1".into(),
            path: "/x".into(),
            mode: 0o755,
            content: FileContent::Script { text: text.into() },
        };
        let want = |path: &str| WantedFile {
            image: "app:1".into(),
            path: path.into(),
        };
        // A chain a -> b -> c: each round wants the next file once the previous is read.
        let mut asked = Vec::new();
        let files = gather(
            |files| {
                ["/a", "/b", "/c"]
                    .iter()
                    .find(|p| !files.contains("app:1", p))
                    .map(|p| vec![want(p)])
                    .unwrap_or_default()
            },
            |wanted, _| {
                asked.extend(wanted.iter().map(|w| w.path.clone()));
                Some(
                    wanted
                        .iter()
                        .map(|w| (w.clone(), file("#!/bin/sh\n")))
                        .collect(),
                )
            },
            Duration::from_secs(5),
        );
        assert_eq!(files.len(), 3);
        assert_eq!(asked, ["/a", "/b", "/c"]);
        // A launch that keeps wanting new files is cut at MAX_CHAIN + 1 rounds.
        let mut n = 0;
        let files = gather(
            |_| {
                n += 1;
                vec![want(&format!("/f{n}"))]
            },
            |wanted, _| Some(wanted.iter().map(|w| (w.clone(), file(""))).collect()),
            Duration::from_secs(5),
        );
        assert_eq!(files.len(), MAX_CHAIN + 1);
        // No time: nothing is read.
        let files = gather(
            |_| vec![want("/a")],
            |_, _| panic!("no time to read"),
            Duration::ZERO,
        );
        assert!(files.is_empty());
    }

    #[test]
    fn a_passed_deadline_stops_reading() {
        let mut r = Deadline {
            inner: &b"data"[..],
            until: std::time::Instant::now() - Duration::from_millis(1),
        };
        let e = r.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    }
}
