"""Typed results of the token-validator API (``tokenvalidator.v1``).

These are plain frozen dataclasses and enums, so application code never has
to touch generated protobuf classes.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

from ._proto.tokenvalidator.v1 import token_validator_pb2 as pb

__all__ = [
    "Claims",
    "Reason",
    "TokenUse",
    "TokenUseArg",
    "UserInfo",
    "UserInfoSource",
    "ValidationResult",
]

# Presentation types of format() that make sense for a number only.
_NUMERIC_FORMAT_TYPES = frozenset("bcdeEfFgGnoxX%")


class Reason(enum.IntEnum):
    """Why a token was rejected (``tokenvalidator.v1.Reason`` without the prefix).

    ``UNSPECIFIED`` means the token is valid (on an
    :class:`~token_validator_client.Unauthenticated` error: the service gave
    no reason). ``UNRECOGNIZED`` stands for a value this client version does
    not know (a newer server).

    It is an ``IntEnum`` (``Reason.EXPIRED == 6``, ``Reason.EXPIRED.name ==
    "EXPIRED"``), but ``str()`` and formatting give the wire name, so logs and
    f-strings read ``REASON_EXPIRED``, not ``6``; ``f"{reason:d}"`` still
    gives the number.
    """

    UNRECOGNIZED = -1
    UNSPECIFIED = 0
    MALFORMED = 1
    UNSUPPORTED_ALGORITHM = 2
    UNKNOWN_ISSUER = 3
    UNKNOWN_KEY = 4
    BAD_SIGNATURE = 5
    EXPIRED = 6
    NOT_YET_VALID = 7
    WRONG_CLIENT = 8
    WRONG_TOKEN_USE = 9
    MISSING_SCOPE = 10
    MISSING_GROUP = 11
    #: Cognito no longer accepts the token or its user (signed out, token
    #: revoked, user disabled or deleted). Only a call that asks Cognito can
    #: see it: ``validate_token(..., check_revocation=True)`` (where the
    #: pool's ``revocation.check`` allows it) and ``GetUserInfo`` on an access
    #: token.
    REVOKED = 12

    @property
    def proto_name(self) -> str:
        """The name used on the wire and in status messages, e.g. ``"REASON_EXPIRED"``."""
        return f"REASON_{self.name}"

    def __str__(self) -> str:
        return self.proto_name

    def __format__(self, format_spec: str) -> str:
        # IntEnum formats as its number (and from Python 3.11 also prints as
        # one): format the name, unless a numeric presentation type ("d",
        # "x", ...) is asked for.
        if format_spec and format_spec[-1] in _NUMERIC_FORMAT_TYPES:
            return int.__format__(self, format_spec)
        return format(self.proto_name, format_spec)

    @classmethod
    def from_proto(cls, value: int) -> "Reason":
        try:
            return cls(value)
        except ValueError:
            return cls.UNRECOGNIZED

    @classmethod
    def from_name(cls, name: str) -> "Reason":
        """Parse ``"REASON_EXPIRED"`` or ``"EXPIRED"``; unknown names give ``UNRECOGNIZED``."""
        key = name.strip().upper()
        if key.startswith("REASON_"):
            key = key[len("REASON_") :]
        try:
            return cls[key]
        except KeyError:
            return cls.UNRECOGNIZED


class TokenUse(str, enum.Enum):
    """Which kind of Cognito token the caller accepts."""

    ANY = "any"
    ID = "id"
    ACCESS = "access"

    def to_proto(self) -> int:
        return {
            TokenUse.ANY: pb.TOKEN_USE_UNSPECIFIED,
            TokenUse.ID: pb.TOKEN_USE_ID,
            TokenUse.ACCESS: pb.TOKEN_USE_ACCESS,
        }[self]

    @classmethod
    def parse(cls, value: "TokenUseArg") -> "TokenUse":
        """Accept a ``TokenUse``, ``"id"``, ``"access"``, ``"any"`` or ``None`` (any)."""
        if value is None:
            return cls.ANY
        if isinstance(value, TokenUse):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            raise ValueError(f"token_use must be 'id', 'access' or None, not {value!r}") from None


TokenUseArg = Union[TokenUse, str, None]


class UserInfoSource(enum.IntEnum):
    """Where a :class:`UserInfo` came from."""

    UNRECOGNIZED = -1
    UNSPECIFIED = 0
    #: The verified claims of the (ID) token itself.
    TOKEN_CLAIMS = 1
    #: Cognito's GetUser API, called with the access token.
    COGNITO = 2

    @classmethod
    def from_proto(cls, value: int) -> "UserInfoSource":
        try:
            return cls(value)
        except ValueError:
            return cls.UNRECOGNIZED


@dataclass(frozen=True)
class Claims:
    """The verified claims of a token.

    ``payload`` is the whole verified JWT payload (so ``custom:*`` attributes
    are reachable: ``claims.payload.get("custom:tenant")``).
    """

    sub: str
    issuer: str
    token_use: str  #: ``"id"`` or ``"access"``
    client_id: str
    username: str
    groups: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    expires_at: int = 0
    issued_at: int = 0
    auth_time: int = 0
    jti: str = ""
    origin_jti: str = ""
    email: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def get(self, name: str, default: Any = None) -> Any:
        """Return a raw claim from the verified payload, e.g. ``claims.get("custom:tenant")``."""
        return self.payload.get(name, default)

    @classmethod
    def from_proto(cls, msg: pb.Claims) -> "Claims":
        payload: dict[str, Any] = {}
        if msg.json:
            try:
                parsed = json.loads(msg.json)
                if isinstance(parsed, dict):
                    payload = parsed
            except ValueError:
                payload = {}
        return cls(
            sub=msg.sub,
            issuer=msg.issuer,
            token_use=msg.token_use,
            client_id=msg.client_id,
            username=msg.username,
            groups=tuple(msg.groups),
            scopes=tuple(msg.scopes),
            expires_at=int(msg.expires_at),
            issued_at=int(msg.issued_at),
            auth_time=int(msg.auth_time),
            jti=msg.jti,
            origin_jti=msg.origin_jti,
            email=msg.email,
            payload=payload,
        )


@dataclass(frozen=True)
class ValidationResult:
    """The answer of ``ValidateToken``.

    A rejected token is a normal answer: ``valid`` is False, ``reason`` says
    why and ``claims`` is None. ``bool(result)`` is ``result.valid``.
    """

    valid: bool
    reason: Reason
    message: str = ""
    claims: Optional[Claims] = None

    def __bool__(self) -> bool:
        return self.valid

    @classmethod
    def from_proto(cls, msg: pb.ValidateTokenResponse) -> "ValidationResult":
        claims = Claims.from_proto(msg.claims) if msg.valid and msg.HasField("claims") else None
        return cls(
            valid=bool(msg.valid),
            reason=Reason.from_proto(msg.reason),
            message=msg.message,
            claims=claims,
        )


@dataclass(frozen=True)
class UserInfo:
    """The user's profile, as answered by ``GetUserInfo``."""

    sub: str
    username: str
    preferred_username: str = ""
    email: str = ""
    email_verified: bool = False
    phone_number: str = ""
    phone_number_verified: bool = False
    name: str = ""
    given_name: str = ""
    family_name: str = ""
    groups: tuple[str, ...] = ()
    #: Every other user attribute, ``custom:*`` included.
    attributes: Mapping[str, str] = field(default_factory=dict)
    source: UserInfoSource = UserInfoSource.UNSPECIFIED

    @classmethod
    def from_proto(cls, msg: pb.GetUserInfoResponse) -> "UserInfo":
        return cls(
            sub=msg.sub,
            username=msg.username,
            preferred_username=msg.preferred_username,
            email=msg.email,
            email_verified=bool(msg.email_verified),
            phone_number=msg.phone_number,
            phone_number_verified=bool(msg.phone_number_verified),
            name=msg.name,
            given_name=msg.given_name,
            family_name=msg.family_name,
            groups=tuple(msg.groups),
            attributes=dict(msg.attributes),
            source=UserInfoSource.from_proto(msg.source),
        )
