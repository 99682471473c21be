"""Fixtures of the store suites that more than one module needs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leoflow_xcom.testing.redis_binary import find_binary
from leoflow_xcom.testing.redis_server import RedisProcess


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisProcess, RedisProcess]]:
    """A real primary and its replica, in sync, once per module (LEOFLOW_REDIS_MIN_REPLICA_ACKS:
    the tests stall the replica with SIGSTOP)."""
    binary = find_binary("redis") or find_binary("valkey")
    assert binary is not None
    base: Path = tmp_path_factory.mktemp("acks")
    primary = RedisProcess(binary, base / "primary").start()
    replica = RedisProcess(
        binary, base / "replica", "--replicaof", "127.0.0.1", str(primary.port)
    ).start()
    deadline = time.monotonic() + 30
    while replica.client().info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica never synced"
        time.sleep(0.05)
    yield primary, replica
    replica.stop()
    primary.stop()
