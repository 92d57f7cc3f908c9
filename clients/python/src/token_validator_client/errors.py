"""Exceptions raised by the token-validator clients.

A *rejected token* is not an exception: ``validate_token`` returns a
:class:`~token_validator_client.ValidationResult` with ``valid=False``. These
exceptions mean the service could not give that answer, or (for
``get_user_info``) that the token is not valid.
"""

from __future__ import annotations

import re
from typing import Optional

import grpc

from .types import Reason

__all__ = [
    "InvalidTokenArgument",
    "TokenValidatorError",
    "TokenValidatorTimeout",
    "TokenValidatorUnavailable",
    "Unauthenticated",
    "error_from_rpc",
]

_REASON_PREFIX = re.compile(r"^\s*(REASON_[A-Z_]+)\b")


class TokenValidatorError(Exception):
    """Base class: the token-validator service answered with a gRPC error.

    ``code`` is the gRPC status code (None for client-side problems) and
    ``details`` the status message.
    """

    def __init__(self, message: str, *, code: Optional[grpc.StatusCode] = None, details: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.details = details


class TokenValidatorUnavailable(TokenValidatorError):
    """The service could not be reached, or has no keys for the issuer yet (``UNAVAILABLE``).

    Raised after the client's retries are exhausted. Callers must fail closed.
    """


class TokenValidatorTimeout(TokenValidatorUnavailable):
    """The call's deadline passed before the service answered (``DEADLINE_EXCEEDED``)."""


class InvalidTokenArgument(TokenValidatorError):
    """The request was rejected as malformed (``INVALID_ARGUMENT``): an empty or oversized token."""


class Unauthenticated(TokenValidatorError):
    """``GetUserInfo`` rejected the token (``UNAUTHENTICATED``); ``reason`` says why."""

    def __init__(self, reason: Reason, message: str, *, code: Optional[grpc.StatusCode] = None, details: str = "") -> None:
        super().__init__(message, code=code, details=details)
        self.reason = reason


def reason_from_details(details: str) -> Reason:
    """Extract the ``REASON_*`` name a status message starts with (``UNRECOGNIZED`` if none)."""
    m = _REASON_PREFIX.match(details or "")
    return Reason.from_name(m.group(1)) if m else Reason.UNRECOGNIZED


def error_from_rpc(method: str, err: grpc.RpcError) -> TokenValidatorError:
    """Translate a ``grpc.RpcError`` (sync or aio) into a :class:`TokenValidatorError`."""
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else None) or ""
    name = code.name if code is not None else "UNKNOWN"
    text = f"{method}: {name}: {details}" if details else f"{method}: {name}"
    if code == grpc.StatusCode.UNAVAILABLE:
        return TokenValidatorUnavailable(text, code=code, details=details)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return TokenValidatorTimeout(text, code=code, details=details)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidTokenArgument(text, code=code, details=details)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(reason_from_details(details), text, code=code, details=details)
    return TokenValidatorError(text, code=code, details=details)
