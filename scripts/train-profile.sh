#!/usr/bin/env bash
# Trains the profile the shipped pidone is optimised with (profile-guided optimisation, see
# BENCHMARKS.md): builds pidone instrumented, answers the reviews of examples/pgo_workload.rs
# (made from the public manifests under tests/fixtures, over TLS, HTTP/1.1 and HTTP/2, both
# endpoints) with `pidone serve`, audits the same manifests with `pidone audit`, and merges
# what the instrumented runs counted into PROFDATA. Prints the instrumented binary's path
# (the only line on stdout): the build that uses the profile checks its symbols against it.
#
#   scripts/train-profile.sh [--profile PROFILE] PROFDATA
#
# PROFILE is the cargo profile to train (`release` by default); the build that uses PROFDATA
# must use the same profile and RUSTFLAGS (scripts/build-static.sh --pgo does both).
#
# Needs openssl and an llvm-profdata that reads the raw profiles of rustc's LLVM: the one in
# rustc's sysroot (`rustup component add llvm-tools`), else $LLVM_PROFDATA (rustc 1.95 uses
# LLVM 22: Debian bookworm's llvm-22 package has it, and llvm-19's reads its profiles too).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
profile=release
if [ "${1:-}" = "--profile" ]; then
    profile="$2"
    shift 2
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--profile PROFILE] PROFDATA" >&2
    exit 2
fi
profdata="$1"
host=$(rustc -vV | sed -n 's/^host: //p')
profdata_tool="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata_tool" ]; then
    profdata_tool="${LLVM_PROFDATA:-}"
fi
if [ -z "$profdata_tool" ] || [ ! -x "$profdata_tool" ]; then
    echo "no llvm-profdata: run \`rustup component add llvm-tools\` or set LLVM_PROFDATA" >&2
    exit 2
fi
command -v openssl >/dev/null || { echo "missing openssl" >&2; exit 2; }

target_dir="${CARGO_TARGET_DIR:-target}/pgo-generate"
# The target scripts/build-static.sh builds: the target is part of every symbol's hash.
target=x86_64-unknown-linux-gnu
WORK=$(mktemp -d)
NAME=pidone.pidone.svc
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The same flags as the build that uses the profile, plus the instrumentation: functions are
# matched by their symbol names and control flow, which the flags must not change. The runs
# below name their own profile files (LLVM_PROFILE_FILE); the directory given here stays the
# same from run to run so that a second training reuses the instrumented build.
RUSTFLAGS="-C target-feature=+crt-static -C profile-generate=$target_dir/profraw" \
    cargo build --locked --profile "$profile" --package pidone --bin pidone \
    --target "$target" --target-dir "$target_dir"
out_dir="$target_dir/$target/$profile"
[ "$profile" = dev ] && out_dir="$target_dir/$target/debug"
# The client on its own, uninstrumented: building an example in the same command turns on the
# features its dev-dependencies ask of shared dependencies, which changes the names of
# pidone's functions, and a profile names functions (it would then match none of the build's).
cargo build --locked --package pidone --example pgo_workload --target-dir "$target_dir/client"
client="$target_dir/client/debug/examples/pgo_workload"
mkdir -p "$WORK/raw"

# shellcheck source=benches/serve-common.sh
. "$root/benches/serve-common.sh"
make_serving_files
manifests=(tests/fixtures/roundtrip/static/* tests/fixtures/roundtrip/charts/*.yaml
    tests/fixtures/side_agents/*.yaml tests/fixtures/examples/launches.yaml)
port=$((20000 + RANDOM % 20000))

LLVM_PROFILE_FILE="$WORK/raw/serve-%p.profraw" "$out_dir/pidone" serve \
    --config "$WORK/config.yaml" --tls-cert "$WORK/tls.crt" --tls-key "$WORK/tls.key" \
    --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$((port + 1))" \
    --log-format json --drain-timeout 1s >"$WORK/serve.log" 2>&1 &
server=$!
wait_port "$port"
"$client" "127.0.0.1:$port" "$NAME" "$WORK/ca.crt" "${PGO_ROUNDS:-4}" "${manifests[@]}" >&2
# The profile is written when the server exits: stop it as the kubelet does.
kill -TERM "$server"
wait "$server" || { echo "pidone serve failed:" >&2; cat "$WORK/serve.log" >&2; exit 1; }
server=
LLVM_PROFILE_FILE="$WORK/raw/audit-%p.profraw" "$out_dir/pidone" audit --fail-on never \
    "${manifests[@]}" >/dev/null

shopt -s nullglob
raw=("$WORK"/raw/serve-*.profraw)
[ ${#raw[@]} -gt 0 ] || { echo "pidone serve wrote no profile" >&2; exit 1; }
mkdir -p "$(dirname "$profdata")"
"$profdata_tool" merge -o "$profdata" "$WORK"/raw/*.profraw >&2
echo "trained $profdata from ${#raw[@]} server run(s) and an audit" >&2
echo "$out_dir/pidone"
