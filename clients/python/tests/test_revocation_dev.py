"""Revocation (``check_revocation``) against a real `token-validator dev` process.

The dev pool answers ``revocation.check: on_request`` against its own issuer,
which plays Cognito: GetUser for access tokens, AdminGetUser for ID tokens,
``POST /dev/revoke`` (a token signed out) and ``POST /dev/users/{name}/disable``,
``/enable`` and ``/delete``. The dev pool caches answers for 30 seconds, so
every test uses users and tokens of its own and asks about a token only once
its state is the one the test means to see.
"""

from __future__ import annotations

import uuid

import pytest
from flask import Flask, g

from token_validator_client import Reason, aio
from token_validator_client.flask import TokenValidator, require_token

pytestmark = pytest.mark.integration


def fresh_user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_revoked_access_token_only_with_check_revocation(client, dev):
    tokens = dev.mint(username=fresh_user("signed-out"))
    dev.revoke(tokens["access_token"])
    # Offline, the signature and exp are all there is: still valid.
    assert client.validate_token(tokens["access_token"]).valid
    r = client.validate_token(tokens["access_token"], token_use="access", check_revocation=True)
    assert (r.valid, r.reason, r.claims) == (False, Reason.REVOKED, None)
    assert r.message
    # The ID token of the same sign-in (same origin_jti) is refused from now on too,
    # though its user is still enabled; without the check it still passes.
    r = client.validate_token(tokens["id_token"], check_revocation=True)
    assert (r.valid, r.reason) == (False, Reason.REVOKED), r
    assert "sign-in" in r.message
    assert client.validate_token(tokens["id_token"]).valid


def test_active_tokens_stay_valid_with_the_check(client, dev):
    tokens = dev.mint(username=fresh_user("active"))
    for kind in ("access_token", "id_token"):
        r = client.validate_token(tokens[kind], check_revocation=True)
        assert r.valid and r.reason is Reason.UNSPECIFIED, (kind, r)
        assert r.claims is not None and r.claims.username.startswith("active-")


def test_disabled_user_then_enabled(client, dev):
    name = fresh_user("disabled")
    first = dev.mint(username=name)
    second = dev.mint(username=name)  # another sign-in, asked about only after the enable
    assert dev.change_user(name, "disable") == 204
    # ID token: AdminGetUser says Enabled=false. Access token: GetUser says "User is disabled".
    r = client.validate_token(first["id_token"], token_use="id", check_revocation=True)
    assert (r.valid, r.reason) == (False, Reason.REVOKED), r
    assert "disabled" in r.message
    r = client.validate_token(first["access_token"], token_use="access", check_revocation=True)
    assert (r.valid, r.reason) == (False, Reason.REVOKED), r
    assert client.validate_token(first["access_token"]).valid  # offline: still valid
    assert dev.change_user(name, "enable") == 204
    for kind in ("id_token", "access_token"):
        r = client.validate_token(second[kind], check_revocation=True)
        assert r.valid, (kind, r)


def test_deleted_user(client, dev):
    name = fresh_user("deleted")
    tokens = dev.mint(username=name)
    assert dev.change_user(name, "delete") == 204
    assert dev.change_user(name, "delete") == 404
    assert dev.change_user(fresh_user("nobody"), "disable") == 404
    r = client.validate_token(tokens["id_token"], check_revocation=True)
    assert (r.valid, r.reason) == (False, Reason.REVOKED), r
    assert "does not exist" in r.message
    r = client.validate_token(tokens["access_token"], check_revocation=True)
    assert (r.valid, r.reason) == (False, Reason.REVOKED), r
    assert client.validate_token(tokens["access_token"]).valid


@pytest.mark.asyncio
async def test_aio_check_revocation(dev):
    tokens = dev.mint(username=fresh_user("aio"))
    dev.revoke(tokens["access_token"])
    async with aio.TokenValidatorClient(dev.grpc_addr, timeout=5) as c:
        assert (await c.validate_token(tokens["access_token"])).valid
        r = await c.validate_token(tokens["access_token"], check_revocation=True)
        assert r.reason is Reason.REVOKED and not r.valid


# --- Flask: @require_token(check_revocation=True) on an admin route --------------------


def admin_app(addr: str) -> Flask:
    app = Flask("revocation_dev")
    app.config.update(TOKEN_VALIDATOR_ADDR=addr, TOKEN_VALIDATOR_TIMEOUT=5, TOKEN_VALIDATOR_RETRIES=2)
    TokenValidator(app)
    app.view_ran = []  # type: ignore[attr-defined]

    @app.get("/admin/checked")
    @require_token(token_use="access", groups=["admin"], check_revocation=True)
    def checked():
        app.view_ran.append("checked")  # type: ignore[attr-defined]
        return {"admin": g.token_claims.username}

    @app.get("/admin/offline")
    @require_token(token_use="access", groups=["admin"])
    def offline():
        app.view_ran.append("offline")  # type: ignore[attr-defined]
        return {"admin": g.token_claims.username}

    return app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_revoked(resp) -> None:
    assert resp.status_code == 401, (resp.status_code, resp.get_data(as_text=True))
    body = resp.get_json()
    assert (body["error"], body["reason"]) == ("invalid_token", "REASON_REVOKED"), body
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer error="invalid_token", error_description="'), challenge
    challenge.encode("ascii")
    assert resp.headers["Cache-Control"] == "no-store"


def test_flask_admin_route_refuses_a_signed_out_admin(dev):
    app = admin_app(dev.grpc_addr)
    http = app.test_client()
    before = dev.mint(username=fresh_user("admin"), groups=["admin"])
    assert http.get("/admin/checked", headers=bearer(before["access_token"])).status_code == 200
    tokens = dev.mint(username=fresh_user("admin"), groups=["admin"])
    dev.revoke(tokens["access_token"])
    # The difference: without check_revocation the revoked admin still gets in (200) ...
    resp = http.get("/admin/offline", headers=bearer(tokens["access_token"]))
    assert resp.status_code == 200 and resp.get_json()["admin"].startswith("admin-")
    # ... with it, 401 REASON_REVOKED and the view never runs.
    app.view_ran.clear()  # type: ignore[attr-defined]
    assert_revoked(http.get("/admin/checked", headers=bearer(tokens["access_token"])))
    assert app.view_ran == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("change", ["disable", "delete"])
def test_flask_admin_route_refuses_an_offboarded_admin(dev, change):
    app = admin_app(dev.grpc_addr)
    http = app.test_client()
    name = fresh_user(f"admin-{change}")
    tokens = dev.mint(username=name, groups=["admin"])
    assert dev.change_user(name, change) == 204
    assert http.get("/admin/offline", headers=bearer(tokens["access_token"])).status_code == 200
    app.view_ran.clear()  # type: ignore[attr-defined]
    assert_revoked(http.get("/admin/checked", headers=bearer(tokens["access_token"])))
    assert app.view_ran == []  # type: ignore[attr-defined]
