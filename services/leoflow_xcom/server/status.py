"""XComError -> gRPC status with a google.rpc.ErrorInfo. The only code that builds them."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from leoflow_xcom.core import limits
from leoflow_xcom.core.errors import ERROR_DOMAIN, StatusCode, XComError, clip
from leoflow_xcom.server.context import Context
from leoflow_xcom.server.observe import CallObserver, request_id_of, with_request_id
from leoflow_xcom.telemetry import logs

log = logging.getLogger(__name__)

_R = TypeVar("_R")


def to_status_proto(error: XComError) -> status_pb2.Status:
    """The status with its ErrorInfo as a message (also sent per item on a session stream).

    Message and metadata are cut to fixed byte bounds here, whatever the error holds, so every
    status fits gRPC's 16 KiB metadata limit (a larger one would reach the caller as a bare
    RESOURCE_EXHAUSTED instead of its reason)."""
    metadata = {
        clip(name, 64): clip(value, limits.MAX_STATUS_METADATA_VALUE_BYTES)
        for name, value in list(error.metadata.items())[: limits.MAX_STATUS_METADATA_ENTRIES]
    }
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    message = clip(error.message, limits.MAX_STATUS_MESSAGE_BYTES)
    return status_pb2.Status(code=int(error.code), message=message, details=[detail])


def to_status(error: XComError) -> grpc.Status:
    return rpc_status.to_status(to_status_proto(error))


INTERNAL_MESSAGE = "internal error in the XCom service; the call was not applied (see its logs)"


def internal_status() -> grpc.Status:
    return rpc_status.to_status(
        status_pb2.Status(code=int(StatusCode.INTERNAL), message=INTERNAL_MESSAGE)
    )


def mapped_errors(
    method: Callable[[Any, Any, Context], Awaitable[_R]],
) -> Callable[[Any, Any, Context], Awaitable[_R]]:
    """Turn XComError into its status and anything unexpected into INTERNAL (logged, and
    never with the exception's text, which could carry data). Each call gets a request id
    (logs, trailing metadata) and is observed by the servicer's `observer`."""
    name = method.__name__

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: Context) -> _R:
        observer: CallObserver = self.observer
        rid = request_id_of(context)
        reset = logs.request_id.set(rid)
        started = time.perf_counter()
        try:
            response = await method(self, request, context)
        except XComError as exc:
            observer.done(name, exc.code.name, started, exc)
            await context.abort_with_status(with_request_id(to_status(exc), rid))
        except Exception:
            log.exception("unexpected error in %s", name)
            observer.done(name, "INTERNAL", started)
            await context.abort_with_status(with_request_id(internal_status(), rid))
        else:
            context.set_trailing_metadata(((logs.REQUEST_ID_HEADER, rid),))
            observer.done(name, "OK", started, None, request, response)
            return response
        finally:
            logs.request_id.reset(reset)
        raise AssertionError("unreachable: abort_with_status raises")

    return wrapper
