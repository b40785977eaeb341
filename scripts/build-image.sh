#!/usr/bin/env bash
# Assembles the pidone container image as an OCI image layout, without a container daemon:
# one layer from scratch with the two static binaries of scripts/build-static.sh, Debian's CA
# certificates and the /etc/passwd and /etc/group of deploy/rootfs/ (user 65532), configured
# like the final stage of deploy/Dockerfile (tests/image.rs compares the two).
#
#   scripts/build-image.sh [--profile PROFILE] [--pgo] OUT
#
# OUT is an OCI image layout directory, replaced if it exists. The image is tagged with the
# package version; the last line printed is OUT:VERSION. Publish it with skopeo:
#
#   skopeo copy oci:OUT:VERSION docker://REGISTRY/pidone:VERSION
#
# PROFILE is pidone's cargo profile: `release` (the default) or `image-ci` (see Cargo.toml).
# --pgo builds pidone with a trained profile, as deploy/Dockerfile does (see
# scripts/build-static.sh; needs llvm-profdata and openssl).
# Needs umoci and /etc/ssl/certs/ca-certificates.crt (Debian packages umoci, ca-certificates).
set -euo pipefail
umask 022
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
profile=release
if [[ "${1:-}" == "--profile" ]]; then
    profile="$2"
    shift 2
fi
pgo=()
if [[ "${1:-}" == "--pgo" ]]; then
    pgo=(--pgo)
    shift
fi
if [[ $# -ne 1 ]]; then
    echo "usage: $0 [--profile PROFILE] [--pgo] OUT" >&2
    exit 2
fi
out="$1"
ca=/etc/ssl/certs/ca-certificates.crt
missing=()
command -v umoci >/dev/null || missing+=("umoci (Debian package umoci)")
[[ -f "$ca" ]] || missing+=("$ca (Debian package ca-certificates)")
if ((${#missing[@]})); then
    printf 'build-image.sh: missing %s\n' "${missing[@]}" >&2
    exit 1
fi
version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)"
image="$out:$version"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
stage="$work/rootfs"
mkdir -m 0755 "$stage"
scripts/build-static.sh --profile "$profile" "${pgo[@]}" "$stage"
install -D -m 0644 "$ca" "$stage/etc/ssl/certs/ca-certificates.crt"
install -m 0644 deploy/rootfs/etc/passwd deploy/rootfs/etc/group "$stage/etc/"

# Files owned by root, as COPY makes them; umoci keeps the owners it finds, so a build by
# another user maps them to root.
rootless=()
if [[ "$(id -u)" != 0 ]]; then
    rootless=(--rootless)
fi
rm -rf "$out"
umoci init --layout "$out"
umoci new --image "$image"
umoci insert "${rootless[@]}" --image "$image" "$stage" /
# The final stage of deploy/Dockerfile: USER, EXPOSE, LABEL, ENTRYPOINT, CMD.
umoci config --image "$image" \
    --os=linux --architecture=amd64 \
    --config.user=65532:65532 \
    --config.exposedports=8443/tcp --config.exposedports=9090/tcp \
    --config.label=org.opencontainers.image.title=pidone \
    "--config.label=org.opencontainers.image.description=Kubernetes admission webhook that fixes PID 1 in containers" \
    --config.label=org.opencontainers.image.source=https://github.com/pidone/pidone \
    --config.label=org.opencontainers.image.licenses=Apache-2.0 \
    --config.entrypoint=/pidone \
    --config.cmd=serve \
    --config.cmd=--config --config.cmd=/etc/pidone/config.yaml \
    --config.cmd=--tls-cert --config.cmd=/etc/pidone/tls/tls.crt \
    --config.cmd=--tls-key --config.cmd=/etc/pidone/tls/tls.key \
    --config.cmd=--listen --config.cmd=0.0.0.0:8443 \
    --config.cmd=--metrics-listen --config.cmd=0.0.0.0:9090
umoci gc --layout "$out"
echo "$image"
