"""Blocking client for the token-validator gRPC service."""

from __future__ import annotations

import threading
import time
from typing import Any, ContextManager, Optional, Sequence, TypeVar

import grpc

from ._base import BaseClient, Rpc
from .types import TokenUseArg, UserInfo, ValidationResult

__all__ = ["TokenValidatorClient"]

T = TypeVar("T")


class TokenValidatorClient(BaseClient):
    """Thread-safe, blocking client for ``tokenvalidator.v1.TokenValidator``.

    One gRPC channel is created lazily and reused by every call; every call
    has a deadline (``timeout`` seconds per attempt) and is retried with
    exponential backoff when, and only when, the service answers
    ``UNAVAILABLE``.

    Example::

        client = TokenValidatorClient("127.0.0.1:50051", timeout=1.0)
        result = client.validate_token(token, token_use="access", scopes=["openid"], check_revocation=True)
        if result.valid:
            print(result.claims.username)
        else:
            print(result.reason.proto_name, result.message)

    Args:
        target: ``host:port``, ``http://host:port``, ``https://host:port`` or
            a gRPC target URI.
        timeout: deadline in seconds of each attempt (default 2.0).
        tls: use TLS. ``None`` (default) means TLS for ``https://`` targets or
            when certificates are given, plaintext otherwise.
        root_certificates: PEM bytes/text or a file path of the CA bundle to
            trust (default: the system's roots).
        client_cert: ``(certificate_chain, private_key)`` for mutual TLS, each
            PEM bytes/text or a file path.
        server_name: override the TLS server name to verify.
        retry: the :class:`RetryPolicy` (default: 3 attempts).
        channel_options: extra ``grpc`` channel options.
    """

    @staticmethod
    def _new_lock() -> ContextManager[Any]:
        return threading.Lock()

    # The only parts that differ from the asyncio client: a blocking call and time.sleep.
    def _send(self, rpc: Rpc[T], timeout: Optional[float]) -> T:
        stub, deadline, attempts = self._start(rpc, timeout)
        while True:
            try:
                response = rpc.invoke(stub, deadline)
            except grpc.RpcError as e:
                delay = attempts.failed(e)  # raises when the call is not to be retried
            else:
                return rpc.convert(response)
            time.sleep(delay)

    def validate_token(
        self,
        token: str,
        *,
        token_use: TokenUseArg = None,
        scopes: Optional[Sequence[str]] = None,
        groups: Optional[Sequence[str]] = None,
        check_revocation: bool = False,
        timeout: Optional[float] = None,
    ) -> ValidationResult:
        """Validate a Cognito ID or access token.

        Args:
            token: the JWT (a leading ``"Bearer "`` is accepted).
            token_use: ``"id"``, ``"access"`` or None for either.
            scopes: every one of these must be in the token's ``scope`` (all-of).
            groups: at least one of these must be in ``cognito:groups`` (any-of).
            check_revocation: also ask Cognito whether the token was revoked
                (user signed out everywhere, refresh token revoked, user
                disabled or deleted), where the token's pool allows it
                (``revocation.check: on_request``; ``always`` pools check
                every token, ``never`` pools ignore this). A revoked token
                is ``valid=False`` with ``Reason.REVOKED``. The service caches
                answers for the pool's ``revocation.cache_ttl_secs``.
            timeout: this call's per-attempt deadline (default: the client's).

        Returns:
            A :class:`ValidationResult`; a rejected token is ``valid=False``
            with a :class:`Reason`, not an exception.

        Raises:
            InvalidTokenArgument: the token is empty or oversized.
            TokenValidatorUnavailable: the service is down, has no keys for
                the token's issuer yet (``error_reason`` ``"KEYS_UNAVAILABLE"``)
                or, with ``check_revocation``, could not ask Cognito and the
                pool says ``on_error: deny`` (``"COGNITO_UNAVAILABLE"``); after
                retries.
            TokenValidatorTimeout: the deadline passed.
            TokenValidatorError: any other gRPC error.
        """
        return self._send(self._validate_token_rpc(token, token_use, scopes, groups, check_revocation), timeout)

    def get_user_info(self, token: str, *, timeout: Optional[float] = None) -> UserInfo:
        """Validate the token and return the user's profile.

        Raises:
            Unauthenticated: the token is not valid; ``.reason`` says why.
            InvalidTokenArgument, TokenValidatorUnavailable,
            TokenValidatorTimeout, TokenValidatorError: as for
            :meth:`validate_token`.
        """
        return self._send(self._get_user_info_rpc(token), timeout)

    def close(self) -> None:
        """Close the channel. The client cannot be used afterwards."""
        channel = self._detach_channel()
        if channel is not None:
            channel.close()

    def __enter__(self) -> "TokenValidatorClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
