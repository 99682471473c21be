"""Every data node of a deployment, as `leoflow-xcom init` must reach them one by one.

ACL users, and a replica's `masteruser`/`masterauth`, are per node: Redis Cluster and
replication copy data, never users or configuration. So init asks one node for the others:
a cluster node lists every primary and replica (CLUSTER NODES); a standalone or Sentinel-managed
node lists its replicas or its primary (INFO replication). Pure parsing here; the caller sends
the commands.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping


@dataclasses.dataclass(frozen=True, order=True)
class Node:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


# Nodes the cluster itself considers gone or not yet joined; init reports them instead of
# silently skipping (their users would be stale when they come back).
_UNREACHABLE_FLAGS = frozenset({"fail", "noaddr", "handshake"})


@dataclasses.dataclass(frozen=True)
class ClusterNodes:
    reachable: list[Node]
    unreachable: list[str]  # "host:port (flags)" as the cluster reports them


def parse_cluster_nodes(text: str, seed: Node) -> ClusterNodes:
    """CLUSTER NODES lines: `<id> <ip:port@cport[,hostname]> <flags> <primary> ...`."""
    reachable: list[Node] = []
    unreachable: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        address = fields[1].split(",", 1)[0].split("@", 1)[0]
        host, _, port = address.rpartition(":")
        flags = set(fields[2].split(","))
        # A lone node that never met another one reports an empty address for itself.
        node = seed if "myself" in flags and not host else Node(host.strip("[]"), int(port))
        if flags & _UNREACHABLE_FLAGS:
            unreachable.append(f"{node} ({fields[2]})")
        else:
            reachable.append(node)
    return ClusterNodes(sorted(set(reachable)), unreachable)


def replication_peers(info: Mapping[str, object], me: Node) -> list[Node]:
    """This node, plus its primary or its connected replicas, from INFO replication (redis-py
    parses `slaveN:ip=...,port=...` into dicts)."""
    found = {me}
    if info.get("role") == "slave":
        host, port = info.get("master_host"), info.get("master_port")
        if host and port:
            found.add(Node(str(host), int(str(port))))
    for name, value in info.items():
        if name.startswith("slave") and isinstance(value, Mapping):
            found.add(Node(str(value["ip"]), int(str(value["port"]))))
    return sorted(found)


def describe(nodes: Iterable[Node]) -> str:
    return ", ".join(str(n) for n in nodes)
