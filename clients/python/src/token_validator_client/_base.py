"""The core shared by the blocking and the asyncio client.

Everything that does not wait lives here: configuration, channel and stub
creation, request building, the retry decisions and the conversion of
responses and errors. :mod:`.client` and :mod:`.aio` only add the waiting
part (a blocking or an awaited call, ``time.sleep`` or ``asyncio.sleep``),
as httpx does with ``Client`` and ``AsyncClient``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Generic, Optional, Sequence, Tuple, TypeVar

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

T = TypeVar("T")


@dataclass(frozen=True)
class Rpc(Generic[T]):
    """One call to make: the method, its request and how to convert the answer."""

    method: str  #: ``"ValidateToken"`` or ``"GetUserInfo"``
    request: Any
    convert: Callable[[Any], T]

    def invoke(self, stub: pb_grpc.TokenValidatorStub, timeout: float) -> Any:
        """Start the call: the response (sync stub) or an awaitable call (``grpc.aio`` stub)."""
        return getattr(stub, self.method)(self.request, timeout=timeout)


class Attempts:
    """The retry decisions of one call, under a :class:`RetryPolicy`.

    ``failed(err)`` is called with each ``grpc.RpcError``: it returns the
    seconds to wait before the next attempt, or raises the translated
    :class:`TokenValidatorError` when the call must not (or can no longer)
    be retried. Only ``UNAVAILABLE`` is retried.
    """

    def __init__(self, method: str, policy: RetryPolicy) -> None:
        self.method = method
        self.policy = policy
        self.attempt = 0

    def failed(self, rpc_error: grpc.RpcError) -> float:
        self.attempt += 1
        err = error_from_rpc(self.method, rpc_error)
        retryable = type(err) is TokenValidatorUnavailable
        if not retryable or self.attempt >= self.policy.max_attempts:
            if retryable and self.attempt > 1:
                err.args = (f"{err.args[0]} (after {self.attempt} attempts)",)
            raise err from None
        return self.policy.backoff(self.attempt)


class BaseClient:
    """Configuration, channel, requests and retry decisions of both clients.

    Subclasses set ``_grpc`` (the module whose ``secure_channel`` and
    ``insecure_channel`` make the channel: ``grpc`` or ``grpc.aio``) and may
    override ``_new_lock``, and implement the calls that wait.
    """

    _grpc: Any = grpc
    _repr_name = "TokenValidatorClient"

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
        self._lock = self._new_lock()
        self._channel: Any = None
        self._stub: Optional[pb_grpc.TokenValidatorStub] = None
        self._closed = False

    @staticmethod
    def _new_lock() -> ContextManager[Any]:
        """Guards the lazy channel creation. asyncio needs none: creating it never awaits."""
        return contextlib.nullcontext()

    @property
    def target(self) -> str:
        """The gRPC target the channel connects to."""
        return self._config.target

    # --- channel -----------------------------------------------------------------------

    def _get_stub(self) -> pb_grpc.TokenValidatorStub:
        """The stub on the client's one channel, created on first use."""
        with self._lock:
            if self._closed:
                raise TokenValidatorError("the TokenValidatorClient is closed")
            if self._stub is None:
                cfg = self._config
                if cfg.credentials is not None:
                    self._channel = self._grpc.secure_channel(cfg.target, cfg.credentials, options=cfg.options)
                else:
                    self._channel = self._grpc.insecure_channel(cfg.target, options=cfg.options)
                self._stub = pb_grpc.TokenValidatorStub(self._channel)
            return self._stub

    def _detach_channel(self) -> Any:
        """Mark the client closed and hand over its channel (or None) to be closed."""
        with self._lock:
            self._closed = True
            channel, self._channel, self._stub = self._channel, None, None
        return channel

    # --- calls -------------------------------------------------------------------------

    def _start(self, rpc: Rpc[Any], timeout: Optional[float]) -> Tuple[pb_grpc.TokenValidatorStub, float, Attempts]:
        """What every call needs before its first attempt: stub, per-attempt deadline, retry state."""
        deadline = check_timeout(self.timeout if timeout is None else timeout)
        return self._get_stub(), deadline, Attempts(rpc.method, self.retry)

    @staticmethod
    def _validate_token_rpc(
        token: str,
        token_use: TokenUseArg,
        scopes: Optional[Sequence[str]],
        groups: Optional[Sequence[str]],
        check_revocation: bool = False,
    ) -> Rpc[ValidationResult]:
        return Rpc(
            "ValidateToken",
            validate_request(token, token_use, scopes, groups, check_revocation),
            ValidationResult.from_proto,
        )

    @staticmethod
    def _get_user_info_rpc(token: str) -> Rpc[UserInfo]:
        return Rpc("GetUserInfo", user_info_request(token), UserInfo.from_proto)

    def __repr__(self) -> str:
        return f"{self._repr_name}({self._config.target!r}, tls={self._config.tls}, timeout={self.timeout})"
