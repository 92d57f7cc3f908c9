"""Configuration shared by the sync and asyncio clients."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import grpc

from ._proto.tokenvalidator.v1 import token_validator_pb2 as pb
from .types import TokenUse, TokenUseArg

PemSource = Union[bytes, str, "os.PathLike[str]"]
ChannelOptions = Sequence[Tuple[str, Union[str, int]]]

DEFAULT_TIMEOUT = 2.0

# Keep the channel's own reconnect backoff short, so a restarted service is
# reached again within a couple of seconds instead of grpc's default of up to
# two minutes. Callers can override these through ``channel_options``.
DEFAULT_CHANNEL_OPTIONS: ChannelOptions = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


@dataclass(frozen=True)
class RetryPolicy:
    """Retry with exponential backoff, on ``UNAVAILABLE`` only.

    ``max_attempts`` counts the first call too (1 disables retries). The n-th
    retry waits ``min(max_backoff, initial_backoff * multiplier**(n-1))``,
    randomised by +/- ``jitter`` (a fraction).
    """

    max_attempts: int = 3
    initial_backoff: float = 0.05
    max_backoff: float = 1.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be >= 0 and multiplier >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        base = min(self.max_backoff, self.initial_backoff * (self.multiplier ** (retry - 1)))
        if self.jitter:
            base *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, base)


NO_RETRY = RetryPolicy(max_attempts=1)


def _read_pem(value: PemSource, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    text = os.fspath(value)
    if "-----BEGIN" in text:
        return text.encode("ascii")
    try:
        return Path(text).read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read {what} from {text!r}: {e}") from e


@dataclass(frozen=True)
class ChannelConfig:
    """The resolved target and credentials of a client."""

    target: str
    credentials: Optional[grpc.ChannelCredentials]
    options: Tuple[Tuple[str, Union[str, int]], ...]

    @property
    def tls(self) -> bool:
        return self.credentials is not None


def resolve_channel(
    target: str,
    *,
    tls: Optional[bool],
    root_certificates: Optional[PemSource],
    client_cert: Optional[Tuple[PemSource, PemSource]],
    server_name: Optional[str],
    channel_options: Optional[ChannelOptions],
) -> ChannelConfig:
    """Work out the gRPC target, credentials and options.

    ``target`` may be ``host:port``, ``http://host:port`` (plaintext),
    ``https://host:port`` (TLS) or any gRPC target URI (``dns:///…``,
    ``unix:…``). ``tls=None`` means: TLS if the target is ``https://`` or any
    certificate is given, plaintext otherwise.
    """
    if not target or not isinstance(target, str):
        raise ValueError("target must be a non-empty string such as '127.0.0.1:50051'")
    scheme_tls: Optional[bool] = None
    for scheme, is_tls, default_port in (("http://", False, 80), ("https://", True, 443)):
        if target.lower().startswith(scheme):
            rest = target[len(scheme) :].rstrip("/")
            if "/" in rest:
                raise ValueError(f"target {target!r} must not have a path")
            if not rest:
                raise ValueError(f"target {target!r} has no host")
            host_has_port = rest.rsplit("]", 1)[-1].count(":") == 1 if rest.startswith("[") else rest.count(":") == 1
            target = rest if host_has_port else f"{rest}:{default_port}"
            scheme_tls = is_tls
            break

    wants_certs = root_certificates is not None or client_cert is not None
    if tls is None:
        tls = bool(scheme_tls) or wants_certs
    elif tls is False and (scheme_tls or wants_certs):
        raise ValueError("tls=False contradicts an https:// target or the certificates given")
    if scheme_tls is False and tls:
        raise ValueError(f"an http:// target cannot use TLS; use https:// or host:port")

    options = list(DEFAULT_CHANNEL_OPTIONS)
    if server_name:
        if not tls:
            raise ValueError("server_name only applies with TLS")
        options.append(("grpc.ssl_target_name_override", server_name))
    if channel_options:
        overridden = {k for k, _ in channel_options}
        options = [(k, v) for k, v in options if k not in overridden] + list(channel_options)

    credentials = None
    if tls:
        chain = key = None
        if client_cert is not None:
            if not (isinstance(client_cert, tuple) and len(client_cert) == 2):
                raise ValueError("client_cert must be a (certificate_chain, private_key) tuple")
            chain = _read_pem(client_cert[0], "client certificate")
            key = _read_pem(client_cert[1], "client private key")
        roots = _read_pem(root_certificates, "root certificates") if root_certificates is not None else None
        credentials = grpc.ssl_channel_credentials(
            root_certificates=roots, private_key=key, certificate_chain=chain
        )
    return ChannelConfig(target=target, credentials=credentials, options=tuple(options))


def validate_request(
    token: str,
    token_use: TokenUseArg,
    scopes: Optional[Sequence[str]],
    groups: Optional[Sequence[str]],
    check_revocation: bool = False,
) -> pb.ValidateTokenRequest:
    if not isinstance(token, str):
        raise TypeError("token must be a str")
    if not isinstance(check_revocation, bool):
        raise TypeError("check_revocation must be True or False")
    for name, seq in (("scopes", scopes), ("groups", groups)):
        if isinstance(seq, str):
            raise TypeError(f"{name} must be a list of strings, not a single string")
    return pb.ValidateTokenRequest(
        token=token,
        expected_token_use=TokenUse.parse(token_use).to_proto(),  # type: ignore[arg-type]
        required_scopes=list(scopes or ()),
        required_groups=list(groups or ()),
        check_revocation=check_revocation,
    )


def user_info_request(token: str) -> pb.GetUserInfoRequest:
    if not isinstance(token, str):
        raise TypeError("token must be a str")
    return pb.GetUserInfoRequest(token=token)


def check_timeout(timeout: Optional[float]) -> float:
    if timeout is None:
        raise ValueError("a timeout is required: every call has a deadline")
    timeout = float(timeout)
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    return timeout
