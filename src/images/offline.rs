//! Look-ups for the command line (`pidone audit --resolve-images`): one batch for all the
//! manifests' images, then the files their launches run, with the cache kept on disk between
//! runs.

use crate::engine::config::ImagesConfig;
use crate::engine::evaluate::ImageConfig;
use crate::engine::image_files::{ImageFile, ImageFiles, WantedFile};
use crate::images::{ImageResolver, ImageWarning, ResolverError, Scope, images_to_resolve};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// `$XDG_CACHE_HOME/pidone/images.json`, else `$HOME/.cache/pidone/images.json`.
pub fn default_cache_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("pidone").join("images.json"))
}

/// Loads the disk cache into the resolver; a missing or unreadable file is an empty cache.
pub fn load_cache(resolver: &ImageResolver, path: &Path) {
    let Ok(text) = std::fs::read(path) else {
        return;
    };
    match serde_json::from_slice(&text) {
        Ok(disk) => resolver.import_cache(disk),
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "ignoring the image cache"),
    }
}

/// Saves the resolver's cache (write to a temporary file, then rename).
pub fn save_cache(resolver: &ImageResolver, path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_vec(&resolver.export_cache()).map_err(std::io::Error::other)?;
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// A resolver for one command-line run, with its runtime and the cache file.
pub struct Offline {
    runtime: tokio::runtime::Runtime,
    resolver: ImageResolver,
    config: ImagesConfig,
    cache: Option<PathBuf>,
}

impl Offline {
    /// Builds the resolver and loads the cache file, if any.
    pub fn new(config: &ImagesConfig, cache: Option<&Path>) -> Result<Offline, ResolverError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ResolverError::Client(e.to_string()))?;
        let resolver = runtime.block_on(async { ImageResolver::new(config) })?;
        if let Some(path) = cache {
            load_cache(&resolver, path);
        }
        Ok(Offline {
            runtime,
            resolver,
            config: config.clone(),
            cache: cache.map(Path::to_path_buf),
        })
    }

    /// Resolves the images of every object that run without a `command`, all at once, each
    /// within the configured deadline. Warnings name the images that stay `image-default`.
    pub fn resolve_objects<'a>(
        &self,
        objects: impl IntoIterator<Item = &'a Value>,
    ) -> (HashMap<String, ImageConfig>, Vec<ImageWarning>) {
        let images: BTreeSet<String> = objects.into_iter().flat_map(images_to_resolve).collect();
        self.runtime.block_on(
            self.resolver
                .resolve_all(images.iter().map(String::as_str), self.config.deadline),
        )
    }

    /// Reads files from images' layers within `deadline`, with every credential.
    pub fn read_files(
        &self,
        wanted: &[WantedFile],
        deadline: std::time::Duration,
    ) -> Vec<(WantedFile, ImageFile)> {
        self.runtime
            .block_on(self.resolver.read_files(wanted, deadline, Scope::Trusted))
    }

    /// The files the launches need, round after round (see [`crate::images::files::gather`]);
    /// `wanted` evaluates the objects with the files read so far. Empty when
    /// `images.scripts.read` is off.
    pub fn gather_files(&self, wanted: impl FnMut(&ImageFiles) -> Vec<WantedFile>) -> ImageFiles {
        if !self.config.scripts.read {
            return ImageFiles::default();
        }
        crate::images::files::gather(
            wanted,
            |files, left| Some(self.read_files(files, left)),
            self.config.scripts.deadline,
        )
    }

    /// Saves the cache file; a warning when it cannot be written.
    pub fn save(&self) -> Option<ImageWarning> {
        let path = self.cache.as_ref()?;
        save_cache(&self.resolver, path)
            .err()
            .map(|e| ImageWarning {
                image: String::new(),
                timeout: false,
                message: format!("cannot save the image cache {}: {e}", path.display()),
            })
    }
}

/// Resolves the images of every object that run without a `command`, all at once, each within
/// the configured deadline. Warnings name the images that stay `image-default`.
pub fn resolve_objects<'a>(
    config: &ImagesConfig,
    objects: impl IntoIterator<Item = &'a Value>,
    cache: Option<&Path>,
) -> Result<(HashMap<String, ImageConfig>, Vec<ImageWarning>), ResolverError> {
    let offline = Offline::new(config, cache)?;
    let (found, mut warnings) = offline.resolve_objects(objects);
    warnings.extend(offline.save());
    Ok((found, warnings))
}
