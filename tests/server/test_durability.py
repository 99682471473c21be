"""Nothing acknowledged is lost: Redis killed with SIGKILL, the service restarted, Redis
unreachable or full. Each test runs its own Redis (AOF on, from compose/redis/redis.conf)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from leoflow_xcom.client import NO_RETRY, StoreFullError, StoreUnavailableError, XComClient
from leoflow_xcom.server import app
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.service import ServiceProcess
from tests.dag_data import publish_test_policies
from tests.fixture_types import Mint, StartService
from tests.servers import start_redis


@pytest.fixture
def own_redis(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RedisProcess]:
    """The shipped redis.conf; a test may add server arguments with indirect parametrization."""
    server = start_redis("redis", tmp_path / "redis", *getattr(request, "param", ()))
    publish_test_policies(server.client())
    yield server
    server.stop()


@pytest.fixture
def own_service(own_redis: RedisProcess, start_service: StartService) -> app.RunningService:
    return start_service(RedisSettings(url=own_redis.url))


def wait_for_health(target: str, wanted: int) -> None:
    """Health follows the store: the background refresh sees Redis go and come back."""
    deadline = time.monotonic() + 10
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status
            if status == wanted:
                return
            assert time.monotonic() < deadline, f"health stayed {status}, wanted {wanted}"
            time.sleep(0.1)


def client(target: str, token: str, timeout: float = 5.0) -> XComClient:
    return XComClient(target, token, timeout=timeout, retry=NO_RETRY)


# `always`: the promise that holds whatever the disk. With the default `everysec` a write that
# Redis postponed behind a slow fsync may go (tests/faults checks that bound under load).
@pytest.mark.slow
@pytest.mark.parametrize("own_redis", [("--appendfsync", "always")], indirect=True)
def test_sigkill_of_redis_loses_no_acknowledged_push(
    own_redis: RedisProcess, own_service: app.RunningService, mint: Mint
) -> None:
    target = f"127.0.0.1:{own_service.port}"
    acknowledged = 0
    with client(target, mint(task_id="b")) as writer:
        for i in range(300):
            writer.push(f"k{i}", {"i": i})
            acknowledged += 1
    own_redis.kill()  # SIGKILL right after the last acknowledgement
    own_redis.start()  # same port and directory: replays the AOF
    with client(target, mint(task_id="b"), timeout=10) as reader:
        present = sum(reader.pull("b", f"k{i}") == {"i": i} for i in range(300))
        listed = reader.list(limit=1000).total_entries
    print(f"acknowledged={acknowledged} present={present} listed={listed} lost={300 - present}")
    assert present == acknowledged == listed == 300


@pytest.mark.slow
def test_restarting_the_service_mid_run_loses_nothing(
    own_redis: RedisProcess, signing_key_file: Path, mint: Mint
) -> None:
    first = ServiceProcess(own_redis.url, signing_key_file).start()
    try:
        with client(first.target, mint(task_id="a")) as writer:
            for i in range(50):
                writer.push("typed", {"rows": i})
                writer.push(f"k{i}", i)
    finally:
        assert first.terminate() == 0
    second = ServiceProcess(own_redis.url, signing_key_file).start()
    try:
        with client(second.target, mint(task_id="b")) as reader:
            assert reader.pull("a", "typed") == {"rows": 49}
            assert [reader.pull("a", f"k{i}") for i in range(50)] == list(range(50))
    finally:
        second.terminate()


@pytest.mark.slow
def test_sigterm_drains_an_in_flight_call(
    own_redis: RedisProcess, signing_key_file: Path, mint: Mint
) -> None:
    service = ServiceProcess(
        own_redis.url, signing_key_file, LEOFLOW_REDIS_SOCKET_TIMEOUT="5"
    ).start()
    outcome: dict[str, object] = {}
    with client(service.target, mint(task_id="b"), timeout=20) as writer:
        writer.push("warm", 1)  # connections are open before Redis is paused
        own_redis.pause()
        thread = threading.Thread(target=lambda: outcome.update(r=writer.push("inflight", 7)))
        thread.start()
        time.sleep(0.3)  # the push is now waiting on Redis inside the service
        assert service.proc is not None
        service.proc.send_signal(15)
        time.sleep(0.3)
        own_redis.resume()
        thread.join(20)
        assert service.wait(20) == 0
    assert "r" in outcome, "the in-flight push did not complete"
    assert len(own_redis.client().keys("xcom:{*:v:*inflight")) == 1


def test_unreachable_redis_gives_unavailable_within_the_deadline_then_recovers(
    own_redis: RedisProcess, own_service: app.RunningService, mint: Mint
) -> None:
    target = f"127.0.0.1:{own_service.port}"
    with client(target, mint(task_id="b"), timeout=5) as c:
        c.push("before", 1)
        own_redis.kill()
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as info:
            c.push("during", 1)
        assert time.monotonic() - started < 5  # the store error, not the client deadline
        assert info.value.code.name == "UNAVAILABLE"
        wait_for_health(target, health_pb2.HealthCheckResponse.NOT_SERVING)
        own_redis.start()
        wait_for_health(target, health_pb2.HealthCheckResponse.SERVING)
        c.push("after", 1)  # the service reconnects by itself
        assert c.pull("b", "before") == 1 and c.pull("b", "after") == 1


def test_full_redis_gives_store_full_keeps_reads_and_recovers(
    own_redis: RedisProcess, own_service: app.RunningService, mint: Mint
) -> None:
    target = f"127.0.0.1:{own_service.port}"
    raw = own_redis.client()
    with client(target, mint(task_id="b")) as c:
        c.push("kept", "v")
        keys_before = raw.dbsize()
        raw.config_set("maxmemory", str(int(raw.info("memory")["used_memory"]) // 2))
        with pytest.raises(StoreFullError) as info:
            c.push("new", "x")
        assert info.value.code.name == "RESOURCE_EXHAUSTED"
        assert c.pull("b", "kept") == "v"
        assert raw.dbsize() == keys_before  # nothing evicted, nothing half-written
        raw.config_set("maxmemory", "512mb")
        c.push("new", "x")  # recovers by itself when memory frees
        assert c.pull("b", "new") == "x"


@pytest.mark.slow
def test_service_waits_for_redis_at_startup(
    own_redis: RedisProcess, signing_key_file: Path, mint: Mint
) -> None:
    own_redis.kill()
    service = ServiceProcess(own_redis.url, signing_key_file)
    started: list[ServiceProcess] = []
    thread = threading.Thread(target=lambda: started.append(service.start()))
    thread.start()
    try:
        time.sleep(1.0)
        assert not started  # still waiting for Redis, not crashed
        own_redis.start()
        thread.join(15)
        assert started, "the service did not start once Redis came up"
        with client(service.target, mint(task_id="b")) as c:
            c.push("k", 1)
        assert service.terminate() == 0
    finally:
        service.kill()  # never leave a service behind, whatever failed
        thread.join(35)
