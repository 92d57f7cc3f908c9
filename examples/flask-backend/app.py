"""A small Flask API protected by token-validator.

Routes:
    GET /api/activities/home   public
    GET /api/activities/me     any valid access token; answers with the user's
                               preferred_username (from GetUserInfo)
    GET /api/admin/activities  access token of a user in the "admin" group,
                               checked against Cognito on every request
                               (check_revocation: a signed-out, disabled or
                               deleted admin is refused before the token expires)

Run it (see README.md):
    TOKEN_VALIDATOR_ADDR=127.0.0.1:50051 flask --app app run
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from flask import Flask, g

from token_validator_client.flask import TokenValidator, current_user, require_token

ACTIVITIES = [
    {"id": 1, "title": "Morning run", "owner": "dev-user"},
    {"id": 2, "title": "Team retro", "owner": "bob"},
]


def create_app(config: Optional[Mapping[str, Any]] = None) -> Flask:
    app = Flask(__name__)
    app.config["TOKEN_VALIDATOR_ADDR"] = os.environ.get("TOKEN_VALIDATOR_ADDR", "127.0.0.1:50051")
    app.config["TOKEN_VALIDATOR_TIMEOUT"] = float(os.environ.get("TOKEN_VALIDATOR_TIMEOUT", "2"))
    if config:
        app.config.update(config)
    TokenValidator(app)

    @app.get("/api/activities/home")
    def home() -> Any:
        return {"activities": ACTIVITIES}

    @app.get("/api/activities/me")
    @require_token(token_use="access")
    def me() -> Any:
        user = current_user()
        mine = [a for a in ACTIVITIES if a["owner"] == user.username]
        return {
            "preferred_username": user.preferred_username,
            "username": user.username,
            "sub": g.token_claims.sub,
            "activities": mine,
        }

    # Admin routes also ask Cognito whether the token was revoked (the pool must
    # allow it: revocation.check: on_request; the dev pool does). Offline
    # validation cannot see a sign-out or an off-boarding before `exp`.
    @app.get("/api/admin/activities")
    @require_token(token_use="access", groups=["admin"], check_revocation=True)
    def admin_activities() -> Any:
        return {"activities": ACTIVITIES, "admin": g.token_claims.username}

    return app


app = create_app()
