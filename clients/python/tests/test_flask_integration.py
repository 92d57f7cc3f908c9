"""token_validator_client.flask against a real `token-validator dev` process."""

from __future__ import annotations

import pytest
from flask import Flask, g

import devserver
from token_validator_client.flask import TokenValidator, current_claims, current_user, get_client, require_token

pytestmark = pytest.mark.integration


def make_app(addr: str) -> Flask:
    app = Flask("flask_integration_test")
    app.config.update(TOKEN_VALIDATOR_ADDR=addr, TOKEN_VALIDATOR_TIMEOUT=5, TOKEN_VALIDATOR_RETRIES=2)
    TokenValidator(app)
    app.view_ran = []  # type: ignore[attr-defined]

    @app.get("/any")
    @require_token
    def any_token():
        app.view_ran.append("any")  # type: ignore[attr-defined]
        return {"username": g.token_claims.username, "token_use": current_claims().token_use}

    @app.get("/access")
    @require_token(token_use="access", scopes=["openid", "email"])
    def access():
        app.view_ran.append("access")  # type: ignore[attr-defined]
        return {"scopes": sorted(g.token_claims.scopes)}

    @app.get("/scoped")
    @require_token(token_use="access", scopes=["openid", "admin:write"])
    def scoped():
        app.view_ran.append("scoped")  # type: ignore[attr-defined]
        return {}

    @app.get("/admins")
    @require_token(groups=["admin", "ops"])
    def admins():
        app.view_ran.append("admins")  # type: ignore[attr-defined]
        return {"groups": list(g.token_claims.groups)}

    @app.get("/me")
    @require_token(token_use="access")
    def me():
        first = current_user()
        second = current_user()
        assert first is second
        return {"preferred_username": first.preferred_username, "source": first.source.name}

    @app.get("/whoami")
    def whoami():  # no decorator: current_user() reads the header itself
        return {"username": current_user().username}

    return app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def app(dev):
    return make_app(dev.grpc_addr)


@pytest.fixture()
def http(app):
    app.view_ran.clear()
    return app.test_client()


def assert_challenge(resp, status: int, error: str, reason: str | None = None) -> None:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
    body = resp.get_json()
    assert body["error"] == error, body
    assert body["message"]
    if reason is not None:
        assert body["reason"] == reason, body
    if status in (401, 403):
        assert resp.headers["WWW-Authenticate"].startswith("Bearer"), resp.headers
        resp.headers["WWW-Authenticate"].encode("ascii")


def test_valid_tokens(http, dev, app):
    resp = http.get("/any", headers=bearer(dev.id_token))
    assert resp.status_code == 200
    assert resp.get_json() == {"username": "dev-user", "token_use": "id"}
    resp = http.get("/access", headers=bearer(dev.access_token))
    assert resp.status_code == 200
    assert {"openid", "email"} <= set(resp.get_json()["scopes"])
    resp = http.get("/admins", headers=bearer(dev.access_token))
    assert resp.status_code == 200
    assert app.view_ran == ["any", "access", "admins"]


@pytest.mark.parametrize(
    "header, error",
    [
        (None, "missing_token"),
        ("", "missing_token"),
        ("Basic ZGV2OmRldg==", "invalid_request"),
        ("Bearer", "invalid_request"),
        ("Bearer a b", "invalid_request"),
        ("Bearer tok$en", "invalid_request"),
    ],
)
def test_missing_or_malformed_header(http, app, header, error):
    headers = {} if header is None else {"Authorization": header}
    resp = http.get("/any", headers=headers)
    assert_challenge(resp, 401, error)
    if error == "missing_token":
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    else:
        assert 'error="invalid_request"' in resp.headers["WWW-Authenticate"]
    assert app.view_ran == []


def test_rejected_tokens_are_401(http, dev, expired, app):
    resp = http.get("/any", headers=bearer(expired["access_token"]))
    assert_challenge(resp, 401, "invalid_token", "REASON_EXPIRED")
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    resp = http.get("/any", headers=bearer(devserver.with_flipped_signature(dev.id_token)))
    assert_challenge(resp, 401, "invalid_token", "REASON_BAD_SIGNATURE")
    resp = http.get("/access", headers=bearer(dev.id_token))
    assert_challenge(resp, 401, "invalid_token", "REASON_WRONG_TOKEN_USE")
    resp = http.get("/any", headers=bearer("garbage"))
    assert_challenge(resp, 401, "invalid_token", "REASON_MALFORMED")
    assert app.view_ran == []


def test_missing_scope_is_403(http, dev, app):
    resp = http.get("/scoped", headers=bearer(dev.access_token))
    assert_challenge(resp, 403, "insufficient_scope", "REASON_MISSING_SCOPE")
    assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
    assert 'scope="openid admin:write"' in resp.headers["WWW-Authenticate"]
    assert app.view_ran == []


def test_missing_group_is_403(http, bob, app):
    resp = http.get("/admins", headers=bearer(bob["access_token"]))
    assert_challenge(resp, 403, "forbidden", "REASON_MISSING_GROUP")
    assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
    assert "scope=" not in resp.headers["WWW-Authenticate"]
    assert app.view_ran == []


def test_current_user_is_fetched_once_per_request(http, dev, app):
    with app.app_context():
        client = get_client()
    calls = []
    original = client.get_user_info

    def counting(token, **kw):
        calls.append(token)
        return original(token, **kw)

    client.get_user_info = counting  # type: ignore[method-assign]
    try:
        resp = http.get("/me", headers=bearer(dev.access_token))
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert resp.get_json() == {"preferred_username": "Dev User", "source": "COGNITO"}
        assert calls == [dev.access_token]
        http.get("/me", headers=bearer(dev.access_token))
        assert len(calls) == 2  # cached per request, not across requests
    finally:
        del client.get_user_info


def test_current_user_without_decorator(http, dev, expired):
    resp = http.get("/whoami", headers=bearer(dev.id_token))
    assert resp.status_code == 200
    assert resp.get_json() == {"username": "dev-user"}
    assert_challenge(http.get("/whoami"), 401, "missing_token")
    assert_challenge(http.get("/whoami", headers=bearer(expired["id_token"])), 401, "invalid_token", "REASON_EXPIRED")


def test_current_user_revoked_is_401(http, revoked):
    """A revoked access token: current_user() (GetUserInfo) raises REVOKED, answered as 401."""
    for path in ("/whoami", "/me"):
        resp = http.get(path, headers=bearer(revoked["access_token"]))
        assert_challenge(resp, 401, "invalid_token", "REASON_REVOKED")
        challenge = resp.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer error="invalid_token", error_description="REASON_REVOKED'), challenge
        assert resp.headers["Cache-Control"] == "no-store"
    # Its ID token still works: GetUserInfo answers from its claims without asking Cognito.
    resp = http.get("/whoami", headers=bearer(revoked["id_token"]))
    assert resp.status_code == 200 and resp.get_json() == {"username": "revoked-user"}


def test_service_stopped_is_503_and_fails_closed(doomed_dev):
    app = make_app(doomed_dev.grpc_addr)
    http = app.test_client()
    assert http.get("/any", headers=bearer(doomed_dev.access_token)).status_code == 200
    doomed_dev.stop()
    app.view_ran.clear()
    for path in ("/any", "/access", "/admins", "/me"):
        resp = http.get(path, headers=bearer(doomed_dev.access_token))
        assert resp.status_code == 503, (path, resp.get_data(as_text=True))
        assert resp.get_json()["error"] == "token_validator_unavailable"
    assert app.view_ran == []
    resp = http.get("/whoami", headers=bearer(doomed_dev.id_token))
    assert resp.status_code == 503
