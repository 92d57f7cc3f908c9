"""examples/flask-backend through Flask's test client, with real tokens."""

from __future__ import annotations

import uuid

import pytest

import devserver
from conftest import load_flask_example

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def example():
    return load_flask_example()


@pytest.fixture(scope="module")
def http(example, dev):
    app = example.create_app({"TOKEN_VALIDATOR_ADDR": dev.grpc_addr, "TOKEN_VALIDATOR_TIMEOUT": 5})
    return app.test_client()


def test_home_is_public(http):
    resp = http.get("/api/activities/home")
    assert resp.status_code == 200
    assert resp.get_json()["activities"]


def test_me_returns_preferred_username(http, dev, bob):
    resp = http.get("/api/activities/me", headers=bearer(dev.access_token))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["preferred_username"] == "Dev User"
    assert body["username"] == "dev-user"
    assert [a["owner"] for a in body["activities"]] == ["dev-user"]
    resp = http.get("/api/activities/me", headers=bearer(bob["access_token"]))
    assert resp.status_code == 200
    assert resp.get_json()["preferred_username"] == "Bobby"


def test_me_missing_header_is_401(http):
    resp = http.get("/api/activities/me")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.get_json()["error"] == "missing_token"


def test_me_bad_token_is_401(http, dev):
    for token in ("not-a-token", devserver.with_payload(dev.access_token, username="admin")):
        resp = http.get("/api/activities/me", headers=bearer(token))
        assert resp.status_code == 401, token
        assert resp.get_json()["error"] == "invalid_token"
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_me_expired_is_401(http, expired):
    resp = http.get("/api/activities/me", headers=bearer(expired["access_token"]))
    assert resp.status_code == 401
    assert resp.get_json()["reason"] == "REASON_EXPIRED"


def test_me_revoked_is_401(http, revoked):
    resp = http.get("/api/activities/me", headers=bearer(revoked["access_token"]))
    assert resp.status_code == 401, resp.get_data(as_text=True)
    assert resp.get_json()["error"] == "invalid_token"
    assert resp.get_json()["reason"] == "REASON_REVOKED"
    assert resp.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token", error_description="REASON_REVOKED')


def test_me_id_token_is_401(http, dev):
    resp = http.get("/api/activities/me", headers=bearer(dev.id_token))
    assert resp.status_code == 401
    assert resp.get_json()["reason"] == "REASON_WRONG_TOKEN_USE"


def test_admin_route(http, dev, bob):
    resp = http.get("/api/admin/activities", headers=bearer(dev.access_token))
    assert resp.status_code == 200
    assert resp.get_json()["admin"] == "dev-user"
    resp = http.get("/api/admin/activities", headers=bearer(bob["access_token"]))
    assert resp.status_code == 403
    assert resp.get_json()["reason"] == "REASON_MISSING_GROUP"
    resp = http.get("/api/admin/activities")
    assert resp.status_code == 401


def test_admin_route_checks_revocation(http, dev):
    """The admin route uses check_revocation: a signed-out or off-boarded admin gets 401."""
    tokens = dev.mint(username=f"example-admin-{uuid.uuid4().hex[:8]}", groups=["admin"])
    dev.revoke(tokens["access_token"])
    resp = http.get("/api/admin/activities", headers=bearer(tokens["access_token"]))
    assert resp.status_code == 401, resp.get_data(as_text=True)
    assert resp.get_json()["error"] == "invalid_token"
    assert resp.get_json()["reason"] == "REASON_REVOKED"
    assert resp.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    name = f"example-admin-{uuid.uuid4().hex[:8]}"
    other = dev.mint(username=name, groups=["admin"])
    assert dev.change_user(name, "disable") == 204
    resp = http.get("/api/admin/activities", headers=bearer(other["access_token"]))
    assert resp.status_code == 401 and resp.get_json()["reason"] == "REASON_REVOKED"


def test_example_fails_closed_when_service_stops(example, doomed_dev):
    http = example.create_app({"TOKEN_VALIDATOR_ADDR": doomed_dev.grpc_addr}).test_client()
    assert http.get("/api/activities/me", headers=bearer(doomed_dev.access_token)).status_code == 200
    doomed_dev.stop()
    assert http.get("/api/activities/home").status_code == 200
    for path in ("/api/activities/me", "/api/admin/activities"):
        resp = http.get(path, headers=bearer(doomed_dev.access_token))
        assert resp.status_code == 503, path
        assert resp.get_json()["error"] == "token_validator_unavailable"
