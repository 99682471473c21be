"""gRPC failures -> typed XComErrors. The only code that reads a status off the wire."""

from __future__ import annotations

from typing import ClassVar

import grpc
import grpc.aio
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
    """Any other failure without an XCom reason; `status` holds the gRPC code."""

    reason: ClassVar[str] = "RPC_ERROR"

    def __init__(
        self, message: str, metadata: dict[str, str] | None = None, status: int = 2
    ) -> None:
        super().__init__(message, metadata)
        self.status = StatusCode(status)


def from_rpc_error(error: grpc.RpcError) -> XComError:
    # A sync call's error is a grpc.Call; an asyncio one is an AioRpcError with the same
    # synchronous code(), details() and trailing_metadata().
    call = error if isinstance(error, grpc.Call | grpc.aio.AioRpcError) else None
    if call is not None:
        status = rpc_status.from_call(call)  # type: ignore[arg-type]
        if status is not None:
            typed = _typed(status)
            if typed is not None:
                return typed
        code = call.code()
        details = call.details() or code.name
    else:
        code, details = grpc.StatusCode.UNKNOWN, str(error)
    return _untyped(code.value[0], details)


def from_status_proto(status: status_pb2.Status) -> XComError:
    """The error a session item's status stands for (the stream's per-item statuses)."""
    typed = _typed(status)
    if typed is not None:
        return typed
    return _untyped(status.code, status.message or StatusCode(status.code).name)


def _typed(status: status_pb2.Status) -> XComError | None:
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain == ERROR_DOMAIN:
                return XComError.from_reason(info.reason, status.message, dict(info.metadata))
    return None


def _untyped(code: int, details: str) -> XComError:
    if code == StatusCode.UNAVAILABLE:
        return ServiceUnavailableError(f"the XCom service is unavailable: {details}")
    if code == StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceededError(f"the call did not finish within its deadline: {details}")
    name = StatusCode(code).name if code in StatusCode._value2member_map_ else str(code)
    return XComRpcError(f"XCom call failed ({name}): {details}", status=code)
