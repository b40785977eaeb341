#!/usr/bin/env bash
# The whole test suite: the container image (built without a daemon), Rust unit and
# integration tests (which also check that image), the static pidone-init, the chart,
# manifest and packaging checks, then pidone auditing its own install manifest.
#
# The tests need the tools below. As root with apt-get they are installed; otherwise the
# script stops with the list of what is missing, unless PIDONE_ALLOW_SKIPS=1 (never on CI),
# which runs what can run. A test that cannot run records why in $PIDONE_SKIP_LOG (see
# tests/skips/), and the last line printed is `N skipped: reasons` (`0 skipped` when all ran);
# under CI=true such a test fails instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../" && pwd)"
cd "$root"

# tool or file, and the Debian package that provides it.
needs=(
    "unshare util-linux" "setpriv util-linux" "chroot coreutils"
    "dash dash" "bash bash" "busybox busybox-static" "ps procps" "file file"
    "tini tini" "dumb-init dumb-init" "catatonit catatonit"
    "docker-registry docker-registry" "umoci umoci" "skopeo skopeo" "htpasswd apache2-utils"
    "dnsmasq dnsmasq-base" "/etc/ssl/certs/ca-certificates.crt ca-certificates"
    "python3 python3" "python3-venv python3-venv"
)
present() {
    case "$1" in
        /*) [[ -e "$1" ]] ;;
        python3-venv) python3 -c 'import ensurepip, venv' >/dev/null 2>&1 ;;
        # Some tools live in sbin, which a user's PATH may lack.
        *) PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null ;;
    esac
}
missing_tools() {
    missing=()
    for need in "${needs[@]}"; do
        present "${need%% *}" || missing+=("$need")
    done
}
missing_tools
if ((${#missing[@]})) && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    packages=()
    for need in "${missing[@]}"; do packages+=("${need#* }"); done
    echo "installing ${packages[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${packages[@]}" >/dev/null
    missing_tools
fi
if ((${#missing[@]})); then
    echo "scripts/test.sh: missing what the tests need:" >&2
    for need in "${missing[@]}"; do
        echo "  ${need%% *} (Debian package ${need#* })" >&2
    done
    if [[ "${PIDONE_ALLOW_SKIPS:-}" != 1 || "${CI:-}" == true ]]; then
        echo "Install them (as root: apt-get install --no-install-recommends" \
            "$(for need in "${missing[@]}"; do printf '%s ' "${need#* }"; done | xargs -n1 | sort -u | xargs))," \
            "or set PIDONE_ALLOW_SKIPS=1 to run the rest and report the tests that need them as skipped." >&2
        exit 1
    fi
fi

PIDONE_SKIP_LOG="$(mktemp)"
export PIDONE_SKIP_LOG
summary() {
    local rc=$?
    if [[ -s "$PIDONE_SKIP_LOG" ]]; then
        echo "skipped tests:"
        sed 's/\t/: /; s/^/  /' "$PIDONE_SKIP_LOG"
        echo "$(wc -l <"$PIDONE_SKIP_LOG") skipped: $(cut -f2 "$PIDONE_SKIP_LOG" | sort -u | paste -sd ';' | sed 's/;/; /g')"
    else
        echo "0 skipped"
    fi
    rm -f "$PIDONE_SKIP_LOG"
    exit "$rc"
}
trap summary EXIT

# The image, checked by tests/image.rs. CI builds it with the faster `image-ci` profile
# (PIDONE_IMAGE_PROFILE=release PIDONE_IMAGE_PGO=1 builds what ships).
if present umoci && present /etc/ssl/certs/ca-certificates.crt; then
    image_dir="${CARGO_TARGET_DIR:-$root/target}/image"
    start=$SECONDS
    pgo=()
    [ "${PIDONE_IMAGE_PGO:-0}" = 1 ] && pgo=(--pgo)
    PIDONE_IMAGE="$(scripts/build-image.sh --profile "${PIDONE_IMAGE_PROFILE:-image-ci}" "${pgo[@]}" "$image_dir" | tail -n 1)"
    export PIDONE_IMAGE
    echo "image $PIDONE_IMAGE built in $((SECONDS - start)) s"
fi

cargo test --workspace --all-targets
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
