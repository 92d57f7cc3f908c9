#!/usr/bin/env python3
"""Benchmark peer: tokenvalidator.v1.TokenValidator in Python.

What a Flask/Python team would write: the standard ``grpc.server`` with a
thread pool, PyJWT (``jwt.decode`` with RS256 only, issuer, exp) and the
Cognito-specific checks done by hand (``token_use``, ``aud`` for ID tokens,
``client_id`` for access tokens), keys preloaded from a JWKS file with
``jwt.PyJWKSet``: no network calls.

CLI (shared with the Node peer):
  --port PORT          TCP port on 127.0.0.1 (0 = pick one)
  --jwks FILE          JWKS JSON file
  --user-pool-id ID    e.g. us-east-1_bench1; issuer https://cognito-idp.<region>.amazonaws.com/<ID>
  --client-id ID       the app client id (may be repeated)
  --threads N          handler thread pool size (default 4: 2 x the 2 cores; handlers hold the GIL)
  --processes N        N server processes sharing the port with SO_REUSEPORT (default 1)
  --proto FILE         defaults to <repo>/proto/tokenvalidator/v1/token_validator.proto
Prints "READY <port>" on stdout once serving; exits 0 on SIGTERM/SIGINT.

The gRPC stubs are generated at start-up from the .proto with grpcio-tools
into a temporary directory, so the peer always serves the current contract.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from concurrent import futures

DEFAULT_PROTO = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "proto", "tokenvalidator", "v1", "token_validator.proto")
)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--jwks", required=True)
    p.add_argument("--user-pool-id", required=True)
    p.add_argument("--client-id", action="append", required=True)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--proto", default=DEFAULT_PROTO)
    a = p.parse_args(argv)
    if not 0 <= a.port <= 65535:
        p.error("--port must be 0-65535")
    if a.threads < 1 or a.processes < 1:
        p.error("--threads and --processes must be >= 1")
    if a.processes > 1 and a.port == 0:
        p.error("--processes > 1 needs a fixed --port")
    return a


def generate_stubs(proto_file: str, out_dir: str):
    """Run protoc (from grpcio-tools) on the proto; return the two modules."""
    import importlib
    import importlib.resources

    from grpc_tools import protoc

    proto_root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(proto_file)), "..", ".."))
    rel = os.path.relpath(os.path.abspath(proto_file), proto_root)
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    rc = protoc.main(
        ["grpc_tools.protoc", f"-I{proto_root}", f"-I{well_known}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", rel]
    )
    if rc != 0:
        raise SystemExit(f"protoc failed ({rc}) on {proto_file}")
    sys.path.insert(0, out_dir)
    mod = rel[: -len(".proto")].replace(os.sep, ".")
    return importlib.import_module(mod + "_pb2"), importlib.import_module(mod + "_pb2_grpc")


def run_multi(args) -> int:
    """--processes N: re-run this script N times with SO_REUSEPORT on the same port."""
    argv = [sys.executable, os.path.abspath(__file__), "--port", str(args.port), "--jwks", args.jwks,
            "--user-pool-id", args.user_pool_id, "--threads", str(args.threads), "--proto", args.proto]
    for c in args.client_id:
        argv += ["--client-id", c]
    env = dict(os.environ, TV_PEER_REUSEPORT="1")
    children = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) for _ in range(args.processes)]
    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for ch in children:
        line = ch.stdout.readline()
        if not line.startswith("READY "):
            for c in children:
                c.kill()
            print("a worker process failed to start", file=sys.stderr)
            return 1
    print(f"READY {args.port}", flush=True)
    while not stop.is_set():
        if any(c.poll() is not None for c in children):
            print("a worker process exited; stopping", file=sys.stderr)
            break
        stop.wait(0.5)
    for c in children:
        if c.poll() is None:
            c.terminate()
    for c in children:
        try:
            c.wait(timeout=5)
        except subprocess.TimeoutExpired:
            c.kill()
    return 0 if stop.is_set() else 1


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.processes > 1:
        return run_multi(args)

    import grpc
    import jwt

    tmp = tempfile.TemporaryDirectory(prefix="tv-peer-stubs-")
    pb2, pb2_grpc = generate_stubs(args.proto, tmp.name)

    region = args.user_pool_id.split("_", 1)[0]
    issuer = f"https://cognito-idp.{region}.amazonaws.com/{args.user_pool_id}"
    client_ids = frozenset(args.client_id)
    with open(args.jwks, encoding="utf-8") as f:
        jwks = jwt.PyJWKSet.from_dict(json.load(f))

    R = pb2.Reason
    TOKEN_USE = {pb2.TOKEN_USE_ID: "id", pb2.TOKEN_USE_ACCESS: "access"}
    # Most specific first (all derive from InvalidTokenError / PyJWTError).
    REASONS = [
        (jwt.ExpiredSignatureError, R.REASON_EXPIRED),
        (jwt.ImmatureSignatureError, R.REASON_NOT_YET_VALID),
        (jwt.InvalidIssuerError, R.REASON_UNKNOWN_ISSUER),
        (jwt.InvalidAudienceError, R.REASON_WRONG_CLIENT),
        (jwt.InvalidAlgorithmError, R.REASON_UNSUPPORTED_ALGORITHM),
        (jwt.InvalidSignatureError, R.REASON_BAD_SIGNATURE),
        (jwt.InvalidKeyError, R.REASON_UNKNOWN_KEY),
    ]

    class Rejected(Exception):
        def __init__(self, reason, message):
            super().__init__(message)
            self.reason = reason

    def verify(token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise Rejected(R.REASON_MALFORMED, str(e))
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Rejected(R.REASON_UNKNOWN_KEY, "token header has no kid")
        try:
            signing_key = jwks[kid]
        except KeyError:
            raise Rejected(R.REASON_UNKNOWN_KEY, f"no key with kid {kid!r}")
        try:
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=["RS256"],
                issuer=issuer,
                options={"require": ["exp", "iss", "token_use"], "verify_aud": False},
            )
        except jwt.PyJWTError as e:
            for cls, reason in REASONS:
                if isinstance(e, cls):
                    raise Rejected(reason, str(e))
            raise Rejected(R.REASON_MALFORMED, str(e))  # DecodeError, MissingRequiredClaimError, ...
        token_use = claims.get("token_use")
        if token_use == "id":
            aud = claims.get("aud")
            ok = aud in client_ids if isinstance(aud, str) else isinstance(aud, list) and any(a in client_ids for a in aud)
        elif token_use == "access":
            ok = claims.get("client_id") in client_ids
        else:
            raise Rejected(R.REASON_WRONG_TOKEN_USE, f"token_use {token_use!r} is neither id nor access")
        if not ok:
            raise Rejected(R.REASON_WRONG_CLIENT, "token was issued for another app client")
        return claims

    def as_int(v):
        return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0

    def as_str(v):
        return v if isinstance(v, str) else ""

    def claims_message(c: dict):
        is_id = c.get("token_use") == "id"
        aud = c.get("aud")
        if isinstance(aud, list):
            aud = aud[0] if aud else ""
        groups = c.get("cognito:groups")
        scope = c.get("scope")
        return pb2.Claims(
            sub=as_str(c.get("sub")),
            issuer=as_str(c.get("iss")),
            token_use=as_str(c.get("token_use")),
            client_id=as_str(aud if is_id else c.get("client_id")),
            username=as_str(c.get("cognito:username") if is_id else c.get("username")),
            groups=[g for g in groups if isinstance(g, str)] if isinstance(groups, list) else [],
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=as_int(c.get("exp")),
            issued_at=as_int(c.get("iat")),
            auth_time=as_int(c.get("auth_time")),
            jti=as_str(c.get("jti")),
            origin_jti=as_str(c.get("origin_jti")),
            email=as_str(c.get("email")),
            json=json.dumps(c, separators=(",", ":")),
        )

    class TokenValidator(pb2_grpc.TokenValidatorServicer):
        def ValidateToken(self, request, context):
            token = request.token
            if token[:7].lower() == "bearer ":
                token = token[7:].strip()
            if not token:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "token is empty")
            try:
                claims = verify(token)
                want = TOKEN_USE.get(request.expected_token_use)
                if want is not None and claims.get("token_use") != want:
                    raise Rejected(R.REASON_WRONG_TOKEN_USE, f"expected a {want} token")
                if request.required_scopes:
                    have = set(claims.get("scope", "").split()) if isinstance(claims.get("scope"), str) else set()
                    missing = [s for s in request.required_scopes if s not in have]
                    if missing:
                        raise Rejected(R.REASON_MISSING_SCOPE, "missing scope(s): " + ", ".join(missing))
                if request.required_groups:
                    groups = claims.get("cognito:groups")
                    groups = set(groups) if isinstance(groups, list) else set()
                    if not any(g in groups for g in request.required_groups):
                        raise Rejected(R.REASON_MISSING_GROUP, "none of the required groups")
            except Rejected as r:
                return pb2.ValidateTokenResponse(valid=False, reason=r.reason, message=str(r))
            return pb2.ValidateTokenResponse(valid=True, reason=R.REASON_UNSPECIFIED, claims=claims_message(claims))

        def GetUserInfo(self, request, context):
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "GetUserInfo is not implemented by this benchmark peer")

    options = [("grpc.so_reuseport", 1 if os.environ.get("TV_PEER_REUSEPORT") == "1" else 0)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.threads), options=options)
    pb2_grpc.add_TokenValidatorServicer_to_server(TokenValidator(), server)
    try:
        port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    except RuntimeError:
        port = 0
    if port == 0:
        print(f"could not bind 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    server.start()

    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"READY {port}", flush=True)
    while not stop.wait(1.0):
        pass
    server.stop(grace=2).wait(5)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
