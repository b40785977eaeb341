//! Mutations (docs/design.md section 5): turn findings into a JSON Patch on the object's raw JSON.
//!
//! Script edits are made on the object's extracted workload and written as replacements of
//! the edited `command` and `args`; any other edit is made on a copy of the pod spec's raw
//! JSON (never a typed round-trip, which drops fields the types do not know). They are diffed into patch operations that apply under the apiserver's json-patch
//! v4 semantics. Every mutation is idempotent: re-evaluating the patched object finds nothing
//! more to change.

mod diff;
mod exec_rewrite;
mod init_inject;
mod patch_check;
mod plan;
mod script_slots;
mod sidecar;

pub use exec_rewrite::insert_exec;
pub use plan::{
    Mutation, MutationKind, MutationPlan, keep_if_applies, may_reshape, plan, plan_on_copy,
    plan_unchecked, plan_unchecked_with,
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
