"""gRPC failures -> typed XComErrors. The only code that reads a status off the wire."""

from __future__ import annotations

from typing import ClassVar

import grpc
import grpc.aio
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from leoflow_xcom.core.errors import ERROR_DOMAIN, StatusCode, XComError


class ServiceUnavailableError(XComError):
    """The XCom service could not be reached (no ErrorInfo: the server never answered)."""

    code = StatusCode.UNAVAILABLE
    reason = "SERVICE_UNAVAILABLE"


class DeadlineExceededError(XComError):
    code = StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class XComRpcError(XComError):
    """Any other failure without an XCom reason; `code` is the call's own gRPC code (`status`
    is the same value, kept for callers that read it)."""

    reason: ClassVar[str] = "RPC_ERROR"

    def __init__(
        self, message: str, metadata: dict[str, str] | None = None, status: int = 2
    ) -> None:
        super().__init__(message, metadata)
        self.code = StatusCode(status)

    @property
    def status(self) -> StatusCode:
        return self.code


def from_rpc_error(error: grpc.RpcError) -> XComError:
    # A sync call's error is a grpc.Call; an asyncio one is an AioRpcError with the same
    # synchronous code(), details() and trailing_metadata().
    call = error if isinstance(error, grpc.Call | grpc.aio.AioRpcError) else None
    if call is not None:
        typed = _typed(_status_of(call))
        if typed is not None:
            return typed
        code = call.code()
        details = call.details() or code.name
    else:
        code, details = grpc.StatusCode.UNKNOWN, str(error)
    return _untyped(code.value[0], details)


def _status_of(call: grpc.Call | grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The rich status in the trailers, or None when there is none or it cannot be trusted:
    grpc_status raises ValueError when its code disagrees with the call's (e.g. the service's
    trailers were replaced by a transport error) and the bytes may not parse at all. Then the
    call's own code decides, and the caller still gets a typed XComError."""
    try:
        return rpc_status.from_call(call)  # type: ignore[arg-type]
    except (ValueError, DecodeError):
        return None


def from_status_proto(status: status_pb2.Status) -> XComError:
    """The error a session item's status stands for (the stream's per-item statuses)."""
    typed = _typed(status)
    if typed is not None:
        return typed
    return _untyped(status.code, status.message)


def _typed(status: status_pb2.Status | None) -> XComError | None:
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            try:
                detail.Unpack(info)
            except DecodeError:
                return None
            if info.domain == ERROR_DOMAIN:
                return XComError.from_reason(info.reason, status.message, dict(info.metadata))
    return None


def _untyped(code: int, details: str) -> XComError:
    known = code in StatusCode._value2member_map_
    details = details or (StatusCode(code).name if known else f"status code {code}")
    if code == StatusCode.UNAVAILABLE:
        return ServiceUnavailableError(f"the XCom service is unavailable: {details}")
    if code == StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceededError(f"the call did not finish within its deadline: {details}")
    name = StatusCode(code).name if known else str(code)
    # An unknown code (not a gRPC one) is reported as UNKNOWN: StatusCode cannot hold it.
    return XComRpcError(
        f"XCom call failed ({name}): {details}", status=code if known else StatusCode.UNKNOWN
    )
