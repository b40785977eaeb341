#!/bin/sh
# Builds pidone-init (crates/pidone-init, std and libc only) as a static, stripped,
# size-optimised binary.
# Output: ${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release-init/pidone-init
set -eu
cd "$(dirname "$0")/.."
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --locked --profile release-init --package pidone-init --bin pidone-init \
    --target x86_64-unknown-linux-gnu
out="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release-init/pidone-init"
echo "$out"
