//! pidone: finds and fixes containers whose PID 1 swallows SIGTERM or leaks zombies.
//!
//! The pipeline: object -> workload -> containers -> launch -> findings -> decision/patch.
//! [`engine`] is pure (no I/O); the server, the CLI and the Kubernetes client wrap it.
#![deny(unsafe_code)]

pub mod byte_scan;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod edit;
pub mod engine;
pub mod images;
pub mod json_text;
pub mod mutate;
pub mod reports;
pub mod resolve;
pub mod sandbox;
pub mod server;
