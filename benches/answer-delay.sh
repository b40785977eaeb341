#!/usr/bin/env bash
# What a slower answer costs in the kernel, apart from the work that makes it slower.
#
# The no-op HTTPS server on pidone's stack (examples/baseline_server.rs) is loaded at full
# speed as `benches/load.sh` loads every server (same body, TLS keep-alive, server and oha
# pinned to their own CPUs), first as it is, then spinning N microseconds on its core before
# each answer (`spin:N`: no system call, no memory traffic). The bytes in and out are the
# same in every run, so any change in system CPU time per review comes from the delay alone:
# over loopback the server's write delivers the answer and wakes the client in the server's
# own system call, and a client that has gone idle while it waited costs more to wake.
#
# Prints, per mode, requests/s and the server's user and system CPU microseconds per review.
#
#   benches/answer-delay.sh                           # noop, spin:5 ... spin:45, 5 s each
#   DURATION=10s SPINS="0 10 25" benches/answer-delay.sh
#
# Needs: oha, openssl, jq, taskset.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-16}
SPINS=${SPINS:-0 5 10 20 30 45}
SERVER_CPUS=${SERVER_CPUS:-1}
CLIENT_CPUS=${CLIENT_CPUS:-0}
BODY=$ROOT/benches/fixtures/pod-review.json
NAME=pidone.pidone.svc
for tool in oha openssl jq taskset; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done

cargo build --release --example baseline_server
BASELINE=$TARGET/release/examples/baseline_server
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# shellcheck source=benches/serve-common.sh
. "$ROOT/benches/serve-common.sh"
scratch_for_one_server
make_serving_files

load() { # port duration
    taskset -c "$CLIENT_CPUS" oha --no-tui --output-format json -z "$2" -c "$CONNECTIONS" \
        -m POST -T application/json \
        -H 'Accept: application/json, */*' -H 'User-Agent: kube-apiserver-admission' \
        --cacert "$WORK/ca.crt" --connect-to "$NAME:$1:127.0.0.1:$1" \
        -D "$BODY" "https://$NAME:$1/validate?timeout=10s"
}
# User and system CPU (clock ticks) of a process so far.
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

echo "| server | requests/s | user us/review | system us/review |"
echo "|---|---|---|---|"
for spin in $SPINS; do
    mode=noop
    [ "$spin" != 0 ] && mode=spin:$spin
    port=$((20000 + RANDOM % 20000))
    taskset -c "$SERVER_CPUS" "$BASELINE" "127.0.0.1:$port" "$WORK/tls.crt" "$WORK/tls.key" \
        "$mode" >/dev/null &
    SERVER=$!
    wait_port "$port"
    load "$port" "$WARMUP" >/dev/null
    read -r user0 sys0 <<<"$(ticks "$SERVER")"
    load "$port" "$DURATION" >"$WORK/run.json"
    read -r user1 sys1 <<<"$(ticks "$SERVER")"
    kill "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    SERVER=
    jq -r --arg mode "$mode" --argjson user $(((user1 - user0) * TICK_US)) \
        --argjson sys $(((sys1 - sys0) * TICK_US)) \
        '([.statusCodeDistribution[]] | add // 1) as $n
         | "| \($mode) | \(.summary.requestsPerSec | floor) | \($user / $n | round) | \($sys / $n | round) |"' \
        "$WORK/run.json"
done
echo
echo "Machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1); $(uname -sr)"
echo "Server on CPU $SERVER_CPUS, oha on CPU $CLIENT_CPUS, $CONNECTIONS connections, $DURATION per run"
