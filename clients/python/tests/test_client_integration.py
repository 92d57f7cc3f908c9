"""The blocking and asyncio clients against a real `token-validator dev` process."""

from __future__ import annotations

import time

import pytest

import devserver
from token_validator_client import (
    ERROR_DOMAIN,
    InvalidTokenArgument,
    Reason,
    RetryPolicy,
    TokenValidatorClient,
    TokenValidatorUnavailable,
    Unauthenticated,
    UserInfoSource,
)
from token_validator_client import aio

pytestmark = pytest.mark.integration

DEV_SCOPES = {"openid", "email", "profile", "aws.cognito.signin.user.admin"}


def assert_rejected(result, reason: Reason, token: str) -> None:
    assert result.valid is False, result
    assert result.reason is reason, (result.reason, result.message)
    assert result.claims is None
    assert not bool(result)
    assert token not in result.message


# --- valid tokens ----------------------------------------------------------------------


def test_valid_id_token(client, dev):
    result = client.validate_token(dev.id_token)
    assert result.valid, result
    assert result.reason is Reason.UNSPECIFIED
    c = result.claims
    assert c is not None
    assert c.token_use == "id"
    assert c.username == "dev-user"
    assert c.email == "dev-user@example.com"
    assert {"admin", "users"} <= set(c.groups)
    assert c.issuer == dev.issuer
    assert c.client_id == dev.client_id
    assert c.sub
    now = time.time()
    assert c.expires_at > now
    assert 0 < c.issued_at <= now + 5
    assert c.payload.get("iss") == dev.issuer
    assert c.payload.get("sub") == c.sub
    assert c.get("token_use") == "id"


def test_valid_access_token(client, dev):
    result = client.validate_token(dev.access_token, token_use="access")
    assert result.valid, result
    c = result.claims
    assert c is not None
    assert c.token_use == "access"
    assert c.username == "dev-user"
    assert c.client_id == dev.client_id
    assert DEV_SCOPES <= set(c.scopes)
    assert {"admin", "users"} <= set(c.groups)
    assert c.expires_at > time.time()


def test_id_token_with_expected_use_id(client, dev):
    assert client.validate_token(dev.id_token, token_use="id").valid


def test_bearer_prefix_is_accepted(client, dev):
    assert client.validate_token("Bearer " + dev.access_token).valid


def test_minted_token_claims(client, bob):
    result = client.validate_token(bob["id_token"], token_use="id")
    assert result.valid, result
    assert result.claims.username == "bob"
    assert result.claims.email == "bob@example.com"
    assert list(result.claims.groups) == ["users"]
    assert result.claims.get("custom:tenant") == "acme"
    access = client.validate_token(bob["access_token"], token_use="access")
    assert access.valid, access
    assert set(access.claims.scopes) == {"openid", "email"}


# --- rejections ------------------------------------------------------------------------


def test_expired(client, expired):
    for kind in ("id_token", "access_token"):
        assert_rejected(client.validate_token(expired[kind]), Reason.EXPIRED, expired[kind])


def test_tampered_payload_is_bad_signature(client, dev):
    forged = devserver.with_payload(dev.access_token, username="mallory")
    assert_rejected(client.validate_token(forged), Reason.BAD_SIGNATURE, forged)


def test_flipped_signature_is_bad_signature(client, dev):
    forged = devserver.with_flipped_signature(dev.id_token)
    assert_rejected(client.validate_token(forged), Reason.BAD_SIGNATURE, forged)


def test_wrong_token_use(client, dev):
    assert_rejected(client.validate_token(dev.id_token, token_use="access"), Reason.WRONG_TOKEN_USE, dev.id_token)
    assert_rejected(client.validate_token(dev.access_token, token_use="id"), Reason.WRONG_TOKEN_USE, dev.access_token)


def test_missing_scope_all_of(client, dev, bob):
    token = dev.access_token
    assert client.validate_token(token, token_use="access", scopes=["openid", "email"]).valid
    assert_rejected(
        client.validate_token(token, token_use="access", scopes=["openid", "admin:write"]), Reason.MISSING_SCOPE, token
    )
    assert_rejected(
        client.validate_token(bob["access_token"], token_use="access", scopes=["profile"]),
        Reason.MISSING_SCOPE,
        bob["access_token"],
    )


def test_missing_group_any_of(client, bob):
    token = bob["access_token"]
    assert_rejected(client.validate_token(token, groups=["admin"]), Reason.MISSING_GROUP, token)
    assert client.validate_token(token, groups=["admin", "users"]).valid
    assert client.validate_token(bob["id_token"], groups=["users"]).valid


def test_malformed(client):
    for token in ("not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30"):
        assert_rejected(client.validate_token(token), Reason.MALFORMED, token)


def test_alg_none_is_unsupported(client, dev):
    forged = devserver.with_header(dev.id_token, alg="none").rsplit(".", 1)[0] + "."
    assert_rejected(client.validate_token(forged), Reason.UNSUPPORTED_ALGORITHM, forged)


def test_unknown_kid(client, dev):
    forged = devserver.with_header(dev.access_token, kid="no-such-key")
    assert_rejected(client.validate_token(forged), Reason.UNKNOWN_KEY, forged)


def test_unknown_issuer(client, dev):
    forged = devserver.with_payload(dev.access_token, iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_nope")
    assert_rejected(client.validate_token(forged), Reason.UNKNOWN_ISSUER, forged)


def test_empty_token_is_invalid_argument(client):
    for call in (client.validate_token, client.get_user_info):
        with pytest.raises(InvalidTokenArgument) as info:
            call("")
        assert info.value.code.name == "INVALID_ARGUMENT"
        # From the ErrorInfo detail, and said in the error's text.
        assert info.value.error_reason == "TOKEN_EMPTY"
        assert info.value.error_info.domain == ERROR_DOMAIN == "tokenvalidator.v1"
        assert "TOKEN_EMPTY" in str(info.value)


@pytest.mark.parametrize("size", [20_000, 1_000_000])
def test_oversized_token_is_invalid_argument(client, dev, size):
    huge = dev.access_token + "A" * size
    with pytest.raises(InvalidTokenArgument) as info:
        client.validate_token(huge)
    with pytest.raises(InvalidTokenArgument):
        client.get_user_info(huge)


def test_oversized_token_error_reason(client, dev):
    # Under server.max_request_bytes (64 KiB) the service itself measures the token.
    huge = dev.access_token + "A" * 20_000
    for call in (client.validate_token, client.get_user_info):
        with pytest.raises(InvalidTokenArgument) as info:
            call(huge)
        assert info.value.error_reason == "TOKEN_TOO_LARGE"


def test_oversized_request_error_reason(client, dev):
    # Over server.max_request_bytes, tonic's decoder refuses the request; the
    # service rewrites that refusal with the same detail.
    with pytest.raises(InvalidTokenArgument) as info:
        client.validate_token(dev.access_token + "A" * 1_000_000)
    assert info.value.error_reason == "TOKEN_TOO_LARGE"


# --- GetUserInfo -----------------------------------------------------------------------


def test_user_info_from_access_token(client, dev):
    info = client.get_user_info(dev.access_token)
    assert info.source is UserInfoSource.COGNITO
    assert info.username == "dev-user"
    assert info.preferred_username == "Dev User"
    assert info.email == "dev-user@example.com"
    assert info.sub
    assert info.sub == client.validate_token(dev.access_token).claims.sub


def test_user_info_from_id_token(client, dev):
    info = client.get_user_info(dev.id_token)
    assert info.source is UserInfoSource.TOKEN_CLAIMS
    assert info.username == "dev-user"
    assert info.preferred_username == "Dev User"
    assert info.email == "dev-user@example.com"
    assert {"admin", "users"} <= set(info.groups)


def test_user_info_attributes(client, bob):
    for kind in ("access_token", "id_token"):
        info = client.get_user_info(bob[kind])
        assert info.username == "bob", kind
        assert info.preferred_username == "Bobby", kind
        assert info.email == "bob@example.com", kind
        assert info.attributes.get("custom:tenant") == "acme", (kind, info.attributes)


def test_user_info_rejections(client, dev, expired):
    kid = devserver.jwt_parts(dev.access_token)[0]["kid"]
    with pytest.raises(Unauthenticated) as info:
        client.get_user_info(expired["access_token"])
    err = info.value
    assert err.reason is Reason.EXPIRED
    # The reason is the ErrorInfo detail's, which also names the pool and the key.
    assert err.error_info is not None
    assert (err.error_info.domain, err.error_reason) == ("tokenvalidator.v1", "REASON_EXPIRED")
    assert (err.pool, err.kid) == ("dev", kid)
    assert dict(err.metadata) == {"pool": "dev", "kid": kid}
    assert err.details.startswith("REASON_EXPIRED")  # the message keeps the prefix for older clients
    with pytest.raises(Unauthenticated) as info:
        client.get_user_info(devserver.with_flipped_signature(dev.access_token))
    assert info.value.reason is Reason.BAD_SIGNATURE
    assert info.value.error_reason == "REASON_BAD_SIGNATURE"
    with pytest.raises(Unauthenticated) as info:
        client.get_user_info(devserver.with_header(dev.access_token, kid="no-such-key"))
    assert (info.value.reason, info.value.kid) == (Reason.UNKNOWN_KEY, "no-such-key")
    with pytest.raises(InvalidTokenArgument):
        client.get_user_info("")


def test_user_info_revoked_access_token(client, revoked):
    """Cognito's GetUser refuses a revoked access token: REVOKED, from the ErrorInfo detail."""
    with pytest.raises(Unauthenticated) as info:
        client.get_user_info(revoked["access_token"])
    err = info.value
    assert err.reason is Reason.REVOKED
    assert str(err.reason) == "REASON_REVOKED"
    assert err.error_reason == "REASON_REVOKED"
    assert err.code.name == "UNAUTHENTICATED"
    assert "REASON_REVOKED" in str(err)
    assert revoked["access_token"] not in str(err)
    # The ID token's profile comes from its own claims: Cognito is not asked, so it still answers.
    assert client.get_user_info(revoked["id_token"]).username == "revoked-user"


# --- service stopped -------------------------------------------------------------------


def test_service_stopped_raises_unavailable(doomed_dev):
    retry = RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.2)
    with TokenValidatorClient(doomed_dev.grpc_addr, timeout=2.0, retry=retry) as c:
        assert c.validate_token(doomed_dev.access_token).valid
        code = doomed_dev.stop()
        assert code == 0, f"token-validator dev exited with {code} on SIGTERM\n{doomed_dev.stderr_tail()}"
        started = time.monotonic()
        with pytest.raises(TokenValidatorUnavailable) as info:
            c.validate_token(doomed_dev.access_token)
        elapsed = time.monotonic() - started
        assert "after 3 attempts" in str(info.value)
        assert elapsed < 10
        with pytest.raises(TokenValidatorUnavailable):
            c.get_user_info(doomed_dev.access_token)


# --- asyncio ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_aio_client(dev, expired):
    async with aio.TokenValidatorClient(dev.grpc_url, timeout=5.0) as c:
        ok = await c.validate_token(dev.access_token, token_use="access", scopes=["openid"], groups=["admin"])
        assert ok.valid and ok.claims.username == "dev-user"
        bad = await c.validate_token(expired["id_token"])
        assert bad.reason is Reason.EXPIRED
        info = await c.get_user_info(dev.access_token)
        assert info.preferred_username == "Dev User"
        with pytest.raises(Unauthenticated) as err:
            await c.get_user_info(expired["access_token"])
        assert err.value.reason is Reason.EXPIRED
        assert (err.value.error_reason, err.value.pool) == ("REASON_EXPIRED", "dev")
        with pytest.raises(InvalidTokenArgument) as bad:
            await c.validate_token("")
        assert bad.value.error_reason == "TOKEN_EMPTY"


@pytest.mark.asyncio
async def test_aio_user_info_revoked(dev, revoked):
    async with aio.TokenValidatorClient(dev.grpc_addr, timeout=5.0) as c:
        with pytest.raises(Unauthenticated) as err:
            await c.get_user_info(revoked["access_token"])
        assert err.value.reason is Reason.REVOKED
        assert err.value.error_reason == "REASON_REVOKED"


@pytest.mark.asyncio
async def test_aio_service_stopped(doomed_dev):
    retry = RetryPolicy(max_attempts=2, initial_backoff=0.05)
    async with aio.TokenValidatorClient(doomed_dev.grpc_addr, timeout=2.0, retry=retry) as c:
        assert (await c.validate_token(doomed_dev.id_token)).valid
        doomed_dev.stop()
        with pytest.raises(TokenValidatorUnavailable) as info:
            await c.validate_token(doomed_dev.id_token)
        assert "after 2 attempts" in str(info.value)
