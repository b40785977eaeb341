#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, then the chart, manifest and
# packaging checks, then pidone auditing its own install manifest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo test --all-targets
cargo build --quiet --bin pidone
bash tests/chart/run.sh
# pidone practises what it enforces: its own Deployment must be clean.
./target/debug/pidone audit --fail-on warn deploy/pidone.yaml
