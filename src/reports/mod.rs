//! Cluster reports: pidone's findings as `wgpolicyk8s.io/v1alpha2` PolicyReports or
//! `openreports.io/v1alpha1` Reports, one per namespace plus a cluster-scoped one, the resources
//! Policy Reporter, dashboards and alerting already read.
//!
//! - [`shape`]: the resources' shapes.
//! - [`build`]: from evaluations to results and reports (pure).
//! - [`lease`]: leader election, so that one replica writes.
//! - [`scanner`]: watchers and reflectors over the cluster, kept in reports (`pidone serve`
//!   with `reports.enabled`). `pidone audit --cluster --format policyreport|openreport` prints
//!   the same reports once.

pub mod build;
pub mod lease;
pub mod scanner;
pub mod shape;
