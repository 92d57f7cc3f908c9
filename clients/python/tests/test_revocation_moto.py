"""Revocation against moto's Cognito server: real `token-validator serve` processes, real tokens.

moto (an emulator nobody here wrote) signs the tokens, serves the JWKS and
answers GetUser (access tokens) and AdminGetUser (ID tokens); boto3 signs users
in and out, disables, enables and deletes them. Every process listens on
127.0.0.1 and is stopped at the end; every wait is bounded. Pools use
``revocation.cache_ttl_secs: 1``, so a change in Cognito must show within a
second or so (polled, up to ``SETTLE`` seconds).

Where moto is not Cognito, the tests assert what moto does and say so:
- AdminDisableUser does not revoke the user's access tokens in moto (Cognito
  does), so after AdminEnableUser moto's GetUser accepts them again; the
  service still refuses the sign-ins it saw refused while the user was
  disabled (it remembers their origin_jti);
- GetUser of a deleted user's access token answers UserNotFoundException in
  moto (Cognito: NotAuthorizedException "User does not exist."); the service
  takes both as revoked.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Iterator, TypeVar

import grpc
import pytest
from flask import Flask, g

import devserver
import motoserver
import serveproc
from token_validator_client import Reason, RetryPolicy, TokenValidatorClient, TokenValidatorUnavailable, aio
from token_validator_client.flask import TokenValidator, require_token

pytestmark = pytest.mark.integration

SETTLE = 10.0  # seconds a change may take to show (cache_ttl_secs is 1)
LOOKUPS = "token_validator_revocation_lookups_total"
CACHE_HITS = "token_validator_revocation_cache_hits_total"
FALLBACKS = "token_validator_revocation_fallbacks_total"
VALIDATIONS = "token_validator_validations_total"
ONE_TRY = RetryPolicy(max_attempts=1)

T = TypeVar("T")


def eventually(ask: Callable[[], T], ok: Callable[[T], bool], what: str, timeout: float = SETTLE) -> T:
    """Ask until ``ok(answer)``; fail after ``timeout`` seconds with the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = ask()
        if ok(answer):
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still {answer!r} after {timeout}s", pytrace=False)
        time.sleep(0.2)


def _start(start: Callable[[], T], what: str) -> T:
    try:
        return start()
    except (motoserver.MotoError, serveproc.ServeError, devserver.DevServerError) as e:
        pytest.fail(f"cannot start {what}: {e}", pytrace=False)  # fail, never skip


# --- one moto, two services: (on_request + always) and (never) -------------------------


@pytest.fixture(scope="module")
def moto() -> Iterator[motoserver.MotoServer]:
    server = _start(motoserver.start, "moto_server")
    yield server
    server.stop()
    server.remove_log()


@pytest.fixture(scope="module")
def pools(moto) -> dict[str, motoserver.Pool]:
    return {name: motoserver.Pool.create(moto, name) for name in ("checked", "always", "never")}


@pytest.fixture(scope="module")
def service(moto, pools) -> Iterator[serveproc.ServeProcess]:
    """`checked`: on_request; `always`: every token. GetUser at moto (userinfo.cognito_endpoint)."""
    config = {
        "pools": [
            pools["checked"].config("checked", check="on_request", cache_ttl_secs=1),
            pools["always"].config("always", check="always", cache_ttl_secs=1),
        ],
        # GetUserInfo keeps its own (longer) cache: the revocation check must not read it.
        "userinfo": {"cognito_endpoint": f"{moto.url}/", "cache_ttl_secs": 60},
    }
    server = _start(lambda: serveproc.start(config), "token-validator serve")
    yield server
    server.stop()
    server.remove_log()


@pytest.fixture(scope="module")
def never_service(moto, pools) -> Iterator[serveproc.ServeProcess]:
    config = {
        "pools": [pools["never"].config("never", check="never", cache_ttl_secs=1)],
        "userinfo": {"cognito_endpoint": f"{moto.url}/"},
    }
    server = _start(lambda: serveproc.start(config), "token-validator serve")
    yield server
    server.stop()
    server.remove_log()


@pytest.fixture(scope="module")
def client(service) -> Iterator[TokenValidatorClient]:
    c = TokenValidatorClient(service.grpc_addr, timeout=10, retry=ONE_TRY)
    yield c
    c.close()


def lookups(service: serveproc.ServeProcess, **labels: str) -> float:
    return service.metric(LOOKUPS, **labels)


def check(client: TokenValidatorClient, token: str, **kw: Any):
    return client.validate_token(token, check_revocation=True, **kw)


def is_revoked(result) -> bool:
    return not result.valid and result.reason is Reason.REVOKED


def test_moto_tokens_are_what_the_pool_config_says(moto, pools, client, service):
    """moto signs with the real AWS issuer and serves the JWKS at /{pool_id}/.well-known/jwks.json."""
    pool = pools["checked"]
    tokens = pool.sign_in(pool.new_user("sanity"))
    _, access, _ = devserver.jwt_parts(tokens["access_token"])
    header, id_claims, _ = devserver.jwt_parts(tokens["id_token"])
    assert access["iss"] == id_claims["iss"] == pool.issuer
    assert (access["token_use"], id_claims["token_use"], header["alg"]) == ("access", "id", "RS256")
    assert access["origin_jti"] == id_claims["origin_jti"]  # one sign-in
    before = lookups(service)
    for kind in ("access_token", "id_token"):
        r = client.validate_token(tokens[kind])
        assert r.valid, (kind, r)
    assert lookups(service) == before  # on_request, not requested: Cognito is not asked
    r = check(client, tokens["access_token"], token_use="access")
    assert r.valid and r.claims.username.startswith("sanity-"), r
    r = check(client, tokens["id_token"], token_use="id")
    assert r.valid, r
    assert lookups(service) == before + 2
    assert lookups(service, kind="get_user", result="active") >= 1
    assert lookups(service, kind="admin_get_user", result="active") >= 1


def test_global_sign_out_revokes_access_then_id_token(pools, client, service):
    pool = pools["checked"]
    user = pool.new_user("signout")
    tokens = pool.sign_in(user)
    assert check(client, tokens["access_token"]).valid
    assert check(client, tokens["id_token"]).valid
    origin_hits = service.metric(CACHE_HITS, source="origin_jti")
    revoked_lookups = lookups(service, kind="get_user", result="revoked")

    pool.global_sign_out(user)

    r = eventually(lambda: check(client, tokens["access_token"]), is_revoked, "access token after sign-out")
    assert r.claims is None and r.message
    assert lookups(service, kind="get_user", result="revoked") == revoked_lookups + 1
    # Without the check the signed-out token is still valid: only Cognito knows.
    assert client.validate_token(tokens["access_token"]).valid
    # Cognito cannot say an ID token was signed out (AdminGetUser: the user is fine), but
    # its sign-in (origin_jti) is the revoked access token's: refused from now on, at once.
    admin_revoked = lookups(service, kind="admin_get_user", result="revoked")
    r = check(client, tokens["id_token"])
    assert is_revoked(r), r
    assert "sign-in" in r.message
    assert service.metric(CACHE_HITS, source="origin_jti") >= origin_hits + 1
    assert lookups(service, kind="admin_get_user", result="revoked") == admin_revoked
    # A new sign-in of the same user is a new origin_jti: valid.
    again = pool.sign_in(user)
    assert check(client, again["access_token"]).valid
    assert check(client, again["id_token"]).valid


def test_disable_revokes_both_kinds_and_enable_restores(pools, client, service):
    pool = pools["checked"]
    user = pool.new_user("disabled")
    first = pool.sign_in(user)
    second = pool.sign_in(user)
    for tokens in (first, second):
        assert check(client, tokens["id_token"]).valid
    assert check(client, first["access_token"]).valid
    admin_revoked = lookups(service, kind="admin_get_user", result="revoked")

    pool.disable(user)

    # ID tokens first, so AdminGetUser (Enabled: false) is what refuses them, not origin_jti.
    for tokens in (first, second):
        r = eventually(lambda: check(client, tokens["id_token"]), is_revoked, "ID token of a disabled user")
        assert "disabled" in r.message, r
    assert lookups(service, kind="admin_get_user", result="revoked") >= admin_revoked + 2
    r = eventually(lambda: check(client, first["access_token"]), is_revoked, "access token of a disabled user")
    assert client.validate_token(first["access_token"]).valid  # offline: still valid

    pool.enable(user)

    # `second`'s access token was never found revoked: after the TTL both its tokens pass again.
    eventually(lambda: check(client, second["id_token"]), lambda r: r.valid, "ID token after enable")
    eventually(lambda: check(client, second["access_token"]), lambda r: r.valid, "access token after enable")
    # `first`'s sign-in was remembered as revoked (origin_jti) when its access token was
    # refused while the user was disabled: both its tokens stay refused (for as long as
    # either could be valid), as Cognito's AdminDisableUser revokes the access tokens.
    # moto does not revoke them: its GetUser accepts `first`'s access token again.
    assert moto_get_user(pool, first["access_token"]) == user
    time.sleep(1.5)  # past cache_ttl_secs
    for kind in ("access_token", "id_token"):
        r = check(client, first[kind])
        assert is_revoked(r) and "sign-in" in r.message, (kind, r)


def moto_get_user(pool: motoserver.Pool, access_token: str) -> str:
    return pool.moto.cognito().get_user(AccessToken=access_token)["Username"]


def test_delete_revokes_both_kinds(pools, client, service):
    pool = pools["checked"]
    user = pool.new_user("deleted")
    tokens = pool.sign_in(user)
    assert check(client, tokens["id_token"]).valid
    assert check(client, tokens["access_token"]).valid

    pool.delete(user)

    r = eventually(lambda: check(client, tokens["id_token"]), is_revoked, "ID token of a deleted user")
    assert "does not exist" in r.message, r  # AdminGetUser: UserNotFoundException
    # moto's GetUser answers UserNotFoundException here (Cognito: NotAuthorizedException).
    idp = pool.moto.cognito()
    with pytest.raises(idp.exceptions.UserNotFoundException):
        idp.get_user(AccessToken=tokens["access_token"])
    eventually(lambda: check(client, tokens["access_token"]), is_revoked, "access token of a deleted user")
    assert client.validate_token(tokens["access_token"]).valid


def test_always_pool_checks_without_being_asked(pools, client, service):
    pool = pools["always"]
    user = pool.new_user("always")
    tokens = pool.sign_in(user)
    before = lookups(service, kind="get_user")
    assert client.validate_token(tokens["access_token"]).valid
    assert lookups(service, kind="get_user") == before + 1
    pool.global_sign_out(user)
    eventually(lambda: client.validate_token(tokens["access_token"]), is_revoked, "always pool, no check_revocation")
    assert is_revoked(client.validate_token(tokens["id_token"]))  # same sign-in


def test_never_pool_never_calls_cognito(pools, never_service):
    pool = pools["never"]
    signed_out, disabled = pool.new_user("never-out"), pool.new_user("never-off")
    a, b = pool.sign_in(signed_out), pool.sign_in(disabled)
    pool.global_sign_out(signed_out)
    pool.disable(disabled)
    with TokenValidatorClient(never_service.grpc_addr, timeout=10, retry=ONE_TRY) as c:
        deadline = time.monotonic() + 2.5  # past cache_ttl_secs, twice
        while time.monotonic() < deadline:
            for token in (a["access_token"], a["id_token"], b["access_token"], b["id_token"]):
                r = c.validate_token(token, check_revocation=True)
                assert r.valid, r
            time.sleep(0.25)
    assert never_service.metric(LOOKUPS) == 0
    assert never_service.metric(CACHE_HITS) == 0
    text = never_service.metrics_text()
    assert f'{LOOKUPS}{{kind="get_user",result="active"' in text  # the series exist, at 0


@pytest.mark.asyncio
async def test_concurrent_checks_of_one_revoked_token_make_one_call(pools, service):
    pool = pools["checked"]
    user = pool.new_user("crowd")
    tokens = pool.sign_in(user)
    pool.global_sign_out(user)  # before any check: the first answer is "revoked"
    before = lookups(service, kind="get_user")
    async with aio.TokenValidatorClient(service.grpc_addr, timeout=30, retry=ONE_TRY) as c:
        answers = await asyncio.gather(
            *(c.validate_token(tokens["access_token"], check_revocation=True) for _ in range(1000))
        )
    assert all(is_revoked(r) for r in answers), {r.reason for r in answers}
    # One GetUser for 1000 checks (shared first lookup, then the cached answer); two at
    # most if the run outlasted the 1 s TTL on a slow machine.
    calls = lookups(service, kind="get_user") - before
    assert 1 <= calls <= 2, calls
    assert lookups(service, kind="get_user", result="throttled") == 0


# --- Cognito down: its own moto, stopped mid-test -----------------------------------------


@pytest.fixture()
def doomed() -> Iterator[dict[str, Any]]:
    """A moto of its own with pools `deny` and `allow`, and a service in front of it."""
    moto = _start(motoserver.start, "moto_server")
    service = None
    try:
        deny, allow = motoserver.Pool.create(moto, "deny"), motoserver.Pool.create(moto, "allow")
        config = {
            "pools": [
                deny.config("deny", check="on_request", cache_ttl_secs=1, on_error="deny"),
                allow.config("allow", check="on_request", cache_ttl_secs=1, on_error="allow"),
            ],
            "userinfo": {"cognito_endpoint": f"{moto.url}/", "timeout_ms": 2000},
        }
        service = _start(lambda: serveproc.start(config), "token-validator serve")
        yield {
            "moto": moto,
            "service": service,
            "deny": deny.sign_in(deny.new_user("deny")),
            "allow": allow.sign_in(allow.new_user("allow")),
        }
    finally:
        if service is not None:
            service.stop()
            service.remove_log()
        moto.stop()
        moto.remove_log()


def cognito_unavailable(c: TokenValidatorClient, token: str) -> Any:
    try:
        return c.validate_token(token, check_revocation=True)
    except TokenValidatorUnavailable as e:
        return e


def test_cognito_down_deny_is_unavailable_allow_is_valid(doomed):
    service: serveproc.ServeProcess = doomed["service"]
    deny, allow = doomed["deny"], doomed["allow"]
    with TokenValidatorClient(service.grpc_addr, timeout=15, retry=ONE_TRY) as c:
        for tokens in (deny, allow):
            for kind in ("access_token", "id_token"):
                assert c.validate_token(tokens[kind], check_revocation=True).valid
        fallbacks = service.metric(FALLBACKS)
        unavailable = service.metric(VALIDATIONS, result="error", reason="revocation_unavailable")

        doomed["moto"].stop()  # Cognito is gone (the keys were fetched already)

        for kind in ("access_token", "id_token"):
            err = eventually(
                lambda: cognito_unavailable(c, deny[kind]),
                lambda r: isinstance(r, TokenValidatorUnavailable),
                f"deny pool, {kind}, Cognito down",
            )
            assert err.code == grpc.StatusCode.UNAVAILABLE
            assert err.error_reason == "COGNITO_UNAVAILABLE" and err.pool == "deny", err.error_info
            assert err.error_info.domain == "tokenvalidator.v1"
        assert service.metric(VALIDATIONS, result="error", reason="revocation_unavailable") >= unavailable + 2
        assert service.metric(LOOKUPS, result="error") >= 2
        # The offline answer is still there for callers that do not ask.
        assert c.validate_token(deny["access_token"]).valid

        # on_error: allow answers from the offline check, counted.
        for kind in ("access_token", "id_token"):
            before = service.metric(FALLBACKS)
            r, now = eventually(
                lambda: (c.validate_token(allow[kind], check_revocation=True), service.metric(FALLBACKS)),
                lambda answer: answer[1] > before,
                f"a counted fallback ({kind})",
            )
            assert r.valid, r
        assert service.metric(FALLBACKS) >= fallbacks + 2

        # Flask in front: the deny pool's token is a 503 (fail closed), the allow pool's passes.
        app = Flask("cognito_down")
        app.config.update(TOKEN_VALIDATOR_ADDR=service.grpc_addr, TOKEN_VALIDATOR_TIMEOUT=15, TOKEN_VALIDATOR_RETRIES=1)
        TokenValidator(app)

        @app.get("/admin")
        @require_token(check_revocation=True)
        def admin():
            return {"user": g.token_claims.username}

        http = app.test_client()
        resp = http.get("/admin", headers={"Authorization": f"Bearer {deny['access_token']}"})
        assert resp.status_code == 503, resp.get_data(as_text=True)
        assert resp.get_json()["error"] == "token_validator_unavailable"
        resp = http.get("/admin", headers={"Authorization": f"Bearer {allow['access_token']}"})
        assert resp.status_code == 200, resp.get_data(as_text=True)
