"""The three deployments come up for real and `connect()` reaches each as the settings say."""

from __future__ import annotations

import redis
import redis.cluster

from leoflow_xcom.store.connection import connect, node_for, primaries
from leoflow_xcom.testing.cluster import LocalCluster, cluster_info
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
