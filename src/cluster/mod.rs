//! The cluster-facing side: what the Kubernetes cluster pidone runs in can do. Unlike
//! [`crate::engine`], this module does I/O (through `kube`); its pure parts live in [`versions`].

pub mod config_maps;
pub mod kinds;
pub mod sidecar_support;
pub mod versions;

pub use sidecar_support::{SidecarSupport, WatchOptions, offline, start};
pub use versions::{ApiServerVersion, KubeVersion, NodeKubelet, VersionError, decide};
