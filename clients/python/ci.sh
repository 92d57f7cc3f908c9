#!/usr/bin/env bash
# CI for clients/python, examples/flask-backend and examples/node.
#
#   bash clients/python/ci.sh [pytest args...]
#
# Needs: python3 (>= 3.10) with venv, node + npm, and the token-validator binary
# already built (cargo build): $TOKEN_VALIDATOR_BIN, default
# <repo>/target/debug/token-validator. Talks to 127.0.0.1 only.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="$HERE/.venv"
PY="$VENV/bin/python"

# 1. venv with the pinned tools (grpcio, grpcio-tools, protobuf, flask, gunicorn, pytest, hatchling,
#    moto[server] and boto3 for the revocation tests against moto's Cognito, ...).
if [ ! -x "$PY" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
fi
timeout 900 "$PY" -m pip install --disable-pip-version-check -q -r "$HERE/requirements-dev.txt"

# 2. The package itself, built as a wheel and installed (not editable), so the
#    tests see what users get. Its build backend (hatchling) is pinned above.
timeout 600 "$PY" -m pip install --disable-pip-version-check -q \
    --no-build-isolation --no-deps --force-reinstall "$HERE"

# 3. The committed gRPC stubs must match proto/.
"$PY" "$HERE/scripts/generate_stubs.py" --check

# 4. The Node example's dependencies, from its lockfile.
(cd "$REPO/examples/node" && timeout 600 npm ci --no-audit --no-fund)

# 5. Tests against a real `token-validator dev` on loopback, and (tests/test_revocation_moto.py)
#    real `token-validator serve` processes in front of moto's Cognito server, also on loopback.
export TOKEN_VALIDATOR_BIN="${TOKEN_VALIDATOR_BIN:-$REPO/target/debug/token-validator}"
if [ ! -x "$TOKEN_VALIDATOR_BIN" ]; then
    echo "ci.sh: $TOKEN_VALIDATOR_BIN is missing: build it first (cargo build)" >&2
    exit 1
fi
export GRPC_VERBOSITY="${GRPC_VERBOSITY:-ERROR}"
cd "$HERE"
exec timeout 1800 "$PY" -m pytest -p no:cacheprovider "$@"
