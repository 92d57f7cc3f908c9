#!/usr/bin/env python3
"""Smoke test of the benchmark peers (benches/peers/{node,python}).

Run in the peers' venv after setup.sh:
    bash benches/peers/setup.sh
    benches/peers/python/.venv/bin/python benches/peers/smoke.py [--peer node|python ...] [--no-multi]

Makes an RSA-2048 key, writes a JWKS file, mints Cognito-shaped tokens (issuer
https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench1), starts each peer
on 127.0.0.1 (port 0, read back from its "READY <port>" line), calls
ValidateToken / GetUserInfo over grpcio, checks the answers, and stops the peer
with SIGTERM (it must exit 0). Then, unless --no-multi, the same with two
server processes sharing one port (node --workers 2, python --processes 2).
Every wait is bounded. Ends with "N passed, N failed"; exit status 1 on failure.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
PROTO = os.path.join(REPO, "proto", "tokenvalidator", "v1", "token_validator.proto")
POOL = "us-east-1_bench1"
ISSUER = f"https://cognito-idp.us-east-1.amazonaws.com/{POOL}"
CLIENT = "benchclient0123456789abcdef"
START_TIMEOUT = 60.0
RPC_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_stubs(tmpdir: str):
    spec = importlib.util.spec_from_file_location("peer_server", os.path.join(HERE, "python", "server.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.generate_stubs(PROTO, tmpdir)


def make_keys_and_tokens(tmpdir: str):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = "bench-kid-1"
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    jwks_path = os.path.join(tmpdir, "jwks.json")
    with open(jwks_path, "w", encoding="utf-8") as f:
        json.dump({"keys": [jwk]}, f)

    now = int(time.time())
    sub = str(uuid.uuid4())

    def sign(claims, signing_key=key, headers=None, alg="RS256"):
        return jwt.encode(claims, signing_key, algorithm=alg, headers=headers if headers is not None else {"kid": kid})

    access = {
        "sub": sub, "iss": ISSUER, "client_id": CLIENT, "token_use": "access",
        "scope": "openid profile bench/read", "auth_time": now - 60, "iat": now - 60, "exp": now + 3600,
        "jti": str(uuid.uuid4()), "origin_jti": str(uuid.uuid4()), "username": "alice",
        "cognito:groups": ["admins", "users"], "event_id": str(uuid.uuid4()), "version": 2,
    }
    id_claims = {
        "sub": sub, "iss": ISSUER, "aud": CLIENT, "token_use": "id", "cognito:username": "alice",
        "email": "alice@example.com", "email_verified": True, "auth_time": now - 60, "iat": now - 60,
        "exp": now + 3600, "jti": str(uuid.uuid4()), "origin_jti": str(uuid.uuid4()),
        "custom:tier": "gold",
    }
    tokens = {
        "access": sign(access),
        "id": sign(id_claims),
        "expired": sign(dict(access, iat=now - 7200, auth_time=now - 7200, exp=now - 3600)),
        "wrong_client_access": sign(dict(access, client_id="someoneelse")),
        "wrong_client_id": sign(dict(id_claims, aud="someoneelse")),
        "unknown_issuer": sign(dict(access, iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other")),
        "unknown_kid": sign(access, headers={"kid": "no-such-kid"}),
        "other_key": sign(access, signing_key=other),  # right kid, wrong key
        "hs256": sign(access, signing_key="secret-secret-secret-secret-secret!", alg="HS256"),
        "bad_token_use": sign(dict(access, token_use="refresh")),
        "malformed": "not-a-jwt",
        "garbage_segments": "abc.def.ghi",
    }
    # Tampered: change one claim, keep the original signature.
    h, p, s = tokens["access"].split(".")
    tokens["tampered"] = ".".join([h, b64url(json.dumps(dict(access, username="mallory")).encode()), s])
    return jwks_path, tokens, access, id_claims


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Peer:
    def __init__(self, name: str, argv: list[str], log_path: str):
        self.name = name
        self.log = open(log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, cwd=REPO)
        self.port = self._wait_ready()

    def _wait_ready(self) -> int:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT
        buf = b""
        try:
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{self.name}: no READY line within {START_TIMEOUT:.0f}s")
                if not sel.select(timeout=left):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"{self.name}: exited before READY (rc={self.proc.wait(5)}), see {self.log.name}")
                buf += chunk
        finally:
            sel.close()
        line = buf.split(b"\n", 1)[0].decode()
        if not line.startswith("READY "):
            raise RuntimeError(f"{self.name}: unexpected first line {line!r}")
        return int(line.split()[1])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self.log.close()
                return -9
        self.log.close()
        return self.proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", action="append", choices=["node", "python"])
    ap.add_argument("--no-multi", action="store_true", help="skip the two-process runs")
    args = ap.parse_args()
    peers = args.peer or ["node", "python"]

    tmp = tempfile.TemporaryDirectory(prefix="tv-peers-smoke-")
    pb2, pb2_grpc = load_stubs(os.path.join(tmp.name))
    jwks_path, tokens, access, id_claims = make_keys_and_tokens(tmp.name)
    R = pb2.Reason
    common = ["--jwks", jwks_path, "--user-pool-id", POOL, "--client-id", CLIENT]

    def argv_for(peer: str, port: int, multi: bool) -> list[str]:
        if peer == "node":
            return ["node", os.path.join(HERE, "node", "server.js"), "--port", str(port), *common] + (["--workers", "2"] if multi else [])
        return [sys.executable, os.path.join(HERE, "python", "server.py"), "--port", str(port), *common] + (["--processes", "2"] if multi else [])

    passed = failed = 0

    def check(label: str, cond: bool, detail: str = ""):
        nonlocal passed, failed
        if cond:
            passed += 1
        else:
            failed += 1
            print(f"  FAIL {label} {detail}")

    # (name, request kwargs, expected valid, expected reason)
    cases = [
        ("access", dict(token=tokens["access"]), True, R.REASON_UNSPECIFIED),
        ("id", dict(token=tokens["id"]), True, R.REASON_UNSPECIFIED),
        ("bearer prefix", dict(token="Bearer " + tokens["access"]), True, R.REASON_UNSPECIFIED),
        ("expected access", dict(token=tokens["access"], expected_token_use=pb2.TOKEN_USE_ACCESS), True, R.REASON_UNSPECIFIED),
        ("required scope+group ok", dict(token=tokens["access"], required_scopes=["openid", "bench/read"], required_groups=["nobody", "admins"]), True, R.REASON_UNSPECIFIED),
        ("expired", dict(token=tokens["expired"]), False, R.REASON_EXPIRED),
        ("tampered", dict(token=tokens["tampered"]), False, R.REASON_BAD_SIGNATURE),
        ("other key, same kid", dict(token=tokens["other_key"]), False, R.REASON_BAD_SIGNATURE),
        ("unknown kid", dict(token=tokens["unknown_kid"]), False, R.REASON_UNKNOWN_KEY),
        ("unknown issuer", dict(token=tokens["unknown_issuer"]), False, R.REASON_UNKNOWN_ISSUER),
        ("wrong client (access)", dict(token=tokens["wrong_client_access"]), False, R.REASON_WRONG_CLIENT),
        ("wrong client (id)", dict(token=tokens["wrong_client_id"]), False, R.REASON_WRONG_CLIENT),
        ("HS256", dict(token=tokens["hs256"]), False, R.REASON_UNSUPPORTED_ALGORITHM),
        ("token_use refresh", dict(token=tokens["bad_token_use"]), False, R.REASON_WRONG_TOKEN_USE),
        ("expected id, got access", dict(token=tokens["access"], expected_token_use=pb2.TOKEN_USE_ID), False, R.REASON_WRONG_TOKEN_USE),
        ("missing scope", dict(token=tokens["access"], required_scopes=["openid", "bench/write"]), False, R.REASON_MISSING_SCOPE),
        ("missing group", dict(token=tokens["access"], required_groups=["root"]), False, R.REASON_MISSING_GROUP),
        ("malformed", dict(token=tokens["malformed"]), False, R.REASON_MALFORMED),
        ("garbage segments", dict(token=tokens["garbage_segments"]), False, R.REASON_MALFORMED),
    ]

    runs = [(p, False) for p in peers] + ([] if args.no_multi else [(p, True) for p in peers])
    for peer, multi in runs:
        label = f"{peer}{' x2' if multi else ''}"
        print(f"== {label}")
        t0 = time.monotonic()
        try:
            srv = Peer(label, argv_for(peer, free_port() if multi else 0, multi), os.path.join(tmp.name, f"{peer}{'-multi' if multi else ''}.log"))
        except RuntimeError as e:
            check(f"{label} start", False, str(e))
            continue
        print(f"  READY on 127.0.0.1:{srv.port} after {time.monotonic() - t0:.2f}s")
        try:
            with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
                grpc.channel_ready_future(ch).result(timeout=RPC_TIMEOUT)
                stub = pb2_grpc.TokenValidatorStub(ch)
                for name, req, want_valid, want_reason in cases:
                    try:
                        resp = stub.ValidateToken(pb2.ValidateTokenRequest(**req), timeout=RPC_TIMEOUT)
                    except grpc.RpcError as e:
                        check(f"{label}/{name}", False, f"RPC error {e.code()}: {e.details()}")
                        continue
                    ok = resp.valid == want_valid and resp.reason == want_reason
                    check(f"{label}/{name}", ok, f"got valid={resp.valid} reason={R.Name(resp.reason)} message={resp.message!r}; "
                                                 f"want valid={want_valid} reason={R.Name(want_reason)}")
                    if not ok:
                        continue
                    if want_valid:
                        c = resp.claims
                        src = id_claims if c.token_use == "id" else access
                        check(f"{label}/{name} claims", (
                            c.sub == src["sub"] and c.issuer == ISSUER and c.client_id == CLIENT and c.username == "alice"
                            and c.expires_at == src["exp"] and c.issued_at == src["iat"] and c.auth_time == src["auth_time"]
                            and c.jti == src["jti"] and c.origin_jti == src["origin_jti"]
                            and list(c.groups) == src.get("cognito:groups", [])
                            and list(c.scopes) == (src["scope"].split() if "scope" in src else [])
                            and c.email == src.get("email", "") and json.loads(c.json) == src
                        ), str(c))
                    elif resp.HasField("claims"):
                        check(f"{label}/{name} no claims when invalid", False, str(resp.claims))
                # gRPC errors
                for name, call, want_code in [
                    ("empty token", lambda: stub.ValidateToken(pb2.ValidateTokenRequest(token=""), timeout=RPC_TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT),
                    ("GetUserInfo", lambda: stub.GetUserInfo(pb2.GetUserInfoRequest(token=tokens["id"]), timeout=RPC_TIMEOUT), grpc.StatusCode.UNIMPLEMENTED),
                ]:
                    try:
                        call()
                        check(f"{label}/{name}", False, "no error")
                    except grpc.RpcError as e:
                        check(f"{label}/{name}", e.code() == want_code, f"got {e.code()}")
                if multi:
                    # Several fresh connections: both processes must serve (and none may fail).
                    ok = 0
                    for _ in range(8):
                        with grpc.insecure_channel(f"127.0.0.1:{srv.port}", options=[("grpc.use_local_subchannel_pool", 1)]) as ch2:
                            r = pb2_grpc.TokenValidatorStub(ch2).ValidateToken(pb2.ValidateTokenRequest(token=tokens["id"]), timeout=RPC_TIMEOUT)
                            ok += r.valid
                    check(f"{label}/8 fresh connections", ok == 8, f"{ok}/8 valid")
        finally:
            rc = srv.stop()
            check(f"{label} exits 0 on SIGTERM", rc == 0, f"rc={rc}, log {srv.log.name}")
            if failed:
                with open(srv.log.name, encoding="utf-8", errors="replace") as f:
                    tail = f.read()[-2000:]
                if tail.strip():
                    print(f"  --- {label} stderr (tail) ---\n{tail}")
        print(f"  done: {passed} passed, {failed} failed so far")

    tmp.cleanup()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
