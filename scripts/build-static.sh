#!/bin/sh
# Builds the two binaries of the pidone image, both static against glibc, and installs them
# into OUTDIR as OUTDIR/pidone and OUTDIR/pidone-init (mode 0555). Shared by
# scripts/build-image.sh and deploy/Dockerfile.
#
#   scripts/build-static.sh [--profile PROFILE] [--pgo] OUTDIR
#
# PROFILE is the cargo profile of pidone: `release` (the default, what ships) or `image-ci`
# (CI's faster build of the same code). pidone-init always uses `release-init`.
#
# --pgo optimises pidone with a profile trained first by scripts/train-profile.sh (an
# instrumented build answering a workload of real manifests' reviews): what deploy/Dockerfile
# ships. It takes two builds of pidone instead of one.
#
# pidone needs no NSS module: registry hosts are resolved by hickory-resolver (oci-client's
# `hickory-dns` feature), which reads /etc/resolv.conf and /etc/hosts itself.
set -eu
cd "$(dirname "$0")/.."
profile=release
if [ "${1:-}" = "--profile" ]; then
    profile="$2"
    shift 2
fi
pgo=
if [ "${1:-}" = "--pgo" ]; then
    pgo=1
    shift
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--profile PROFILE] [--pgo] OUTDIR" >&2
    exit 2
fi
out="$1"
target="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu"
rustflags="-C target-feature=+crt-static"
if [ -n "$pgo" ]; then
    profdata="${CARGO_TARGET_DIR:-target}/pgo/pidone.profdata"
    trained="$(scripts/train-profile.sh --profile "$profile" "$profdata")"
    # Absolute: rustc runs in each crate's directory.
    rustflags="$rustflags -C profile-use=$(cd "$(dirname "$profdata")" && pwd)/pidone.profdata"
fi
RUSTFLAGS="$rustflags" \
    cargo build --locked --profile "$profile" --package pidone --bin pidone \
    --target x86_64-unknown-linux-gnu
init="$(./scripts/build-init.sh | tail -n 1)"
# The profile `release` builds into `release`, the others into a directory of their name.
pidone="$target/$profile/pidone"
if [ -n "$pgo" ]; then
    # A profile names the functions it counted by their symbols. A build whose symbols differ
    # from the instrumented one's (other features of a dependency, another target) would use
    # none of it, silently: check that they share pidone's.
    symbols="$(mktemp -d)"
    nm --defined-only "$trained" | awk '$3 ~ /^_ZN6pidone/ {print $3}' | sort -u >"$symbols/trained"
    nm --defined-only "$pidone" | awk '$3 ~ /^_ZN6pidone/ {print $3}' | sort -u >"$symbols/built"
    shared=$(comm -12 "$symbols/trained" "$symbols/built" | wc -l)
    rm -rf "$symbols"
    if [ "$shared" -lt 100 ]; then
        echo "the profile-guided build shares $shared of pidone's symbols with the trained one" >&2
        exit 1
    fi
fi
mkdir -p "$out"
install -m 0555 "$pidone" "$out/pidone"
install -m 0555 "$init" "$out/pidone-init"
for bin in "$out/pidone" "$out/pidone-init"; do
    # A static (or static-pie) binary has no program interpreter; ldd says so.
    if ldd "$bin" >/dev/null 2>&1 && ! ldd "$bin" 2>&1 | grep -q 'statically linked'; then
        echo "$bin is dynamically linked:" >&2
        ldd "$bin" >&2
        exit 1
    fi
done
