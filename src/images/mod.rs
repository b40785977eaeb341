//! Image look-ups: the ENTRYPOINT and CMD that run when a pod sets no `command` (docs/design.md
//! sections 1, 6 and 7). The engine stays pure; the server and the CLI call
//! [`ImageResolver::resolve_all`] before evaluating and pass the map in `EvalContext::images`.

pub mod cache;
pub mod credentials;
pub mod files;
pub mod layers;
pub mod offline;
pub mod reference;
pub mod registry;
pub mod resolver;

pub use resolver::{ImageResolver, ImageStats, ImageWarning, ResolveError, ResolverError, Scope};

pub use crate::engine::image_refs::images_to_resolve;
