"""Client behaviour against an in-process fake gRPC server (no token-validator binary needed).

These check what the real service cannot easily be made to do on demand:
retry counts, deadlines, error mapping, TLS/mTLS, unknown enum values.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any, Callable, Optional

import grpc
import pytest
from flask import Flask, g

from token_validator_client import (
    ERROR_DOMAIN,
    ErrorInfo,
    InvalidTokenArgument,
    Reason,
    RetryPolicy,
    TokenUse,
    TokenValidatorClient,
    TokenValidatorError,
    TokenValidatorTimeout,
    TokenValidatorUnavailable,
    Unauthenticated,
    UserInfoSource,
    aio,
)
from token_validator_client._common import resolve_channel
from token_validator_client._proto.tokenvalidator.v1 import token_validator_pb2 as pb
from token_validator_client._proto.tokenvalidator.v1 import token_validator_pb2_grpc as pb_grpc
from token_validator_client.flask import TokenValidator, current_user, require_token

from statuses import abort_with_error_info, error_info_status

FAST = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)


# A queued failure: (code, message), or (code, message, ErrorInfo reason[, metadata]) to send
# the google.rpc.Status detail as the service does, or a ready grpc.Status.
Failure = Any


class FakeServicer(pb_grpc.TokenValidatorServicer):
    """Fails with the queued statuses first, then answers with ``response``."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []
        self.user_info_failures: list[Failure] = []
        self.requests: list[Any] = []
        self.delay = 0.0
        self.validate_response = pb.ValidateTokenResponse(
            valid=True,
            claims=pb.Claims(
                sub="s-1",
                issuer="http://issuer",
                token_use="access",
                client_id="c",
                username="alice",
                groups=["g1"],
                scopes=["openid"],
                expires_at=2_000_000_000,
                json=json.dumps({"sub": "s-1", "custom:tenant": "acme"}),
            ),
        )
        self.user_info_response = pb.GetUserInfoResponse(
            sub="s-1", username="alice", preferred_username="Alice", attributes={"custom:tenant": "acme"},
            source=pb.USER_INFO_SOURCE_COGNITO,
        )
        self.lock = threading.Lock()

    def _answer(self, request: Any, context: grpc.ServicerContext, response: Any, failures: Optional[list] = None) -> Any:
        failures = self.failures if failures is None else failures
        with self.lock:
            self.requests.append(request)
            failure = failures.pop(0) if failures else None
        if self.delay:
            time.sleep(self.delay)
        if isinstance(failure, grpc.Status):
            context.abort_with_status(failure)
        elif failure and len(failure) > 2:
            abort_with_error_info(context, *failure)
        elif failure:
            context.abort(failure[0], failure[1])
        return response

    def ValidateToken(self, request, context):  # noqa: N802
        return self._answer(request, context, self.validate_response)

    def GetUserInfo(self, request, context):  # noqa: N802
        return self._answer(request, context, self.user_info_response, self.user_info_failures or None)


@pytest.fixture()
def fake():
    servicer = FakeServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_TokenValidatorServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servicer.addr = f"127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield servicer
    server.stop(grace=None)


def closed_port() -> str:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"


# --- results and requests --------------------------------------------------------------


def test_request_fields_and_typed_result(fake):
    with TokenValidatorClient(fake.addr, timeout=2) as c:
        r = c.validate_token("tok", token_use="access", scopes=["a", "b"], groups=["x"])
    req = fake.requests[0]
    assert req.token == "tok"
    assert req.expected_token_use == pb.TOKEN_USE_ACCESS
    assert list(req.required_scopes) == ["a", "b"]
    assert list(req.required_groups) == ["x"]
    assert r.valid and bool(r) and r.reason is Reason.UNSPECIFIED
    assert r.claims.username == "alice"
    assert r.claims.groups == ("g1",)
    assert r.claims.get("custom:tenant") == "acme"


def test_check_revocation_is_sent_and_off_by_default(fake):
    with TokenValidatorClient(fake.addr, timeout=2) as c:
        c.validate_token("t")
        c.validate_token("t", check_revocation=True)
        c.validate_token("t", check_revocation=False)
        with pytest.raises(TypeError):
            c.validate_token("t", check_revocation="yes")  # type: ignore[arg-type]
    assert [r.check_revocation for r in fake.requests] == [False, True, False]


def test_revoked_is_a_rejection_and_cognito_unavailable_an_error(fake):
    fake.validate_response = pb.ValidateTokenResponse(
        valid=False, reason=pb.REASON_REVOKED, message="Access Token has been revoked"
    )
    with TokenValidatorClient(fake.addr, timeout=2, retry=FAST) as c:
        r = c.validate_token("t", check_revocation=True)
        assert (r.valid, r.reason, r.claims) == (False, Reason.REVOKED, None)
        fake.failures = [
            (grpc.StatusCode.UNAVAILABLE, "Cognito cannot be asked", "COGNITO_UNAVAILABLE", {"pool": "main"})
        ] * 3
        with pytest.raises(TokenValidatorUnavailable) as info:
            c.validate_token("t", check_revocation=True)
    assert type(info.value) is TokenValidatorUnavailable
    assert (info.value.error_reason, info.value.pool) == ("COGNITO_UNAVAILABLE", "main")
    assert "after 3 attempts" in str(info.value)


def test_token_use_parsing(fake):
    with TokenValidatorClient(fake.addr, timeout=2) as c:
        c.validate_token("t")
        c.validate_token("t", token_use=TokenUse.ID)
        c.validate_token("t", token_use="ACCESS")
        with pytest.raises(ValueError):
            c.validate_token("t", token_use="refresh")
        with pytest.raises(TypeError):
            c.validate_token("t", scopes="openid")
    uses = [r.expected_token_use for r in fake.requests]
    assert uses == [pb.TOKEN_USE_UNSPECIFIED, pb.TOKEN_USE_ID, pb.TOKEN_USE_ACCESS]


def test_rejection_and_unknown_reason(fake):
    fake.validate_response = pb.ValidateTokenResponse(valid=False, reason=pb.REASON_EXPIRED, message="expired")
    with TokenValidatorClient(fake.addr, timeout=2) as c:
        r = c.validate_token("t")
        assert (r.valid, r.reason, r.message, r.claims) == (False, Reason.EXPIRED, "expired", None)
        assert r.reason.proto_name == "REASON_EXPIRED"
        fake.validate_response = pb.ValidateTokenResponse(valid=False, reason=99)
        assert c.validate_token("t").reason is Reason.UNRECOGNIZED


def test_user_info(fake):
    with TokenValidatorClient(fake.addr, timeout=2) as c:
        info = c.get_user_info("t")
    assert info.preferred_username == "Alice"
    assert info.source is UserInfoSource.COGNITO
    assert info.attributes == {"custom:tenant": "acme"}


def test_reason_prints_as_its_name():
    r = Reason.EXPIRED
    assert str(r) == f"{r}" == "%s" % r == "{}".format(r) == "REASON_EXPIRED"
    assert f"{r:>16}" == "  REASON_EXPIRED"
    # Still the IntEnum it was: the number compares, formats with "d" and round-trips.
    assert r == 6 and int(r) == 6 and f"{r:d}" == "6" and "%d" % r == "6"
    assert r.name == "EXPIRED" and r.proto_name == "REASON_EXPIRED"
    assert Reason(6) is r and Reason["EXPIRED"] is r and Reason.from_name(str(r)) is r
    assert str(Reason.UNRECOGNIZED) == "REASON_UNRECOGNIZED"
    assert all(str(x) == x.proto_name for x in Reason)
    assert str(Reason.REVOKED) == "REASON_REVOKED" and Reason.REVOKED == 12


def test_reason_matches_the_proto_enum():
    """Every tokenvalidator.v1.Reason value has a member of the same name and number."""
    wire = {v.name: v.number for v in pb.Reason.DESCRIPTOR.values}
    ours = {r.proto_name: int(r) for r in Reason if r is not Reason.UNRECOGNIZED}
    assert ours == wire
    assert Reason.from_proto(pb.REASON_REVOKED) is Reason.REVOKED


# --- retries, deadlines and error mapping ----------------------------------------------


def test_retries_unavailable_then_succeeds(fake):
    fake.failures = [(grpc.StatusCode.UNAVAILABLE, "no keys yet")] * 2
    with TokenValidatorClient(fake.addr, timeout=2, retry=FAST) as c:
        assert c.validate_token("t").valid
    assert len(fake.requests) == 3


def test_gives_up_after_max_attempts(fake):
    fake.failures = [(grpc.StatusCode.UNAVAILABLE, "no keys for issuer")] * 5
    with TokenValidatorClient(fake.addr, timeout=2, retry=FAST) as c:
        with pytest.raises(TokenValidatorUnavailable) as info:
            c.validate_token("t")
    assert len(fake.requests) == 3
    assert "no keys for issuer" in str(info.value) and "after 3 attempts" in str(info.value)
    assert info.value.code is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    "code, details, error_reason, exc",
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "the token is empty", "TOKEN_EMPTY", InvalidTokenArgument),
        (grpc.StatusCode.INVALID_ARGUMENT, "token is empty", None, InvalidTokenArgument),
        (grpc.StatusCode.UNAUTHENTICATED, "REASON_EXPIRED: token expired", "REASON_EXPIRED", Unauthenticated),
        (grpc.StatusCode.INTERNAL, "boom", None, TokenValidatorError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "too big", None, TokenValidatorError),
    ],
)
def test_no_retry_on_other_codes(fake, code, details, error_reason, exc):
    fake.failures = [(code, details, error_reason) if error_reason else (code, details)] * 3
    with TokenValidatorClient(fake.addr, timeout=2, retry=FAST) as c:
        with pytest.raises(exc) as info:
            c.get_user_info("t")
    assert type(info.value) is exc
    assert not isinstance(info.value, TokenValidatorUnavailable)
    assert len(fake.requests) == 1
    assert info.value.details == details
    assert info.value.error_reason == (error_reason or "")
    if error_reason:
        assert error_reason in str(info.value)
    if exc is Unauthenticated:
        assert info.value.reason is Reason.EXPIRED


# --- the ErrorInfo detail, never the message -------------------------------------------


def test_reason_comes_from_the_detail_not_the_message(fake):
    """The detail says REVOKED, the message says EXPIRED: the client follows the detail."""
    fake.failures = [(grpc.StatusCode.UNAUTHENTICATED, "REASON_EXPIRED: the token has expired", "REASON_REVOKED")]
    with TokenValidatorClient(fake.addr, timeout=2) as c:
        with pytest.raises(Unauthenticated) as info:
            c.get_user_info("t")
    err = info.value
    assert err.reason is Reason.REVOKED
    assert err.error_reason == "REASON_REVOKED"
    assert err.details == "REASON_EXPIRED: the token has expired"  # kept as it was, for people
    assert "[REASON_REVOKED]" in str(err)


def test_without_a_detail_the_reason_is_unspecified(fake):
    """An older server (no detail): UNSPECIFIED, however the message begins."""
    fake.failures = [
        (grpc.StatusCode.UNAUTHENTICATED, "REASON_EXPIRED: the token has expired"),
        (grpc.StatusCode.UNAUTHENTICATED, "nope"),
    ]
    with TokenValidatorClient(fake.addr, timeout=2) as c:
        for _ in range(2):
            with pytest.raises(Unauthenticated) as info:
                c.get_user_info("t")
            assert info.value.reason is Reason.UNSPECIFIED
            assert info.value.error_info is None and info.value.error_reason == ""
            assert info.value.pool is None and info.value.kid is None and dict(info.value.metadata) == {}


def test_unknown_reason_in_the_detail_is_unrecognized(fake):
    fake.failures = [
        (grpc.StatusCode.UNAUTHENTICATED, "REASON_EXPIRED: x", "REASON_FROM_A_LATER_VERSION"),
        (grpc.StatusCode.UNAUTHENTICATED, "REASON_EXPIRED: x", "TOKEN_EMPTY"),
    ]
    with TokenValidatorClient(fake.addr, timeout=2) as c:
        for name in ("REASON_FROM_A_LATER_VERSION", "TOKEN_EMPTY"):
            with pytest.raises(Unauthenticated) as info:
                c.get_user_info("t")
            assert info.value.reason is Reason.UNRECOGNIZED
            assert info.value.error_reason == name  # the raw name stays readable


def test_detail_metadata_pool_and_kid(fake):
    fake.user_info_failures = [
        (grpc.StatusCode.UNAUTHENTICATED, "REASON_UNKNOWN_KEY: kid \"k9\" is not in the pool's key set",
         "REASON_UNKNOWN_KEY", {"pool": "eu", "kid": "k9"}),
    ]
    fake.failures = [(grpc.StatusCode.UNAVAILABLE, "no keys for pool eu yet", "KEYS_UNAVAILABLE", {"pool": "eu"})] * 3
    with TokenValidatorClient(fake.addr, timeout=2, retry=FAST) as c:
        with pytest.raises(Unauthenticated) as info:
            c.get_user_info("t")
        assert info.value.reason is Reason.UNKNOWN_KEY
        assert (info.value.pool, info.value.kid) == ("eu", "k9")
        assert info.value.error_info == ErrorInfo("REASON_UNKNOWN_KEY", ERROR_DOMAIN, {"pool": "eu", "kid": "k9"})
        with pytest.raises(TypeError):
            info.value.metadata["pool"] = "other"  # type: ignore[index]
        with pytest.raises(TokenValidatorUnavailable) as down:
            c.validate_token("t")
    err = down.value
    assert (err.error_reason, err.pool, err.kid) == ("KEYS_UNAVAILABLE", "eu", None)
    assert "KEYS_UNAVAILABLE" in str(err) and "after 3 attempts" in str(err)
    # The error still pickles (it may cross a process boundary), detail included.
    copy = pickle.loads(pickle.dumps(err))
    assert (type(copy), str(copy), copy.error_info) == (TokenValidatorUnavailable, str(err), err.error_info)


def test_details_that_cannot_be_trusted_are_ignored(fake):
    """Another domain, a detail that contradicts its status, or junk bytes: as if there were none."""
    contradicting = error_info_status(grpc.StatusCode.UNAUTHENTICATED, "REASON_REVOKED: x", "REASON_REVOKED")
    contradicting = contradicting._replace(details="another message")  # the trailer no longer matches
    fake.failures = [
        (grpc.StatusCode.UNAUTHENTICATED, "x", "REASON_REVOKED", None, "proxy.example"),
        contradicting,
        contradicting._replace(details="REASON_REVOKED: x", code=grpc.StatusCode.PERMISSION_DENIED),
        contradicting._replace(details="x", trailing_metadata=(("grpc-status-details-bin", b"\xff\x00junk"),)),
    ]
    with TokenValidatorClient(fake.addr, timeout=2) as c:
        for _ in range(4):
            with pytest.raises(TokenValidatorError) as info:
                c.get_user_info("t")
            assert info.value.error_info is None, info.value
            if isinstance(info.value, Unauthenticated):
                assert info.value.reason is Reason.UNSPECIFIED


def test_flask_current_user_revoked_is_401(fake):
    fake.user_info_failures = [
        (grpc.StatusCode.UNAUTHENTICATED, "REASON_REVOKED: NotAuthorizedException: Access Token has been revoked",
         "REASON_REVOKED"),
    ]
    app = flask_app(fake.addr)
    resp = app.test_client().get("/p", headers={"Authorization": "Bearer x"})
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_token"
    assert resp.get_json()["reason"] == "REASON_REVOKED"
    assert resp.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_token", '
        'error_description="REASON_REVOKED: NotAuthorizedException: Access Token has been revoked"'
    )


def test_deadline_is_enforced_and_not_retried(fake):
    fake.delay = 1.0
    with TokenValidatorClient(fake.addr, timeout=0.2, retry=FAST) as c:
        started = time.monotonic()
        with pytest.raises(TokenValidatorTimeout):
            c.validate_token("t")
        assert time.monotonic() - started < 0.9
        with pytest.raises(TokenValidatorUnavailable):  # Timeout is a kind of Unavailable
            c.validate_token("t", timeout=0.1)
    assert len(fake.requests) == 2


def test_unreachable_service_is_unavailable():
    with TokenValidatorClient(closed_port(), timeout=1, retry=FAST) as c:
        with pytest.raises(TokenValidatorUnavailable) as info:
            c.validate_token("t")
    assert "after 3 attempts" in str(info.value)


def test_channel_is_reused(fake):
    c = TokenValidatorClient(fake.addr, timeout=2)
    c.validate_token("a")
    channel = c._channel
    c.get_user_info("b")
    assert c._channel is channel
    c.close()
    with pytest.raises(TokenValidatorError):
        c.validate_token("c")


def test_retry_decisions_are_shared():
    """Both clients take their retry decisions from one place: only UNAVAILABLE is retried."""
    from token_validator_client._base import Attempts, BaseClient

    class Err(grpc.RpcError):
        def __init__(self, code):
            self._code = code

        def code(self):
            return self._code

        def details(self):
            return "d"

    policy = RetryPolicy(max_attempts=3, initial_backoff=0.5, max_backoff=1.0, jitter=0)
    attempts = Attempts("ValidateToken", policy)
    assert attempts.failed(Err(grpc.StatusCode.UNAVAILABLE)) == 0.5
    assert attempts.failed(Err(grpc.StatusCode.UNAVAILABLE)) == 1.0
    with pytest.raises(TokenValidatorUnavailable, match="after 3 attempts"):
        attempts.failed(Err(grpc.StatusCode.UNAVAILABLE))
    with pytest.raises(TokenValidatorTimeout):
        Attempts("ValidateToken", policy).failed(Err(grpc.StatusCode.DEADLINE_EXCEEDED))
    with pytest.raises(Unauthenticated):
        Attempts("GetUserInfo", policy).failed(Err(grpc.StatusCode.UNAUTHENTICATED))
    # One core: neither client re-implements configuration, channels or the RPC plumbing.
    for cls in (TokenValidatorClient, aio.TokenValidatorClient):
        assert issubclass(cls, BaseClient)
        for name in ("__init__", "_get_stub", "_start", "_validate_token_rpc", "_get_user_info_rpc", "__repr__"):
            assert name not in vars(cls), (cls, name)
    assert repr(TokenValidatorClient("127.0.0.1:1", timeout=1)) == "TokenValidatorClient('127.0.0.1:1', tls=False, timeout=1.0)"
    assert repr(aio.TokenValidatorClient("https://h", timeout=1)) == "aio.TokenValidatorClient('h:443', tls=True, timeout=1.0)"


@pytest.mark.asyncio
async def test_aio_retries_and_errors(fake):
    fake.failures = [(grpc.StatusCode.UNAVAILABLE, "x")] * 2
    async with aio.TokenValidatorClient(fake.addr, timeout=2, retry=FAST) as c:
        assert (await c.validate_token("t")).valid
        fake.failures = [(grpc.StatusCode.UNAUTHENTICATED, "REASON_BAD_SIGNATURE: x", "REASON_BAD_SIGNATURE")]
        with pytest.raises(Unauthenticated) as info:
            await c.get_user_info("t")
        assert info.value.reason is Reason.BAD_SIGNATURE
        assert (await c.get_user_info("t")).username == "alice"
        # The detail wins over the message here too; no detail gives UNSPECIFIED.
        fake.failures = [
            (grpc.StatusCode.UNAUTHENTICATED, "REASON_EXPIRED: x", "REASON_REVOKED", {"pool": "dev"}),
            (grpc.StatusCode.UNAUTHENTICATED, "REASON_EXPIRED: x"),
        ]
        with pytest.raises(Unauthenticated) as info:
            await c.get_user_info("t")
        assert (info.value.reason, info.value.pool) == (Reason.REVOKED, "dev")
        with pytest.raises(Unauthenticated) as info:
            await c.get_user_info("t")
        assert info.value.reason is Reason.UNSPECIFIED and info.value.error_info is None
    assert len(fake.requests) == 7


@pytest.mark.asyncio
async def test_aio_check_revocation(fake):
    fake.validate_response = pb.ValidateTokenResponse(valid=False, reason=pb.REASON_REVOKED, message="revoked")
    async with aio.TokenValidatorClient(fake.addr, timeout=2, retry=FAST) as c:
        r = await c.validate_token("t", token_use="access", check_revocation=True)
        assert r.reason is Reason.REVOKED and not r
        await c.validate_token("t")
        fake.failures = [(grpc.StatusCode.UNAVAILABLE, "x", "COGNITO_UNAVAILABLE", {"pool": "p"})] * 3
        with pytest.raises(TokenValidatorUnavailable) as info:
            await c.validate_token("t", check_revocation=True)
        assert info.value.error_reason == "COGNITO_UNAVAILABLE"
    assert [r.check_revocation for r in fake.requests[:2]] == [True, False]


@pytest.mark.asyncio
async def test_aio_unreachable():
    async with aio.TokenValidatorClient(closed_port(), timeout=1, retry=FAST) as c:
        with pytest.raises(TokenValidatorUnavailable):
            await c.validate_token("t")


# --- target and TLS configuration ------------------------------------------------------


def test_target_forms():
    assert resolve_channel("http://127.0.0.1:5", tls=None, root_certificates=None, client_cert=None, server_name=None, channel_options=None).target == "127.0.0.1:5"
    cfg = resolve_channel("https://tv.internal", tls=None, root_certificates=None, client_cert=None, server_name=None, channel_options=None)
    assert cfg.target == "tv.internal:443" and cfg.tls
    cfg = resolve_channel("127.0.0.1:5", tls=None, root_certificates=None, client_cert=None, server_name=None, channel_options=None)
    assert not cfg.tls
    with pytest.raises(ValueError):
        resolve_channel("https://x:1", tls=False, root_certificates=None, client_cert=None, server_name=None, channel_options=None)
    with pytest.raises(ValueError):
        resolve_channel("http://x:1", tls=True, root_certificates=None, client_cert=None, server_name=None, channel_options=None)
    with pytest.raises(ValueError):
        TokenValidatorClient("")
    with pytest.raises(ValueError):
        TokenValidatorClient("x:1", timeout=0)
    with pytest.raises(ValueError):
        TokenValidatorClient("x:1", root_certificates="/no/such/file.pem")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=test-ca", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=DNS:tv.test,IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return d


def _tls_server(pki: Path, require_client_cert: bool) -> tuple[grpc.Server, FakeServicer, int]:
    servicer = FakeServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_TokenValidatorServicer_to_server(servicer, server)
    creds = grpc.ssl_server_credentials(
        [((pki / "server.key").read_bytes(), (pki / "server.pem").read_bytes())],
        root_certificates=(pki / "ca.pem").read_bytes() if require_client_cert else None,
        require_client_auth=require_client_cert,
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    return server, servicer, port


def test_tls_and_mtls(pki):
    server, servicer, port = _tls_server(pki, require_client_cert=True)
    try:
        good = TokenValidatorClient(
            f"127.0.0.1:{port}", timeout=3, root_certificates=str(pki / "ca.pem"),
            client_cert=(str(pki / "client.pem"), (pki / "client.key").read_bytes()), server_name="tv.test",
        )
        assert good.validate_token("t").valid
        good.close()
        # Without a client certificate the handshake fails: unavailable, never "valid".
        no_cert = TokenValidatorClient(f"127.0.0.1:{port}", timeout=2, tls=True,
                                       root_certificates=(pki / "ca.pem").read_text(), retry=FAST)
        with pytest.raises(TokenValidatorUnavailable):
            no_cert.validate_token("t")
        no_cert.close()
        # Plaintext against a TLS port fails too.
        plain = TokenValidatorClient(f"127.0.0.1:{port}", timeout=2, retry=FAST)
        with pytest.raises(TokenValidatorUnavailable):
            plain.validate_token("t")
        plain.close()
    finally:
        server.stop(grace=None)


# --- Flask integration, offline --------------------------------------------------------


def flask_app(addr: str, **config: Any) -> Flask:
    app = Flask("offline")
    app.config.update(TOKEN_VALIDATOR_ADDR=addr, TOKEN_VALIDATOR_TIMEOUT=1, TOKEN_VALIDATOR_RETRIES=2, **config)
    TokenValidator(app)
    app.ran = 0  # type: ignore[attr-defined]

    @app.get("/p")
    @require_token(token_use="access", scopes=["openid"])
    def protected():
        app.ran += 1  # type: ignore[attr-defined]
        return {"u": g.token_claims.username, "name": current_user().preferred_username}

    return app


def test_flask_ok_and_header_forms(fake):
    http = flask_app(fake.addr).test_client()
    resp = http.get("/p", headers={"Authorization": "Bearer abc.def.ghi"})
    assert resp.status_code == 200 and resp.get_json() == {"u": "alice", "name": "Alice"}
    assert fake.requests[0].token == "abc.def.ghi"
    assert list(fake.requests[0].required_scopes) == ["openid"]
    assert http.get("/p", headers={"Authorization": "bearer abc"}).status_code == 200  # scheme is case-insensitive
    resp = http.get("/p", headers={"Authorization": "Token abc"})
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_request"
    resp = http.get("/p")
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
    assert resp.headers["Cache-Control"] == "no-store"


def test_flask_realm(fake):
    http = flask_app(fake.addr, TOKEN_VALIDATOR_REALM="api").test_client()
    assert http.get("/p").headers["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    "code, status, error",
    [
        (grpc.StatusCode.UNAVAILABLE, 503, "token_validator_unavailable"),
        (grpc.StatusCode.INVALID_ARGUMENT, 401, "invalid_token"),
        (grpc.StatusCode.INTERNAL, 502, "token_validator_error"),
    ],
)
def test_flask_service_errors_fail_closed(fake, code, status, error):
    fake.failures = [(code, "x")] * 5
    app = flask_app(fake.addr)
    resp = app.test_client().get("/p", headers={"Authorization": "Bearer x"})
    assert resp.status_code == status
    assert resp.get_json()["error"] == error
    assert app.ran == 0


def test_flask_user_info_unavailable_is_503(fake):
    # ValidateToken succeeds, then GetUserInfo finds the service gone.
    fake.user_info_failures = [(grpc.StatusCode.UNAVAILABLE, "down")] * 5
    app = flask_app(fake.addr)
    resp = app.test_client().get("/p", headers={"Authorization": "Bearer x"})
    assert resp.status_code == 503
    assert resp.get_json()["error"] == "token_validator_unavailable"
    assert len(fake.requests) == 1 + 2  # one ValidateToken, two GetUserInfo attempts


def test_flask_unreachable_is_503():
    app = flask_app(closed_port())
    resp = app.test_client().get("/p", headers={"Authorization": "Bearer x"})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert app.ran == 0


def revocation_app(addr: str, **config: Any) -> Flask:
    app = Flask("offline_revocation")
    app.config.update(TOKEN_VALIDATOR_ADDR=addr, TOKEN_VALIDATOR_TIMEOUT=1, TOKEN_VALIDATOR_RETRIES=2, **config)
    TokenValidator(app)

    @app.get("/default")
    @require_token
    def default():
        return {}

    @app.get("/checked")
    @require_token(groups=["admin"], check_revocation=True)
    def checked():
        return {}

    @app.get("/unchecked")
    @require_token(check_revocation=False)
    def unchecked():
        return {}

    return app


def test_flask_check_revocation_per_route_and_app_default(fake, monkeypatch):
    http = revocation_app(fake.addr).test_client()
    for path in ("/default", "/checked", "/unchecked"):
        assert http.get(path, headers={"Authorization": "Bearer x"}).status_code == 200, path
    assert [r.check_revocation for r in fake.requests] == [False, True, False]
    assert list(fake.requests[1].required_groups) == ["admin"]
    fake.requests.clear()
    # TOKEN_VALIDATOR_CHECK_REVOCATION turns it on where a route does not say (config, else environment).
    http = revocation_app(fake.addr, TOKEN_VALIDATOR_CHECK_REVOCATION=True).test_client()
    for path in ("/default", "/checked", "/unchecked"):
        http.get(path, headers={"Authorization": "Bearer x"})
    monkeypatch.setenv("TOKEN_VALIDATOR_CHECK_REVOCATION", "true")
    revocation_app(fake.addr).test_client().get("/default", headers={"Authorization": "Bearer x"})
    assert [r.check_revocation for r in fake.requests] == [True, True, False, True]
    monkeypatch.setenv("TOKEN_VALIDATOR_CHECK_REVOCATION", "perhaps")
    with pytest.raises(ValueError):
        revocation_app(fake.addr)
    with pytest.raises(TypeError):
        require_token(check_revocation="yes")  # type: ignore[call-overload]


def test_flask_revoked_is_401_and_cognito_unavailable_503(fake):
    http = revocation_app(fake.addr).test_client()
    fake.validate_response = pb.ValidateTokenResponse(
        valid=False, reason=pb.REASON_REVOKED, message="Access Token has been revoked"
    )
    resp = http.get("/checked", headers={"Authorization": "Bearer x"})
    assert resp.status_code == 401
    assert resp.get_json() == {
        "error": "invalid_token", "reason": "REASON_REVOKED", "message": "Access Token has been revoked"
    }
    assert resp.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_token", error_description="Access Token has been revoked"'
    )
    fake.failures = [(grpc.StatusCode.UNAVAILABLE, "Cognito cannot be asked", "COGNITO_UNAVAILABLE", {"pool": "p"})] * 2
    resp = http.get("/checked", headers={"Authorization": "Bearer x"})
    assert resp.status_code == 503
    assert resp.get_json()["error"] == "token_validator_unavailable"
    assert resp.headers["Retry-After"] == "1"
    assert "WWW-Authenticate" not in resp.headers


def test_flask_bad_config_fails_at_init():
    app = Flask("bad")
    app.config["TOKEN_VALIDATOR_CLIENT_CERT"] = "/x.pem"
    with pytest.raises(ValueError):
        TokenValidator(app)
    app = Flask("bad2")
    app.config["TOKEN_VALIDATOR_TLS"] = "maybe"
    with pytest.raises(ValueError):
        TokenValidator(app)


def test_flask_env_fallback(monkeypatch, fake):
    monkeypatch.setenv("TOKEN_VALIDATOR_ADDR", fake.addr)
    app = Flask("env")
    TokenValidator(app)
    with app.app_context():
        from token_validator_client.flask import get_client

        assert get_client().target == fake.addr
