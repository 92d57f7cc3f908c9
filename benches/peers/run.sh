#!/usr/bin/env bash
# The peers comparison, in one run on this machine: the same proto, the same
# tokens and the same load generator against
#   1. Node.js @grpc/grpc-js + aws-jwt-verify (keys preloaded, no network),
#   2. Python grpcio + PyJWT (what a Flask team would write),
#   3. token-validator with the verified-token cache off and on,
#   4. a bare tonic server that checks nothing (the ceiling), as tonic ships
#      and again with token-validator's write coalescing (grpc::Coalesced).
#   5. the naive reference: tonic + jsonwebtoken, RS256 and the key parsed on
#      every call (benches/naive_server.rs), what a full check is measured against.
# Two workloads: "distinct" (every request a different token from a pool of
# --tokens, i.e. a full check each time where there is no cache) and
# "repeated" (one token over and over: cache hits where there is a cache).
# Prints one table of requests/s and p99 with ratios to token-validator.
#
#   bash benches/peers/run.sh                 # DURATION=10s CONCURRENCY=256 CONNECTIONS=8 WORKERS=2
#
# Everything listens on 127.0.0.1 and is stopped at the end (or on error).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONCURRENCY=${CONCURRENCY:-256}
CONNECTIONS=${CONNECTIONS:-8}
WORKERS=${WORKERS:-2}
TOKENS=${TOKENS:-2000}
POOL_ID=us-east-1_bench1
CLIENT_ID=benchclient0000000000000001
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '[peers] %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

log "installing the peers' packages"
bash benches/peers/setup.sh >&2
log "building release binaries"
cargo build --release --locked --bins --benches >&2 2>&1 | tail -1 >&2
LOAD() { cargo bench --quiet --locked --bench load -- "$@"; }

LOAD --prepare "$WORK" --tokens "$TOKENS" --issuer "https://cognito-idp.us-east-1.amazonaws.com/$POOL_ID" --client-id "$CLIENT_ID" >&2
JWKS_PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$WORK" "$JWKS_PORT" >/dev/null 2>&1 &
PIDS+=($!)

# Waits for "READY <port>" on a process's stdout file.
wait_ready_line() {
    local file=$1
    for _ in $(seq 1 300); do
        grep -q '^READY' "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    log "not ready: $(cat "$file" 2>/dev/null)"; return 1
}

start_ours() { # $1 = true|false (cache)
    local port metrics
    port=$(free_port); metrics=$(free_port)
    cat > "$WORK/config.yaml" <<YAML
listen: 127.0.0.1:$port
pools:
  - name: bench
    region: us-east-1
    user_pool_id: $POOL_ID
    client_ids: [$CLIENT_ID]
    jwks_url: http://127.0.0.1:$JWKS_PORT/jwks.json
userinfo:
  cognito_lookup: false
token_cache:
  enabled: $1
metrics:
  listen: 127.0.0.1:$metrics
YAML
    RUST_LOG=warn target/release/token-validator serve --config "$WORK/config.yaml" 2>"$WORK/ours.log" &
    PIDS+=($!); SERVER_PID=$!
    for _ in $(seq 1 300); do
        target/release/token-validator health --addr "http://127.0.0.1:$port" >/dev/null 2>&1 && break
        sleep 0.1
    done
    ADDR="http://127.0.0.1:$port"
}

start_peer() { # $1 = node|python|naive|echo|echo-coalesced
    local port out=$WORK/$1.out
    port=$(free_port)
    case $1 in
        node) node benches/peers/node/server.js --port "$port" --jwks "$WORK/jwks.json" --user-pool-id "$POOL_ID" --client-id "$CLIENT_ID" --workers "$WORKERS" >"$out" 2>&1 & ;;
        python) benches/peers/python/.venv/bin/python benches/peers/python/server.py --port "$port" --jwks "$WORK/jwks.json" --user-pool-id "$POOL_ID" --client-id "$CLIENT_ID" --processes "$WORKERS" >"$out" 2>&1 & ;;
        echo) cargo bench --quiet --locked --bench echo_server -- --port "$port" >"$out" 2>&1 & ;;
        naive) cargo bench --quiet --locked --bench naive_server -- --port "$port" --jwks "$WORK/jwks.json" \
                   --issuer "https://cognito-idp.us-east-1.amazonaws.com/$POOL_ID" --client-id "$CLIENT_ID" >"$out" 2>&1 & ;;
        echo-coalesced) cargo bench --quiet --locked --bench echo_server -- --port "$port" --coalesced >"$out" 2>&1 & ;;
    esac
    PIDS+=($!); SERVER_PID=$!
    wait_ready_line "$out"
    ADDR="http://127.0.0.1:$port"
}

stop_server() {
    pkill -TERM -P "$SERVER_PID" 2>/dev/null || true
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    # Cluster/multiprocess peers: make sure every child left the port.
    sleep 0.5
}

measure() { # $1 = label, $2 = workload
    local args=()
    [ "$2" = distinct ] && args+=(--distinct 1)
    log "measuring $1 / $2 for $DURATION"
    LOAD --addr "$ADDR" --tokens-file "$WORK/tokens.txt" --duration "$DURATION" --warmup "$WARMUP" \
        --connections "$CONNECTIONS" --concurrency "$CONCURRENCY" --label "$1|$2" --json \
        --server-pid "$SERVER_PID" "${args[@]}" >>"$WORK/results.jsonl" || log "$1 / $2 reported errors"
}

for target in ours-cache-off ours-cache-on node python naive echo echo-coalesced; do
    case $target in
        ours-cache-off) start_ours false ;;
        ours-cache-on) start_ours true ;;
        *) start_peer "$target" ;;
    esac
    measure "$target" distinct
    measure "$target" repeated
    stop_server
done

python3 - "$WORK/results.jsonl" "$DURATION" "$CONCURRENCY" "$CONNECTIONS" "$WORKERS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {tuple(r["label"].split("|")): r for r in rows}
names = {"ours-cache-off": "token-validator, cache off", "ours-cache-on": "token-validator, cache on",
         "node": "Node grpc-js + aws-jwt-verify",
         "naive": "naive tonic + jsonwebtoken, key parsed every call", "python": "Python grpcio + PyJWT", "echo": "bare tonic, no checks (ceiling)",
         "echo-coalesced": "bare tonic + our write coalescing"}
base = {"distinct": "ours-cache-off", "repeated": "ours-cache-on"}
print(f"duration {sys.argv[2]}, concurrency {sys.argv[3]}, connections {sys.argv[4]}, peer workers {sys.argv[5]}; client and servers share this machine")
print()
print("| workload | server | req/s | p99 ms | errors | server CPU µs/call | token-validator ÷ server |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for workload in ("distinct", "repeated"):
    ref = by.get((base[workload], workload))
    for target in ("ours-cache-off", "ours-cache-on", "node", "python", "echo", "echo-coalesced"):
        r = by.get((target, workload))
        if not r:
            continue
        errors = sum(r["errors"].values())
        ratio = ref["requests_per_sec"] / r["requests_per_sec"] if ref and r["requests_per_sec"] else float("nan")
        cpu = r.get("server_cpu_us_per_call")
        cpu = f"{cpu:.1f}" if cpu is not None else "-"
        print(f"| {workload} | {names[target]} | {r['requests_per_sec']:.0f} | {r['latency_ms']['p99']:.2f} | {errors} | {cpu} | {ratio:.2f}× |")
PY
