"""Flask integration: protect routes with token-validator.

Example::

    from flask import Flask, g
    from token_validator_client.flask import TokenValidator, current_user, require_token

    app = Flask(__name__)
    app.config["TOKEN_VALIDATOR_ADDR"] = "127.0.0.1:50051"
    TokenValidator(app)

    @app.get("/api/me")
    @require_token(token_use="access", scopes=["openid"])
    def me():
        return {"sub": g.token_claims.sub, "name": current_user().preferred_username}

    @app.post("/api/admin/users")
    @require_token(token_use="access", groups=["admin"], check_revocation=True)
    def add_user():  # a signed-out, disabled or deleted admin is refused (401)
        ...

Configuration (``app.config``, falling back to the process environment, then
to the default):

=====================================  =========================================
``TOKEN_VALIDATOR_ADDR``               target, default ``127.0.0.1:50051``
``TOKEN_VALIDATOR_TIMEOUT``            per-attempt deadline in seconds, default 2
``TOKEN_VALIDATOR_RETRIES``            attempts on ``UNAVAILABLE``, default 3
``TOKEN_VALIDATOR_TLS``                ``true``/``false``; default: auto
``TOKEN_VALIDATOR_ROOT_CERTIFICATES``  CA bundle (path or PEM)
``TOKEN_VALIDATOR_CLIENT_CERT``        client certificate chain for mTLS
``TOKEN_VALIDATOR_CLIENT_KEY``         client private key for mTLS
``TOKEN_VALIDATOR_SERVER_NAME``        TLS server name override
``TOKEN_VALIDATOR_REALM``              ``realm`` of ``WWW-Authenticate``
``TOKEN_VALIDATOR_CHECK_REVOCATION``   default of ``require_token(check_revocation=…)``, default off
``TOKEN_VALIDATOR_ERROR_HANDLERS``     register JSON error handlers (default on)
=====================================  =========================================

Responses: a missing or malformed ``Authorization`` header or a rejected token
(a revoked one too: ``"reason": "REASON_REVOKED"``) is ``401`` with
``WWW-Authenticate: Bearer …``; a missing scope or group is
``403`` with ``WWW-Authenticate: Bearer error="insufficient_scope", …``; a
service that cannot be reached, or that cannot ask Cognito whether a token
was revoked (``COGNITO_UNAVAILABLE``), is ``503`` (fail closed: the view never
runs).
Bodies are JSON: ``{"error": …, "message": …, "reason": …}``. The
``WWW-Authenticate`` value is built by :func:`www_authenticate` (RFC 6750
section 3): always printable ASCII, so the service's free-text messages
(which may hold "…", quotes or non-ASCII) never break the response.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from typing import Any, Callable, Optional, Sequence, TypeVar, Union, cast, overload

from flask import Flask, Response, current_app, g, has_request_context, jsonify, request

from ._challenge import www_authenticate
from ._common import DEFAULT_TIMEOUT, RetryPolicy
from .client import TokenValidatorClient
from .errors import (
    InvalidTokenArgument,
    TokenValidatorError,
    TokenValidatorUnavailable,
    Unauthenticated,
)
from .types import Claims, Reason, TokenUse, TokenUseArg, UserInfo, ValidationResult

__all__ = [
    "BearerTokenError",
    "TokenValidator",
    "current_claims",
    "current_user",
    "get_client",
    "require_token",
    "www_authenticate",
]

F = TypeVar("F", bound=Callable[..., Any])

EXTENSION_KEY = "token_validator"
_USER_INFO_KEY = "_token_validator_user_info"
# RFC 6750 b64token.
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class BearerTokenError(Exception):
    """The request has no usable ``Authorization: Bearer`` header."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error  # "missing_token" or "invalid_request"
        self.message = message


def _setting(app: Flask, key: str, default: Any = None) -> Any:
    if key in app.config and app.config[key] is not None:
        return app.config[key]
    env = os.environ.get(key)
    if env is not None and env != "":
        return env
    return default


def _as_bool(value: Any, key: str) -> Optional[bool]:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in ("", "auto"):
        return None
    raise ValueError(f"{key} must be true or false, not {value!r}")


class _State:
    def __init__(self, ext: "TokenValidator", app: Flask) -> None:
        self.ext = ext
        self.app = app
        self.lock = threading.Lock()
        self.client: Optional[TokenValidatorClient] = None
        self.pid = 0

    def get_client(self) -> TokenValidatorClient:
        if self.ext._client is not None:
            return self.ext._client
        pid = os.getpid()
        with self.lock:
            # A gRPC channel must not cross a fork (gunicorn --preload): one per process.
            if self.client is None or self.pid != pid:
                self.client = self.ext._make_client(self.app)
                self.pid = pid
            return self.client


class TokenValidator:
    """The Flask extension: ``TokenValidator(app)`` or ``TokenValidator().init_app(app)``.

    Args:
        app: the Flask app (or call :meth:`init_app` later).
        client: use this client instead of building one from the config.
    """

    def __init__(self, app: Optional[Flask] = None, *, client: Optional[TokenValidatorClient] = None) -> None:
        self._client = client
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the extension (and its JSON error handlers) on ``app``."""
        # Validate the configuration now, so a typo fails at start-up, not on the first request.
        if self._client is None:
            self._make_client(app).close()
        _default_check_revocation(app)
        app.extensions[EXTENSION_KEY] = _State(self, app)
        if _as_bool(_setting(app, "TOKEN_VALIDATOR_ERROR_HANDLERS", True), "TOKEN_VALIDATOR_ERROR_HANDLERS"):
            app.register_error_handler(TokenValidatorError, _handle_error)
            app.register_error_handler(BearerTokenError, _handle_error)

    @staticmethod
    def _make_client(app: Flask) -> TokenValidatorClient:
        cert = _setting(app, "TOKEN_VALIDATOR_CLIENT_CERT")
        key = _setting(app, "TOKEN_VALIDATOR_CLIENT_KEY")
        if (cert is None) != (key is None):
            raise ValueError("TOKEN_VALIDATOR_CLIENT_CERT and TOKEN_VALIDATOR_CLIENT_KEY go together")
        retries = int(_setting(app, "TOKEN_VALIDATOR_RETRIES", RetryPolicy().max_attempts))
        return TokenValidatorClient(
            str(_setting(app, "TOKEN_VALIDATOR_ADDR", "127.0.0.1:50051")),
            timeout=float(_setting(app, "TOKEN_VALIDATOR_TIMEOUT", DEFAULT_TIMEOUT)),
            tls=_as_bool(_setting(app, "TOKEN_VALIDATOR_TLS"), "TOKEN_VALIDATOR_TLS"),
            root_certificates=_setting(app, "TOKEN_VALIDATOR_ROOT_CERTIFICATES"),
            client_cert=(cert, key) if cert is not None else None,
            server_name=_setting(app, "TOKEN_VALIDATOR_SERVER_NAME"),
            retry=RetryPolicy(max_attempts=retries),
        )

    def client_for(self, app: Flask) -> TokenValidatorClient:
        return _state(app).get_client()


def _default_check_revocation(app: Flask) -> bool:
    """``TOKEN_VALIDATOR_CHECK_REVOCATION``: what ``require_token`` does when not told."""
    key = "TOKEN_VALIDATOR_CHECK_REVOCATION"
    return bool(_as_bool(_setting(app, key, False), key))


def _state(app: Optional[Flask] = None) -> _State:
    app = app or current_app
    state = app.extensions.get(EXTENSION_KEY)
    if state is None:
        raise RuntimeError("token_validator_client.flask: call TokenValidator(app) or init_app(app) first")
    return cast(_State, state)


def get_client() -> TokenValidatorClient:
    """The current app's :class:`TokenValidatorClient` (one per app and process)."""
    return _state().get_client()


def bearer_token() -> str:
    """Return the token of the current request's ``Authorization: Bearer`` header.

    Raises:
        BearerTokenError: the header is missing or is not ``Bearer <token>``.
    """
    header = request.headers.get("Authorization", "")
    if not header.strip():
        raise BearerTokenError("missing_token", "the request has no Authorization header")
    parts = header.split()
    if parts[0].lower() != "bearer":
        raise BearerTokenError("invalid_request", "the Authorization header must use the Bearer scheme")
    if len(parts) != 2:
        raise BearerTokenError("invalid_request", "the Authorization header must be 'Bearer <token>'")
    if not _B64TOKEN.match(parts[1]):
        raise BearerTokenError("invalid_request", "the bearer token contains characters a token cannot have")
    return parts[1]


def _error_response(
    status: int,
    error: str,
    message: str,
    *,
    reason: Optional[Reason] = None,
    challenge_error: Optional[str] = None,
    scope: Optional[Sequence[str]] = None,
) -> Response:
    body: dict[str, Any] = {"error": error, "message": message}
    if reason is not None:
        body["reason"] = reason.proto_name
    resp = jsonify(body)
    resp.status_code = status
    if status in (401, 403):
        realm = _setting(current_app, "TOKEN_VALIDATOR_REALM")
        # Always printable ASCII, whatever the service's message holds ("…", quotes, CR/LF, ...).
        resp.headers["WWW-Authenticate"] = www_authenticate(
            realm=str(realm) if realm else None,
            error=challenge_error,
            error_description=message if challenge_error else None,
            scope=scope,
        )
    if status == 503:
        resp.headers["Retry-After"] = "1"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _response_for(exc: Exception) -> Response:
    if isinstance(exc, BearerTokenError):
        # A missing token gets a bare challenge (RFC 6750 section 3.1).
        challenge = None if exc.error == "missing_token" else "invalid_request"
        return _error_response(401, exc.error, exc.message, challenge_error=challenge)
    if isinstance(exc, Unauthenticated):
        return _error_response(
            401, "invalid_token", exc.details or str(exc), reason=exc.reason, challenge_error="invalid_token"
        )
    if isinstance(exc, InvalidTokenArgument):
        return _error_response(
            401, "invalid_token", exc.details or "the token was refused", challenge_error="invalid_token"
        )
    if isinstance(exc, TokenValidatorUnavailable):
        current_app.logger.warning("token-validator unavailable: %s", exc)
        return _error_response(503, "token_validator_unavailable", "the token validation service is unavailable")
    current_app.logger.error("token-validator error: %s", exc)
    return _error_response(502, "token_validator_error", "the token validation service failed")


def _handle_error(exc: Exception) -> Response:
    return _response_for(exc)


def _rejection_response(result: ValidationResult, scopes: Sequence[str]) -> Response:
    if result.reason == Reason.MISSING_SCOPE:
        return _error_response(
            403,
            "insufficient_scope",
            result.message or "the token lacks a required scope",
            reason=result.reason,
            challenge_error="insufficient_scope",
            scope=scopes,
        )
    if result.reason == Reason.MISSING_GROUP:
        # Not a scope, but RFC 6750's code for "the token lacks the privileges" all the same.
        return _error_response(
            403,
            "forbidden",
            result.message or "the user is in none of the required groups",
            reason=result.reason,
            challenge_error="insufficient_scope",
        )
    return _error_response(
        401,
        "invalid_token",
        result.message or "the token is not valid",
        reason=result.reason,
        challenge_error="invalid_token",
    )


@overload
def require_token(view: F) -> F: ...


@overload
def require_token(
    view: None = None,
    *,
    token_use: TokenUseArg = None,
    scopes: Optional[Sequence[str]] = None,
    groups: Optional[Sequence[str]] = None,
    check_revocation: Optional[bool] = None,
) -> Callable[[F], F]: ...


def require_token(
    view: Optional[F] = None,
    *,
    token_use: TokenUseArg = None,
    scopes: Optional[Sequence[str]] = None,
    groups: Optional[Sequence[str]] = None,
    check_revocation: Optional[bool] = None,
) -> Union[F, Callable[[F], F]]:
    """Protect a view: only requests with a valid bearer token reach it.

    Use as ``@require_token`` or ``@require_token(token_use="access",
    scopes=[...], groups=[...])``. ``scopes`` are all required; ``groups``
    are any-of. On success ``g.token`` (the raw token), ``g.token_claims``
    (:class:`Claims`) and ``g.token_validation`` (:class:`ValidationResult`)
    are set before the view runs.

    ``check_revocation=True`` also asks Cognito, through the service, whether
    the token was revoked (user signed out everywhere, refresh token revoked,
    user disabled or deleted), where the token's pool allows it
    (``revocation.check: on_request``): use it on the routes where a
    signed-out or off-boarded user must be refused before ``exp`` (admin
    routes). ``None`` (the default) takes ``TOKEN_VALIDATOR_CHECK_REVOCATION``
    (off unless set).

    Responses when the view does not run: 401 (missing/malformed header,
    rejected token, ``REASON_REVOKED`` included), 403 (missing scope or
    group), 503 (service unavailable, or it could not ask Cognito:
    ``COGNITO_UNAVAILABLE``), 502 (other service errors).
    """
    use = TokenUse.parse(token_use)
    scope_list = tuple(scopes or ())
    group_list = tuple(groups or ())
    for name, seq in (("scopes", scopes), ("groups", groups)):
        if isinstance(seq, str):
            raise TypeError(f"require_token: {name} must be a list of strings")
    if check_revocation is not None and not isinstance(check_revocation, bool):
        raise TypeError("require_token: check_revocation must be True, False or None")

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                token = bearer_token()
                check = (
                    check_revocation if check_revocation is not None else _default_check_revocation(current_app)
                )
                result = get_client().validate_token(
                    token, token_use=use, scopes=scope_list, groups=group_list, check_revocation=check
                )
            except (BearerTokenError, TokenValidatorError) as exc:
                return _response_for(exc)
            if not result.valid or result.claims is None:
                return _rejection_response(result, scope_list)
            g.token = token
            g.token_validation = result
            g.token_claims = result.claims
            return current_app.ensure_sync(fn)(*args, **kwargs)

        return cast(F, wrapper)

    if view is not None:
        return decorate(view)
    return decorate


def current_claims() -> Claims:
    """The verified claims of the current request (set by :func:`require_token`)."""
    claims = g.get("token_claims")
    if claims is None:
        raise RuntimeError("current_claims() needs a view decorated with @require_token")
    return cast(Claims, claims)


def current_user() -> UserInfo:
    """The current user's profile from ``GetUserInfo``, fetched once per request.

    Uses the token validated by :func:`require_token` (or, outside such a
    view, the request's bearer token) and caches the answer on ``flask.g``.

    Raises:
        Unauthenticated, BearerTokenError, TokenValidatorUnavailable, ...:
            turned into 401/503 JSON responses by the handlers that
            :class:`TokenValidator` registers.
    """
    if not has_request_context():
        raise RuntimeError("current_user() needs a request context")
    cached = g.get(_USER_INFO_KEY)
    if cached is not None:
        return cast(UserInfo, cached)
    token = g.get("token") or bearer_token()
    info = get_client().get_user_info(token)
    setattr(g, _USER_INFO_KEY, info)
    return info
