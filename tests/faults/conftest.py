"""Fault scenarios: each test gets its own Redis (the shipped redis.conf: AOF, noeviction) and
the service as a real `leoflow-xcom serve` subprocess, so signals and restarts are real."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.service import ServiceProcess
from tests.dag_data import publish_test_policies
from tests.faults.load import PRINTED
from tests.servers import start_redis

# Small on purpose: a stall must be absorbed by these bounds, not by luck.
SERVICE_WORKERS = 16
REDIS_MAX_CONNECTIONS = 16


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if PRINTED:
        terminalreporter.section("fault figures")
        for line in PRINTED:
            terminalreporter.write_line(line)


@pytest.fixture
def fault_redis(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RedisProcess]:
    """The shipped redis.conf; a test may add server arguments with indirect parametrization."""
    extra: tuple[str, ...] = getattr(request, "param", ())
    server = start_redis("redis", tmp_path / "redis", *extra)
    with server.client() as client:
        publish_test_policies(client)
    yield server
    server.stop()


@pytest.fixture
def raw(fault_redis: RedisProcess) -> Iterator[redis.Redis]:
    """A direct connection for the checks, closed after the test (no socket left behind)."""
    with fault_redis.client() as client:
        yield client


@pytest.fixture
def fault_service(fault_redis: RedisProcess, signing_key_file: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess(
        fault_redis.url,
        signing_key_file,
        LEOFLOW_XCOM_WORKERS=str(SERVICE_WORKERS),
        LEOFLOW_REDIS_MAX_CONNECTIONS=str(REDIS_MAX_CONNECTIONS),
        # The writers are one task instance pushing distinct keys without pause: what is under
        # test is the store's fault behaviour, not the quota (tests/security covers that).
        LEOFLOW_XCOM_QUOTA_TASK_INSTANCE_COUNT="0",
        LEOFLOW_XCOM_QUOTA_RUN_COUNT="0",
    ).start()
    yield service
    service.kill()


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))
