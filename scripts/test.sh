#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, then the chart, manifest and
# packaging checks, then pidone auditing its own install manifest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo test --all-targets
cargo build --quiet --bin pidone
# The shipped pidone-init: static, under 1 MiB, and it passes the PID-namespace proofs too.
init="$(./scripts/build-init.sh | tail -n 1)"
size=$(stat -c %s "$init")
echo "static pidone-init: $size bytes"
if [ "$size" -ge 1048576 ]; then
    echo "static pidone-init is $size bytes, over the 1 MiB budget" >&2
    exit 1
fi
PIDONE_INIT_BIN="$root/$init" cargo test --test init_pid_namespace
bash tests/chart/run.sh
# pidone practises what it enforces: its own Deployment must be clean.
./target/debug/pidone audit --fail-on warn deploy/pidone.yaml
