"""A bench-only echo service, registered only by bench/server.py, never by the product.

It answers the same message types as the XCom service with no work behind them, on the same
grpc.aio server, options and event loop, so its latency and CPU are the transport floor under
our own calls. Its behaviours are asyncio (the product server runs on grpc.aio, one event loop
per worker process): the session echo answers each item inline with context.read()/write(),
the cheapest way through a grpc.aio stream, with nothing of ours in between.
"""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.core import keys
from leoflow_xcom.store import scripts
from leoflow_xcom.store.pipelined import PipelinedRedis
from leoflow_xcom.store.push_plan import push_call

SERVICE = "leoflow.xcom.bench.v1.Echo"
PUSH = f"/{SERVICE}/Push"
FETCH = f"/{SERVICE}/Fetch"
SESSION = f"/{SERVICE}/Session"
# The composite floor: the session echo plus the raw store call a push or fetch makes, in the
# same handler on the same event loop: transport + Redis with nothing of ours in between.
SESSION_STORE = f"/{SERVICE}/SessionStore"

Context = grpc.aio.ServicerContext[Any, Any]

_values: dict[int, bytes] = {}


def value_of(size: int) -> bytes:
    """A JSON string of exactly `size` bytes (the fetch echo answers with one)."""
    if size not in _values:
        _values[size] = b'"' + b"x" * max(size - 2, 0) + b'"'
    return _values[size]


async def _push(request: pb.PushXComRequest, context: Context) -> pb.PushXComResponse:
    return pb.PushXComResponse(size_bytes=len(request.value), expires_at_ms=1)


async def _fetch(request: pb.FetchXComRequest, context: Context) -> pb.FetchXComResponse:
    # The key names the size to answer with: the echo of a fetch carries a value back.
    return pb.FetchXComResponse(value=value_of(int(request.key)))


def _echo(request: pb.SessionRequest) -> pb.SessionResponse:
    if request.WhichOneof("op") == "fetch":
        return pb.SessionResponse(
            id=request.id, fetch=pb.FetchXComResponse(value=value_of(int(request.fetch.key)))
        )
    return pb.SessionResponse(
        id=request.id, push=pb.PushXComResponse(size_bytes=len(request.push.value))
    )


async def _session(request_iterator: Any, context: Context) -> None:
    while True:
        request = await context.read()
        if request is grpc.aio.EOF:
            return
        await context.write(_echo(request))


class StoreEcho:
    """The composite floor: the session echo making, in its handler, the same raw Redis call a
    push or a fetch makes, on the product's own asyncio Redis client
    (leoflow_xcom.store.pipelined.PipelinedRedis, the one the service's hot path awaits): the
    push script with the writer's own arguments (store.writer.push_call), or the GET of the
    value's key. No token, policy, codec or observer: transport + Redis, nothing of ours."""

    def __init__(self, redis: PipelinedRedis) -> None:
        self._redis = redis

    async def session(self, request_iterator: Any, context: Context) -> None:
        # The keys of the bench's SDK runs (etl_daily, task load); the run id travels in the
        # request, as no token is parsed here.
        while True:
            request = await context.read()
            if request is grpc.aio.EOF:
                return
            await context.write(await self._answer(request))

    async def _answer(self, request: pb.SessionRequest) -> pb.SessionResponse:
        if request.WhichOneof("op") == "fetch":
            run = keys.run_keys("etl_daily", request.fetch.run_id)
            name = run.value(keys.member("load", -1, request.fetch.key))
            value = await self._redis.execute("GET", name)
            assert isinstance(value, bytes), "the bench pushes this value first"
            return pb.SessionResponse(id=request.id, fetch=pb.FetchXComResponse(value=value))
        push = request.push
        member = keys.member("load", -1, push.key)
        script_keys, args = push_call("etl_daily", push.run_id, member, push.value, 3600_000)
        reply = await self._redis.script(scripts.PUSH, script_keys, args)
        return pb.SessionResponse(
            id=request.id,
            push=pb.PushXComResponse(size_bytes=len(push.value), expires_at_ms=int(reply[0])),
        )


def handler(redis: PipelinedRedis | None) -> grpc.GenericRpcHandler:
    """The echo service for app.start(extra_handlers=...). redis: the composite floor's client;
    None (a Redis Cluster, which the pipelined client does not serve) leaves SessionStore out."""
    methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Push": grpc.unary_unary_rpc_method_handler(
            _push, pb.PushXComRequest.FromString, pb.PushXComResponse.SerializeToString
        ),
        "Fetch": grpc.unary_unary_rpc_method_handler(
            _fetch, pb.FetchXComRequest.FromString, pb.FetchXComResponse.SerializeToString
        ),
        "Session": grpc.stream_stream_rpc_method_handler(
            _session, pb.SessionRequest.FromString, pb.SessionResponse.SerializeToString
        ),
    }
    if redis is not None:
        methods["SessionStore"] = grpc.stream_stream_rpc_method_handler(
            StoreEcho(redis).session,
            pb.SessionRequest.FromString,
            pb.SessionResponse.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(SERVICE, methods)
