#!/usr/bin/env bash
# Requests/s through a real nginx with and without `auth_request` to
# token-validator's HTTP forward-auth listener, in one run (issue 17's figure).
#
#   bash benches/gateway/nginx.sh     # ROUNDS=3 DURATION=10s CONNECTIONS=32 THREADS=1 WARMUP=2s
#   TOKEN_VALIDATOR_BIN=target/debug/token-validator ROUNDS=1 DURATION=3s bash benches/gateway/nginx.sh
#
# One nginx (its own temporary prefix, `worker_processes 1`) with two locations
# answering the same 43-byte 200 from nginx itself (`empty_gif`):
#   /open       no auth;
#   /protected  `auth_request` to token-validator's `/auth` first, with the
#               settings of examples/gateway/nginx/token-validator.conf
#               (upstream keepalive 16, proxy_http_version 1.1, no body, the
#               original method/URI headers, the same timeouts).
# The answer is nginx's own, so the difference between the two is the auth
# subrequest alone. It is produced in the content phase (`empty_gif`), not by
# `return 200`: `return` runs in the rewrite phase, before `auth_request`'s
# access phase, and would skip the check (the bad-token sanity check below
# would catch that).
#
# token-validator runs as `token-validator dev` (its own issuer, no AWS) with
# `gateway.http_listen` on; every request carries the same ID token, so after
# the warm-up /protected measures cache hits. Both locations get the same
# `Authorization: Bearer <id_token>` header and the same load settings; runs
# alternate open / protected for ROUNDS rounds.
#
# The machine this was written for has 2 cores, shared by the load generator,
# nginx and token-validator: the figures are what one box does as client,
# proxy and authorizer together, not any one part's ceiling.
#
# Installs what is missing (as root, via apt): nginx, and `wrk` as the load
# generator, or apache2-utils (`ab`) when no `wrk` package is available.
# LOADGEN=wrk|ab forces one. Everything listens on 127.0.0.1 and everything
# started here is stopped on exit.
#
# Per run: req/s, requests, non-2xx answers, socket errors, p50/p99 (the load
# generator's), "tv checks" (valid validations token-validator's /metrics
# counted during the run: at least the requests for /protected, 0 for /open)
# and the CPU per request of nginx (master + worker) and of token-validator
# (utime + stime from /proc, 10 ms ticks). KEEP_WORK=1 keeps the configs,
# logs and raw outputs (kept anyway when the script fails).
#
# Last line, machine-readable:
#   nginx-bench: open_rps=… protected_rps=… ratio=… (medians; ratio = protected/open) …
# Exit status 1 when a check failed (a non-2xx answer, socket errors, a sanity
# check), after printing the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

TOKEN_VALIDATOR_BIN=${TOKEN_VALIDATOR_BIN:-$ROOT/target/release/token-validator}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
# The example's `keepalive 16` (idle connections nginx keeps to token-validator).
UPSTREAM_KEEPALIVE=${UPSTREAM_KEEPALIVE:-16}
LOADGEN=${LOADGEN:-auto}
START_TIMEOUT_S=30
STOP_TIMEOUT_S=10

log() { printf '[nginx-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$ROUNDS'"
secs_of() { # 10s | 10 | 2m -> seconds
    case $1 in
        *m) echo $(( ${1%m} * 60 )) ;;
        *s) echo "${1%s}" ;;
        *) echo "$1" ;;
    esac
}
for d in "$DURATION" "$WARMUP"; do
    [[ $d =~ ^[0-9]+[sm]?$ ]] || die "DURATION/WARMUP must look like 10s, 10 or 1m, not '$d'"
done
DURATION_S=$(secs_of "$DURATION")
WARMUP_S=$(secs_of "$WARMUP")
[ "$DURATION_S" -gt 0 ] || die "DURATION must be > 0"
[ -x "$TOKEN_VALIDATOR_BIN" ] || die "no token-validator binary at $TOKEN_VALIDATOR_BIN (cargo build --release, or set TOKEN_VALIDATOR_BIN)"
command -v python3 >/dev/null || die "python3 is needed (JSON line, free port)"
command -v curl >/dev/null || die "curl is needed (sanity checks)"

# --- what to install ---------------------------------------------------------

APT_UPDATED=0
apt_install() {
    [ "$(id -u)" = 0 ] || die "$* missing and not root: install it (apt-get install $*)"
    command -v apt-get >/dev/null || die "$* missing and no apt-get"
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        timeout 300 apt-get update -qq >&2
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "$@" >&2
}
apt_candidate() { # the package's candidate version, empty when apt has none
    command -v apt-cache >/dev/null || return 0
    timeout 60 apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}

NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || { [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx; } || true
if [ -z "$NGINX" ]; then
    apt_install nginx
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
[ -x "$NGINX" ] || die "nginx not found after installing it"
"$NGINX" -V 2>&1 | grep -q -- '--with-http_auth_request_module' ||
    die "$NGINX has no auth_request module (Debian's nginx package has it)"
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')

if [ "$LOADGEN" = auto ]; then
    if command -v wrk >/dev/null; then
        LOADGEN=wrk
    elif [ -n "$(apt_candidate wrk)" ]; then
        log "apt-cache policy wrk: candidate $(apt_candidate wrk)"
        apt_install wrk
        LOADGEN=wrk
    else
        log "apt-cache policy wrk: no candidate; using apache2-utils (ab)"
        command -v ab >/dev/null || apt_install apache2-utils
        LOADGEN=ab
    fi
else
    case $LOADGEN in
        wrk) command -v wrk >/dev/null || apt_install wrk ;;
        ab) command -v ab >/dev/null || apt_install apache2-utils ;;
        *) die "LOADGEN must be auto, wrk or ab, not '$LOADGEN'" ;;
    esac
fi
command -v "$LOADGEN" >/dev/null || die "$LOADGEN not found after installing it"
case $LOADGEN in
    wrk)
        LOADGEN_VERSION=$(wrk -v 2>&1 | head -1 | awk '{print $2}' || true)
        LOADGEN_SETTINGS="wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency"
        ;;
    ab)
        LOADGEN_VERSION=$(ab -V 2>&1 | sed -n 's/.*Version \([^ ]*\).*/\1/p' | head -1 || true)
        # ab is single-threaded: THREADS does not apply. -k: keep-alive.
        LOADGEN_SETTINGS="ab -k -c $CONNECTIONS -t $DURATION_S"
        ;;
esac
log "load generator: $LOADGEN ${LOADGEN_VERSION:-} ($LOADGEN_SETTINGS)"
log "nginx: $NGINX_VERSION, worker_processes 1; cores: $(nproc) (shared by the load generator, nginx and token-validator)"

# --- processes ---------------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nginx-bench.XXXXXX")
TV_PID=""
NGINX_PID=""
KEEP_WORK=${KEEP_WORK:-0}

stop_pid() { # pid, signal, pgroup(0|1): signal it, wait a bounded time, then SIGKILL
    local pid=$1 sig=$2 group=$3 target
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    target=$pid
    [ "$group" = 1 ] && target=-$pid
    kill "-$sig" -- "$target" 2>/dev/null || true
    for _ in $(seq 1 $((STOP_TIMEOUT_S * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop within ${STOP_TIMEOUT_S}s: SIGKILL"
        kill -KILL -- "$target" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # nginx runs in its own process group (setsid): its worker goes with the master.
    stop_pid "$NGINX_PID" TERM 1
    stop_pid "$TV_PID" TERM 0
    if [ "$rc" != 0 ] || [ "$KEEP_WORK" = 1 ]; then
        log "logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tail_log() { [ -f "$1" ] && { log "--- $1 (last lines)"; tail -n 20 "$1" >&2; }; return 0; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
json_field() { python3 -c 'import json,sys; v=json.loads(sys.stdin.readline()).get(sys.argv[1]); print(v if v is not None else "")' "$1"; }

# token-validator dev with the forward-auth listener on.
cat >"$WORK/token-validator.yaml" <<'YAML'
# benches/gateway/nginx.sh: the forward-auth listener on a free port; the
# default gateway policy (any valid token of a configured pool).
gateway:
  http_listen: 127.0.0.1:0
YAML
log "starting $TOKEN_VALIDATOR_BIN dev"
RUST_LOG=${RUST_LOG:-warn} "$TOKEN_VALIDATOR_BIN" dev --config "$WORK/token-validator.yaml" --json \
    --listen 127.0.0.1:0 --issuer-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    </dev/null >"$WORK/token-validator.out" 2>"$WORK/token-validator.log" &
TV_PID=$!
INFO=""
for _ in $(seq 1 $((START_TIMEOUT_S * 10))); do
    if [ -s "$WORK/token-validator.out" ] && INFO=$(head -n 1 "$WORK/token-validator.out") && [[ $INFO == *'}' ]]; then
        break
    fi
    INFO=""
    kill -0 "$TV_PID" 2>/dev/null || { tail_log "$WORK/token-validator.log"; die "token-validator dev exited before printing its JSON line"; }
    sleep 0.1
done
[ -n "$INFO" ] || { tail_log "$WORK/token-validator.log"; die "token-validator dev printed no JSON line within ${START_TIMEOUT_S}s"; }
GATEWAY_URL=$(json_field gateway_url <<<"$INFO")
ID_TOKEN=$(json_field id_token <<<"$INFO")
METRICS_URL=$(json_field metrics_url <<<"$INFO")
[ -n "$GATEWAY_URL" ] || die "no gateway_url in token-validator's JSON line (gateway.http_listen not applied?): $INFO"
[ -n "$ID_TOKEN" ] || die "no id_token in token-validator's JSON line"
GATEWAY_ADDR=${GATEWAY_URL#http://}
GATEWAY_ADDR=${GATEWAY_ADDR%/}
log "token-validator: pid $TV_PID, forward-auth $GATEWAY_URL/auth"

# nginx: one worker, its own prefix.
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx/tmp" "$WORK/nginx/logs"
NGINX_USER=""
[ "$(id -u)" = 0 ] && NGINX_USER="user root root;"
cat >"$WORK/nginx/nginx.conf" <<NGINX
$NGINX_USER
pid nginx.pid;
error_log logs/error.log warn;
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;

    # As in examples/gateway/nginx/token-validator.conf.
    upstream token_validator {
        server $GATEWAY_ADDR;
        keepalive $UPSTREAM_KEEPALIVE;
    }

    server {
        listen 127.0.0.1:$NGINX_PORT;

        # Without auth: nginx's own answer.
        location = /open {
            empty_gif;
        }

        # The same answer after an auth_request subrequest.
        location = /protected {
            auth_request /_token_validator;
            auth_request_set \$tv_sub \$upstream_http_x_auth_sub;
            auth_request_set \$tv_username \$upstream_http_x_auth_username;
            auth_request_set \$tv_groups \$upstream_http_x_auth_groups;
            auth_request_set \$tv_scopes \$upstream_http_x_auth_scopes;
            auth_request_set \$tv_client_id \$upstream_http_x_auth_client_id;
            auth_request_set \$tv_token_use \$upstream_http_x_auth_token_use;
            # Shows the sanity check that the identity came back.
            add_header X-Auth-Sub \$tv_sub;
            empty_gif;
        }

        # The example's subrequest, unchanged.
        location = /_token_validator {
            internal;
            proxy_pass http://token_validator/auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method \$request_method;
            proxy_set_header X-Original-URI \$request_uri;
            proxy_set_header X-Forwarded-Method \$request_method;
            proxy_set_header X-Forwarded-Uri \$request_uri;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header Host \$host;
            proxy_connect_timeout 2s;
            proxy_send_timeout 5s;
            proxy_read_timeout 5s;
        }
    }
}
NGINX
"$NGINX" -t -q -p "$WORK/nginx" -e "$WORK/nginx/logs/error.log" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>"$WORK/nginx-t.log" ||
    { tail_log "$WORK/nginx-t.log"; die "nginx -t rejected the generated config ($WORK/nginx/nginx.conf)"; }
# Own process group (setsid; the script has no job control, so no fork and
# $! is the master), so that stopping it stops the worker too.
setsid "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/logs/error.log" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' \
    </dev/null >"$WORK/nginx/logs/stdout.log" 2>&1 &
NGINX_PID=$!
BASE=http://127.0.0.1:$NGINX_PORT
up=0
for _ in $(seq 1 $((START_TIMEOUT_S * 10))); do
    if curl -s -o /dev/null --max-time 2 "$BASE/open"; then up=1; break; fi
    kill -0 "$NGINX_PID" 2>/dev/null || { tail_log "$WORK/nginx/logs/error.log"; die "nginx exited at start"; }
    sleep 0.1
done
[ "$up" = 1 ] || { tail_log "$WORK/nginx/logs/error.log"; die "nginx did not answer on $BASE within ${START_TIMEOUT_S}s"; }
NGINX_WORKERS=$(ps -o pid= --ppid "$NGINX_PID" | xargs)
log "nginx: master $NGINX_PID, worker $NGINX_WORKERS, $BASE"

# --- sanity checks (curl) ----------------------------------------------------

FAILED=()
status_of() { # url, [token]: prints the HTTP status (000 when no answer)
    local args=(-s -o /dev/null -w '%{http_code}' --max-time 5)
    [ -n "${2:-}" ] && args+=(-H "Authorization: Bearer $2")
    curl "${args[@]}" "$1" || true
}
check() { # description, expected, got
    if [ "$2" = "$3" ]; then
        log "sanity: $1: $3"
    else
        log "sanity FAILED: $1: expected $2, got $3"
        FAILED+=("sanity: $1")
    fi
}
# The token with one character of its signature changed (a full RS256 check that fails).
sig=${ID_TOKEN##*.}
flip=A
[ "${sig:5:1}" = A ] && flip=B
BAD_TOKEN="${ID_TOKEN%.*}.${sig:0:5}${flip}${sig:6}"

check "/open with the token" 200 "$(status_of "$BASE/open" "$ID_TOKEN")"
check "/protected with the token" 200 "$(status_of "$BASE/protected" "$ID_TOKEN")"
sub=$(curl -s -o /dev/null -D - --max-time 5 -H "Authorization: Bearer $ID_TOKEN" "$BASE/protected" |
    awk -F': *' 'tolower($1) == "x-auth-sub" { sub(/\r$/, "", $2); print $2 }' || true)
check "/protected returns token-validator's X-Auth-Sub" nonempty "$([ -n "$sub" ] && echo nonempty || echo empty)"
check "/protected with a bad signature" 401 "$(status_of "$BASE/protected" "$BAD_TOKEN")"
check "/protected without a token" 401 "$(status_of "$BASE/protected")"
[ ${#FAILED[@]} = 0 ] || { tail_log "$WORK/nginx/logs/error.log"; tail_log "$WORK/token-validator.log"; die "sanity checks failed: ${FAILED[*]}"; }

# --- measuring -----------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # utime + stime of the given pids (ticks)
    local total=0 pid f
    for pid in "$@"; do
        # Fields after the ")" of the command name: state is $1, utime $12, stime $13.
        f=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        total=$(( total + $(awk '{print $12 + $13}' <<<"$f") ))
    done
    echo "$total"
}
valid_checks() { # valid validations token-validator counted so far (its /metrics)
    { curl -s --max-time 5 "$METRICS_URL" 2>/dev/null || true; } |
        awk '/^token_validator_validations_total\{/ && /result="valid"/ { n += $NF } END { printf "%d\n", n }'
}

# One load run; sets RPS REQUESTS NON2XX SOCKERR P50 P99.
run_load() { # url, duration (seconds), output file
    local url=$1 secs=$2 out=$3
    case $LOADGEN in
        wrk)
            timeout $((secs + 60)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" --latency \
                -H "Authorization: Bearer $ID_TOKEN" "$url" >"$out" 2>&1 ||
                { cat "$out" >&2; die "wrk failed against $url"; }
            RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
            REQUESTS=$(awk '/ requests in / { print $1 }' "$out")
            NON2XX=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
            # "Socket errors: connect 0, read 0, write 0, timeout 0", only when any.
            SOCKERR=$(awk '/Socket errors:/ { sub(/.*Socket errors:/, ""); gsub(/[^0-9]+/, " ");
                n = split($0, v, " "); for (i = 1; i <= n; i++) t += v[i] } END { print t + 0 }' "$out")
            P50=$(awk '$1 == "50%" { print $2 }' "$out")
            P99=$(awk '$1 == "99%" { print $2 }' "$out")
            ;;
        ab)
            timeout $((secs + 60)) ab -q -k -c "$CONNECTIONS" -t "$secs" -n 100000000 \
                -H "Authorization: Bearer $ID_TOKEN" "$url" >"$out" 2>&1 ||
                { cat "$out" >&2; die "ab failed against $url"; }
            RPS=$(awk '/^Requests per second:/ { print $4 }' "$out")
            REQUESTS=$(awk '/^Complete requests:/ { print $3 }' "$out")
            NON2XX=$(awk '/^Non-2xx responses:/ { print $3 }' "$out")
            SOCKERR=$(awk '/^Failed requests:/ { print $3 }' "$out")
            P50=$(awk '$1 == "50%" { print $2 "ms" }' "$out")
            P99=$(awk '$1 == "99%" { print $2 "ms" }' "$out")
            ;;
    esac
    NON2XX=${NON2XX:-0}
    SOCKERR=${SOCKERR:-0}
    [ -n "$RPS" ] && [ -n "$REQUESTS" ] || { cat "$out" >&2; die "could not read $LOADGEN's output for $url"; }
}

if [ "$WARMUP_S" -gt 0 ]; then
    log "warm-up: ${WARMUP_S}s on each location (not counted)"
    run_load "$BASE/open" "$WARMUP_S" "$WORK/warmup-open.txt"
    run_load "$BASE/protected" "$WARMUP_S" "$WORK/warmup-protected.txt"
fi

declare -a OPEN_RPS=() PROT_RPS=()
TOTAL_NON2XX=0
TOTAL_SOCKERR=0
printf '%-5s  %-9s  %10s  %9s  %6s  %7s  %8s  %8s  %10s  %10s  %10s\n' \
    round location req/s requests non2xx sockerr p50 p99 'tv checks' 'nginx µs/r' 'tv µs/r'
for round in $(seq 1 "$ROUNDS"); do
    for loc in open protected; do
        checks0=$(valid_checks)
        # shellcheck disable=SC2086 # a list of pids
        ng0=$(cpu_ticks "$NGINX_PID" $NGINX_WORKERS)
        tv0=$(cpu_ticks "$TV_PID")
        run_load "$BASE/$loc" "$DURATION_S" "$WORK/round$round-$loc.txt"
        # shellcheck disable=SC2086
        ng1=$(cpu_ticks "$NGINX_PID" $NGINX_WORKERS)
        tv1=$(cpu_ticks "$TV_PID")
        checks=$(( $(valid_checks) - checks0 ))
        ng_us=$(awk -v t=$((ng1 - ng0)) -v hz="$CLK_TCK" -v n="$REQUESTS" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')
        tv_us=$(awk -v t=$((tv1 - tv0)) -v hz="$CLK_TCK" -v n="$REQUESTS" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')
        printf '%-5s  %-9s  %10s  %9s  %6s  %7s  %8s  %8s  %10s  %10s  %10s\n' \
            "$round" "/$loc" "$RPS" "$REQUESTS" "$NON2XX" "$SOCKERR" "${P50:--}" "${P99:--}" "$checks" "$ng_us" "$tv_us"
        TOTAL_SOCKERR=$((TOTAL_SOCKERR + SOCKERR))
        if [ "$loc" = open ]; then
            OPEN_RPS+=("$RPS")
            [ "$checks" = 0 ] || FAILED+=("round $round: /open made $checks token checks (expected none)")
            [ "$NON2XX" = 0 ] || FAILED+=("round $round: /open had $NON2XX non-2xx answers")
        else
            PROT_RPS+=("$RPS")
            TOTAL_NON2XX=$((TOTAL_NON2XX + NON2XX))
            [ "$NON2XX" = 0 ] || FAILED+=("round $round: /protected had $NON2XX non-2xx answers")
            # Every answered request was checked (a few more may have been in
            # flight when the load generator stopped).
            [ "$checks" -ge "$REQUESTS" ] || FAILED+=("round $round: $REQUESTS /protected answers but only $checks valid checks")
        fi
        [ "$SOCKERR" = 0 ] || FAILED+=("round $round: /$loc had $SOCKERR socket errors / failed requests")
    done
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.2f\n", v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
OPEN_MED=$(median "${OPEN_RPS[@]}")
PROT_MED=$(median "${PROT_RPS[@]}")
RATIO=$(awk -v p="$PROT_MED" -v o="$OPEN_MED" 'BEGIN { printf "%.3f", (o > 0 ? p / o : 0) }')

echo
echo "load generator: $LOADGEN ${LOADGEN_VERSION:-} ($LOADGEN_SETTINGS, Authorization: Bearer <id_token> on both)"
echo "nginx: $NGINX_VERSION, worker_processes 1, upstream keepalive $UPSTREAM_KEEPALIVE; token-validator: $TOKEN_VALIDATOR_BIN; $(nproc) cores shared"
echo "/open      req/s: ${OPEN_RPS[*]}  median $OPEN_MED"
echo "/protected req/s: ${PROT_RPS[*]}  median $PROT_MED"
echo "protected / open: $RATIO"
if [ ${#FAILED[@]} -gt 0 ]; then
    for f in "${FAILED[@]}"; do log "check FAILED: $f"; done
fi
OK=true
[ ${#FAILED[@]} = 0 ] || OK=false
echo "nginx-bench: open_rps=$OPEN_MED protected_rps=$PROT_MED ratio=$RATIO rounds=$ROUNDS duration=${DURATION_S}s loadgen=$LOADGEN connections=$CONNECTIONS threads=$THREADS protected_non2xx=$TOTAL_NON2XX socket_errors=$TOTAL_SOCKERR ok=$OK"
[ "$OK" = true ]
