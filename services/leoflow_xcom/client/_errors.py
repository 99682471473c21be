"""gRPC failures -> typed XComErrors. The only code that reads a status off the wire."""

from __future__ import annotations

from typing import ClassVar

import grpc
from google.rpc import error_details_pb2
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
    call = error if isinstance(error, grpc.Call) else None
    if call is not None:
        status = rpc_status.from_call(call)
        if status is not None:
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    if info.domain == ERROR_DOMAIN:
                        return XComError.from_reason(
                            info.reason, status.message, dict(info.metadata)
                        )
        code = call.code()
        details = call.details() or code.name
    else:
        code, details = grpc.StatusCode.UNKNOWN, str(error)
    if code == grpc.StatusCode.UNAVAILABLE:
        return ServiceUnavailableError(f"the XCom service is unavailable: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceededError(f"the call did not finish within its deadline: {details}")
    return XComRpcError(f"XCom call failed ({code.name}): {details}", status=code.value[0])
