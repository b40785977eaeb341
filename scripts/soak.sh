#!/usr/bin/env bash
# Soak test of a release `pidone serve`: a steady review load for DURATION seconds, with the
# certificate rotated (kubelet-style `..data` symlink swap) and the configuration file
# rewritten along the way; samples RSS and open file descriptors every 10 s.
#
# Needs: oha, openssl, jq, python3.
#
#   scripts/soak.sh                       # 600 s at 500 reviews/s
#   DURATION=60 scripts/soak.sh           # quick run
#   RATE=300 DURATION=1800 scripts/soak.sh
#
# Exits non-zero if any request failed (not 200, or a transport error) or if RSS grew by
# more than MAX_RSS_GROWTH percent between the first sample (after WARMUP) and the last.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DURATION=${DURATION:-600}
RATE=${RATE:-500}
WARMUP=${WARMUP:-10}
MAX_RSS_GROWTH=${MAX_RSS_GROWTH:-10}
PORT=${PORT:-18443}
ADMIN_PORT=${ADMIN_PORT:-19090}
NAME=pidone.pidone.svc

for tool in oha openssl jq python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done

if [ -z "${PIDONE:-}" ]; then
    cargo build --release --bin pidone
    PIDONE=$TARGET/release/pidone
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# CA and serving certificates, laid out like a Secret volume.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=soak CA" -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
printf 'subjectAltName=DNS:%s\n' "$NAME" >"$WORK/san.ext"
generation=0
# Writes the next generation's key and certificate and sets GEN to its directory name (not
# through `$(...)`: a subshell would not advance the counter).
new_generation() {
    generation=$((generation + 1))
    GEN="..gen$generation"
    local dir="$WORK/certs/$GEN"
    mkdir -p "$dir"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=pidone" \
        -keyout "$dir/tls.key" -out "$WORK/tls.csr" 2>/dev/null
    openssl x509 -req -in "$WORK/tls.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" \
        -CAcreateserial -days 1 -extfile "$WORK/san.ext" -out "$dir/tls.crt" 2>/dev/null
}
mkdir -p "$WORK/certs"
new_generation
ln -s "$GEN" "$WORK/certs/..data"
ln -s ..data/tls.crt "$WORK/certs/tls.crt"
ln -s ..data/tls.key "$WORK/certs/tls.key"
# As the kubelet does: new files in a new directory, an atomic swap of `..data`, then the old
# directory goes.
rotate_cert() {
    local old
    old=$(readlink "$WORK/certs/..data")
    new_generation
    ln -s "$GEN" "$WORK/certs/..data_tmp"
    mv -T "$WORK/certs/..data_tmp" "$WORK/certs/..data"
    rm -rf "${WORK:?}/certs/$old"
}
# SHA-256 fingerprint of the certificate the server presents.
served_cert() {
    openssl s_client -connect "127.0.0.1:$PORT" -servername "$NAME" </dev/null 2>/dev/null |
        openssl x509 -noout -fingerprint -sha256
}
file_cert() { openssl x509 -noout -fingerprint -sha256 -in "$WORK/certs/tls.crt"; }
printf 'mode: enforce\n' >"$WORK/config.yaml"

# The review mix: the benchmark Pod (15 KiB), a Deployment CREATE and a Pod UPDATE.
BODY_POD=$ROOT/benches/fixtures/pod-review.json
python3 - "$BODY_POD" "$WORK" <<'PY'
import copy, json, sys
pod_review = json.load(open(sys.argv[1]))
work = sys.argv[2]
pod = pod_review["request"]["object"]
deploy = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod["spec"]}},
}
r = copy.deepcopy(pod_review)
r["request"].update({
    "uid": "11111111-0000-4000-8000-000000000001",
    "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
    "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
    "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
    "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
    "name": "web", "object": deploy, "oldObject": None,
})
json.dump(r, open(f"{work}/deployment-review.json", "w"))
u = copy.deepcopy(pod_review)
old = copy.deepcopy(pod)
new = copy.deepcopy(pod)
new.setdefault("metadata", {}).setdefault("labels", {})["soak"] = "updated"
u["request"].update({
    "uid": "11111111-0000-4000-8000-000000000002", "operation": "UPDATE",
    "object": new, "oldObject": old,
    "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"},
})
json.dump(u, open(f"{work}/update-review.json", "w"))
PY

RUST_LOG=${RUST_LOG:-warn} "$PIDONE" serve --config "$WORK/config.yaml" \
    --tls-cert "$WORK/certs/tls.crt" --tls-key "$WORK/certs/tls.key" \
    --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$ADMIN_PORT" \
    --log-format json >"$WORK/pidone.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done

# rate share (percent), path, body
MIX=(
    "60 /validate $BODY_POD"
    "20 /mutate $BODY_POD"
    "15 /validate $WORK/deployment-review.json"
    "5 /mutate $WORK/update-review.json"
)
i=0
for entry in "${MIX[@]}"; do
    read -r share path body <<<"$entry"
    q=$((RATE * share / 100))
    [ "$q" -ge 1 ] || q=1
    ~/.cargo/bin/oha --no-tui --output-format json -c 4 -q "$q" -z "${DURATION}s" -m POST \
        -T application/json -H 'Accept: application/json, */*' \
        -H 'User-Agent: kube-apiserver-admission' -H 'Accept-Encoding: gzip' \
        --cacert "$WORK/ca.crt" --connect-to "$NAME:$PORT:127.0.0.1:$PORT" -D "$body" \
        "https://$NAME:$PORT$path?timeout=10s" >"$WORK/oha-$i.json" 2>"$WORK/oha-$i.err" &
    PIDS+=("$!")
    i=$((i + 1))
done
LOADERS=$i

sample() {
    local rss fds
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER/status")
    fds=$(find "/proc/$SERVER/fd" -mindepth 1 -maxdepth 1 | wc -l)
    echo "$1 $rss $fds" >>"$WORK/samples"
    printf '%5ss  RSS %6s KiB  fds %4s\n' "$1" "$rss" "$fds"
}

echo "soak: ${DURATION}s at ${RATE} reviews/s (pid $SERVER)"
start=$(date +%s)
rotated=0
rewritten=0
while :; do
    elapsed=$(($(date +%s) - start))
    [ "$elapsed" -ge "$DURATION" ] && break
    kill -0 "$SERVER" 2>/dev/null || { echo "pidone exited" >&2; cat "$WORK/pidone.log" >&2; exit 1; }
    if [ "$rotated" = 0 ] && [ "$elapsed" -ge $((DURATION / 3)) ]; then
        rotate_cert
        rotated=1
        echo "${elapsed}s  certificate rotated (..data swap)"
    fi
    if [ "$rewritten" = 0 ] && [ "$elapsed" -ge $((DURATION / 2)) ]; then
        printf 'mode: enforce\nnativeSidecars: never\n' >"$WORK/config.yaml.tmp"
        mv "$WORK/config.yaml.tmp" "$WORK/config.yaml"
        rewritten=1
        echo "${elapsed}s  configuration rewritten"
    fi
    if [ "$elapsed" -ge "$WARMUP" ]; then
        sample "$elapsed"
    fi
    sleep 10
done
for pid in "${PIDS[@]:1}"; do wait "$pid" || true; done
sample "$(($(date +%s) - start))"
metrics=$(curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" || true)

total=0
failed=0
for n in $(seq 0 $((LOADERS - 1))); do
    f=$WORK/oha-$n.json
    if ! jq -e . "$f" >/dev/null 2>&1; then
        echo "load generator $n produced no result:" >&2
        cat "$WORK/oha-$n.err" >&2
        failed=$((failed + 1))
        continue
    fi
    ok=$(jq '[.statusCodeDistribution | to_entries[] | select(.key == "200") | .value] | add // 0' "$f")
    # oha aborts the requests in flight when its -z duration ends ("aborted due to
    # deadline"): those were cut by the load generator, not answered wrongly; not counted.
    all=$(jq '([.statusCodeDistribution | to_entries[] | .value] | add // 0) + ([.errorDistribution | to_entries[] | select(.key != "aborted due to deadline") | .value] | add // 0)' "$f")
    echo "mix ${MIX[$n]%% /*}% ${MIX[$n]#* }: $all requests, $ok HTTP 200, codes $(jq -c .statusCodeDistribution "$f"), errors $(jq -c .errorDistribution "$f"), p99 $(jq '.latencyPercentiles.p99 * 1000 | . * 1000 | round / 1000' "$f") ms"
    total=$((total + all))
    failed=$((failed + all - ok))
done

read -r first_t first_rss first_fds < <(head -n1 "$WORK/samples")
read -r last_t last_rss last_fds < <(tail -n1 "$WORK/samples")
max_rss=$(awk '$2 > m {m = $2} END {print m}' "$WORK/samples")
max_fds=$(awk '$3 > m {m = $3} END {print m}' "$WORK/samples")
growth=$(awk -v a="$first_rss" -v b="$last_rss" 'BEGIN {printf "%.1f", (b - a) * 100 / a}')
echo
echo "requests: $total, failed: $failed"
echo "RSS: ${first_rss} KiB at ${first_t}s -> ${last_rss} KiB at ${last_t}s (growth ${growth}%, max ${max_rss} KiB)"
echo "open fds: ${first_fds} -> ${last_fds} (max ${max_fds})"
echo "reloads: $(grep -E '^pidone_(tls|config)_reloads_total' <<<"$metrics" | tr '\n' ' ')"
echo "shed: $(grep -E '^pidone_admission_shed_total' <<<"$metrics" || echo 'n/a')"

served=$(served_cert)
expected=$(file_cert)
echo "certificate served at the end: ${served#*=} (files: ${expected#*=})"
echo "log lines at warn or above: $(grep -c . "$WORK/pidone.log" || true)"
grep -m 5 . "$WORK/pidone.log" || true

metric() { awk -v m="$1" '$1 == m {print $2}' <<<"$metrics"; }
status=0
if [ "$served" != "$expected" ]; then
    echo "FAIL: the server does not present the rotated certificate" >&2
    status=1
fi
if [ "$(metric 'pidone_tls_reloads_total{result="ok"}')" != 1 ] ||
    [ -n "$(metric 'pidone_tls_reloads_total{result="error"}')" ]; then
    echo "FAIL: expected exactly one successful certificate reload and no error" >&2
    status=1
fi
if [ "$(metric 'pidone_config_reloads_total{result="ok"}')" != 1 ]; then
    echo "FAIL: expected exactly one configuration reload" >&2
    status=1
fi
if [ "$failed" -ne 0 ]; then
    echo "FAIL: $failed requests failed" >&2
    status=1
fi
# Connections are kept alive, so the fd count is flat under a steady load; a leak shows
# as growth.
if [ "$max_fds" -gt $((first_fds + 8)) ]; then
    echo "FAIL: open fds grew from $first_fds to $max_fds" >&2
    status=1
fi
if awk -v g="$growth" -v m="$MAX_RSS_GROWTH" 'BEGIN {exit !(g > m)}'; then
    echo "FAIL: RSS grew ${growth}% (limit ${MAX_RSS_GROWTH}%)" >&2
    status=1
fi
[ "$status" = 0 ] && echo "PASS"
exit "$status"
