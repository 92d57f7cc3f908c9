"""Exceptions raised by the token-validator clients.

A *rejected token* is not an exception: ``validate_token`` returns a
:class:`~token_validator_client.ValidationResult` with ``valid=False``. These
exceptions mean the service could not give that answer, or (for
``get_user_info``) that the token is not valid.

Every status the service sends about a token carries a ``google.rpc.Status``
in the ``grpc-status-details-bin`` trailer with one ``google.rpc.ErrorInfo``
(domain ``tokenvalidator.v1``). That detail, not the status message, is what
the exceptions are built from: :attr:`TokenValidatorError.error_info`,
:attr:`~TokenValidatorError.error_reason`, :attr:`~TokenValidatorError.pool`,
:attr:`~TokenValidatorError.kid` and :attr:`Unauthenticated.reason`. The
message is free text for people and is never parsed.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from .types import Reason

__all__ = [
    "ERROR_DOMAIN",
    "ErrorInfo",
    "InvalidTokenArgument",
    "TokenValidatorError",
    "TokenValidatorTimeout",
    "TokenValidatorUnavailable",
    "Unauthenticated",
    "error_from_rpc",
    "error_info_from_rpc",
]

#: The ``google.rpc.ErrorInfo`` domain of the service's statuses.
ERROR_DOMAIN = "tokenvalidator.v1"

_EMPTY: Mapping[str, str] = types.MappingProxyType({})


@dataclass(frozen=True)
class ErrorInfo:
    """The ``google.rpc.ErrorInfo`` detail of a status from token-validator.

    ``reason`` is a :class:`Reason` wire name (``"REASON_EXPIRED"``,
    ``"REASON_REVOKED"``, …) for ``UNAUTHENTICATED``, or for the statuses
    that mean the service could not answer: ``"TOKEN_EMPTY"``,
    ``"TOKEN_TOO_LARGE"`` (``INVALID_ARGUMENT``), ``"KEYS_UNAVAILABLE"``,
    ``"COGNITO_UNAVAILABLE"`` (``UNAVAILABLE``). ``metadata`` has ``"pool"``
    and ``"kid"`` when the service knows them.
    """

    reason: str
    domain: str = ERROR_DOMAIN
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.metadata, types.MappingProxyType):
            object.__setattr__(self, "metadata", types.MappingProxyType(dict(self.metadata)))

    def __repr__(self) -> str:
        return f"ErrorInfo(reason={self.reason!r}, domain={self.domain!r}, metadata={dict(self.metadata)!r})"

    def __reduce__(self) -> Any:
        # A mappingproxy does not pickle: rebuild from a plain dict (errors may cross processes).
        return (type(self), (self.reason, self.domain, dict(self.metadata)))

    @classmethod
    def from_proto(cls, msg: error_details_pb2.ErrorInfo) -> "ErrorInfo":
        return cls(reason=msg.reason, domain=msg.domain, metadata=dict(msg.metadata))


def error_info_from_rpc(err: Any) -> Optional[ErrorInfo]:
    """The service's ``ErrorInfo`` detail of a failed call (sync or aio), or None.

    None when the status has no ``grpc-status-details-bin`` trailer (an older
    server, a proxy, a client-side error such as a deadline), when the trailer
    cannot be decoded or contradicts the status it rides on (code or message
    differ: ``grpc_status.rpc_status.from_call`` refuses it), or when it holds
    no ``ErrorInfo`` of the ``tokenvalidator.v1`` domain.
    """
    if not (hasattr(err, "trailing_metadata") and hasattr(err, "code") and hasattr(err, "details")):
        return None
    try:
        status = rpc_status.from_call(err)
    except (ValueError, DecodeError):  # contradicts the status / not a google.rpc.Status
        return None
    if status is None:
        return None
    for detail in status.details:
        if not detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            continue
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.domain == ERROR_DOMAIN:
            return ErrorInfo.from_proto(info)
    return None


class TokenValidatorError(Exception):
    """Base class: the token-validator service answered with a gRPC error.

    ``code`` is the gRPC status code (None for client-side problems),
    ``details`` the status message (free text: never parse it) and
    ``error_info`` the status's :class:`ErrorInfo` detail (None when the
    service sent none).
    """

    def __init__(
        self,
        message: str,
        *,
        code: Optional[grpc.StatusCode] = None,
        details: str = "",
        error_info: Optional[ErrorInfo] = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.details = details
        self.error_info = error_info

    @property
    def error_reason(self) -> str:
        """The ``ErrorInfo`` reason, e.g. ``"REASON_EXPIRED"`` or ``"TOKEN_EMPTY"`` (``""`` if none)."""
        return self.error_info.reason if self.error_info is not None else ""

    @property
    def metadata(self) -> Mapping[str, str]:
        """The ``ErrorInfo`` metadata (``"pool"``, ``"kid"`` when known); empty if none."""
        return self.error_info.metadata if self.error_info is not None else _EMPTY

    @property
    def pool(self) -> Optional[str]:
        """The name of the user pool the status is about, when the service knows it."""
        return self.metadata.get("pool")

    @property
    def kid(self) -> Optional[str]:
        """The ``kid`` of the token's signing key, when the service knows it."""
        return self.metadata.get("kid")


class TokenValidatorUnavailable(TokenValidatorError):
    """The service could not be reached, or could not answer (``UNAVAILABLE``).

    ``error_reason`` says why when the service itself answered:
    ``"KEYS_UNAVAILABLE"`` (no keys for the token's pool yet; ``pool`` names
    it) or ``"COGNITO_UNAVAILABLE"`` (``get_user_info``, or ``validate_token``
    with ``check_revocation=True`` under the pool's ``revocation.on_error:
    deny``, could not ask Cognito; ``pool`` names it). Raised after the
    client's retries are exhausted. Callers must fail closed.
    """


class TokenValidatorTimeout(TokenValidatorUnavailable):
    """The call's deadline passed before the service answered (``DEADLINE_EXCEEDED``)."""


class InvalidTokenArgument(TokenValidatorError):
    """The request was rejected as malformed (``INVALID_ARGUMENT``).

    ``error_reason`` is ``"TOKEN_EMPTY"`` or ``"TOKEN_TOO_LARGE"``.
    """


class Unauthenticated(TokenValidatorError):
    """``GetUserInfo`` rejected the token (``UNAUTHENTICATED``); ``reason`` says why.

    ``reason`` comes from the ``ErrorInfo`` detail: ``Reason.REVOKED`` when
    Cognito no longer accepts the token, ``Reason.EXPIRED``, ... A reason
    this client does not know is ``Reason.UNRECOGNIZED``; a status without
    the detail (an older server) gives ``Reason.UNSPECIFIED``.
    """

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        code: Optional[grpc.StatusCode] = None,
        details: str = "",
        error_info: Optional[ErrorInfo] = None,
    ) -> None:
        super().__init__(message, code=code, details=details, error_info=error_info)
        self.reason = reason


def reason_from_error_info(info: Optional[ErrorInfo]) -> Reason:
    """The :class:`Reason` an ``ErrorInfo`` names: ``UNSPECIFIED`` without one,
    ``UNRECOGNIZED`` for a name this client does not know."""
    if info is None:
        return Reason.UNSPECIFIED
    name = info.reason
    if not name.startswith("REASON_") or name == "REASON_UNRECOGNIZED":
        return Reason.UNRECOGNIZED
    return Reason.from_name(name)


def error_from_rpc(method: str, err: grpc.RpcError) -> TokenValidatorError:
    """Translate a ``grpc.RpcError`` (sync or aio) into a :class:`TokenValidatorError`."""
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else None) or ""
    info = error_info_from_rpc(err)
    name = code.name if code is not None else "UNKNOWN"
    if info is not None and info.reason and not details.startswith(info.reason):
        name = f"{name} [{info.reason}]"  # the message does not say it already
    text = f"{method}: {name}: {details}" if details else f"{method}: {name}"
    kwargs: dict[str, Any] = {"code": code, "details": details, "error_info": info}
    if code == grpc.StatusCode.UNAVAILABLE:
        return TokenValidatorUnavailable(text, **kwargs)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return TokenValidatorTimeout(text, **kwargs)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidTokenArgument(text, **kwargs)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(reason_from_error_info(info), text, **kwargs)
    return TokenValidatorError(text, **kwargs)
