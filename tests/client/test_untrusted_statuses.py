"""The SDK raises only its typed errors, whatever a server (or a proxy in between) sends back:
a rich status whose code disagrees with the call's, status details that do not parse, a
session item with a code gRPC does not know. A real gRPC server on 127.0.0.1 sends each."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.client import NO_RETRY, XComClient, XComError, XComNotFoundError, XComRpcError
from leoflow_xcom.core.errors import ERROR_DOMAIN, StatusCode

DETAILS_KEY = "grpc-status-details-bin"


@dataclasses.dataclass(frozen=True)
class _Abort(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def _rich(code: int, reason: str) -> bytes:
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN))
    data: bytes = status_pb2.Status(code=code, message="rich", details=[info]).SerializeToString()
    return data


# What the server answers PushXCom with, per test.
ANSWERS: dict[str, _Abort] = {
    # The classic: trailers say NOT_FOUND, the call says INVALID_ARGUMENT (grpc_status raises
    # ValueError "Code in Status proto ... doesn't match status code").
    "mismatch": _Abort(
        grpc.StatusCode.INVALID_ARGUMENT,
        "call",
        ((DETAILS_KEY, _rich(int(StatusCode.NOT_FOUND), "XCOM_NOT_FOUND")),),
    ),
    "garbage": _Abort(grpc.StatusCode.INTERNAL, "call", ((DETAILS_KEY, b"\xff\x00garbage"),)),
    "consistent": _Abort(
        grpc.StatusCode.NOT_FOUND,
        "rich",
        ((DETAILS_KEY, _rich(int(StatusCode.NOT_FOUND), "XCOM_NOT_FOUND")),),
    ),
}


@pytest.fixture
def odd_server() -> Iterator[tuple[str, dict[str, str]]]:
    chosen = {"answer": "mismatch"}

    def push(request: pb.PushXComRequest, context: grpc.ServicerContext) -> Any:
        context.abort_with_status(ANSWERS[chosen["answer"]])

    def session(
        requests: Iterator[pb.SessionRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.SessionResponse]:
        for request in requests:
            yield pb.SessionResponse(id=request.id, status=status_pb2.Status(code=99))

    handler = grpc.method_handlers_generic_handler(
        "leoflow.xcom.v1.XComService",
        {
            "PushXCom": grpc.unary_unary_rpc_method_handler(
                push,
                request_deserializer=pb.PushXComRequest.FromString,
                response_serializer=pb.PushXComResponse.SerializeToString,
            ),
            "XComSession": grpc.stream_stream_rpc_method_handler(
                session,
                request_deserializer=pb.SessionRequest.FromString,
                response_serializer=pb.SessionResponse.SerializeToString,
            ),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", chosen
    server.stop(0)


def test_a_status_whose_code_disagrees_is_a_typed_error(
    odd_server: tuple[str, dict[str, str]],
) -> None:
    target, chosen = odd_server
    with XComClient(target, "t", transport="unary", retry=NO_RETRY) as client:
        for answer in ("mismatch", "garbage"):
            chosen["answer"] = answer
            with pytest.raises(XComError) as info:
                client.push("k", 1)
            # The call's own code decides when the details cannot be trusted.
            assert type(info.value) is XComRpcError, answer
            expected = ANSWERS[answer].code.value[0]
            assert info.value.code == expected and "call" in info.value.message
            assert info.value.status == info.value.code
        chosen["answer"] = "consistent"
        with pytest.raises(XComNotFoundError):
            client.push("k", 1)


def test_a_session_item_with_an_unknown_code_is_a_typed_error(
    odd_server: tuple[str, dict[str, str]],
) -> None:
    target, _ = odd_server
    with XComClient(target, "t", retry=NO_RETRY) as client:
        with pytest.raises(XComRpcError) as info:
            client.push("k", 1)
    assert "99" in info.value.message and info.value.code == StatusCode.UNKNOWN
