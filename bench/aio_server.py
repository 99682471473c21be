"""A bench-only grpc.aio twin of the service's hot path, to weigh the two concurrency models.

python -m bench.aio_server   (settings from the same LEOFLOW_* variables as `serve`)

One event loop per process, no handler threads: unary PushXCom/FetchXCom and the XComSession
stream (push and fetch items), with the same checks in the same order as XComHandlers (the pure
core: tokens, authz, ids, codec, schemas, live policies), the same push script and key layout
(store.writer.push_call) on redis.asyncio, the same status mapping and call observer. Left out,
as they cost nothing per item here: the stream guard (an idle aio stream holds no thread, so
the guard reduces to a timer per stream) and the drain dance. It also serves the bench's
session echo, so the aio transport floor is measured beside the sync one.

Its store is one auto-pipelined Redis connection per worker (store/pipelined.py, hiredis);
LEOFLOW_BENCH_AIO_STORE=redis-py puts it on redis.asyncio's pool instead, and with that
LEOFLOW_BENCH_REDIS_PARSER=python swaps hiredis for redis-py's pure-Python reply parser.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, cast

import grpc
import redis.asyncio
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser

from bench import echo
from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.core import authz, codec, ids, keys
from leoflow_xcom.core.errors import (
    InvalidRequestError,
    StatusCode,
    TokenInvalidError,
    XComError,
    XComNotFoundError,
    XComQuotaExceededError,
)
from leoflow_xcom.core.model import Claims
from leoflow_xcom.core.quotas import SCOPES
from leoflow_xcom.core.tokens import TokenVerifier
from leoflow_xcom.server import convert
from leoflow_xcom.server.app import SERVER_OPTIONS, wait_for_store
from leoflow_xcom.server.handlers import _run_info
from leoflow_xcom.server.monitoring import Monitoring
from leoflow_xcom.server.observe import CallObserver, request_id_of, with_request_id
from leoflow_xcom.server.servicer import bearer_token
from leoflow_xcom.server.status import INTERNAL_MESSAGE, to_status, to_status_proto
from leoflow_xcom.settings import RedisSettings, ServeSettings
from leoflow_xcom.store import scripts
from leoflow_xcom.store.connection import connect, translated
from leoflow_xcom.store.pipelined import PipelinedRedis
from leoflow_xcom.store.registry import LivePolicies, PolicyStore
from leoflow_xcom.store.writer import push_call
from leoflow_xcom.telemetry import logs

PARSERS: dict[str, type[Any]] = {
    "hiredis": _AsyncHiredisParser,
    "python": _AsyncRESP2Parser,
}
Context = grpc.aio.ServicerContext[Any, Any]


def async_client(settings: RedisSettings, parser: str) -> redis.asyncio.Redis:
    """The product pool's settings (store/connection.py), on asyncio."""
    password = settings.password()
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        settings.url,
        username=settings.username,
        password=password.get_secret_value() if password else None,
        socket_timeout=settings.socket_timeout,
        socket_connect_timeout=settings.connect_timeout,
        socket_keepalive=True,
        max_connections=settings.max_connections,
        timeout=settings.socket_timeout,
        parser_class=PARSERS[parser],
    )
    return redis.asyncio.Redis(connection_pool=pool)


class RedisPyStore:
    """The two store calls of the hot path on redis.asyncio (a pool, as the product's)."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._push = client.register_script(scripts.PUSH)

    async def push(self, script_keys: list[str], args: list[Any]) -> Any:
        with translated():
            return await self._push(keys=script_keys, args=args)

    async def get(self, name: str) -> Any:
        with translated():
            return await self._client.get(name)


class PipelinedStore:
    """The same calls down one auto-pipelined connection (store/pipelined.py)."""

    def __init__(self, pipe: PipelinedRedis) -> None:
        self._pipe = pipe

    async def push(self, script_keys: list[str], args: list[Any]) -> Any:
        return await self._pipe.script(scripts.PUSH, script_keys, args)

    async def get(self, name: str) -> Any:
        return await self._pipe.execute("GET", name)


class AioHandlers:
    """XComHandlers.push and .fetch, awaiting the store instead of blocking on it."""

    def __init__(
        self,
        verifier: TokenVerifier,
        policies: LivePolicies,
        store: RedisPyStore | PipelinedStore,
    ) -> None:
        self._verifier = verifier
        self._policies = policies
        self._store = store

    def authenticate(self, token: str | None) -> Claims:
        if not token:
            raise TokenInvalidError.because("no bearer token in the `authorization` metadata")
        return self._verifier.verify(token, now=int(time.time()))

    async def push(self, claims: Claims, request: pb.PushXComRequest) -> pb.PushXComResponse:
        key, value = request.key, request.value
        authz.check_push_identity(
            claims,
            convert.optional(request, "dag_id"),
            convert.optional(request, "run_id"),
            convert.optional(request, "task_id"),
            request.map_index if request.HasField("map_index") else None,
        )
        ids.check_key(key)
        dag = self._policies.get(claims.dag_id)
        authz.task_of(claims, dag)
        parsed = codec.decode(value, key)
        schema = dag.schemas.get((claims.task_id, key))
        if schema is not None:
            schema.check(parsed, claims.task_id, key)
        member = keys.member(claims.task_id, claims.map_index, key)
        script_keys, args = push_call(
            claims.dag_id,
            claims.run_id,
            member,
            value,
            dag.ttl_seconds * 1000,
            _run_info(claims),
            dag.quota,
        )
        reply: list[Any] = await self._store.push(script_keys, args)
        if int(reply[0]) < 0:
            scope, measure = SCOPES[int(reply[1]) - 1]
            adding = len(value) if measure == "bytes" else 1
            raise XComQuotaExceededError.over(
                scope, measure, int(reply[2]), int(reply[3]), adding, claims.dag_id
            )
        return pb.PushXComResponse(size_bytes=len(value), expires_at_ms=int(reply[0]))

    async def fetch(self, claims: Claims, request: pb.FetchXComRequest) -> pb.FetchXComResponse:
        ref = convert.ref_from_fetch(request)
        authz.require_task(claims, "fetch")
        authz.check_same_run(
            claims,
            convert.optional(request, "dag_id"),
            convert.optional(request, "run_id"),
            "read",
        )
        ids.check_id("task_id", ref.task_id)
        ids.check_key(ref.key)
        ids.check_map_index(ref.map_index)
        authz.check_fetch(claims, self._policies.get_for_read(claims.dag_id), ref.task_id)
        name = keys.run_keys(claims.dag_id, claims.run_id).value(
            keys.member(ref.task_id, ref.map_index, ref.key)
        )
        value = cast(bytes | None, await self._store.get(name))
        if value is None:
            raise XComNotFoundError.for_ref(
                claims.dag_id, claims.run_id, ref.task_id, ref.map_index, ref.key
            )
        return pb.FetchXComResponse(value=value)


class AioServicer(pb_grpc.XComServiceServicer):
    def __init__(self, handlers: AioHandlers, observer: CallObserver) -> None:
        self._handlers = handlers
        self.observer = observer

    async def _unary(self, name: str, request: Any, context: Context) -> Any:
        """status.mapped_errors, awaited."""
        rid = request_id_of(context)  # type: ignore[arg-type]
        reset = logs.request_id.set(rid)
        started = time.perf_counter()
        try:
            claims = self._handlers.authenticate(bearer_token(context))  # type: ignore[arg-type]
            if name == "PushXCom":
                response: Any = await self._handlers.push(claims, request)
            else:
                response = await self._handlers.fetch(claims, request)
        except XComError as exc:
            self.observer.done(name, exc.code.name, started, exc)
            await context.abort_with_status(with_request_id(to_status(exc), rid))
        else:
            context.set_trailing_metadata(((logs.REQUEST_ID_HEADER, rid),))
            self.observer.done(name, "OK", started, None, request, response)
            return response
        finally:
            logs.request_id.reset(reset)

    async def PushXCom(self, request: pb.PushXComRequest, context: Context) -> pb.PushXComResponse:
        return await self._unary("PushXCom", request, context)  # type: ignore[no-any-return]

    async def FetchXCom(
        self, request: pb.FetchXComRequest, context: Context
    ) -> pb.FetchXComResponse:
        return await self._unary("FetchXCom", request, context)  # type: ignore[no-any-return]

    async def XComSession(  # type: ignore[override]
        self, request_iterator: Any, context: Context
    ) -> None:
        # read()/write() rather than an async generator: one coroutine less per item.
        stream_token = bearer_token(context)  # type: ignore[arg-type]
        stream_rid = request_id_of(context)  # type: ignore[arg-type]
        context.set_trailing_metadata(((logs.REQUEST_ID_HEADER, stream_rid),))
        if stream_token:
            try:
                self._handlers.authenticate(stream_token)  # admission, as the sync server does
            except XComError:
                pass
        while True:
            request = await context.read()
            if request is grpc.aio.EOF:
                return
            await context.write(await self._answer(request, stream_token, stream_rid))

    async def _answer(
        self, request: pb.SessionRequest, stream_token: str | None, stream_rid: str
    ) -> pb.SessionResponse:
        arrived = time.monotonic()
        reset = logs.request_id.set(f"{stream_rid}.{request.id}")
        started = time.perf_counter()
        response = pb.SessionResponse(id=request.id)
        error: XComError | None = None
        op = request.WhichOneof("op")
        try:
            claims = self._handlers.authenticate(request.token or stream_token)
            if request.timeout_ms and time.monotonic() > arrived + request.timeout_ms / 1000:
                response.status.code = int(StatusCode.DEADLINE_EXCEEDED)
            elif op == "push":
                response.push.CopyFrom(await self._handlers.push(claims, request.push))
            elif op == "fetch":
                response.fetch.CopyFrom(await self._handlers.fetch(claims, request.fetch))
            else:
                raise InvalidRequestError.field("op", "the aio bench server answers push, fetch")
        except XComError as exc:
            error = exc
            response.status.CopyFrom(to_status_proto(exc))
        except Exception:
            logging.getLogger(__name__).exception("unexpected error in XComSession item")
            response.status.code = int(StatusCode.INTERNAL)
            response.status.message = INTERNAL_MESSAGE
        finally:
            logs.request_id.reset(reset)
        code = StatusCode(response.status.code).name
        self.observer.done(f"XComSession/{op or 'none'}", code, started, error, request, response)
        return response


async def _echo_session(request_iterator: Any, context: Context) -> None:
    """bench/echo.py's session echo on the event loop: the aio transport floor."""
    while True:
        request = await context.read()
        if request is grpc.aio.EOF:
            return
        if request.WhichOneof("op") == "fetch":
            answer = pb.SessionResponse(
                id=request.id,
                fetch=pb.FetchXComResponse(value=echo.value_of(int(request.fetch.key))),
            )
        else:
            answer = pb.SessionResponse(
                id=request.id, push=pb.PushXComResponse(size_bytes=len(request.push.value))
            )
        await context.write(answer)


def _echo_handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        echo.SERVICE,
        {
            "Session": grpc.stream_stream_rpc_method_handler(
                _echo_session, pb.SessionRequest.FromString, pb.SessionResponse.SerializeToString
            )
        },
    )


async def serve() -> None:
    serve_settings = ServeSettings()  # type: ignore[call-arg,unused-ignore]
    redis_settings = RedisSettings()
    sync_client = connect(redis_settings)  # layout check and policy refresh, off the hot path
    wait_for_store(sync_client, serve_settings.startup_timeout_seconds)
    policies = LivePolicies(
        PolicyStore(sync_client),
        serve_settings.policy_refresh_seconds,
        quota_defaults=serve_settings.quota_defaults(),
    )
    policies.refresh()
    policies.start()
    parser = os.environ.get("LEOFLOW_BENCH_REDIS_PARSER", "hiredis")
    client = async_client(redis_settings, parser)
    # The lean client is the default: with redis.asyncio's pool the aio design measured no
    # better than the sync server (docs/performance.md).
    kind = os.environ.get("LEOFLOW_BENCH_AIO_STORE", "pipelined")
    store: RedisPyStore | PipelinedStore = RedisPyStore(client)
    if kind == "pipelined":
        store = PipelinedStore(PipelinedRedis(redis_settings))
    verifier = TokenVerifier(
        serve_settings.signing_key(), max_lifetime=serve_settings.max_token_lifetime
    )
    monitoring = Monitoring(serve_settings, sync_client)
    server = grpc.aio.server(options=SERVER_OPTIONS)
    pb_grpc.add_XComServiceServicer_to_server(
        # The stubs call the servicer abstract; the unimplemented methods answer UNIMPLEMENTED.
        AioServicer(  # type: ignore[abstract]
            AioHandlers(verifier, policies, store), monitoring.observer
        ),
        server,
    )
    health = health_async.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    server.add_generic_rpc_handlers((_echo_handler(),))
    port = server.add_insecure_port(serve_settings.listen)
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    print(f"bench-aio-server: serving on port {port} (store {kind}, parser {parser})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(serve_settings.drain_seconds)
    await client.aclose()
    policies.stop()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    if os.environ.get("LEOFLOW_BENCH_LOOP", "uvloop") == "uvloop":
        import uvloop

        uvloop.run(serve())
    else:
        asyncio.run(serve())


if __name__ == "__main__":
    main()
