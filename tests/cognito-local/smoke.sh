#!/usr/bin/env bash
# Smoke test for the pinned cognito-local emulator.
#
# Usage: tests/cognito-local/smoke.sh PORT
#
# Starts cognito-local on 127.0.0.1:PORT in a fresh temp dir, creates a user
# pool, an app client, a user (permanent password) in group "admins", logs in
# with USER_PASSWORD_AUTH, calls GetUser, checks the JWKS, prints the tokens
# (stdout: KEY=VALUE lines) and always stops the emulator again.
# Needs: bash, curl, python3, node (>= 20). Talks to 127.0.0.1 only.
set -euo pipefail

PORT="${1:-}"
if [[ ! "$PORT" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 PORT" >&2
  exit 2
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
START_JS="$HERE/node_modules/cognito-local/lib/bin/start.js"
BASE="http://127.0.0.1:$PORT"
READY_TIMEOUT_S=20   # startup is ~1 s on a 2-core box; be generous
STOP_TIMEOUT_S=5

if [[ ! -f "$START_JS" ]]; then
  echo "cognito-local not installed; running npm ci" >&2
  npm ci --prefix "$HERE" --no-audit --no-fund >&2
fi

if curl -s -o /dev/null -m 1 "$BASE/health"; then
  echo "something already listens on $BASE; pick another port" >&2
  exit 1
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cognito-local.XXXXXX")"
PID=""

cleanup() {
  local rc=$?
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 $((STOP_TIMEOUT_S * 10))); do
      kill -0 "$PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$PID" 2>/dev/null && kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -f "$WORK/emulator.log" ]]; then
    echo "---- emulator log (tail) ----" >&2
    tail -n 40 "$WORK/emulator.log" >&2 || true
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Plain usernames (no email/phone-as-username) need this config.
mkdir -p "$WORK/.cognito"
printf '%s\n' '{"UserPoolDefaults":{"UsernameAttributes":[]}}' > "$WORK/.cognito/config.json"

# PORT/HOST env vars are read by cognito-local's server/config.js.
# HOST also becomes the issuer host: iss = http://$HOST:$PORT/<UserPoolId>.
(cd "$WORK" && PORT="$PORT" HOST=127.0.0.1 exec node "$START_JS") >"$WORK/emulator.log" 2>&1 &
PID=$!

t0=$(date +%s%N)
ready=0
for _ in $(seq 1 $((READY_TIMEOUT_S * 10))); do
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "emulator exited during startup" >&2
    exit 1
  fi
  if curl -s -o /dev/null -m 1 -f "$BASE/health"; then
    ready=1
    break
  fi
  sleep 0.1
done
if [[ $ready -ne 1 ]]; then
  echo "emulator not ready after ${READY_TIMEOUT_S}s" >&2
  exit 1
fi
echo "emulator ready on $BASE after $(( ($(date +%s%N) - t0) / 1000000 )) ms (pid $PID)" >&2

# call OP JSON -> prints response body; fails on non-200
call() {
  local op="$1" body="$2" out code
  out="$(curl -sS -m 10 -w $'\n%{http_code}' -X POST "$BASE/" \
    -H 'Content-Type: application/x-amz-json-1.1' \
    -H "X-Amz-Target: AWSCognitoIdentityProviderService.$op" \
    -d "$body")"
  code="${out##*$'\n'}"
  out="${out%$'\n'*}"
  if [[ "$code" != "200" ]]; then
    echo "$op failed: HTTP $code: $out" >&2
    return 1
  fi
  printf '%s' "$out"
}

# jget JSON PYEXPR  (PYEXPR indexes the parsed object `j`)
jget() { python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

USERNAME=alice
PASSWORD='Passw0rd!Test'

r="$(call CreateUserPool '{"PoolName":"token-validator-test"}')"
POOL_ID="$(jget "$r" 'j["UserPool"]["Id"]')"

r="$(call CreateUserPoolClient "{\"UserPoolId\":\"$POOL_ID\",\"ClientName\":\"token-validator-test\",\"ExplicitAuthFlows\":[\"ALLOW_USER_PASSWORD_AUTH\",\"ALLOW_REFRESH_TOKEN_AUTH\"]}")"
CLIENT_ID="$(jget "$r" 'j["UserPoolClient"]["ClientId"]')"

call AdminCreateUser "{\"UserPoolId\":\"$POOL_ID\",\"Username\":\"$USERNAME\",\"TemporaryPassword\":\"TempPassw0rd!\",\"MessageAction\":\"SUPPRESS\",\"UserAttributes\":[{\"Name\":\"email\",\"Value\":\"alice@example.com\"},{\"Name\":\"email_verified\",\"Value\":\"true\"}]}" >/dev/null
call AdminSetUserPassword "{\"UserPoolId\":\"$POOL_ID\",\"Username\":\"$USERNAME\",\"Password\":\"$PASSWORD\",\"Permanent\":true}" >/dev/null
call CreateGroup "{\"UserPoolId\":\"$POOL_ID\",\"GroupName\":\"admins\"}" >/dev/null
call AdminAddUserToGroup "{\"UserPoolId\":\"$POOL_ID\",\"Username\":\"$USERNAME\",\"GroupName\":\"admins\"}" >/dev/null

r="$(call InitiateAuth "{\"AuthFlow\":\"USER_PASSWORD_AUTH\",\"ClientId\":\"$CLIENT_ID\",\"AuthParameters\":{\"USERNAME\":\"$USERNAME\",\"PASSWORD\":\"$PASSWORD\"}}")"
ID_TOKEN="$(jget "$r" 'j["AuthenticationResult"]["IdToken"]')"
ACCESS_TOKEN="$(jget "$r" 'j["AuthenticationResult"]["AccessToken"]')"

r="$(call GetUser "{\"AccessToken\":\"$ACCESS_TOKEN\"}")"
[[ "$(jget "$r" 'j["Username"]')" == "$USERNAME" ]] || { echo "GetUser returned wrong user: $r" >&2; exit 1; }

ISSUER="$BASE/$POOL_ID"
JWKS="$(curl -sS -m 5 -f "$ISSUER/.well-known/jwks.json")"

# Decode tokens, sanity-check claims against the JWKS (human summary on stderr).
python3 - "$ID_TOKEN" "$ACCESS_TOKEN" "$JWKS" "$ISSUER" "$CLIENT_ID" <<'PY' >&2
import base64, json, sys
idt, at, jwks, iss, cid = sys.argv[1:]
def b64(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def dec(t):
    h, p, _ = t.split(".")
    return json.loads(b64(h)), json.loads(b64(p))
keys = json.loads(jwks)["keys"]
kids = {k["kid"] for k in keys}
for name, tok, use in (("IdToken", idt, "id"), ("AccessToken", at, "access")):
    h, p = dec(tok)
    print(f"{name} header: {json.dumps(h)}")
    print(f"{name} claims: {json.dumps(p)}")
    assert h["alg"] == "RS256" and h["kid"] in kids, "kid/alg mismatch with JWKS"
    assert p["iss"] == iss, f"iss {p['iss']} != {iss}"
    assert p["token_use"] == use
    assert p.get("aud" if use == "id" else "client_id") == cid
bits = int.from_bytes(b64(keys[0]["n"]), "big").bit_length()
print(f"JWKS: {len(keys)} key(s), kid={keys[0]['kid']} alg={keys[0]['alg']} use={keys[0]['use']} n={bits} bits")
PY

echo "ISSUER=$ISSUER"
echo "JWKS_URL=$ISSUER/.well-known/jwks.json"
echo "USER_POOL_ID=$POOL_ID"
echo "CLIENT_ID=$CLIENT_ID"
echo "ID_TOKEN=$ID_TOKEN"
echo "ACCESS_TOKEN=$ACCESS_TOKEN"
echo "smoke OK" >&2
