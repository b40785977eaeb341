#!/usr/bin/env bash
# Load benchmark of `pidone serve` against a no-op HTTPS webhook on the same stack
# (examples/baseline_server.rs), in the same run, with a realistic ~15 KiB Pod review
# (benches/fixtures/pod-review.json) over TLS keep-alive, the way kube-apiserver calls it.
#
# Needs: oha (`cargo install oha --locked`), openssl, jq, taskset.
# Writes the results to target/load-benchmark.md (or $OUT); BENCHMARKS.md keeps the last
# published run.
#
#   benches/load.sh                 # 3 rounds of 10 s per run
#   ROUNDS=5 DURATION=30s CONNECTIONS=16 benches/load.sh
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-16}
RATE=${RATE:-1000}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-$ROOT/target/load-benchmark.md}
BODY=$ROOT/benches/fixtures/pod-review.json
NAME=pidone.pidone.svc
# The server gets CPU 0, the load generator CPU 1 (on a 2-core machine they would otherwise
# fight over both).
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}

for tool in oha openssl jq taskset; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done

cargo build --release --bin pidone --example baseline_server
PIDONE=$TARGET/release/pidone
BASELINE=$TARGET/release/examples/baseline_server

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# A CA and a serving certificate for the service name, as cert-manager would make them.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=bench CA" -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=pidone" \
    -keyout "$WORK/tls.key" -out "$WORK/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\n' "$NAME" >"$WORK/san.ext"
openssl x509 -req -in "$WORK/tls.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" \
    -CAcreateserial -days 1 -extfile "$WORK/san.ext" -out "$WORK/tls.crt" 2>/dev/null
printf 'mode: enforce\n' >"$WORK/config.yaml"

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 did not open" >&2
    exit 1
}

peak_rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# oha against one endpoint; prints its JSON summary.
load() { # port path extra-args...
    local port=$1 path=$2
    shift 2
    taskset -c "$CLIENT_CPUS" oha --no-tui --output-format json \
        -c "$CONNECTIONS" -m POST -T application/json \
        -H 'Accept: application/json, */*' -H 'User-Agent: kube-apiserver-admission' \
        -H 'Accept-Encoding: gzip' \
        --cacert "$WORK/ca.crt" --connect-to "$NAME:$port:127.0.0.1:$port" \
        -D "$BODY" "$@" "https://$NAME:$port$path?timeout=10s"
}

summary() { # json-file -> "rps p50_ms p99_ms success_rate"
    jq -r '[.summary.requestsPerSec, .latencyPercentiles.p50 * 1000,
            .latencyPercentiles.p99 * 1000, .summary.successRate] | @tsv' "$1"
}

statuses() { jq -c '.statusCodeDistribution' "$1"; }

run() { # name port path extra-args... ; appends one result file per round
    local name=$1 port=$2 path=$3
    shift 3
    load "$port" "$path" -z "$WARMUP" >/dev/null
    load "$port" "$path" "$@" >"$WORK/$name.$ROUND.json"
    echo "round $ROUND $name: $(summary "$WORK/$name.$ROUND.json") $(statuses "$WORK/$name.$ROUND.json")" >&2
}

# All three servers run side by side, pinned to the same CPU, and are loaded one at a time,
# round after round, so that noise from other work on the machine spreads over all of them.
taskset -c "$SERVER_CPUS" "$BASELINE" 127.0.0.1:18443 "$WORK/tls.crt" "$WORK/tls.key" noop >/dev/null &
PIDS+=($!)
BASELINE_PID=$!
taskset -c "$SERVER_CPUS" "$BASELINE" 127.0.0.1:19443 "$WORK/tls.crt" "$WORK/tls.key" kube >/dev/null &
PIDS+=($!)
KUBE_PID=$!
# pidone as in production: JSON logs (to /dev/null here), one line per review.
taskset -c "$SERVER_CPUS" "$PIDONE" serve --config "$WORK/config.yaml" \
    --tls-cert "$WORK/tls.crt" --tls-key "$WORK/tls.key" \
    --listen 127.0.0.1:28443 --metrics-listen 127.0.0.1:29090 --log-format json >/dev/null &
PIDS+=($!)
PIDONE_PID=$!
wait_port 18443
wait_port 19443
wait_port 28443

for ROUND in $(seq "$ROUNDS"); do
    run baseline 18443 /validate -z "$DURATION"
    run kube-baseline 19443 /validate -z "$DURATION"
    run validate 28443 /validate -z "$DURATION"
    run mutate 28443 /mutate -z "$DURATION"
    run baseline-rate 18443 /validate -z "$DURATION" -q "$RATE"
    run validate-rate 28443 /validate -z "$DURATION" -q "$RATE"
done
BASELINE_RSS=$(peak_rss_kib "$BASELINE_PID")
KUBE_RSS=$(peak_rss_kib "$KUBE_PID")
PIDONE_RSS=$(peak_rss_kib "$PIDONE_PID")
kill -TERM "$PIDONE_PID"
wait "$PIDONE_PID" || true

# The round with the median requests/s of each run (median p99 for the fixed-rate runs).
median() { # name -> file
    local key=.summary.requestsPerSec
    case $1 in *-rate) key=.latencyPercentiles.p99 ;; esac
    for f in "$WORK/$1".*.json; do
        echo "$(jq "$key" "$f") $f"
    done | sort -g | awk '{a[NR]=$2} END {print a[int((NR+1)/2)]}'
}
for name in baseline kube-baseline validate mutate baseline-rate validate-rate; do
    cp "$(median "$name")" "$WORK/$name.json"
done

row() { # name -> markdown row
    local s
    s=$(summary "$WORK/$1.json")
    read -r rps p50 p99 ok <<<"$s"
    printf '| %s | %.0f | %.3f | %.3f | %.4f |' "$1" "$rps" "$p50" "$p99" "$ok"
}
ratio() { jq -rn --slurpfile a "$WORK/$1.json" --slurpfile b "$WORK/$2.json" \
    '($a[0].summary.requestsPerSec / $b[0].summary.requestsPerSec * 100) | floor'; }

CPU=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
{
    echo "# pidone serve: load benchmark"
    echo
    echo "Generated by \`benches/load.sh\` on $(date -u +%Y-%m-%d): the baselines and pidone ran side by"
    echo "side in the same run and were loaded in turn, $ROUNDS rounds; each row is the round with the"
    echo "median requests/s (for the fixed-rate runs: the median p99). Every round is listed below."
    echo
    echo "- Machine: $(nproc) CPUs, $CPU; $(uname -sr)"
    echo "- Server pinned to CPU $SERVER_CPUS, oha pinned to CPU $CLIENT_CPUS (\`taskset\`)"
    echo "- Request: \`benches/fixtures/pod-review.json\` ($(stat -c %s "$BODY") bytes), a defaulted Pod"
    echo "  CREATE review with two containers (a shell wrapper without exec, a log forwarder)"
    echo "- Transport: TLS 1.3 (ECDSA P-256), HTTP/1.1 keep-alive, $CONNECTIONS connections, apiserver headers"
    echo "- pidone: release build, \`mode: enforce\`, default config, JSON logs (one line per review) to /dev/null"
    echo "- Runs: $DURATION each after a $WARMUP warm-up; fixed-rate runs at $RATE req/s (\`-q $RATE\`)"
    echo
    echo "- \`baseline\`: \`examples/baseline_server.rs\`, same stack, reads the body and answers a fixed review"
    echo "- \`kube-baseline\`: the same server decoding each review into kube-rs \`AdmissionReview<DynamicObject>\`"
    echo "  and answering allowed with its uid (a minimal webhook written the usual way)"
    echo
    echo "| run | requests/s | p50 ms | p99 ms | success |"
    echo "|---|---|---|---|---|"
    row baseline; echo
    row kube-baseline; echo
    row validate; echo
    row mutate; echo
    row baseline-rate; echo
    row validate-rate; echo
    echo
    echo "- /validate throughput: $(ratio validate baseline)% of the no-op baseline, $(ratio validate kube-baseline)% of the kube-rs baseline; /mutate: $(ratio mutate baseline)% / $(ratio mutate kube-baseline)%"
    echo "- Peak RSS (VmHWM) over the whole run: pidone $((PIDONE_RSS / 1024)) MiB ($PIDONE_RSS KiB), baseline $((BASELINE_RSS / 1024)) MiB, kube-rs baseline $((KUBE_RSS / 1024)) MiB"
    echo "- Load on the machine during the run (other work included): $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- Status codes: validate $(statuses "$WORK/validate.json"), mutate $(statuses "$WORK/mutate.json")"
    echo
    echo "Every round (requests/s, p50 ms, p99 ms), in the order they ran:"
    echo
    echo "| round | run | requests/s | p50 ms | p99 ms |"
    echo "|---|---|---|---|---|"
    for r in $(seq "$ROUNDS"); do
        for name in baseline kube-baseline validate mutate baseline-rate validate-rate; do
            read -r rps p50 p99 _ <<<"$(summary "$WORK/$name.$r.json")"
            printf '| %s | %s | %.0f | %.3f | %.3f |\n' "$r" "$name" "$rps" "$p50" "$p99"
        done
    done
    echo
    echo "Command (each run):"
    echo
    echo '```'
    echo "taskset -c $CLIENT_CPUS oha --no-tui --output-format json -c $CONNECTIONS -m POST -T application/json \\"
    echo "  -H 'Accept: application/json, */*' -H 'User-Agent: kube-apiserver-admission' -H 'Accept-Encoding: gzip' \\"
    echo "  --cacert ca.crt --connect-to $NAME:PORT:127.0.0.1:PORT -D benches/fixtures/pod-review.json \\"
    echo "  -z $DURATION [-q $RATE] https://$NAME:PORT/validate?timeout=10s"
    echo '```'
} >"$OUT"
cat "$OUT"
