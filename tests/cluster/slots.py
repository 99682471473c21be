"""Slots changing hands on a running cluster, as an operator makes them: a slot move the way
`redis-cli --cluster reshard` does it (the target IMPORTING, the source MIGRATING, every key
MIGRATEd, then every primary told the new owner), and a manual failover (CLUSTER FAILOVER on a
replica). A client that read the slot map before meets MOVED."""

from __future__ import annotations

import time

import redis

from leoflow_xcom.testing.cluster import LocalCluster
from leoflow_xcom.testing.redis_server import RedisProcess


def node_id(node: redis.Redis) -> str:
    found = node.execute_command("CLUSTER MYID")  # type: ignore[no-untyped-call]
    return found.decode() if isinstance(found, bytes) else str(found)


def owner_port(cluster: LocalCluster, slot: int) -> int:
    """The port of the primary that owns `slot`, as the cluster itself says now."""
    with cluster.primaries()[0].client() as any_node:
        for start, end, primary, *_ in any_node.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return int(primary[1])
    raise AssertionError(f"no primary owns slot {slot}")


def move_slot(cluster: LocalCluster, slot: int, to_port: int) -> None:
    """Move `slot`, keys and all, to the primary listening on `to_port`; bounded waits."""
    from_port = owner_port(cluster, slot)
    if from_port == to_port:
        return
    by_port = {p.port: p for p in cluster.primaries()}
    source, target = by_port[from_port].client(), by_port[to_port].client()
    try:
        source_id, target_id = node_id(source), node_id(target)
        target.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)  # type: ignore[no-untyped-call]
        source.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)  # type: ignore[no-untyped-call]
        while True:
            keys = source.execute_command("CLUSTER GETKEYSINSLOT", slot, 100)  # type: ignore[no-untyped-call]
            if not keys:
                break
            source.execute_command(  # type: ignore[no-untyped-call]
                "MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "KEYS", *keys
            )
        for node in (target, source):
            node.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)  # type: ignore[no-untyped-call]
        for primary in cluster.primaries():
            if primary.port not in (from_port, to_port):
                with primary.client() as other:
                    other.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
        deadline = time.monotonic() + 10
        while owner_port(cluster, slot) != to_port:  # every node answers with the new map
            assert time.monotonic() < deadline, f"slot {slot} never moved to port {to_port}"
            time.sleep(0.05)
    finally:
        source.close()
        target.close()


def fail_over(cluster: LocalCluster, primary_port: int) -> int:
    """Promote the replica of the primary on `primary_port` (CLUSTER FAILOVER, graceful: no
    write is lost); wait until the old primary is its replica, in sync. The new primary's port."""
    [replica] = [
        n for n in cluster.nodes if n.port != primary_port and _replica_of(n, primary_port)
    ]
    with replica.client() as node:
        node.execute_command("CLUSTER FAILOVER")
    deadline = time.monotonic() + 30
    while not any(p.port == replica.port for p in cluster.primaries()) or any(
        p.port == primary_port for p in cluster.primaries()
    ):
        assert time.monotonic() < deadline, f"port {replica.port} was never promoted"
        time.sleep(0.05)
    cluster.wait_healthy(deadline)  # every node agrees, the old primary is in sync again
    return replica.port


def _replica_of(node: RedisProcess, primary_port: int) -> bool:
    with node.client() as c:
        info = c.info("replication")
    return info.get("role") == "slave" and int(info.get("master_port", 0)) == primary_port
