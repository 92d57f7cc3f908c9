"""The Flask integration over real HTTP, under Werkzeug's server and under gunicorn.

Flask's test client never encodes headers, so it cannot see what broke in
production: the service's messages hold "…" (U+2026), quotes, backslashes
and non-ASCII, and copying them into ``WWW-Authenticate`` made Werkzeug
raise ``UnicodeEncodeError`` (the client hung) and gunicorn answer 500
(``InvalidResponseHeader``). Here every response goes through a real server
and a real HTTP client, and every ``WWW-Authenticate`` must be an RFC 6750
challenge of printable ASCII.
"""

from __future__ import annotations

import contextlib
import re
import threading
from concurrent import futures
from pathlib import Path
from typing import Callable, Iterator, Optional

import grpc
import pytest

import devserver
import http_app
import httpserve
from conftest import REPO_ROOT
from statuses import abort_with_error_info
from token_validator_client import Reason
from token_validator_client._challenge import DESCRIPTION_MAX_LEN
from token_validator_client._proto.tokenvalidator.v1 import token_validator_pb2 as pb
from token_validator_client._proto.tokenvalidator.v1 import token_validator_pb2_grpc as pb_grpc

TESTS_DIR = Path(__file__).resolve().parent
SERVERS = ["werkzeug", "gunicorn"]

# RFC 6750 section 3: NQSCHAR = %x20-21 / %x23-5B / %x5D-7E.
_NQ = r'[\x20\x21\x23-\x5b\x5d-\x7e]*'
_PARAM = rf'(?:realm|error|error_description|scope)="{_NQ}"'
CHALLENGE = re.compile(rf"Bearer(?: {_PARAM}(?:, {_PARAM})*)?")
REALM_CLEAN = "api 'v1' / cafe ... X-Injected: 1"

# Text a header value must not carry raw, as the service (or a newer one) might put it in a message.
NASTY = (
    'issuer "https://evil.example/\u2026" is not \\configured\\\r\nX-Injected: yes\n'
    "caf\u00e9 \u65e5\u672c \u201cquoted\u201d \u2014 \x00\x7f\u200b"
) + " tail" * 80


# --- what every answer must look like --------------------------------------------------


def challenge(reply: httpserve.Reply) -> dict[str, str]:
    """Check ``WWW-Authenticate`` (RFC 6750/7235, printable ASCII) and return its attributes."""
    value = reply.header("WWW-Authenticate")
    assert value is not None, (reply.status, reply.body)
    # http.client decodes header bytes as Latin-1: so these are the bytes on the wire.
    assert all(0x20 <= b <= 0x7E for b in value.encode("latin-1")), value
    assert CHALLENGE.fullmatch(value), value
    params = dict(re.findall(rf'(\w+)="({_NQ})"', value))
    assert len(params.get("error_description", "")) <= DESCRIPTION_MAX_LEN, value
    assert "X-Injected" not in reply.headers, reply.headers
    return params


def assert_rejected(reply: httpserve.Reply, status: int, error: str, reason: Optional[Reason]) -> dict[str, str]:
    assert reply.status == status, (reply.status, reply.body[:500])
    body = reply.json()
    if reason is not None:
        assert body["reason"] == reason.proto_name, body
    params = challenge(reply)
    assert params["realm"] == REALM_CLEAN, params
    assert params["error"] == error, params
    assert params["error_description"], params
    return params


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def serve(kind: str, addr: str) -> Iterator[str]:
    if kind == "werkzeug":
        with httpserve.werkzeug_server(http_app.create_app(addr)) as url:
            yield url
    else:
        with httpserve.gunicorn_server(
            "http_app:app", chdir=TESTS_DIR, env={"TOKEN_VALIDATOR_ADDR": addr}, ready_path="/health"
        ) as url:
            yield url


# --- against the real service ----------------------------------------------------------

ODD = 'x"\\\u00e9\u65e5\u2026'  # quote, backslash, non-ASCII, "…"


@pytest.fixture(scope="module", params=SERVERS)
def real(request, dev) -> Iterator[str]:
    with serve(request.param, dev.grpc_addr) as url:
        yield url


# name -> (path, token from (dev, bob, expired), status, challenge error, reason, service message must hold "…")
REAL_CASES: dict[str, tuple[str, Callable[..., str], int, str, Reason, bool]] = {
    "malformed": ("/any", lambda d, b, e: "garbage", 401, "invalid_token", Reason.MALFORMED, False),
    "malformed_claim": (
        "/any", lambda d, b, e: devserver.with_payload(d.access_token, exp=ODD), 401, "invalid_token",
        Reason.MALFORMED, True,
    ),
    "unsupported_algorithm": (
        "/any", lambda d, b, e: devserver.with_header(d.access_token, alg="RS256" + ODD * 8), 401, "invalid_token",
        Reason.UNSUPPORTED_ALGORITHM, True,
    ),
    "unknown_issuer": (
        "/any", lambda d, b, e: devserver.with_payload(d.access_token, iss="https://evil.example/" + ODD * 8),
        401, "invalid_token", Reason.UNKNOWN_ISSUER, True,
    ),
    "unknown_key": (
        "/any", lambda d, b, e: devserver.with_header(d.access_token, kid=ODD * 12), 401, "invalid_token",
        Reason.UNKNOWN_KEY, True,
    ),
    "bad_signature": (
        "/any", lambda d, b, e: devserver.with_flipped_signature(d.id_token), 401, "invalid_token",
        Reason.BAD_SIGNATURE, False,
    ),
    "expired": ("/any", lambda d, b, e: e["access_token"], 401, "invalid_token", Reason.EXPIRED, False),
    "wrong_token_use": ("/access", lambda d, b, e: d.id_token, 401, "invalid_token", Reason.WRONG_TOKEN_USE, False),
    "missing_scope": (
        "/scoped", lambda d, b, e: d.access_token, 403, "insufficient_scope", Reason.MISSING_SCOPE, True,
    ),
    "missing_group": (
        "/admins", lambda d, b, e: b["access_token"], 403, "insufficient_scope", Reason.MISSING_GROUP, False,
    ),
    "user_info_unknown_issuer": (
        "/whoami", lambda d, b, e: devserver.with_payload(d.id_token, iss="https://evil.example/" + ODD * 8),
        401, "invalid_token", Reason.UNKNOWN_ISSUER, True,
    ),
}  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize("case", sorted(REAL_CASES))
def test_real_rejections_have_ascii_challenges(real, dev, bob, expired, case):
    path, make_token, status, error, reason, has_ellipsis = REAL_CASES[case]
    reply = httpserve.get(real, path, bearer(make_token(dev, bob, expired)))
    params = assert_rejected(reply, status, error, reason)
    message = reply.json()["message"]
    if has_ellipsis:
        # The case does what it is here for: the service's own message has "…" and more.
        assert "\u2026" in message, message
        assert "..." in params["error_description"], params
    if reason is Reason.MISSING_SCOPE:
        assert params["scope"] == "openid admin:write", params  # the odd scope, reduced to its ASCII


@pytest.mark.integration
def test_real_revoked_user_info(real, revoked):
    """current_user() on a revoked access token: 401 REASON_REVOKED with an RFC 6750 challenge."""
    reply = httpserve.get(real, "/whoami", bearer(revoked["access_token"]))
    params = assert_rejected(reply, 401, "invalid_token", Reason.REVOKED)
    assert params["error_description"].startswith("REASON_REVOKED"), params


@pytest.mark.integration
def test_real_revoked_with_check_revocation(real, revoked):
    """require_token(check_revocation=True) on a revoked access token: 401 REASON_REVOKED, ASCII challenge."""
    assert httpserve.get(real, "/any", bearer(revoked["access_token"])).status == 200  # offline: still valid
    reply = httpserve.get(real, "/checked", bearer(revoked["access_token"]))
    assert_rejected(reply, 401, "invalid_token", Reason.REVOKED)


@pytest.mark.integration
def test_real_valid_and_header_problems(real, dev):
    assert httpserve.get(real, "/any", bearer(dev.access_token)).status == 200
    assert httpserve.get(real, "/admins", bearer(dev.id_token)).status == 200
    reply = httpserve.get(real, "/any")
    assert reply.status == 401 and reply.json()["error"] == "missing_token"
    assert challenge(reply) == {"realm": REALM_CLEAN}  # RFC 6750 3.1: no error code without a token
    reply = httpserve.get(real, "/any", {"Authorization": "Basic ZGV2OmRldg=="})
    assert_rejected(reply, 401, "invalid_request", None)


@pytest.mark.integration
def test_flask_example_under_gunicorn(dev, bob):
    """examples/flask-backend as deployed: gunicorn app:app."""
    with httpserve.gunicorn_server(
        "app:app",
        chdir=REPO_ROOT / "examples" / "flask-backend",
        env={"TOKEN_VALIDATOR_ADDR": dev.grpc_addr},
        ready_path="/api/activities/home",
    ) as url:
        reply = httpserve.get(url, "/api/activities/me", bearer(dev.access_token))
        assert reply.status == 200 and reply.json()["preferred_username"] == "Dev User"
        forged = devserver.with_payload(dev.access_token, iss="https://evil.example/" + ODD * 8)
        reply = httpserve.get(url, "/api/activities/me", bearer(forged))
        assert reply.status == 401 and reply.json()["reason"] == "REASON_UNKNOWN_ISSUER"
        assert "\u2026" in reply.json()["message"]
        assert challenge(reply)["error"] == "invalid_token"
        reply = httpserve.get(url, "/api/admin/activities", bearer(bob["access_token"]))
        assert reply.status == 403 and challenge(reply)["error"] == "insufficient_scope"
        # The admin route checks revocation: an admin signed out everywhere is refused.
        admin = dev.mint(username="gunicorn-admin", groups=["admin"])
        dev.revoke(admin["access_token"])
        reply = httpserve.get(url, "/api/admin/activities", bearer(admin["access_token"]))
        assert reply.status == 401 and reply.json()["reason"] == "REASON_REVOKED", reply.body[:300]
        assert challenge(reply)["error"] == "invalid_token"


# --- every Reason, and messages the real service does not write today ------------------


# The ErrorInfo reason of a value this client does not know (a newer server).
FUTURE_REASON = "REASON_FROM_A_LATER_VERSION"


class ReasonServicer(pb_grpc.TokenValidatorServicer):
    """Answers from the token: ``reason-N`` -> rejected with Reason N (0: valid),
    ``userinfo-N`` -> GetUserInfo fails UNAUTHENTICATED with that reason (in
    the ErrorInfo detail, as the service sends it), ``invalid-argument`` ->
    INVALID_ARGUMENT. Every message is :data:`NASTY`."""

    def ValidateToken(self, request, context):  # noqa: N802
        if request.token == "invalid-argument":
            abort_with_error_info(context, grpc.StatusCode.INVALID_ARGUMENT, NASTY, "TOKEN_EMPTY")
        n = int(request.token.rsplit("-", 1)[1])
        if n == 0:
            return pb.ValidateTokenResponse(
                valid=True, claims=pb.Claims(sub="s", username="alice", token_use="access", json="{}")
            )
        return pb.ValidateTokenResponse(valid=False, reason=n, message=NASTY)

    def GetUserInfo(self, request, context):  # noqa: N802
        reason = Reason.from_proto(int(request.token.rsplit("-", 1)[1]))
        name = FUTURE_REASON if reason is Reason.UNRECOGNIZED else reason.proto_name
        abort_with_error_info(context, grpc.StatusCode.UNAUTHENTICATED, f"{reason.proto_name}: {NASTY}", name)


@pytest.fixture(scope="module")
def fake_addr() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_TokenValidatorServicer_to_server(ReasonServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.fixture(scope="module", params=SERVERS)
def faked(request, fake_addr) -> Iterator[str]:
    with serve(request.param, fake_addr) as url:
        yield url


# Every wire value, plus one this client does not know (a newer server): UNRECOGNIZED.
ALL_REASONS = [r for r in Reason if r is not Reason.UNRECOGNIZED] + [99]


@pytest.mark.parametrize("value", ALL_REASONS, ids=lambda v: Reason.from_proto(int(v)).name)
def test_every_reason_with_a_nasty_message(faked, value):
    reason = Reason.from_proto(int(value))
    reply = httpserve.get(faked, "/any", bearer(f"reason-{int(value)}"))
    if reason is Reason.UNSPECIFIED:
        assert reply.status == 200 and reply.json() == {"username": "alice"}
        return
    forbidden = reason in (Reason.MISSING_SCOPE, Reason.MISSING_GROUP)
    params = assert_rejected(
        reply, 403 if forbidden else 401, "insufficient_scope" if forbidden else "invalid_token", reason
    )
    assert reply.json()["message"] == NASTY  # the body keeps the message as it was (JSON escapes it)
    description = params["error_description"]
    assert description.startswith("issuer 'https://evil.example/...' is not /configured/ X-Injected: yes cafe")
    assert description.endswith("...") and len(description) == DESCRIPTION_MAX_LEN


@pytest.mark.parametrize("value", ALL_REASONS[1:], ids=lambda v: Reason.from_proto(int(v)).name)
def test_user_info_rejection_with_a_nasty_message(faked, value):
    reason = Reason.from_proto(int(value))
    reply = httpserve.get(faked, "/whoami", bearer(f"userinfo-{int(value)}"))
    params = assert_rejected(reply, 401, "invalid_token", reason)
    assert params["error_description"].startswith(f"{reason.proto_name}: issuer 'https://evil.example/...'")


def test_invalid_argument_with_a_nasty_message(faked):
    params = assert_rejected(httpserve.get(faked, "/any", bearer("invalid-argument")), 401, "invalid_token", None)
    assert "\r" not in params["error_description"] and "\n" not in params["error_description"]


def test_concurrent_rejections_do_not_hang(faked):
    """Many rejections at once, each with a bounded timeout: none may hang or fail."""
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            value = ALL_REASONS[1 + i % (len(ALL_REASONS) - 1)]
            reply = httpserve.get(faked, "/any", bearer(f"reason-{int(value)}"))
            assert reply.status in (401, 403)
            challenge(reply)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
