"""asyncio client for the token-validator gRPC service (``grpc.aio``).

Same arguments, results and exceptions as
:class:`token_validator_client.TokenValidatorClient`, with ``async`` methods::

    from token_validator_client.aio import TokenValidatorClient

    async with TokenValidatorClient("127.0.0.1:50051", timeout=1.0) as client:
        result = await client.validate_token(token, token_use="access", check_revocation=True)
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Sequence, TypeVar

import grpc
import grpc.aio

from ._base import BaseClient, Rpc
from .types import TokenUseArg, UserInfo, ValidationResult

__all__ = ["TokenValidatorClient"]

T = TypeVar("T")


class TokenValidatorClient(BaseClient):
    """asyncio client for ``tokenvalidator.v1.TokenValidator``.

    The ``grpc.aio`` channel is created on first use, inside the running event
    loop, and reused afterwards; use one client per event loop. See
    :class:`token_validator_client.TokenValidatorClient` for the arguments.
    """

    _grpc: Any = grpc.aio
    _repr_name = "aio.TokenValidatorClient"

    # The only parts that differ from the blocking client: an awaited call and asyncio.sleep.
    async def _send(self, rpc: Rpc[T], timeout: Optional[float]) -> T:
        stub, deadline, attempts = self._start(rpc, timeout)
        while True:
            try:
                response = await rpc.invoke(stub, deadline)
            except grpc.RpcError as e:
                delay = attempts.failed(e)  # raises when the call is not to be retried
            else:
                return rpc.convert(response)
            await asyncio.sleep(delay)

    async def validate_token(
        self,
        token: str,
        *,
        token_use: TokenUseArg = None,
        scopes: Optional[Sequence[str]] = None,
        groups: Optional[Sequence[str]] = None,
        check_revocation: bool = False,
        timeout: Optional[float] = None,
    ) -> ValidationResult:
        """Validate a token; see :meth:`token_validator_client.TokenValidatorClient.validate_token`."""
        return await self._send(
            self._validate_token_rpc(token, token_use, scopes, groups, check_revocation), timeout
        )

    async def get_user_info(self, token: str, *, timeout: Optional[float] = None) -> UserInfo:
        """Return the user's profile; see :meth:`token_validator_client.TokenValidatorClient.get_user_info`."""
        return await self._send(self._get_user_info_rpc(token), timeout)

    async def close(self) -> None:
        """Close the channel. The client cannot be used afterwards."""
        channel = self._detach_channel()
        if channel is not None:
            await channel.close()

    async def __aenter__(self) -> "TokenValidatorClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
