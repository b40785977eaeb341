# Sourced by the scripts in benches/ that load a server: what they need to run one as the
# apiserver reaches it. Expects NAME (the service name) and WORK (a scratch directory, which
# scratch_for_one_server makes).

# A scratch directory in WORK, removed at exit with the server whose pid is in SERVER, if
# any: for the scripts that run one server at a time.
scratch_for_one_server() {
    WORK=$(mktemp -d)
    SERVER=
    trap stop_server_and_scratch EXIT
}
stop_server_and_scratch() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    rm -rf "$WORK"
}

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
