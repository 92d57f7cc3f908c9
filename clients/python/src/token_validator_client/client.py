"""Blocking client for the token-validator gRPC service."""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional, Sequence, Tuple, TypeVar

import grpc

from ._common import (
    DEFAULT_TIMEOUT,
    ChannelOptions,
    PemSource,
    RetryPolicy,
    check_timeout,
    resolve_channel,
    user_info_request,
    validate_request,
)
from ._proto.tokenvalidator.v1 import token_validator_pb2_grpc as pb_grpc
from .errors import TokenValidatorError, TokenValidatorUnavailable, error_from_rpc
from .types import TokenUseArg, UserInfo, ValidationResult

__all__ = ["TokenValidatorClient"]

T = TypeVar("T")


class TokenValidatorClient:
    """Thread-safe, blocking client for ``tokenvalidator.v1.TokenValidator``.

    One gRPC channel is created lazily and reused by every call; every call
    has a deadline (``timeout`` seconds per attempt) and is retried with
    exponential backoff when, and only when, the service answers
    ``UNAVAILABLE``.

    Example::

        client = TokenValidatorClient("127.0.0.1:50051", timeout=1.0)
        result = client.validate_token(token, token_use="access", scopes=["openid"])
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

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        tls: Optional[bool] = None,
        root_certificates: Optional[PemSource] = None,
        client_cert: Optional[Tuple[PemSource, PemSource]] = None,
        server_name: Optional[str] = None,
        retry: Optional[RetryPolicy] = None,
        channel_options: Optional[ChannelOptions] = None,
    ) -> None:
        self._config = resolve_channel(
            target,
            tls=tls,
            root_certificates=root_certificates,
            client_cert=client_cert,
            server_name=server_name,
            channel_options=channel_options,
        )
        self.timeout = check_timeout(timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        self._lock = threading.Lock()
        self._channel: Optional[grpc.Channel] = None
        self._stub: Optional[pb_grpc.TokenValidatorStub] = None
        self._closed = False

    @property
    def target(self) -> str:
        """The gRPC target the channel connects to."""
        return self._config.target

    def _get_stub(self) -> pb_grpc.TokenValidatorStub:
        with self._lock:
            if self._closed:
                raise TokenValidatorError("the TokenValidatorClient is closed")
            if self._stub is None:
                if self._config.credentials is not None:
                    self._channel = grpc.secure_channel(
                        self._config.target, self._config.credentials, options=self._config.options
                    )
                else:
                    self._channel = grpc.insecure_channel(self._config.target, options=self._config.options)
                self._stub = pb_grpc.TokenValidatorStub(self._channel)
            return self._stub

    def _call(self, method: str, invoke: Callable[[pb_grpc.TokenValidatorStub, float], T], timeout: Optional[float]) -> T:
        deadline = check_timeout(self.timeout if timeout is None else timeout)
        stub = self._get_stub()
        attempt = 0
        while True:
            attempt += 1
            try:
                return invoke(stub, deadline)
            except grpc.RpcError as e:
                err = error_from_rpc(method, e)
                retryable = type(err) is TokenValidatorUnavailable
                if not retryable or attempt >= self.retry.max_attempts:
                    if retryable and attempt > 1:
                        err.args = (f"{err.args[0]} (after {attempt} attempts)",)
                    raise err from None
            time.sleep(self.retry.backoff(attempt))

    def validate_token(
        self,
        token: str,
        *,
        token_use: TokenUseArg = None,
        scopes: Optional[Sequence[str]] = None,
        groups: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
    ) -> ValidationResult:
        """Validate a Cognito ID or access token.

        Args:
            token: the JWT (a leading ``"Bearer "`` is accepted).
            token_use: ``"id"``, ``"access"`` or None for either.
            scopes: every one of these must be in the token's ``scope`` (all-of).
            groups: at least one of these must be in ``cognito:groups`` (any-of).
            timeout: this call's per-attempt deadline (default: the client's).

        Returns:
            A :class:`ValidationResult`; a rejected token is ``valid=False``
            with a :class:`Reason`, not an exception.

        Raises:
            InvalidTokenArgument: the token is empty or oversized.
            TokenValidatorUnavailable: the service is down or has no keys for
                the token's issuer yet (after retries).
            TokenValidatorTimeout: the deadline passed.
            TokenValidatorError: any other gRPC error.
        """
        request = validate_request(token, token_use, scopes, groups)
        response = self._call("ValidateToken", lambda stub, t: stub.ValidateToken(request, timeout=t), timeout)
        return ValidationResult.from_proto(response)

    def get_user_info(self, token: str, *, timeout: Optional[float] = None) -> UserInfo:
        """Validate the token and return the user's profile.

        Raises:
            Unauthenticated: the token is not valid; ``.reason`` says why.
            InvalidTokenArgument, TokenValidatorUnavailable,
            TokenValidatorTimeout, TokenValidatorError: as for
            :meth:`validate_token`.
        """
        request = user_info_request(token)
        response = self._call("GetUserInfo", lambda stub, t: stub.GetUserInfo(request, timeout=t), timeout)
        return UserInfo.from_proto(response)

    def close(self) -> None:
        """Close the channel. The client cannot be used afterwards."""
        with self._lock:
            self._closed = True
            channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            channel.close()

    def __enter__(self) -> "TokenValidatorClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TokenValidatorClient({self._config.target!r}, tls={self._config.tls}, timeout={self.timeout})"
