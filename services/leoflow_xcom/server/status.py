"""XComError -> gRPC status with a google.rpc.ErrorInfo. The only code that builds them."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from leoflow_xcom.core.errors import ERROR_DOMAIN, StatusCode, XComError

log = logging.getLogger(__name__)

_R = TypeVar("_R")


def to_status_proto(error: XComError) -> status_pb2.Status:
    """The status with its ErrorInfo as a message (also sent per item on a session stream)."""
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=int(error.code), message=error.message, details=[detail])


def to_status(error: XComError) -> grpc.Status:
    return rpc_status.to_status(to_status_proto(error))


INTERNAL_MESSAGE = "internal error in the XCom service; the call was not applied (see its logs)"


def internal_status() -> grpc.Status:
    return rpc_status.to_status(
        status_pb2.Status(code=int(StatusCode.INTERNAL), message=INTERNAL_MESSAGE)
    )


def mapped_errors(method: Callable[..., _R]) -> Callable[..., _R]:
    """Turn XComError into its status and anything unexpected into INTERNAL (logged, and
    never with the exception's text, which could carry data)."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> _R:
        try:
            return method(self, request, context)
        except XComError as exc:
            context.abort_with_status(to_status(exc))
        except Exception:
            log.exception("unexpected error in %s", method.__name__)
            context.abort_with_status(internal_status())
        raise AssertionError("unreachable: abort_with_status raises")

    return wrapper
