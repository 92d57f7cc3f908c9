"""A small Flask app protected by ``require_token``, served over real HTTP by the tests.

``create_app(addr)`` for an in-process server; ``app`` (built from
``$TOKEN_VALIDATOR_ADDR``) for ``gunicorn http_app:app``.
"""

from __future__ import annotations

import os

from flask import Flask, g

from token_validator_client.flask import TokenValidator, current_user, require_token

# A realm with every kind of character a header value cannot (or RFC 6750 must not) carry.
REALM = 'api "v1" \\ caf\u00e9 \u2026\r\nX-Injected: 1'
# A required scope the token cannot have, odd on purpose: the service quotes it in its message.
ODD_SCOPE = 'admin:write"\\\u2026\u00e9'


def create_app(addr: str) -> Flask:
    app = Flask("http_app")
    app.config.update(
        TOKEN_VALIDATOR_ADDR=addr,
        TOKEN_VALIDATOR_TIMEOUT=5,
        TOKEN_VALIDATOR_RETRIES=2,
        TOKEN_VALIDATOR_REALM=REALM,
    )
    TokenValidator(app)

    @app.get("/health")
    def health():
        return {"ok": True}

    @app.get("/any")
    @require_token
    def any_token():
        return {"username": g.token_claims.username}

    @app.get("/access")
    @require_token(token_use="access")
    def access():
        return {"username": g.token_claims.username}

    @app.get("/scoped")
    @require_token(token_use="access", scopes=["openid", ODD_SCOPE])
    def scoped():
        return {}

    @app.get("/admins")
    @require_token(groups=["admin", "ops"])
    def admins():
        return {}

    @app.get("/checked")
    @require_token(check_revocation=True)
    def checked():
        return {"username": g.token_claims.username}

    @app.get("/whoami")
    def whoami():  # no decorator: current_user() validates through GetUserInfo
        return {"username": current_user().username}

    return app


if os.environ.get("TOKEN_VALIDATOR_ADDR"):
    app = create_app(os.environ["TOKEN_VALIDATOR_ADDR"])
