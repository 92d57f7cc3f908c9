"""Error statuses as token-validator sends them, for the in-process fake servers.

The service fails a call with a message (free text, beginning with the
reason name for older clients) and a ``google.rpc.Status`` in the
``grpc-status-details-bin`` trailer holding one ``google.rpc.ErrorInfo``.
"""

from __future__ import annotations

from typing import Mapping, Optional

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "tokenvalidator.v1"


def error_info_status(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: Optional[Mapping[str, str]] = None,
    domain: str = DOMAIN,
) -> grpc.Status:
    """A ``grpc.Status`` for ``context.abort_with_status``: ``message`` plus the ErrorInfo detail."""
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=domain, metadata=dict(metadata or {})))
    return rpc_status.to_status(status_pb2.Status(code=code.value[0], message=message, details=[detail]))


def abort_with_error_info(
    context: grpc.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: Optional[Mapping[str, str]] = None,
    domain: str = DOMAIN,
) -> None:
    """Fail the call as the service does (raises, like ``context.abort``)."""
    context.abort_with_status(error_info_status(code, message, reason, metadata, domain=domain))
