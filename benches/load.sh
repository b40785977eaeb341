#!/usr/bin/env bash
# Load benchmark of `pidone serve` in one run beside:
# - the kube-rs admission example (examples/admission_controller.rs of kube-rs, built from its
#   public source into target/peer: fetched, never committed), the peer a Rust webhook is
#   usually written like;
# - nginx answering a fixed review over the same TLS: the floor (TLS and HTTP, no JSON), at full
#   speed and at the rate pidone reached;
# - a no-op HTTPS server on pidone's own stack (examples/baseline_server.rs), plain and decoding
#   each review into kube-rs types.
# Same body (benches/fixtures/pod-review.json, a ~15 KiB Pod review), TLS keep-alive with the
# apiserver's headers, every server pinned to the same CPU; CPU time per review is read from
# /proc for each server over each run. pidone's /mutate is also loaded with the same Pod
# already fixed (benches/fixtures/pod-review-exec.json: its wrapper execs the app), which it
# evaluates and leaves unpatched.
#
# pidone is measured as it ships: static and profile-guided (scripts/build-static.sh --pgo,
# what deploy/Dockerfile runs; needs an llvm-profdata, see scripts/train-profile.sh). PGO=0
# measures the plain release build instead.
#
# Needs: oha (`cargo install oha --locked`), openssl, jq, taskset, nginx, git.
# KUBE_RS_SRC: a kube-rs checkout or git URL (default https://github.com/kube-rs/kube, tag
# $KUBE_RS_REF); PEER_BIN: an admission_controller already built from it (not rebuilt; its
# commit is read from KUBE_RS_SRC when that is a checkout); PEER=0 skips the peer, NGINX=0
# the floor.
# CPU time per review moves with the load on the machine; benches/callgrind.sh counts the
# instructions per review instead (steady from run to run, for before/after comparisons).
# The targets are ratios, read per round (each round loads every server in turn, seconds
# apart) and reported as their median over the rounds whose floor held; a run disturbed in
# most rounds is reported as not a result and exits with status 3.
# Writes the results to the target directory (load-benchmark.md, or $OUT); BENCHMARKS.md keeps the last
# published run.
#
# HALT_POLL_NS: on a KVM guest whose idle driver is cpuidle-haltpoll, the time an idle vCPU
# polls before it halts, set for the run and restored after (needs root). Over loopback the
# server's write of an answer wakes the client in the server's own system call; a client CPU
# that has halted takes an interrupt to wake, which in a guest exits to the host and is charged
# to the server (the slower its answers, the more often; BENCHMARKS.md). Polling removes that
# charge for every server alike. Unset: the machine as it is; the report says which.
#
#   benches/load.sh                 # 5 rounds of 10 s per run
#   ROUNDS=7 DURATION=30s CONNECTIONS=16 benches/load.sh
#   HALT_POLL_NS=200000 benches/load.sh
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-16}
RATE=${RATE:-1000}
ROUNDS=${ROUNDS:-5}
OUT=${OUT:-$TARGET/load-benchmark.md}
BODY=$ROOT/benches/fixtures/pod-review.json
# The same Pod with nothing to patch (its wrapper execs the app), for `mutate-unpatched`.
BODY_UNPATCHED=$ROOT/benches/fixtures/pod-review-exec.json
NAME=pidone.pidone.svc
# The server gets CPU 0, the load generator CPU 1 (on a 2-core machine they would otherwise
# fight over both).
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}

PEER=${PEER:-1}
PGO=${PGO:-1}
NGINX=${NGINX:-1}
KUBE_RS_SRC=${KUBE_RS_SRC:-https://github.com/kube-rs/kube}
KUBE_RS_REF=${KUBE_RS_REF:-}
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
HALT_POLL_NS=${HALT_POLL_NS:-}
HALT_POLL=/sys/module/haltpoll/parameters/guest_halt_poll_ns
HALT_POLL_WAS=
if [ -n "$HALT_POLL_NS" ]; then
    [ -w "$HALT_POLL" ] || { echo "HALT_POLL_NS: $HALT_POLL is not writable here" >&2; exit 2; }
    HALT_POLL_WAS=$(cat "$HALT_POLL")
fi

for tool in oha openssl jq taskset git; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done
if [ "$NGINX" = 1 ] && [ ! -x "$NGINX_BIN" ]; then echo "missing nginx (NGINX=0 skips it)" >&2; exit 2; fi

cargo build --release --example baseline_server
if [ "$PGO" = 1 ]; then
    scripts/build-static.sh --pgo "$TARGET/shipped"
    PIDONE=$TARGET/shipped/pidone
    PIDONE_BUILD="static, profile-guided (\`scripts/build-static.sh --pgo\`, as the image ships)"
else
    cargo build --release --bin pidone
    PIDONE=$TARGET/release/pidone
    PIDONE_BUILD="release build"
fi
# The peer, built from its own source in its own target directory.
PEER_DIR=$TARGET/peer/kube
if [ "$PEER" = 1 ] && [ -n "${PEER_BIN:-}" ]; then
    [ -x "$PEER_BIN" ] || { echo "PEER_BIN $PEER_BIN is not an executable" >&2; exit 2; }
    PEER_COMMIT=$(git -C "$KUBE_RS_SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
elif [ "$PEER" = 1 ]; then
    if [ ! -d "$PEER_DIR/.git" ]; then
        rm -rf "$PEER_DIR"
        git clone --quiet ${KUBE_RS_REF:+--branch "$KUBE_RS_REF"} "$KUBE_RS_SRC" "$PEER_DIR"
    fi
    PEER_COMMIT=$(git -C "$PEER_DIR" rev-parse --short HEAD)
    (cd "$PEER_DIR" && CARGO_TARGET_DIR=$TARGET/peer/target cargo build --release --quiet \
        -p kube-examples --example admission_controller)
    PEER_BIN=$TARGET/peer/target/release/examples/admission_controller
fi
BASELINE=$TARGET/release/examples/baseline_server

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -n "$HALT_POLL_WAS" ]; then echo "$HALT_POLL_WAS" >"$HALT_POLL" || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
if [ -n "$HALT_POLL_NS" ]; then
    echo "$HALT_POLL_NS" >"$HALT_POLL"
fi
# How an idle CPU waits here, for the report.
IDLE="idle driver $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo unknown)"
if [ -r "$HALT_POLL" ]; then
    IDLE="$IDLE, guest_halt_poll_ns=$(cat "$HALT_POLL")${HALT_POLL_NS:+ (set for this run; was $HALT_POLL_WAS)}"
fi

# shellcheck source=benches/serve-common.sh
. "$ROOT/benches/serve-common.sh"
make_serving_files

peak_rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# oha against one endpoint; prints its JSON summary.
load() { # port path extra-args... ; the body is $RUN_BODY when set, else $BODY
    local port=$1 path=$2
    shift 2
    taskset -c "$CLIENT_CPUS" oha --no-tui --output-format json \
        -c "$CONNECTIONS" -m POST -T application/json \
        -H 'Accept: application/json, */*' -H 'User-Agent: kube-apiserver-admission' \
        -H 'Accept-Encoding: gzip' \
        --cacert "$WORK/ca.crt" --connect-to "$NAME:$port:127.0.0.1:$port" \
        -D "${RUN_BODY:-$BODY}" "$@" "https://$NAME:$port$path?timeout=10s"
}

summary() { # json-file -> "rps p50_ms p99_ms success_rate"
    jq -r '[.summary.requestsPerSec, .latencyPercentiles.p50 * 1000,
            .latencyPercentiles.p99 * 1000, .summary.successRate] | @tsv' "$1"
}

statuses() { jq -c '.statusCodeDistribution' "$1"; }

# CPU time of a process and its threads so far, user and system, in clock ticks.
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

run() { # name pid port path extra-args... ; appends one result file per round
    local name=$1 pid=$2 port=$3 path=$4 user0 sys0 user1 sys1
    shift 4
    load "$port" "$path" -z "$WARMUP" >/dev/null
    read -r user0 sys0 <<<"$(cpu_ticks "$pid")"
    load "$port" "$path" "$@" >"$WORK/$name.$ROUND.json"
    read -r user1 sys1 <<<"$(cpu_ticks "$pid")"
    # CPU microseconds per answered review, next to oha's numbers; the system share apart,
    # since a server that answers later pays more to wake the client (benches/answer-delay.sh).
    jq --argjson user "$(( (user1 - user0) * TICK_US ))" \
        --argjson sys "$(( (sys1 - sys0) * TICK_US ))" \
        '([.statusCodeDistribution[]] | add // 1) as $n
         | . + {cpuUsPerReview: (($user + $sys) / $n), systemUsPerReview: ($sys / $n)}' \
        "$WORK/$name.$ROUND.json" >"$WORK/$name.$ROUND.tmp" && mv "$WORK/$name.$ROUND.tmp" "$WORK/$name.$ROUND.json"
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
if [ "$PEER" = 1 ]; then
    # It binds $ADMISSION_PRIVATE_IP:8443 and reads its certificate from its directory.
    mkdir -p "$WORK/peer"
    cp "$WORK/tls.crt" "$WORK/peer/admission-controller-tls.crt"
    cp "$WORK/tls.key" "$WORK/peer/admission-controller-tls.key"
    (cd "$WORK/peer" && ADMISSION_PRIVATE_IP=127.0.0.1 RUST_LOG=info \
        exec taskset -c "$SERVER_CPUS" "$PEER_BIN" >/dev/null 2>&1) &
    PIDS+=($!)
    PEER_PID=$!
fi
if [ "$NGINX" = 1 ]; then
    # One process (one core, like the others), TLS as above, a fixed allowed review.
    mkdir -p "$WORK/nginx"
    cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
# One process, so the CPU time read from /proc is all of nginx's.
master_process off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx;
    proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx;
    uwsgi_temp_path $WORK/nginx;
    scgi_temp_path $WORK/nginx;
    client_max_body_size 1m;
    client_body_buffer_size 64k;
    server {
        listen 127.0.0.1:38443 ssl;
        ssl_certificate $WORK/tls.crt;
        ssl_certificate_key $WORK/tls.key;
        ssl_protocols TLSv1.3;
        keepalive_requests 1000000;
        location / {
            default_type application/json;
            return 200 '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"00000000-0000-4000-8000-000000000000","allowed":true}}';
        }
    }
}
CONF
    taskset -c "$SERVER_CPUS" "$NGINX_BIN" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2>/dev/null &
    PIDS+=($!)
    NGINX_PID=$!
fi
wait_port 18443
wait_port 19443
wait_port 28443
[ "$PEER" = 1 ] && wait_port 8443
[ "$NGINX" = 1 ] && wait_port 38443

RUNS="baseline kube-baseline validate mutate mutate-unpatched baseline-matched baseline-matched-mutate baseline-rate validate-rate"
[ "$PEER" = 1 ] && RUNS="$RUNS peer baseline-target"
[ "$NGINX" = 1 ] && RUNS="$RUNS nginx nginx-matched nginx-rate"
for ROUND in $(seq "$ROUNDS"); do
    run baseline "$BASELINE_PID" 18443 /validate -z "$DURATION"
    run kube-baseline "$KUBE_PID" 19443 /validate -z "$DURATION"
    run validate "$PIDONE_PID" 28443 /validate -z "$DURATION"
    run mutate "$PIDONE_PID" 28443 /mutate -z "$DURATION"
    RUN_BODY=$BODY_UNPATCHED run mutate-unpatched "$PIDONE_PID" 28443 /mutate -z "$DURATION"
    [ "$PEER" = 1 ] && run peer "$PEER_PID" 8443 /mutate -z "$DURATION"
    [ "$NGINX" = 1 ] && run nginx "$NGINX_PID" 38443 /validate -z "$DURATION"
    # The floor again at the rate pidone's /validate reached this round: a server that answers
    # slower than the client asks pays for waking it after each answer (loopback), which the
    # floor at full speed does not.
    MATCHED=$(jq '.summary.requestsPerSec | floor' "$WORK/validate.$ROUND.json")
    [ "$NGINX" = 1 ] && run nginx-matched "$NGINX_PID" 38443 /validate -z "$DURATION" -q "$MATCHED"
    # pidone's own stack answering a fixed review at the rates pidone reached: what pidone's
    # CPU per review is above these is its analysis.
    run baseline-matched "$BASELINE_PID" 18443 /validate -z "$DURATION" -q "$MATCHED"
    MATCHED_MUTATE=$(jq '.summary.requestsPerSec | floor' "$WORK/mutate.$ROUND.json")
    run baseline-matched-mutate "$BASELINE_PID" 18443 /validate -z "$DURATION" -q "$MATCHED_MUTATE"
    # The same stack at the rate a server spending a fifth of the peer's CPU per review would
    # answer at on its one core: what is left of that fifth is the budget for the analysis.
    if [ "$PEER" = 1 ]; then
        TARGET_RATE=$(jq '5000000 / .cpuUsPerReview | floor' "$WORK/peer.$ROUND.json")
        run baseline-target "$BASELINE_PID" 18443 /validate -z "$DURATION" -q "$TARGET_RATE"
    fi
    run baseline-rate "$BASELINE_PID" 18443 /validate -z "$DURATION" -q "$RATE"
    run validate-rate "$PIDONE_PID" 28443 /validate -z "$DURATION" -q "$RATE"
    [ "$NGINX" = 1 ] && run nginx-rate "$NGINX_PID" 38443 /validate -z "$DURATION" -q "$RATE"
done
BASELINE_RSS=$(peak_rss_kib "$BASELINE_PID")
KUBE_RSS=$(peak_rss_kib "$KUBE_PID")
PEER_RSS=
[ "$PEER" = 1 ] && PEER_RSS=$(peak_rss_kib "$PEER_PID")
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
for name in $RUNS; do
    cp "$(median "$name")" "$WORK/$name.json"
done

row() { # name -> markdown row
    local s cpu sys
    s=$(summary "$WORK/$1.json")
    cpu=$(jq '.cpuUsPerReview' "$WORK/$1.json")
    sys=$(jq '.systemUsPerReview' "$WORK/$1.json")
    read -r rps p50 p99 ok <<<"$s"
    printf '| %s | %.0f | %.0f | %.0f | %.3f | %.3f | %.4f |' "$1" "$rps" "$cpu" "$sys" "$p50" "$p99" "$ok"
}
cpu_ratio() { jq -rn --slurpfile a "$WORK/$1.json" --slurpfile b "$WORK/$2.json" \
    '($a[0].cpuUsPerReview / $b[0].cpuUsPerReview * 10 | round) / 10'; }
p99_ratio() { jq -rn --slurpfile a "$WORK/$1.json" --slurpfile b "$WORK/$2.json" \
    '($a[0].latencyPercentiles.p99 / $b[0].latencyPercentiles.p99 * 10 | round) / 10'; }
ratio() { jq -rn --slurpfile a "$WORK/$1.json" --slurpfile b "$WORK/$2.json" \
    '($a[0].summary.requestsPerSec / $b[0].summary.requestsPerSec * 100) | floor'; }

# Each round's own ratios: the runs of one round are seconds apart, so load from elsewhere on
# the machine that spans a round moves both sides of its ratios, while the rows above mix
# rounds. A round whose floor (nginx, else the no-op baseline) answered under 85% of the
# run's best round was disturbed: it is listed but left out of the medians, and a run with
# fewer than half its rounds undisturbed is reported as not a result (exit status 3).
FLOOR=baseline
[ "$NGINX" = 1 ] && FLOOR=nginx
FLOOR_BEST=$(for r in $(seq "$ROUNDS"); do jq '.summary.requestsPerSec' "$WORK/$FLOOR.$r.json"; done | sort -g | tail -1)
QUIET=()
for r in $(seq "$ROUNDS"); do
    if jq -e --argjson best "$FLOOR_BEST" '.summary.requestsPerSec >= 0.85 * $best' "$WORK/$FLOOR.$r.json" >/dev/null; then
        QUIET+=("$r")
    fi
done
round_cpu_ratio() { # round a b -> a's CPU per review / b's, in that round
    jq -rn --slurpfile a "$WORK/$2.$1.json" --slurpfile b "$WORK/$3.$1.json" \
        '($a[0].cpuUsPerReview / $b[0].cpuUsPerReview * 100 | round) / 100'
}
round_rps_share() { # round a b -> a's requests/s as a percentage of b's, in that round
    jq -rn --slurpfile a "$WORK/$2.$1.json" --slurpfile b "$WORK/$3.$1.json" \
        '($a[0].summary.requestsPerSec / $b[0].summary.requestsPerSec * 100) | floor'
}
quiet_median() { # unit command args... -> "median<unit> (min-max)" over the undisturbed rounds
    local unit=$1 values
    shift
    values=$(for r in "${QUIET[@]}"; do "$@" "$r"; done | sort -g)
    [ -n "$values" ] || { echo "n/a"; return; }
    awk -v unit="$unit" '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2;
        printf "%s%s (%s-%s)", m, unit, a[1], a[NR]}' <<<"$values"
}
peer_over() { round_cpu_ratio "$2" peer "$1"; }
share_of_floor() { round_rps_share "$1" validate nginx; }
DISTURBED=0
[ $(( ${#QUIET[@]} * 2 )) -lt "$ROUNDS" ] && DISTURBED=1

CPU=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
{
    echo "# pidone serve: load benchmark"
    echo
    if [ "$DISTURBED" = 1 ]; then
        echo "**Disturbed run, not a result**: the floor ($FLOOR) held in ${#QUIET[@]} of $ROUNDS rounds only (other load on the machine)."
        echo
    fi
    echo "Generated by \`benches/load.sh\` on $(date -u +%Y-%m-%d): the baselines and pidone ran side by"
    echo "side in the same run and were loaded in turn, $ROUNDS rounds; each row is the round with the"
    echo "median requests/s (for the fixed-rate runs: the median p99). Every round is listed below."
    echo
    echo "- Machine: $(nproc) CPUs, $CPU; $(uname -sr)"
    echo "- Server pinned to CPU $SERVER_CPUS, oha pinned to CPU $CLIENT_CPUS (\`taskset\`); $IDLE"
    echo "- Request: \`benches/fixtures/pod-review.json\` ($(stat -c %s "$BODY") bytes), a defaulted Pod"
    echo "  CREATE review with two containers (a shell wrapper without exec, a log forwarder)"
    echo "- Transport: TLS 1.3 (ECDSA P-256), HTTP/1.1 keep-alive, $CONNECTIONS connections, apiserver headers"
    echo "- pidone: $PIDONE_BUILD, \`mode: enforce\`, default config, JSON logs (one line per review) to /dev/null"
    echo "- Runs: $DURATION each after a $WARMUP warm-up; fixed-rate runs at $RATE req/s (\`-q $RATE\`)"
    echo
    echo "- \`baseline\`: \`examples/baseline_server.rs\`, same stack, reads the body and answers a fixed review"
    echo "- \`baseline-matched\`, \`baseline-matched-mutate\`: the baseline at the requests/s pidone's /validate and /mutate reached in the same round (\`-q\`); \`baseline-target\`: at the requests/s of a server spending a fifth of the peer's CPU per review on its one core (5,000,000 / the peer's us per review)"
    echo "- \`kube-baseline\`: the same server decoding each review into kube-rs \`AdmissionReview<DynamicObject>\`"
    echo "  and answering allowed with its uid (a minimal webhook written the usual way)"
    echo
    [ "$PEER" = 1 ] && echo "- \`peer\`: kube-rs's \`examples/admission_controller.rs\` at $PEER_COMMIT (its /mutate adds a label), release build, INFO logs to /dev/null"
    [ "$NGINX" = 1 ] && echo "- \`nginx\`: $("$NGINX_BIN" -v 2>&1 | sed 's/.*: //'), one process, the same TLS, a fixed review (\`return 200\`): the floor"
    echo
    echo "| run | requests/s | CPU us/review | of it system | p50 ms | p99 ms | success |"
    echo "|---|---|---|---|---|---|---|"
    for name in $RUNS; do row "$name"; echo; done
    echo
    if [ "$PEER" = 1 ]; then
        echo "- CPU per review, peer / pidone, each round's own ratio, the median of the ${#QUIET[@]} rounds whose floor held (of $ROUNDS; their range in brackets): $(quiet_median x peer_over validate) (/validate), $(quiet_median x peer_over mutate) (/mutate); target 5x. On the same Pod with nothing to patch (\`mutate-unpatched\`, \`benches/fixtures/pod-review-exec.json\`): $(quiet_median x peer_over mutate-unpatched). From the rows above (median rounds, mixed): $(cpu_ratio peer validate)x, $(cpu_ratio peer mutate)x, $(cpu_ratio peer mutate-unpatched)x"
    fi
    if [ "$NGINX" = 1 ]; then
        echo "- pidone /validate throughput: $(quiet_median % share_of_floor) of the nginx floor, each round's own share (target 40%); p99 at $RATE req/s: $(p99_ratio validate-rate nginx-rate)x the floor's (target 2x)"
        echo "- The floor at pidone's /validate rate (\`nginx-matched\`: \`-q\` at the requests/s /validate reached in the same round): $(jq '.cpuUsPerReview | round' "$WORK/nginx-matched.json") us per review, against $(jq '.cpuUsPerReview | round' "$WORK/nginx.json") us at full speed"
    fi
    us() { jq '.cpuUsPerReview | round' "$WORK/$1.json"; }
    echo "- pidone's own stack answering a fixed review at pidone's rates (\`baseline-matched\`, \`baseline-matched-mutate\`): $(us baseline-matched) us per review at /validate's, $(us baseline-matched-mutate) us at /mutate's; the analysis, the rest of pidone's CPU: about $(( $(us validate) - $(us baseline-matched) )) us (/validate), $(( $(us mutate) - $(us baseline-matched-mutate) )) us (/mutate)$( [ "$PGO" = 1 ] && echo " (the stack is a plain release build; in profile-guided pidone it runs faster too, so this understates the analysis)")"
    if [ "$PEER" = 1 ]; then
        echo "- The budget at 5x the peer: $(jq '.cpuUsPerReview / 5 | round' "$WORK/peer.json") us per review; the same stack at the rate that implies ($(jq '.summary.requestsPerSec | round' "$WORK/baseline-target.json") req/s, \`baseline-target\`) spends $(us baseline-target), leaving $(( $(jq '.cpuUsPerReview / 5 | round' "$WORK/peer.json") - $(us baseline-target) )) us for the analysis"
    fi
    echo "- /validate throughput: $(ratio validate baseline)% of the no-op baseline, $(ratio validate kube-baseline)% of the kube-rs baseline; /mutate: $(ratio mutate baseline)% / $(ratio mutate kube-baseline)%"
    echo "- Peak RSS (VmHWM) over the whole run: pidone $((PIDONE_RSS / 1024)) MiB ($PIDONE_RSS KiB; target under 20 MiB), baseline $((BASELINE_RSS / 1024)) MiB, kube-rs baseline $((KUBE_RSS / 1024)) MiB${PEER_RSS:+, peer $((PEER_RSS / 1024)) MiB}"
    echo "- Load on the machine during the run (other work included): $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- Status codes: validate $(statuses "$WORK/validate.json"), mutate $(statuses "$WORK/mutate.json"), mutate-unpatched $(statuses "$WORK/mutate-unpatched.json")"
    echo
    echo "Every round (requests/s, p50 ms, p99 ms), in the order they ran:"
    echo
    echo "| round | run | requests/s | CPU us/review | of it system | p50 ms | p99 ms |"
    echo "|---|---|---|---|---|---|---|"
    for r in $(seq "$ROUNDS"); do
        for name in $RUNS; do
            read -r rps p50 p99 _ <<<"$(summary "$WORK/$name.$r.json")"
            printf '| %s | %s | %.0f | %.0f | %.0f | %.3f | %.3f |\n' "$r" "$name" "$rps" \
                "$(jq '.cpuUsPerReview' "$WORK/$name.$r.json")" \
                "$(jq '.systemUsPerReview' "$WORK/$name.$r.json")" "$p50" "$p99"
        done
    done
    echo
    echo "Each round's ratios (a round is disturbed when its floor, \`$FLOOR\`, answered under 85% of the best round's $(printf '%.0f' "$FLOOR_BEST") requests/s):"
    echo
    echo "| round | $FLOOR requests/s | disturbed |$( [ "$PEER" = 1 ] && echo " peer / validate CPU | peer / mutate CPU | peer / mutate-unpatched CPU |")$( [ "$NGINX" = 1 ] && echo " validate % of nginx |")"
    echo "|---|---|---|$( [ "$PEER" = 1 ] && echo "---|---|---|")$( [ "$NGINX" = 1 ] && echo "---|")"
    for r in $(seq "$ROUNDS"); do
        disturbed=yes
        for q in "${QUIET[@]}"; do [ "$q" = "$r" ] && disturbed=no; done
        printf '| %s | %.0f | %s |' "$r" "$(jq '.summary.requestsPerSec' "$WORK/$FLOOR.$r.json")" "$disturbed"
        [ "$PEER" = 1 ] && printf ' %s | %s | %s |' "$(peer_over validate "$r")" "$(peer_over mutate "$r")" "$(peer_over mutate-unpatched "$r")"
        [ "$NGINX" = 1 ] && printf ' %s |' "$(share_of_floor "$r")"
        echo
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
if [ "$DISTURBED" = 1 ]; then
    echo "disturbed run: the floor held in ${#QUIET[@]} of $ROUNDS rounds; not a result" >&2
    exit 3
fi
