"""asyncio client for the token-validator gRPC service (``grpc.aio``).

Same arguments, results and exceptions as
:class:`token_validator_client.TokenValidatorClient`, with ``async`` methods::

    from token_validator_client.aio import TokenValidatorClient

    async with TokenValidatorClient("127.0.0.1:50051", timeout=1.0) as client:
        result = await client.validate_token(token, token_use="access")
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Optional, Sequence, Tuple, TypeVar

import grpc
import grpc.aio

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
    """asyncio client for ``tokenvalidator.v1.TokenValidator``.

    The ``grpc.aio`` channel is created on first use, inside the running event
    loop, and reused afterwards; use one client per event loop. See
    :class:`token_validator_client.TokenValidatorClient` for the arguments.
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
        self._channel: Optional[grpc.aio.Channel] = None
        self._stub: Optional[pb_grpc.TokenValidatorStub] = None
        self._closed = False

    @property
    def target(self) -> str:
        return self._config.target

    def _get_stub(self) -> pb_grpc.TokenValidatorStub:
        if self._closed:
            raise TokenValidatorError("the TokenValidatorClient is closed")
        if self._stub is None:
            if self._config.credentials is not None:
                self._channel = grpc.aio.secure_channel(
                    self._config.target, self._config.credentials, options=self._config.options
                )
            else:
                self._channel = grpc.aio.insecure_channel(self._config.target, options=self._config.options)
            self._stub = pb_grpc.TokenValidatorStub(self._channel)
        return self._stub

    async def _call(
        self, method: str, invoke: Callable[[pb_grpc.TokenValidatorStub, float], Awaitable[T]], timeout: Optional[float]
    ) -> T:
        deadline = check_timeout(self.timeout if timeout is None else timeout)
        stub = self._get_stub()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await invoke(stub, deadline)
            except grpc.RpcError as e:
                err = error_from_rpc(method, e)
                retryable = type(err) is TokenValidatorUnavailable
                if not retryable or attempt >= self.retry.max_attempts:
                    if retryable and attempt > 1:
                        err.args = (f"{err.args[0]} (after {attempt} attempts)",)
                    raise err from None
            await asyncio.sleep(self.retry.backoff(attempt))

    async def validate_token(
        self,
        token: str,
        *,
        token_use: TokenUseArg = None,
        scopes: Optional[Sequence[str]] = None,
        groups: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
    ) -> ValidationResult:
        """Validate a token; see :meth:`token_validator_client.TokenValidatorClient.validate_token`."""
        request = validate_request(token, token_use, scopes, groups)
        response = await self._call(
            "ValidateToken", lambda stub, t: stub.ValidateToken(request, timeout=t), timeout
        )
        return ValidationResult.from_proto(response)

    async def get_user_info(self, token: str, *, timeout: Optional[float] = None) -> UserInfo:
        """Return the user's profile; see :meth:`token_validator_client.TokenValidatorClient.get_user_info`."""
        request = user_info_request(token)
        response = await self._call("GetUserInfo", lambda stub, t: stub.GetUserInfo(request, timeout=t), timeout)
        return UserInfo.from_proto(response)

    async def close(self) -> None:
        """Close the channel. The client cannot be used afterwards."""
        self._closed = True
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close()

    async def __aenter__(self) -> "TokenValidatorClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"aio.TokenValidatorClient({self._config.target!r}, tls={self._config.tls}, timeout={self.timeout})"
