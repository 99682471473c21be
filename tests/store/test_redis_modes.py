"""The three deployments come up for real and `connect()` reaches each as the settings say."""

from __future__ import annotations

from pathlib import Path

import redis
import redis.cluster

from leoflow_xcom.core.model import XComRef
from leoflow_xcom.store.connection import connect, node_for, primaries
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.stats import read_stats
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.cluster import LocalCluster, cluster_info
from leoflow_xcom.testing.redis_binary import find_binary
from leoflow_xcom.testing.sentinel import LocalSentinelGroup
from tests.redis_modes import cluster_settings, sentinel_settings


def test_the_cluster_has_three_shards_each_with_a_replica_in_sync(
    redis_cluster: LocalCluster,
) -> None:
    shards = redis_cluster.primaries()
    assert len(shards) == 3
    for primary in shards:
        assert len(redis_cluster.replicas_of(primary)) == 1
        with primary.client() as c:
            assert cluster_info(c)["cluster_state"] == "ok"


def test_connect_in_cluster_mode_routes_keys_to_their_shards(
    redis_cluster: LocalCluster,
) -> None:
    client = connect(cluster_settings(redis_cluster))
    try:
        assert isinstance(client, redis.cluster.RedisCluster)
        names = [f"xcom:mode-test:{i}" for i in range(30)]
        for name in names:
            client.set(name, name, ex=60)
        assert [client.get(n) for n in names] == [n.encode() for n in names]
        # The keys landed on every shard, and node_for() names each key's owner.
        owners = {node_for(client, n).connection_pool.connection_kwargs["port"] for n in names}
        assert len(owners) == 3
        assert len(primaries(client)) == 3
        for name in names:
            assert node_for(client, name).get(name) == name.encode()
        client.delete(*names[:1])
    finally:
        client.close()


def test_connect_in_sentinel_mode_reaches_the_primary(
    redis_sentinel: LocalSentinelGroup,
) -> None:
    client = connect(sentinel_settings(redis_sentinel))
    try:
        assert isinstance(client, redis.Redis)
        client.set("xcom:mode-test", "1", ex=60)
        info = client.info("replication")
        assert info["role"] == "master"
        assert info["connected_slaves"] == 2
        assert client.connection_pool.get_master_address()[1] == redis_sentinel.primary.port  # type: ignore[attr-defined]
    finally:
        client.close()


def test_stats_sum_keys_over_primaries_and_report_the_fullest_shard(
    redis_cluster: LocalCluster,
) -> None:
    client = connect(cluster_settings(redis_cluster))
    try:
        for node in primaries(client):
            node.flushall()
        for i in range(30):
            client.set(f"xcom:stats:{i}", "1", ex=60)
        per_node = [node.dbsize() for node in primaries(client)]
        assert sum(1 for n in per_node if n) == 3  # the keys are spread over every shard
        # One shard made tight: the ratio is that shard's.
        tight = primaries(client)[1]
        used = int(tight.info("memory")["used_memory"])
        tight.config_set("maxmemory", str(used * 2))
        try:
            stats = read_stats(client)
            assert stats.keys == 30
            assert stats.maxmemory == used * 2
            assert 0.4 < stats.memory_ratio <= 0.6
            assert stats.memory_warning(0.4)
            assert stats.aof_enabled and stats.aof_last_write_ok
        finally:
            tight.config_set("maxmemory", "512mb")
    finally:
        client.close()


def test_a_cluster_created_by_hand_serves_the_store(tmp_path: Path) -> None:
    """The launcher's path for machines without redis-cli/valkey-cli: CLUSTER ADDSLOTSRANGE,
    MEET and REPLICATE by hand, then the product's push and read on it."""
    binary = find_binary("valkey") or find_binary("redis")
    assert binary is not None
    cluster = LocalCluster(binary, tmp_path / "by-hand", use_cli=False).start()
    try:
        print(f"\ncluster 3+3 created by hand, up in {cluster.bring_up_seconds:.2f} s")
        assert len(cluster.primaries()) == 3
        assert all(len(cluster.replicas_of(p)) == 1 for p in cluster.primaries())
        client = connect(cluster_settings(cluster))
        XComWriter(client).push("d", "r", XComRef("t", "k"), b"1", 60)
        assert XComReader(client).fetch("d", "r", XComRef("t", "k")) == b"1"
        client.close()
    finally:
        cluster.stop()
