"""Nothing without a token holds a thread: floods of tokenless session streams and idle
server-reflection streams against the real `leoflow-xcom serve` process (default 128 workers),
while an authorized unary push, a new authorized session and a health check still answer.

Prints the figures (`pytest -s`): how many streams the service kept, how many it refused, and
the authorized calls' latency under the flood (measured, not asserted: timers are noisy here).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.service import ServiceProcess
from tests.dag_data import publish_test_policies
from tests.fixture_types import Mint

FLOOD = 200  # of each kind
WORKERS = 128  # the default
UNTRUSTED_CAP = WORKERS // 8  # the default LEOFLOW_XCOM_MAX_UNAUTHENTICATED_STREAMS
NORMAL_DEADLINE = 5.0  # the SDK's default per-call deadline


class Held:
    """A stream opened and left waiting: its requests come from a queue nobody fills."""

    def __init__(self, call: Any) -> None:  # a stream call: a grpc.Call and a Future
        self.call = call

    @property
    def done(self) -> bool:
        return bool(self.call.done())


def _channels(target: str, n: int) -> list[grpc.Channel]:
    # Separate connections, like separate attackers (no shared subchannel).
    return [
        grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(n)
    ]


def _open_streams(channels: list[grpc.Channel], n: int) -> tuple[list[Held], list[Held]]:
    sessions, reflections = [], []
    for i in range(n):
        channel = channels[i % len(channels)]
        waiting: queue.SimpleQueue[pb.SessionRequest | None] = queue.SimpleQueue()
        sessions.append(Held(pb_grpc.XComServiceStub(channel).XComSession(iter(waiting.get, None))))
        idle: queue.SimpleQueue[reflection_pb2.ServerReflectionRequest | None] = queue.SimpleQueue()
        reflections.append(
            Held(
                reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                    iter(idle.get, None)
                )
            )
        )
    return sessions, reflections


def _wait_until(condition: object, timeout: float) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


@pytest.fixture
def flooded_service(
    r: redis.Redis, redis_server: RedisProcess, signing_key_file: Path
) -> Iterator[ServiceProcess]:
    publish_test_policies(r)
    service = ServiceProcess(
        redis_server.url,
        signing_key_file,
        LEOFLOW_XCOM_METRICS_LISTEN="",
        # Long enough that the kept streams are still held while the authorized calls run.
        LEOFLOW_XCOM_STREAM_AUTH_SECONDS="30",
    ).start()
    yield service
    service.kill()


def test_tokenless_and_reflection_floods_leave_room_for_authorized_calls(
    flooded_service: ServiceProcess, mint: Mint
) -> None:
    channels = _channels(flooded_service.target, 8)
    try:
        sessions, reflections = _open_streams(channels, FLOOD)
        held = sessions + reflections
        # Refused streams end at once; the rest are held by the service.
        assert _wait_until(lambda: sum(h.done for h in held) >= len(held) - UNTRUSTED_CAP, 30), (
            f"only {sum(h.done for h in held)} of {len(held)} streams were answered"
        )
        time.sleep(0.5)  # anything else would have been answered by now
        refused = [h for h in held if h.done]
        kept = len(held) - len(refused)
        codes = {h.call.code() for h in refused}
        print(
            f"\nflood: {FLOOD} tokenless sessions + {FLOOD} idle reflection streams -> "
            f"{kept} held by the service (cap {UNTRUSTED_CAP}), {len(refused)} refused {codes}"
        )
        assert kept == UNTRUSTED_CAP
        assert codes == {grpc.StatusCode.RESOURCE_EXHAUSTED}

        token = mint(task_id="a")
        auth = (("authorization", f"Bearer {token}"),)
        stub = pb_grpc.XComServiceStub(channels[0])

        started = time.perf_counter()
        pushed = stub.PushXCom(
            pb.PushXComRequest(key="flood", value=b'{"ok": 1}'),
            metadata=auth,
            timeout=NORMAL_DEADLINE,
        )
        unary_ms = (time.perf_counter() - started) * 1000
        assert pushed.size_bytes == 9

        started = time.perf_counter()
        answers: queue.SimpleQueue[pb.SessionRequest | None] = queue.SimpleQueue()
        session = stub.XComSession(iter(answers.get, None), metadata=auth, timeout=30)
        answers.put(
            pb.SessionRequest(
                id=1,
                token=token,
                timeout_ms=int(NORMAL_DEADLINE * 1000),
                fetch=pb.FetchXComRequest(task_id="a", key="flood"),
            )
        )
        answer = next(session)
        session_ms = (time.perf_counter() - started) * 1000
        assert answer.status.code == 0, answer.status.message
        assert answer.fetch.value == b'{"ok": 1}'
        answers.put(None)
        session.cancel()

        started = time.perf_counter()
        health = health_pb2_grpc.HealthStub(channels[1]).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=NORMAL_DEADLINE
        )
        health_ms = (time.perf_counter() - started) * 1000
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        print(
            f"under the flood (measured under load): unary push {unary_ms:.1f} ms, new "
            f"authorized session open + fetch {session_ms:.1f} ms, health check "
            f"{health_ms:.1f} ms (deadline {NORMAL_DEADLINE:.0f} s)"
        )
        for h in held:
            h.call.cancel()
    finally:
        for channel in channels:
            channel.close()


@pytest.fixture
def strict_service(
    r: redis.Redis, redis_server: RedisProcess, signing_key_file: Path
) -> Iterator[ServiceProcess]:
    publish_test_policies(r)
    service = ServiceProcess(
        redis_server.url,
        signing_key_file,
        LEOFLOW_XCOM_METRICS_LISTEN="",
        LEOFLOW_XCOM_STREAM_AUTH_SECONDS="1",
        LEOFLOW_XCOM_SESSION_IDLE_SECONDS="6",
    ).start()
    yield service
    service.kill()


def _ended_code(call: Any, timeout: float) -> grpc.StatusCode:
    assert _wait_until(call.done, timeout), "the service did not close the stream"
    code: grpc.StatusCode = call.code()
    return code


def test_streams_without_a_valid_token_are_closed_after_the_auth_deadline(
    strict_service: ServiceProcess, mint: Mint
) -> None:
    with grpc.insecure_channel(strict_service.target) as channel:
        stub = pb_grpc.XComServiceStub(channel)
        started = time.monotonic()

        silent: queue.SimpleQueue[pb.SessionRequest | None] = queue.SimpleQueue()
        tokenless: Any = stub.XComSession(iter(silent.get, None))

        bad: queue.SimpleQueue[pb.SessionRequest | None] = queue.SimpleQueue()
        pretender = stub.XComSession(iter(bad.get, None))
        bad.put(pb.SessionRequest(id=1, token="not-a-token", fetch=pb.FetchXComRequest()))
        assert next(pretender).status.code == grpc.StatusCode.UNAUTHENTICATED.value[0]

        asking: queue.SimpleQueue[reflection_pb2.ServerReflectionRequest | None] = (
            queue.SimpleQueue()
        )
        reflecting = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter(asking.get, None)
        )
        asking.put(reflection_pb2.ServerReflectionRequest(list_services=""))
        services = next(reflecting).list_services_response.service
        assert "leoflow.xcom.v1.XComService" in {s.name for s in services}

        # A session whose first item carries a valid token becomes trusted and stays open.
        good: queue.SimpleQueue[pb.SessionRequest | None] = queue.SimpleQueue()
        trusted: Any = stub.XComSession(iter(good.get, None))
        good.put(
            pb.SessionRequest(
                id=1, token=mint(task_id="a"), push=pb.PushXComRequest(key="k", value=b"1")
            )
        )
        assert next(trusted).status.code == 0

        for call in (tokenless, pretender, reflecting):
            assert _ended_code(call, 10) == grpc.StatusCode.CANCELLED
        closed_after = time.monotonic() - started
        assert not trusted.done()
        good.put(
            pb.SessionRequest(
                id=2, token=mint(task_id="b"), fetch=pb.FetchXComRequest(task_id="a", key="k")
            )
        )
        assert next(trusted).fetch.value == b"1"
        # ... until it idles past LEOFLOW_XCOM_SESSION_IDLE_SECONDS.
        assert _ended_code(trusted, 20) == grpc.StatusCode.CANCELLED
        print(
            f"\ntokenless, bad-token and idle reflection streams closed after "
            f"{closed_after:.1f} s (LEOFLOW_XCOM_STREAM_AUTH_SECONDS=1); the trusted session "
            f"after {time.monotonic() - started:.1f} s (idle limit 6 s)"
        )


def _half_open(channel: grpc.Channel, method: str, streaming: bool) -> Held:
    """A call's headers without its message: the client never sends one (no token needed)."""
    never: queue.SimpleQueue[Any] = queue.SimpleQueue()
    if streaming:
        return Held(channel.stream_stream(method)(iter(never.get, None)))
    return Held(channel.stream_unary(method).future(iter(never.get, None)))


def test_calls_that_never_send_their_message_hold_no_thread(
    flooded_service: ServiceProcess, mint: Mint
) -> None:
    channels = _channels(flooded_service.target, 8)
    try:
        held = []
        for i in range(FLOOD):
            channel = channels[i % len(channels)]
            held.append(_half_open(channel, "/leoflow.xcom.v1.XComService/PushXCom", False))
            held.append(_half_open(channel, "/grpc.health.v1.Health/Check", False))
            held.append(_half_open(channel, "/grpc.health.v1.Health/Watch", True))
        # Right away, while the calls still pour in and hold threads for their grace period.
        started = time.perf_counter()
        health = health_pb2_grpc.HealthStub(channels[3]).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=NORMAL_DEADLINE
        )
        during_ms = (time.perf_counter() - started) * 1000
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        # Beyond the pool, calls waiting past their grace are cancelled, the longest first.
        assert _wait_until(lambda: sum(h.done for h in held) >= len(held) - UNTRUSTED_CAP, 30)
        time.sleep(0.5)
        waiting = sum(not h.done for h in held)
        print(
            f"\n{len(held)} calls without their request message (PushXCom, health Check and "
            f"Watch) -> {waiting} still waiting (pool {UNTRUSTED_CAP}), the rest cancelled"
        )
        assert waiting <= UNTRUSTED_CAP

        token = mint(task_id="a")
        started = time.perf_counter()
        pushed = pb_grpc.XComServiceStub(channels[0]).PushXCom(
            pb.PushXComRequest(key="half-open", value=b"1"),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=NORMAL_DEADLINE,
        )
        unary_ms = (time.perf_counter() - started) * 1000
        assert pushed.size_bytes == 1
        started = time.perf_counter()
        health = health_pb2_grpc.HealthStub(channels[1]).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=NORMAL_DEADLINE
        )
        health_ms = (time.perf_counter() - started) * 1000
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        # A Watch that did send its message still works (and holds no thread while it waits).
        watch = health_pb2_grpc.HealthStub(channels[2]).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=NORMAL_DEADLINE
        )
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()
        print(
            f"health check while they arrived {during_ms:.0f} ms; afterwards (measured under "
            f"load): unary push {unary_ms:.1f} ms, health check {health_ms:.1f} ms"
        )
        for h in held:
            h.call.cancel()
    finally:
        for channel in channels:
            channel.close()


def test_the_sdk_reopens_a_session_the_service_closed_for_idleness(
    strict_service: ServiceProcess, mint: Mint
) -> None:
    """LEOFLOW_XCOM_SESSION_IDLE_SECONDS=6: the SDK's session is closed under it while idle;
    its next calls open a new one without the caller seeing anything."""
    from leoflow_xcom.client import XComClient

    with XComClient(strict_service.target, mint(task_id="a")) as client:
        client.push("before", 1)
        assert client._session is not None
        first = client._session._stream
        time.sleep(8)  # past the idle limit and a watchdog sweep
        client.push("after", 2)
        assert client.pull("a", "before") == 1 and client.pull("a", "after") == 2
        assert first is not None and first.broken  # the service did close it...
        assert client._session._stream is not first  # ...and the SDK opened another
