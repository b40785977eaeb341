//! Files read from images' layers, as the engine receives them: the script (or binary) a
//! launch runs when its program is a file inside the image. The caller reads them (the engine
//! does no I/O), asks [`crate::engine::Engine::image_files_wanted`] which ones a launch needs,
//! and passes them in `EvalContext::image_files`.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What pidone found at a path inside an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum FileContent {
    /// A file that starts with `#!`: its text.
    Script { text: String },
    /// Anything else (an ELF binary, a file without a `#!` line): the kernel runs it as is.
    Binary { what: String },
    /// Not in the image (never there, or removed by a whiteout in an upper layer).
    Missing,
    /// Not read: a bound, the deadline or the registry stopped the look-up.
    Unread { reason: String },
}

/// One file of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFile {
    /// The digest of the image the layers belong to (what the reference names).
    pub digest: String,
    /// Where the content was found, after symbolic and hard links (absolute).
    pub path: String,
    /// The file's permission bits (0 when not found).
    #[serde(default)]
    pub mode: u32,
    pub content: FileContent,
}

impl ImageFile {
    /// `image@sha256:...:/path`, as messages and JSON show where a script was read.
    pub fn source(&self) -> String {
        format!("image@{}:{}", self.digest, self.path)
    }

    /// Size counted by caches: the text and the strings around it.
    pub fn weight(&self) -> usize {
        let content = match &self.content {
            FileContent::Script { text } => text.len(),
            FileContent::Binary { what } => what.len(),
            FileContent::Unread { reason } => reason.len(),
            FileContent::Missing => 0,
        };
        self.digest.len() + self.path.len() + content
    }
}

/// Files read from images, keyed by the image reference as written in the pod and the
/// absolute path the launch runs.
#[derive(Debug, Clone, Default)]
pub struct ImageFiles {
    files: HashMap<(String, String), ImageFile>,
}

impl ImageFiles {
    pub fn insert(&mut self, image: &str, path: &str, file: ImageFile) {
        self.files
            .insert((image.to_string(), path.to_string()), file);
    }

    pub fn get(&self, image: &str, path: &str) -> Option<&ImageFile> {
        self.files.get(&(image.to_string(), path.to_string()))
    }

    pub fn contains(&self, image: &str, path: &str) -> bool {
        self.get(image, path).is_some()
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// A file a launch runs from an image that the caller has not read yet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WantedFile {
    /// The image reference as written in the pod.
    pub image: String,
    /// Absolute path inside the image.
    pub path: String,
}
