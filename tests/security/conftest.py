"""Each tenant attack gets its own Redis (the shipped redis.conf) and, where the attack goes
through the service, a real `leoflow-xcom serve` subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.service import ServiceProcess
from tests.security.tenants import FIGURES, OPEN_DAG, QUOTA_DAG, publish
from tests.servers import PRIMARY_KIND, start_redis


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("tenant attack figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = start_redis(PRIMARY_KIND, tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def raw(own_redis: RedisProcess) -> Iterator[redis.Redis]:
    with own_redis.client() as client:
        publish(client, QUOTA_DAG, OPEN_DAG)
        yield client


@pytest.fixture
def serve(
    own_redis: RedisProcess, raw: redis.Redis, signing_key_file: Path
) -> Iterator[ServiceProcess]:
    service = ServiceProcess(
        own_redis.url, signing_key_file, LEOFLOW_XCOM_WORKERS="8", LEOFLOW_XCOM_METRICS_LISTEN=""
    ).start()
    yield service
    service.kill()
