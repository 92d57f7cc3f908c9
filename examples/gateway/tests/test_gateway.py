"""Each proxy example, run for real in front of an app that echoes the headers
it receives, with token-validator (dev mode) answering the proxy's question.

The proxies: nginx (auth_request), Caddy (forward_auth), Envoy (ext_authz
over gRPC), and Envoy without its header-stripping filter, as Istio's sidecar
runs ext_authz (there token-validator's own OK answer removes client copies).
"""

from __future__ import annotations

import uuid

import pytest
import requests

import harness
from harness import claims, tampered

TIMEOUT_S = 10

# Every spelling of a client's own identity headers a framework may read as
# X-Auth-* (WSGI, CGI and PHP turn both - and _ into _).
SPOOFED = {
    "X-Auth-Sub": "admin",
    "X-Auth-Username": "admin",
    "X-Auth-Groups": "admin",
    "X-Auth-Scopes": "admin",
    "X-Auth-Client-Id": "admin",
    "X-Auth-Token-Use": "admin",
    "x_auth_sub": "admin",
    "X-Auth_Groups": "admin",
    "X_Auth-Username": "admin",
}


def unique(prefix: str) -> str:
    return f"{prefix}/{uuid.uuid4().hex}"


def call(proxy, path, token=None, headers=None, method="GET"):
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return requests.request(method, proxy.url + path, headers=sent, timeout=TIMEOUT_S, allow_redirects=False)


def identity_seen(answer) -> dict[str, list[str]]:
    """The identity headers the app received, by canonical name (x_auth_sub
    counts as x-auth-sub), every copy kept."""
    seen: dict[str, list[str]] = {}
    for name, value in answer.json()["headers"]:
        canonical = name.lower().replace("_", "-")
        if canonical in harness.IDENTITY_HEADERS:
            seen.setdefault(canonical, []).append(value)
    return seen


def expected_identity(token: str) -> dict[str, list[str]]:
    c = claims(token)
    values = {
        "x-auth-sub": c.get("sub"),
        "x-auth-username": c.get("username") or c.get("cognito:username"),
        "x-auth-groups": ",".join(c.get("cognito:groups") or []),
        "x-auth-scopes": ",".join((c.get("scope") or "").split()),
        "x-auth-client-id": c.get("client_id") or c.get("aud"),
        "x-auth-token-use": c.get("token_use"),
    }
    return {name: [value] for name, value in values.items() if value}


def passes_service_body(proxy) -> bool:
    """nginx's auth_request cannot pass token-validator's body on; the others do."""
    return proxy.name != "nginx"


@pytest.mark.parametrize("kind", ["access", "id"])
def test_a_valid_token_reaches_the_app_with_the_verified_identity(proxy, service, kind):
    token = service.info[f"{kind}_token"]
    answer = call(proxy, unique("/orders"), token)
    assert answer.status_code == 200, answer.text
    assert identity_seen(answer) == expected_identity(token)
    assert identity_seen(answer)["x-auth-groups"] == ["admin,users"]
    assert identity_seen(answer)["x-auth-token-use"] == [kind]


def test_client_identity_headers_never_reach_the_app_with_another_users_token(proxy, tokens):
    answer = call(proxy, unique("/orders"), tokens.bob, SPOOFED)
    assert answer.status_code == 200, answer.text
    assert identity_seen(answer) == expected_identity(tokens.bob)


def test_client_identity_headers_never_reach_the_app_on_an_anonymous_route(proxy):
    answer = call(proxy, unique("/public"), None, SPOOFED)
    assert answer.status_code == 200, answer.text
    assert identity_seen(answer) == {}


def test_client_identity_headers_without_a_token_are_answered_401(proxy, app):
    path = unique("/orders")
    answer = call(proxy, path, None, SPOOFED)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer ")
    assert not app.reached(path)


@pytest.mark.parametrize("token", ["tampered", "garbage"])
def test_an_invalid_token_is_answered_401_with_www_authenticate(proxy, tokens, app, token):
    path = unique("/orders")
    bad = tampered(tokens.bob) if token == "tampered" else "not-a-jwt"
    answer = call(proxy, path, bad)
    assert answer.status_code == 401, answer.text
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge, challenge
    body = answer.json()
    if passes_service_body(proxy):
        assert body["error"] == "invalid_token" and body["reason"].startswith("REASON_"), body
    assert not app.reached(path)


def test_a_missing_group_is_answered_403(proxy, tokens, app):
    path = unique("/admin")
    answer = call(proxy, path, tokens.bob)
    assert answer.status_code == 403, answer.text
    assert 'error="insufficient_scope"' in answer.headers["WWW-Authenticate"]
    if passes_service_body(proxy):
        assert answer.json()["reason"] == "REASON_MISSING_GROUP", answer.text
    assert not app.reached(path)
    assert call(proxy, unique("/admin"), tokens.dev_user).status_code == 200


def test_an_anonymous_route_passes_without_a_token_for_its_methods_only(proxy, app):
    assert call(proxy, unique("/public")).status_code == 200
    path = unique("/public")
    answer = call(proxy, path, method="POST")
    assert answer.status_code == 401, "the /public route is anonymous for GET and HEAD only"
    assert not app.reached(path)


def test_a_host_route_applies_to_the_requests_host(proxy, tokens):
    for host in ("admin.example.com", "ADMIN.example.com:8443"):
        answer = call(proxy, unique("/reports"), tokens.bob, {"Host": host})
        assert answer.status_code == 403, f"Host: {host}: {answer.status_code} {answer.text}"
    assert call(proxy, unique("/reports"), tokens.dev_user, {"Host": "admin.example.com"}).status_code == 200
    assert call(proxy, unique("/reports"), tokens.bob, {"Host": "app.example.com"}).status_code == 200


def test_a_client_cannot_choose_the_route_with_forwarded_headers(proxy, tokens, app):
    path = unique("/orders")
    pretend_public = {
        "X-Forwarded-Uri": "/public/x", "X-Forwarded-Method": "GET",
        "X-Original-URI": "/public/x", "X-Original-Method": "GET",
    }
    answer = call(proxy, path, None, pretend_public)
    assert answer.status_code == 401, answer.text
    assert not app.reached(path)
    pretend_other_host = {"Host": "admin.example.com", "X-Forwarded-Host": "app.example.com"}
    answer = call(proxy, unique("/reports"), tokens.bob, pretend_other_host)
    assert answer.status_code == 403, answer.text


@pytest.mark.parametrize("proxy", ["envoy", "envoy-istio"], indirect=True)
def test_envoy_context_extensions_narrow_the_policy_of_a_route(proxy, tokens, app):
    path = unique("/ops")
    answer = call(proxy, path, tokens.bob)
    assert answer.status_code == 403, answer.text
    assert answer.json()["reason"] == "REASON_MISSING_GROUP"
    assert not app.reached(path)
    assert call(proxy, unique("/ops"), tokens.dev_user).status_code == 200


def test_token_validator_unable_to_answer_is_answered_503(proxy, service, app):
    path = unique("/orders")
    answer = call(proxy, path, service.unreachable_pool_token())
    assert answer.status_code == 503, answer.text
    assert not app.reached(path)
    if passes_service_body(proxy):
        assert answer.json()["error"] == "temporarily_unavailable", answer.text


@pytest.mark.parametrize("kind", ["nginx", "caddy", "envoy"])
def test_a_stopped_token_validator_is_answered_503(kind, binary, app, tmp_path):
    service = harness.start_service(binary, tmp_path / "token-validator")
    proxy = None
    try:
        proxy = harness.PROXIES[kind](tmp_path / kind).start(service, app)
        token = service.info["access_token"]
        assert call(proxy, unique("/orders"), token).status_code == 200
        service.stop()
        for attempt in range(2):  # a fresh connection and a pooled one
            path = unique("/orders")
            answer = call(proxy, path, token)
            assert answer.status_code == 503, f"attempt {attempt}: {answer.status_code} {answer.text}"
            assert not app.reached(path)
    finally:
        if proxy is not None:
            proxy.stop()
        service.stop()
