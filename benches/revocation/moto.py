"""Issue 16's figure: a cold revocation check costs one Cognito round trip (against moto).

    clients/python/.venv/bin/python benches/revocation/moto.py     # the venv clients/python/ci.sh builds

Starts moto's Cognito server and a release `token-validator serve` (pool on moto, `revocation.check:
on_request`, token cache on) on 127.0.0.1, signs in USERS users (default 200) and measures sequential
ValidateToken latency (one call in flight) per token kind: `offline` (first sight of a token, no
check), `cold check` (first sight of another token, check_revocation=True: the full check plus one
GetUser (access) / AdminGetUser (ID) call to moto) and `warm check` (the cold-check tokens again:
cached answers); offline and cold-check calls alternate, so drift on a shared machine hits both.
For comparison, moto's own answer time: boto3 get_user / admin_get_user and the same call as a bare
HTTP POST on a kept-alive connection. Env: USERS, TOKEN_VALIDATOR_BIN (default target/release).
Prints a markdown table and a final `RESULT {json}` line; every process is stopped (bounded waits).
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("TOKEN_VALIDATOR_BIN", str(REPO / "target" / "release" / "token-validator"))
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
sys.path.insert(0, str(REPO / "clients" / "python" / "tests"))  # motoserver.py, serveproc.py

import grpc  # noqa: E402
import motoserver  # noqa: E402
import serveproc  # noqa: E402
from token_validator_client._proto.tokenvalidator.v1 import token_validator_pb2 as pb  # noqa: E402
from token_validator_client._proto.tokenvalidator.v1 import token_validator_pb2_grpc as pb_grpc  # noqa: E402

USERS = int(os.environ.get("USERS", "200"))
LOOKUPS = "token_validator_revocation_lookups_total"
KINDS = {"access": ("access_token", pb.TOKEN_USE_ACCESS, "get_user"), "id": ("id_token", pb.TOKEN_USE_ID, "admin_get_user")}


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]  # nearest rank


def timed(call) -> float:
    t = time.perf_counter()
    call()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    moto = serve = None
    ok = False
    try:
        moto = motoserver.start()
        pool = motoserver.Pool.create(moto, "bench")
        idp = moto.cognito()
        names = [pool.new_user("bench") for _ in range(USERS + 1)]  # the last one warms things up
        signins = [pool.sign_in(n) for n in names]
        half = USERS // 2
        sets = {"offline": signins[:half], "check": signins[half : 2 * half]}
        serve = serveproc.start({
            "pools": [pool.config("bench", check="on_request", max_lookups_per_sec=1000, cache_ttl_secs=300)],
            "userinfo": {"cognito_endpoint": f"{moto.url}/"},
            "token_cache": {"enabled": True},
        })
        channel = grpc.insecure_channel(serve.grpc_addr)
        stub = pb_grpc.TokenValidatorStub(channel)

        def validate(token: str, use: int, check: bool) -> None:
            r = stub.ValidateToken(pb.ValidateTokenRequest(token=token, expected_token_use=use, check_revocation=check), timeout=10)
            if not r.valid:
                raise SystemExit(f"token not VALID: {pb.Reason.Name(r.reason)} {r.message}")

        for key, use, _ in KINDS.values():  # warm-up: channel, JWKS, both Cognito clients
            for check in (False, True, True):
                validate(signins[-1][key], use, check)

        ms: dict[str, list[float]] = {}
        lookups: dict[str, int] = {}
        for passname in ("cold", "warm"):
            before = {k: serve.metric(LOOKUPS, kind=c) for k, (_, _, c) in KINDS.items()}
            for i in range(half):
                for kind, (key, use, _) in KINDS.items():
                    if passname == "cold":
                        tok = sets["offline"][i][key]
                        ms.setdefault(f"{kind} offline", []).append(timed(lambda: validate(tok, use, False)))
                    tok = sets["check"][i][key]
                    ms.setdefault(f"{kind} {passname} check", []).append(timed(lambda: validate(tok, use, True)))
            for k, (_, _, c) in KINDS.items():
                lookups[f"{k} {passname} check"] = int(serve.metric(LOOKUPS, kind=c) - before[k])

        # moto's own answer time for the same calls: boto3, and a bare POST (no signing, no botocore).
        conn = http.client.HTTPConnection("127.0.0.1", moto.port, timeout=10)

        def raw(action: str, body: dict) -> None:
            conn.request("POST", "/", json.dumps(body), {"Content-Type": "application/x-amz-json-1.1",
                                                         "X-Amz-Target": f"AWSCognitoIdentityProviderService.{action}"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"moto {action}: HTTP {resp.status}")

        moto_calls = {
            "boto3 get_user": lambda s: idp.get_user(AccessToken=s["access_token"]),
            "boto3 admin_get_user": lambda s: idp.admin_get_user(UserPoolId=pool.id, Username=s["username"]),
            "HTTP GetUser": lambda s: raw("GetUser", {"AccessToken": s["access_token"]}),
            "HTTP AdminGetUser": lambda s: raw("AdminGetUser", {"UserPoolId": pool.id, "Username": s["username"]}),
        }
        for s, n in zip(signins, names):
            s["username"] = n
        for name, call in moto_calls.items():
            for _ in range(3):
                call(signins[-1])
            ms[f"moto {name}"] = [timed(lambda: call(s)) for s in sets["check"]]
        conn.close()
        channel.close()
        ok = True
    finally:
        for proc in (serve, moto):
            if proc is not None:
                code = proc.stop()
                if ok:
                    proc.remove_log()
                else:
                    print(f"{type(proc).__name__} exited {code}; log kept at "
                          f"{getattr(proc, 'stderr_path', None) or proc.log_path}", file=sys.stderr)

    stats = {k: {"n": len(v), "p50": pct(v, 50), "p90": pct(v, 90), "p99": pct(v, 99)} for k, v in ms.items()}
    print(f"\nSequential ValidateToken against moto ({USERS} users: {half} tokens per case and kind; "
          f"{os.cpu_count()} CPUs; {os.environ['TOKEN_VALIDATOR_BIN']})\n")
    print("| case | n | Cognito calls | p50 ms | p90 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|")
    for k, s in stats.items():
        calls = lookups.get(k, "–")
        print(f"| {k} | {s['n']} | {calls} | {s['p50']:.2f} | {s['p90']:.2f} | {s['p99']:.2f} |")
    diff = {k: stats[f"{k} cold check"]["p50"] - stats[f"{k} offline"]["p50"] for k in KINDS}
    moto_rt = {"access": ("boto3 get_user", "HTTP GetUser"), "id": ("boto3 admin_get_user", "HTTP AdminGetUser")}
    print()
    for k in KINDS:
        b, h = (stats[f"moto {m}"]["p50"] for m in moto_rt[k])
        print(f"- {k}: cold check − offline (p50) = {diff[k]:.2f} ms; moto p50: {moto_rt[k][0]} {b:.2f} ms, "
              f"{moto_rt[k][1]} {h:.2f} ms")
    print("RESULT " + json.dumps({"users": USERS, "ms": {k: {q: round(v, 3) if isinstance(v, float) else v for q, v in s.items()}
                                                          for k, s in stats.items()},
                                  "cognito_calls": lookups, "cold_minus_offline_p50_ms": {k: round(v, 3) for k, v in diff.items()}}))


if __name__ == "__main__":
    main()
