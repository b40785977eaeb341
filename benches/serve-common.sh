# Sourced by benches/load.sh and benches/callgrind.sh: what both need to run `pidone serve`
# as the apiserver reaches it. Expects WORK (a scratch directory) and NAME (the service name).

# A CA and a serving certificate for the service name, as cert-manager would make them, and
# a config in enforce mode.
make_serving_files() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj "/CN=bench CA" -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=pidone" \
        -keyout "$WORK/tls.key" -out "$WORK/tls.csr" 2>/dev/null
    printf 'subjectAltName=DNS:%s\n' "$NAME" >"$WORK/san.ext"
    openssl x509 -req -in "$WORK/tls.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" \
        -CAcreateserial -days 1 -extfile "$WORK/san.ext" -out "$WORK/tls.crt" 2>/dev/null
    printf 'mode: enforce\n' >"$WORK/config.yaml"
}

# Waits until 127.0.0.1:$1 accepts connections, for at most $2 tenths of a second (100).
wait_port() {
    for _ in $(seq "${2:-100}"); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 did not open" >&2
    exit 1
}
