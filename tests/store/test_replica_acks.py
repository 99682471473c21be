"""LEOFLOW_REDIS_MIN_REPLICA_ACKS: a push is acknowledged only when WAIT, sent on the same
connection right after the write, confirms that many replicas. Real primary and replica
processes; the replica is stalled with SIGSTOP."""

from __future__ import annotations

import time

import pytest

from leoflow_xcom.core.errors import StoreUnavailableError
from leoflow_xcom.core.model import XComRef
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store.connection import connect
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.runs import RunRegistry
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.cluster import LocalCluster
from leoflow_xcom.testing.redis_server import RedisProcess
from tests.redis_modes import cluster_settings


def _writer(primary: RedisProcess, acks: int) -> XComWriter:
    settings = RedisSettings(url=primary.url, min_replica_acks=acks)
    return XComWriter(connect(settings), settings.min_replica_acks, settings.wait_timeout_ms)


def test_with_the_replica_running_an_acked_push_succeeds(
    pair: tuple[RedisProcess, RedisProcess],
) -> None:
    primary, replica = pair
    writer = _writer(primary, 1)
    writer.push("d", "acked", XComRef("t", "k"), b"1", 60)
    # The replica has it by the time the push is acknowledged.
    assert replica.client().exists("xcom:{d:acked}:i") == 1


def test_with_the_replica_stalled_the_push_fails_within_its_timeout(
    pair: tuple[RedisProcess, RedisProcess],
) -> None:
    primary, replica = pair
    writer = _writer(primary, 1)
    replica.pause()
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="may have been applied") as info:
            writer.push("d", "stalled", XComRef("t", "k"), b"1", 60)
        elapsed = time.monotonic() - started
        assert "0 of the 1 Redis replicas" in info.value.message
        assert elapsed < 5  # WAIT's own timeout (0.4 s by default), not a hang
        # Not confirmed, but it may have landed: a retry is safe, and so is a read.
        settings = RedisSettings(url=primary.url)
        assert XComReader(connect(settings)).fetch("d", "stalled", XComRef("t", "k")) == b"1"
        # Without acks the same push goes through at once.
        _writer(primary, 0).push("d", "stalled", XComRef("t", "k"), b"1", 60)
    finally:
        replica.resume()
    writer.push("d", "stalled", XComRef("t", "k"), b"1", 60)  # the SDK's retry


def test_more_acks_than_replicas_never_acknowledge(
    pair: tuple[RedisProcess, RedisProcess],
) -> None:
    primary, _ = pair
    with pytest.raises(StoreUnavailableError, match="1 of the 2"):
        _writer(primary, 2).push("d", "two", XComRef("t", "k"), b"1", 60)


def test_acked_pushes_on_a_cluster_wait_on_the_run_shard_and_the_index_shard(
    redis_cluster: LocalCluster,
) -> None:
    settings = cluster_settings(redis_cluster, min_replica_acks=1)
    client = connect(settings)
    writer = XComWriter(client, settings.min_replica_acks, settings.wait_timeout_ms)
    for i in range(10):
        writer.push("d", f"acked-{i}", XComRef("t", "k"), b"1", 60)
    assert len(RunRegistry(client).page("d", 0, 100)) >= 10
    client.close()
