"""Every Redis Cluster and Sentinel failure reaches callers as STORE_UNAVAILABLE (retryable) or
STORE_FULL, never as an internal error. Real triggers on real processes where one exists; where
none can be produced on demand the docstring says so, and the exception redis-py would raise is
run through the same translation path the store uses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.cluster
import redis.exceptions
import redis.sentinel

from leoflow_xcom.core import keys
from leoflow_xcom.core.errors import StoreFullError, StoreUnavailableError
from leoflow_xcom.core.model import ListFilter, XComRef
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store.connection import connect, node_for, primaries, translated
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.runs import RunRegistry
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.cluster import LocalCluster, cluster_info
from leoflow_xcom.testing.sentinel import LocalSentinelGroup
from tests.redis_modes import cluster_settings, sentinel_settings
from tests.redis_proc import RedisProcess, find_binary, free_port


def _other_node(cluster: LocalCluster, key: str) -> redis.Redis:
    owner = node_for(connect(cluster_settings(cluster)), key)
    port = owner.connection_pool.connection_kwargs["port"]
    other = next(n for n in cluster.primaries() if n.port != port)
    return other.client()


def test_no_reachable_cluster_node_is_unavailable() -> None:
    """Real: seed nodes where nothing listens (RedisClusterException while building)."""
    settings = RedisSettings(mode="cluster", nodes=f"127.0.0.1:{free_port()}")
    with pytest.raises(StoreUnavailableError, match="cannot reach the Redis Cluster"):
        connect(settings)


def test_a_transaction_across_slots_is_unavailable(redis_cluster: LocalCluster) -> None:
    """Real, client side: redis-py refuses MULTI over keys of two slots
    (CrossSlotTransactionError), the error the policy registry met before layout 3."""
    client = connect(cluster_settings(redis_cluster))
    with pytest.raises(StoreUnavailableError), translated(), client.pipeline(True) as pipe:
        pipe.get("xcom:a")
        pipe.get("xcom:b")
        pipe.execute()
    client.close()


def test_crossslot_from_the_server_is_unavailable_and_says_migrate(
    redis_cluster: LocalCluster,
) -> None:
    """Real, server side: a node refuses a call whose keys span two slots (CROSSSLOT)."""
    node = redis_cluster.primaries()[0].client()
    with pytest.raises(StoreUnavailableError, match="leoflow-xcom init"), translated():
        node.execute_command("MGET", "xcom:a", "xcom:b", "xcom:c", "xcom:d")  # type: ignore[no-untyped-call]
    node.close()


def test_moved_from_a_node_is_unavailable(redis_cluster: LocalCluster) -> None:
    """Real: a node that does not own the slot answers MOVED (what a stale slot map meets
    after a failover)."""
    other = _other_node(redis_cluster, "xcom:moved")
    with pytest.raises(StoreUnavailableError, match="moved the slot"), translated():
        other.get("xcom:moved")
    other.close()


def test_ask_during_a_slot_migration_is_unavailable(redis_cluster: LocalCluster) -> None:
    """Real: while a slot is MIGRATING, its owner answers ASK for a key it no longer has."""
    client = connect(cluster_settings(redis_cluster))
    key = "xcom:ask-me"
    assert isinstance(client, redis.cluster.RedisCluster)
    slot = client.keyslot(key)  # type: ignore[no-untyped-call]
    owner = node_for(client, key)
    other = _other_node(redis_cluster, key)
    target_id = other.execute_command("CLUSTER MYID")  # type: ignore[no-untyped-call]
    target_id = target_id.decode() if isinstance(target_id, bytes) else target_id
    owner.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(StoreUnavailableError, match="moved the slot"), translated():
            owner.get(key)
    finally:
        owner.execute_command("CLUSTER SETSLOT", slot, "STABLE")  # type: ignore[no-untyped-call]
        other.close()
        client.close()


def test_tryagain_is_unavailable() -> None:
    """Constructed: TRYAGAIN needs a multi-key call on a slot caught half-migrated, which
    cannot be produced on demand. redis-py parses the reply into TryAgainError."""
    with pytest.raises(StoreUnavailableError, match="resharding"), translated():
        raise redis.exceptions.TryAgainError("TRYAGAIN Multiple keys request during rehashing")


def test_slot_not_covered_is_unavailable() -> None:
    """Constructed: redis-py raises SlotNotCoveredError when its slot map (refreshed after a
    failure) names no node for a slot, a window of a failover that cannot be hit on demand."""
    with pytest.raises(StoreUnavailableError, match="no Redis Cluster node serves"), translated():
        raise redis.exceptions.SlotNotCoveredError('Slot "42" is not covered by the cluster.')


def test_masterdown_is_unavailable() -> None:
    """Constructed: MASTERDOWN is a replica's answer while its link to the primary is down
    (replica-serve-stale-data no); the service never reads from replicas."""
    with pytest.raises(StoreUnavailableError, match="down"), translated():
        raise redis.exceptions.MasterDownError("MASTERDOWN Link with MASTER is down")


@pytest.fixture(scope="module")
def small_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """3 primaries, no replicas, full coverage required (Redis's default): losing one primary
    takes the whole cluster down."""
    binary = find_binary("redis") or find_binary("valkey")
    assert binary is not None
    cluster = LocalCluster(
        binary, tmp_path_factory.mktemp("down-cluster"), replicas=0, full_coverage=True
    ).start()
    yield cluster
    cluster.stop()


def test_clusterdown_is_unavailable_and_bounded(small_cluster: LocalCluster) -> None:
    """Real: SIGKILL one primary of a replica-less cluster; once the others mark it failed
    (cluster-node-timeout), every node answers CLUSTERDOWN."""
    client = connect(cluster_settings(small_cluster))
    writer = XComWriter(client)
    writer.push("d", "r", XComRef("t", "k"), b"1", 60)
    victim = small_cluster.nodes[0]
    victim.kill()
    survivor = small_cluster.nodes[1].client()
    deadline = time.monotonic() + 30
    while cluster_info(survivor).get("cluster_state") != "fail":
        assert time.monotonic() < deadline, "the cluster never noticed the dead primary"
        time.sleep(0.1)
    with pytest.raises(StoreUnavailableError, match="down"), translated():
        survivor.get("xcom:any")
    for n in range(5):  # the product's own calls: unavailable, and bounded in time
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            writer.push("d", f"r{n}", XComRef("t", "k"), b"1", 60)
        assert time.monotonic() - started < 10
    survivor.close()
    client.close()


def test_an_unknown_sentinel_master_is_unavailable(redis_sentinel: LocalSentinelGroup) -> None:
    """Real: the Sentinels know no primary by that name (MasterNotFoundError)."""
    client = connect(sentinel_settings(redis_sentinel, sentinel_master="no-such-master"))
    with pytest.raises(StoreUnavailableError, match="no Sentinel knows"):
        XComReader(client).fetch("d", "r", XComRef("t", "k"))
    client.close()


def test_no_reachable_sentinel_is_unavailable() -> None:
    """Real: nothing listens at the Sentinel addresses."""
    client = connect(RedisSettings(mode="sentinel", nodes=f"127.0.0.1:{free_port()}"))
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        XComWriter(client).push("d", "r", XComRef("t", "k"), b"1", 60)
    assert time.monotonic() - started < 5
    client.close()


def test_noreplicas_is_unavailable(tmp_path: Path) -> None:
    """Real: a primary configured with min-replicas-to-write and no replica refuses writes
    with NOREPLICAS."""
    binary = find_binary("redis") or find_binary("valkey")
    assert binary is not None
    server = RedisProcess(binary, tmp_path / "r", "--min-replicas-to-write", "1").start()
    try:
        client = connect(RedisSettings(url=server.url))
        with pytest.raises(StoreUnavailableError, match="too few replicas"):
            XComWriter(client).push("d", "r", XComRef("t", "k"), b"1", 60)
        client.close()
    finally:
        server.stop()


def test_a_full_shard_is_store_full_and_a_retried_push_registers_its_run(
    redis_cluster: LocalCluster,
) -> None:
    """Real partial failure: the run's shard takes the push, the shard of the run indexes is
    full (maxmemory): the push is not acknowledged, and its retry lists the run."""
    client = connect(cluster_settings(redis_cluster))
    for node in primaries(client):
        node.flushall()
    global_node = node_for(client, keys.RUNS_ALL_KEY)
    gport = global_node.connection_pool.connection_kwargs["port"]
    run = next(
        f"r{i}"
        for i in range(1000)
        if node_for(client, keys.run_keys("d", f"r{i}").index).connection_pool.connection_kwargs[
            "port"
        ]
        != gport
    )
    writer = XComWriter(client)
    used = int(global_node.info("memory")["used_memory"])
    global_node.config_set("maxmemory", str(used // 2))
    try:
        with pytest.raises(StoreFullError):
            writer.push("d", run, XComRef("t", "k"), b"1", 60)
        assert XComReader(client).fetch("d", run, XComRef("t", "k")) == b"1"  # half landed
        assert RunRegistry(client).page("d", 0, 10) == []
    finally:
        global_node.config_set("maxmemory", "512mb")
    writer.push("d", run, XComRef("t", "k"), b"1", 60)  # the SDK's retry
    assert RunRegistry(client).page("d", 0, 10) == [("d", run)]
    assert RunRegistry(client).page(None, 0, 10) == [("d", run)]
    client.close()


def test_noscript_on_a_node_reloads_the_script_there(redis_cluster: LocalCluster) -> None:
    """Real: SCRIPT FLUSH on the node owning a run (as after a restart, or on a replica a
    failover promoted: SCRIPT LOAD is not replicated); push, listing and batch reads load
    their script on that node and succeed."""
    client = connect(cluster_settings(redis_cluster))
    writer, reader = XComWriter(client), XComReader(client)
    writer.push("d", "noscript", XComRef("t", "k"), b"1", 60)
    node_for(client, keys.run_keys("d", "noscript").index).script_flush()
    writer.push("d", "noscript", XComRef("t", "k2"), b"2", 60)
    node_for(client, keys.run_keys("d", "noscript").index).script_flush()
    assert reader.list("d", "noscript", ListFilter()).total == 2
    client.close()


def _getkeys_calls(cluster: LocalCluster) -> int:
    total = 0
    for node in cluster.nodes:
        with node.client() as c:
            stats = c.info("commandstats")
            total += int(stats.get("cmdstat_command|getkeys", {}).get("calls", 0))
    return total


def test_read_only_listing_sends_no_command_getkeys(redis_cluster: LocalCluster) -> None:
    """Measured on the real cluster: redis-py would send COMMAND GETKEYS before every
    EVALSHA_RO; the store computes the slot itself, so the count stays put."""
    client = connect(cluster_settings(redis_cluster))
    writer, reader = XComWriter(client), XComReader(client)
    for i in range(5):
        writer.push("d", f"gk{i}", XComRef("t", "k"), b"1", 60)
    before = _getkeys_calls(redis_cluster)
    for i in range(50):
        reader.list("d", f"gk{i % 5}", ListFilter())
    assert _getkeys_calls(redis_cluster) == before
    client.close()
