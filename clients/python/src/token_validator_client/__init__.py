"""Python client for token-validator, the gRPC service that validates Amazon Cognito JWTs.

* :class:`TokenValidatorClient` — blocking client (``token_validator_client.aio``
  has the asyncio one).
* :mod:`token_validator_client.flask` — ``TokenValidator(app)``,
  ``@require_token(...)`` and ``current_user()`` for Flask apps.
"""

from ._common import RetryPolicy
from .client import TokenValidatorClient
from .errors import (
    ERROR_DOMAIN,
    ErrorInfo,
    InvalidTokenArgument,
    TokenValidatorError,
    TokenValidatorTimeout,
    TokenValidatorUnavailable,
    Unauthenticated,
)
from .types import Claims, Reason, TokenUse, UserInfo, UserInfoSource, ValidationResult

__version__ = "0.1.0"

__all__ = [
    "ERROR_DOMAIN",
    "Claims",
    "ErrorInfo",
    "InvalidTokenArgument",
    "Reason",
    "RetryPolicy",
    "TokenUse",
    "TokenValidatorClient",
    "TokenValidatorError",
    "TokenValidatorTimeout",
    "TokenValidatorUnavailable",
    "Unauthenticated",
    "UserInfo",
    "UserInfoSource",
    "ValidationResult",
    "__version__",
]
