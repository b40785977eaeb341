#!/usr/bin/env bash
# Instructions per admission review of `pidone serve`, counted by callgrind: a number that does
# not move with the load on a shared machine, unlike CPU time.
#
# The server runs under `valgrind --tool=callgrind` and is sent exactly N reviews of
# benches/fixtures/pod-review.json over TLS (`oha -n N -c 1`, one keep-alive connection, the
# apiserver's headers), then stopped; this is done twice, with N1 and N2 reviews, for /validate
# and for /mutate. Start-up, the TLS handshake, the first review's script parse and shutdown
# cost the same in both runs, so
#
#     instructions per review = (Ir(N2) - Ir(N1)) / (N2 - N1)
#
# Needs: valgrind, oha, openssl, jq.
#
#   benches/callgrind.sh                      # target/release/pidone, N1=100, N2=300
#   N1=200 N2=600 benches/callgrind.sh path/to/pidone [path/to/another/pidone ...]
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
N1=${N1:-100}
N2=${N2:-300}
BODY=${BODY:-$ROOT/benches/fixtures/pod-review.json}
NAME=pidone.pidone.svc
PATHS=${PATHS:-/validate /mutate}
if [ "$#" -eq 0 ]; then
    set -- "${CARGO_TARGET_DIR:-$ROOT/target}/release/pidone"
fi
for tool in valgrind oha openssl jq; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done
if [ "$N2" -le "$N1" ]; then echo "N2 must be larger than N1" >&2; exit 2; fi

# shellcheck source=benches/serve-common.sh
. "$ROOT/benches/serve-common.sh"
scratch_for_one_server
make_serving_files


# Total instructions (Ir) of one server run that answered `n` reviews on `path`.
instructions() { # binary path n
    local bin=$1 path=$2 n=$3 port=$((20000 + RANDOM % 20000)) out answered
    out="$WORK/callgrind.out.$n"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bin" serve --config "$WORK/config.yaml" \
        --tls-cert "$WORK/tls.crt" --tls-key "$WORK/tls.key" \
        --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$((port + 1))" \
        --log-format json --drain-timeout 1s >/dev/null 2>"$WORK/valgrind.log" &
    SERVER=$!
    # Valgrind starts a program tens of times slower than it runs natively.
    wait_port "$port" 600
    answered=$(oha --no-tui --output-format json -n "$n" -c 1 -m POST -T application/json \
        -H 'Accept: application/json, */*' -H 'User-Agent: kube-apiserver-admission' \
        --cacert "$WORK/ca.crt" --connect-to "$NAME:$port:127.0.0.1:$port" \
        -D "$BODY" "https://$NAME:$port$path?timeout=30s" |
        jq '.statusCodeDistribution["200"] // 0')
    kill -TERM "$SERVER"
    wait "$SERVER" || true
    SERVER=
    if [ "$answered" != "$n" ]; then
        echo "$path: $answered of $n reviews answered 200" >&2
        exit 1
    fi
    # callgrind writes `totals: <Ir>` (or `summary:`) at the end of its output.
    awk '/^(totals|summary):/ {print $2; exit}' "$out"
}

for bin in "$@"; do
    echo "$bin"
    for path in $PATHS; do
        a=$(instructions "$bin" "$path" "$N1")
        b=$(instructions "$bin" "$path" "$N2")
        echo "  $path: $(( (b - a) / (N2 - N1) )) instructions per review (Ir $a for $N1 reviews, $b for $N2)"
    done
done
