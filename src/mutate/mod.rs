//! Mutations (docs/design.md section 5): turn findings into a JSON Patch on the object's raw JSON.
//!
//! The edits are made on the pod spec's raw JSON (never a typed round-trip, which drops fields
//! the types do not know): script edits on the object itself and put back after, any other on
//! a copy. They are diffed into patch operations that apply under the apiserver's json-patch
//! v4 semantics. Every mutation is idempotent: re-evaluating the patched object finds nothing
//! more to change.

mod diff;
mod exec_rewrite;
mod init_inject;
mod plan;
mod sidecar;

pub use exec_rewrite::insert_exec;
pub use plan::{
    Mutation, MutationKind, MutationPlan, keep_if_applies, may_reshape, plan, plan_on_copy,
    plan_unchecked,
};

/// Name of the volume and init container that carry pidone-init.
pub const INIT_NAME: &str = "pidone-init";
/// Where pidone-init is installed in every container that runs under it.
pub const INIT_DIR: &str = "/.pidone";
pub const INIT_PATH: &str = "/.pidone/init";

/// Escapes one JSON Pointer reference token (RFC 6901): `~` first, then `/`.
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
