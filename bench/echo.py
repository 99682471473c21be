"""A bench-only echo service, registered only by bench/server.py, never by the product.

It answers the same message types as the XCom service with no work behind them, on the same
server, options and thread pool, so its latency is the transport floor under our own calls.
The session echo answers inline on the stream's thread: the bare transport, nothing of ours.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.core import keys
from leoflow_xcom.store import scripts
from leoflow_xcom.store.connection import StoreClient
from leoflow_xcom.store.writer import push_call

SERVICE = "leoflow.xcom.bench.v1.Echo"
PUSH = f"/{SERVICE}/Push"
FETCH = f"/{SERVICE}/Fetch"
SESSION = f"/{SERVICE}/Session"
# The session echo plus the raw store call a push or fetch makes, in the same server thread:
# transport + Redis with nothing of ours in between (a diagnostic floor).
SESSION_STORE = f"/{SERVICE}/SessionStore"

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


class _StoreEcho:
    def __init__(self, client: StoreClient) -> None:
        self._client = client
        self._script = client.register_script(scripts.PUSH)

    def session(
        self, requests: Iterator[pb.SessionRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.SessionResponse]:
        # The keys of the bench's SDK runs (etl_daily, task load); the run id travels in the
        # request, as no token is parsed here.
        for request in requests:
            if request.WhichOneof("op") == "fetch":
                run = keys.run_keys("etl_daily", request.fetch.run_id)
                value = self._client.get(run.value(keys.member("load", -1, request.fetch.key)))
                assert isinstance(value, bytes), "the bench pushes this value first"
                yield pb.SessionResponse(id=request.id, fetch=pb.FetchXComResponse(value=value))
                continue
            push = request.push
            member = keys.member("load", -1, push.key)
            script_keys, args = push_call("etl_daily", push.run_id, member, push.value, 3600_000)
            expires = self._script(keys=script_keys, args=args)[0]
            yield pb.SessionResponse(
                id=request.id,
                push=pb.PushXComResponse(size_bytes=len(push.value), expires_at_ms=int(expires)),
            )


def handler(client: StoreClient) -> grpc.GenericRpcHandler:
    store = _StoreEcho(client)
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
            "SessionStore": grpc.stream_stream_rpc_method_handler(
                store.session, pb.SessionRequest.FromString, pb.SessionResponse.SerializeToString
            ),
        },
    )
