"""A bench-only echo service, registered only by bench/server.py, never by the product.

It answers the same message types as the XCom service with no work behind them, on the same
server, options and thread pool, so its latency is the transport floor under our own calls.
The session echo answers inline on the stream's thread: the bare transport, nothing of ours.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from leoflow_xcom._proto import xcom_pb2 as pb

SERVICE = "leoflow.xcom.bench.v1.Echo"
PUSH = f"/{SERVICE}/Push"
FETCH = f"/{SERVICE}/Fetch"
SESSION = f"/{SERVICE}/Session"

_values: dict[int, bytes] = {}


def value_of(size: int) -> bytes:
    """A JSON string of exactly `size` bytes (the fetch echo answers with one)."""
    if size not in _values:
        _values[size] = b'"' + b"x" * max(size - 2, 0) + b'"'
    return _values[size]


def _push(request: pb.PushXComRequest, context: grpc.ServicerContext) -> pb.PushXComResponse:
    return pb.PushXComResponse(size_bytes=len(request.value), expires_at_ms=1)


def _fetch(request: pb.FetchXComRequest, context: grpc.ServicerContext) -> pb.FetchXComResponse:
    # The key names the size to answer with: the echo of a fetch carries a value back.
    return pb.FetchXComResponse(value=value_of(int(request.key)))


def _session(
    requests: Iterator[pb.SessionRequest], context: grpc.ServicerContext
) -> Iterator[pb.SessionResponse]:
    for request in requests:
        if request.WhichOneof("op") == "fetch":
            yield pb.SessionResponse(
                id=request.id, fetch=pb.FetchXComResponse(value=value_of(int(request.fetch.key)))
            )
        else:
            yield pb.SessionResponse(
                id=request.id, push=pb.PushXComResponse(size_bytes=len(request.push.value))
            )


def handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Push": grpc.unary_unary_rpc_method_handler(
                _push, pb.PushXComRequest.FromString, pb.PushXComResponse.SerializeToString
            ),
            "Fetch": grpc.unary_unary_rpc_method_handler(
                _fetch, pb.FetchXComRequest.FromString, pb.FetchXComResponse.SerializeToString
            ),
            "Session": grpc.stream_stream_rpc_method_handler(
                _session, pb.SessionRequest.FromString, pb.SessionResponse.SerializeToString
            ),
        },
    )
