"""Build, start and drain the gRPC server: XComService, grpc.health.v1 and reflection."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import grpc
import grpc.aio
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE_NAME

from leoflow_xcom._proto import xcom_pb2, xcom_pb2_grpc
from leoflow_xcom.core import limits
from leoflow_xcom.core.errors import StoreUnavailableError, XComError
from leoflow_xcom.core.tokens import TokenVerifier
from leoflow_xcom.periodic import PeriodicWorker
from leoflow_xcom.server import reflection
from leoflow_xcom.server.first_message import FirstMessageGuard
from leoflow_xcom.server.handlers import XComHandlers
from leoflow_xcom.server.monitoring import Monitoring
from leoflow_xcom.server.session import XComSessionServicer
from leoflow_xcom.server.streams import StreamGuard
from leoflow_xcom.settings import RedisSettings, ServeSettings
from leoflow_xcom.store.aio_store import AsyncXComStore
from leoflow_xcom.store.connection import StoreClient, connect
from leoflow_xcom.store.layout import ensure_layout
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.registrations import RecentRegistrations
from leoflow_xcom.store.registry import LivePolicies, PolicyStore
from leoflow_xcom.store.runs import RunRegistry
from leoflow_xcom.store.writer import XComWriter

log = logging.getLogger(__name__)

T = TypeVar("T")

SERVICE_NAME = xcom_pb2.DESCRIPTOR.services_by_name["XComService"].full_name

# Each option is here for a reason:
SERVER_OPTIONS: list[tuple[str, int]] = [
    # A request is one value plus ids: anything bigger is refused by grpc before parsing.
    ("grpc.max_receive_message_length", limits.MAX_REQUEST_MESSAGE_BYTES),
    # A batch fetch answers with at most MAX_BATCH_RESPONSE_BYTES of values.
    ("grpc.max_send_message_length", limits.MAX_RESPONSE_MESSAGE_BYTES),
    # Huge metadata is refused at the HTTP/2 layer.
    ("grpc.max_metadata_size", limits.MAX_METADATA_BYTES),
    # Agents keep channels open between tasks; let them keep them alive cheaply.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    # Off: a second `serve` on a taken port must fail, not share it. Worker processes of one
    # replica turn it on (server/reuseport.py).
    ("grpc.so_reuseport", 0),
]


def server_options(reuse_port: bool) -> list[tuple[str, int]]:
    return [
        (name, int(reuse_port) if name == "grpc.so_reuseport" else value)
        for name, value in SERVER_OPTIONS
    ]


RUN_PRUNE_SECONDS = 300.0


class Housekeeper:
    """Background upkeep that must never slow a call: prunes the run registry."""

    def __init__(self, runs: RunRegistry, interval: float = RUN_PRUNE_SECONDS) -> None:
        self._runs = runs
        self._worker = PeriodicWorker("housekeeper", interval, self.prune)

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()

    def prune(self) -> None:
        try:
            removed = self._runs.prune()
        except XComError as exc:
            log.warning("run registry prune failed: %s", exc.message)
        else:
            if removed:
                log.info("pruned %d expired runs from the run registry", removed)


class EventLoopThread:
    """The worker's event loop, on a thread of its own, so that starting and stopping the
    service stay plain calls (the CLI, the worker processes and the tests all use them)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="xcom-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coroutine` on the loop and wait for its result, from another thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


@dataclasses.dataclass
class RunningService:
    server: grpc.aio.Server
    port: int
    policies: LivePolicies
    health: health_async.HealthServicer
    housekeeper: Housekeeper
    sessions: XComSessionServicer
    monitoring: Monitoring
    guard: StreamGuard
    store: AsyncXComStore
    loop: EventLoopThread
    stopped: bool = False

    def set_serving(self, serving: bool) -> None:
        """From any thread: what the health service answers."""
        if self.stopped:
            return
        asyncio.run_coroutine_threadsafe(self._set_serving(serving), self.loop.loop)

    async def _set_serving(self, serving: bool) -> None:
        state = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self.health.set(name, state)

    def stop(self, grace: float) -> None:
        """Refuse new calls, let in-flight ones finish within `grace`, then stop. Stopping a
        stopped service does nothing."""
        if self.stopped:
            return
        self.stopped = True
        self.loop.run(self._drain(grace))
        self.loop.close()
        self.policies.stop()
        self.housekeeper.stop()
        self.monitoring.stop()

    async def _drain(self, grace: float) -> None:
        await self._set_serving(False)
        self.sessions.end_sessions()  # long-lived streams would otherwise hold the grace
        await self.server.stop(grace)
        await self.store.close()


def connect_when_ready(settings: RedisSettings, timeout: float) -> StoreClient:
    """The client; a Redis Cluster client needs a reachable node to be built, so retry that
    while the cluster starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return connect(settings)
        except StoreUnavailableError as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning("waiting for Redis: %s", exc.message)
            time.sleep(0.5)


def wait_for_store(client: StoreClient, timeout: float) -> None:
    """Check the data layout, retrying while Redis is unreachable or loading its AOF."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ensure_layout(client)
            return
        except StoreUnavailableError as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning("waiting for Redis: %s", exc.message)
            time.sleep(0.5)


def start(
    serve: ServeSettings,
    redis_settings: RedisSettings,
    extra_handlers: Sequence[grpc.GenericRpcHandler] = (),
    worker: int | None = None,
) -> RunningService:
    """extra_handlers: more services on the same server and settings, with asyncio behaviours
    (the bench harness adds its echo service this way; production adds none). worker: this
    process's index among a replica's worker processes (server/supervisor.py), None for a
    single-process service."""
    tls = serve.tls()  # first: a missing or unreadable file fails the start before anything runs
    client = connect_when_ready(redis_settings, serve.startup_timeout_seconds)
    wait_for_store(client, serve.startup_timeout_seconds)
    holder: list[RunningService] = []

    def on_store_state(healthy: bool) -> None:
        if holder:
            holder[0].set_serving(healthy)

    policies = LivePolicies(
        PolicyStore(client), serve.policy_refresh_seconds, on_store_state, serve.quota_defaults()
    )
    policies.refresh()
    monitoring = Monitoring(serve, client, worker)
    loop = EventLoopThread()
    try:
        running = loop.run(
            _serve(
                serve,
                redis_settings,
                tls,
                client,
                policies,
                monitoring,
                extra_handlers,
                worker,
                loop,
            )
        )
    except BaseException:
        loop.close()
        raise
    holder.append(running)
    policies.start()
    running.housekeeper.start()
    monitoring.start(running.sessions.open_sessions, running.guard.unauthenticated)
    log.info(
        "XCom gRPC service listening on port %d (%s)", running.port, "TLS" if tls else "plaintext"
    )
    return running


async def _serve(
    serve: ServeSettings,
    redis_settings: RedisSettings,
    tls: tuple[bytes, bytes] | None,
    client: StoreClient,
    policies: LivePolicies,
    monitoring: Monitoring,
    extra_handlers: Sequence[grpc.GenericRpcHandler],
    worker: int | None,
    loop: EventLoopThread,
) -> RunningService:
    """On the loop: the store, the handlers and the grpc.aio server, started."""
    # One memory of recent registrations for the async pushes and the clears (on a thread).
    recent = RecentRegistrations()
    store = AsyncXComStore(
        redis_settings,
        client,
        redis_settings.min_replica_acks,
        redis_settings.wait_timeout_ms,
        recent,
    )
    handlers = XComHandlers(
        TokenVerifier(serve.signing_key(), max_lifetime=serve.max_token_lifetime),
        policies,
        store,
        XComReader(client),
        XComWriter(client, redis_settings.min_replica_acks, redis_settings.wait_timeout_ms, recent),
    )
    guard = StreamGuard(
        max_trusted=serve.session_limit,
        max_untrusted=serve.unauthenticated_stream_limit,
        auth_seconds=serve.stream_auth_seconds,
        idle_seconds=serve.session_idle_seconds,
    )
    server = grpc.aio.server(
        # A call's one request message is awaited under the guard, without a bound otherwise.
        interceptors=[FirstMessageGuard(guard)],
        options=server_options(reuse_port=worker is not None),
        # Beyond this, calls get RESOURCE_EXHAUSTED at once instead of queueing without bound.
        maximum_concurrent_rpcs=serve.workers * 8,
    )
    servicer = XComSessionServicer(handlers, guard, monitoring.observer)
    xcom_pb2_grpc.add_XComServiceServicer_to_server(servicer, server)
    health_servicer = health_async.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_generic_rpc_handlers(tuple(extra_handlers))
    reflection.enable((SERVICE_NAME, HEALTH_SERVICE_NAME), server, guard)
    try:
        if tls is None:
            port = server.add_insecure_port(serve.listen)
        else:
            cert_chain, key = tls
            port = server.add_secure_port(
                serve.listen, grpc.ssl_server_credentials([(key, cert_chain)])
            )
    except RuntimeError as exc:
        await store.close()
        raise RuntimeError(f"LEOFLOW_XCOM_LISTEN={serve.listen}: cannot bind ({exc})") from None
    await server.start()
    running = RunningService(
        server,
        port,
        policies,
        health_servicer,
        Housekeeper(RunRegistry(client)),
        servicer,
        monitoring,
        guard,
        store,
        loop,
    )
    await running._set_serving(True)
    return running


def run_until_signal(
    running: RunningService, drain_seconds: float, ready: Callable[[], None] | None = None
) -> None:
    """Block until SIGTERM/SIGINT, then drain in-flight calls and return. `ready` runs once the
    handlers are in place: a supervisor that signals right after the ready line gets a drain,
    not the default handler's abrupt death."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if ready is not None:
        ready()
    stop.wait()
    log.info("draining in-flight calls (up to %.1f s)", drain_seconds)
    running.stop(drain_seconds)
    log.info("stopped")
