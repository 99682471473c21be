"""A real Redis Cluster on loopback for tests: 3 primaries + 3 replicas of redis-server or
valkey-server, each with the product's redis.conf (AOF, noeviction) plus cluster mode.

Created the way an operator does it, `redis-cli --cluster create ... --cluster-replicas 1`
(valkey-cli when that is what there is); with no CLI at all, by hand (CLUSTER ADDSLOTSRANGE,
MEET, REPLICATE). Every wait is bounded; `stop()` ends every process it started.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from tests.redis_proc import RedisProcess, free_port

SLOTS = 16384
# Short, so a failover in a test takes seconds; the Compose profile sets its own.
NODE_TIMEOUT_MS = 2000


class LocalCluster:
    def __init__(
        self,
        binary: str,
        directory: Path,
        primaries: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = NODE_TIMEOUT_MS,
        full_coverage: bool = False,
        use_cli: bool = True,
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.primary_count = primaries
        self.replica_count = replicas
        self.nodes = [
            RedisProcess(
                binary,
                directory / f"node-{i}",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                str(node_timeout_ms),
                # Off: a shard that lost its primary and every replica refuses its slots, but
                # the other shards keep serving. On (Redis's default): the whole cluster is
                # down then.
                "--cluster-require-full-coverage",
                "yes" if full_coverage else "no",
                # Free ports are often above 55535, where the default bus port (+10000) does
                # not exist: the bus gets a free port of its own.
                "--cluster-port",
                str(free_port()),
            )
            for i in range(primaries * (1 + replicas))
        ]
        # free_port() can hand out the same port twice in a row (it is free again once the
        # probe socket closes): every client and bus port must be distinct.
        used: set[int] = set()
        for node in self.nodes:
            while node.port in used:
                node.port = free_port()
            used.add(node.port)
        for node in self.nodes:
            at = node.extra.index("--cluster-port") + 1
            while int(node.extra[at]) in used:
                node.extra[at] = str(free_port())
            used.add(int(node.extra[at]))
        self.use_cli = use_cli
        self.bring_up_seconds = 0.0

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{node.port}" for node in self.nodes]

    @property
    def nodes_setting(self) -> str:
        """LEOFLOW_REDIS_NODES for this cluster."""
        return ",".join(self.addresses)

    def start(self, timeout: float = 60.0) -> LocalCluster:
        began = time.monotonic()
        try:
            for node in self.nodes:
                node.start()
            cli = _cli(self.binary) if self.use_cli else None
            if cli is not None:
                self._create_with_cli(cli, timeout)
            else:
                self._create_by_hand()
            self.wait_healthy(began + timeout)
        except BaseException:
            self.stop()
            raise
        self.bring_up_seconds = time.monotonic() - began
        return self

    def _create_with_cli(self, cli: str, timeout: float) -> None:
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *self.addresses,
                "--cluster-replicas",
                str(self.replica_count),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def _create_by_hand(self) -> None:
        primaries = self.nodes[: self.primary_count]
        per = SLOTS // len(primaries)
        for i, node in enumerate(primaries):
            high = SLOTS - 1 if i == len(primaries) - 1 else (i + 1) * per - 1
            with node.client() as c:
                c.execute_command("CLUSTER ADDSLOTSRANGE", i * per, high)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            with node.client() as c:
                # The bus port is not port + 10000 here: MEET must be told it.
                bus = first.extra[first.extra.index("--cluster-port") + 1]
                c.execute_command("CLUSTER MEET", "127.0.0.1", first.port, bus)
        ids = [_node_id(p) for p in primaries]
        deadline = time.monotonic() + 30
        for j, node in enumerate(self.nodes[self.primary_count :]):
            with node.client() as c:
                while True:  # REPLICATE needs the node to know the primary already
                    try:
                        c.execute_command("CLUSTER REPLICATE", ids[j % len(ids)])
                        break
                    except redis.exceptions.ResponseError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)

    def wait_healthy(self, deadline: float) -> None:
        """Every node says cluster_state:ok and knows every node; every replica is in sync."""
        want = len(self.nodes)
        while True:
            if all(self._node_ready(node, want) for node in self.nodes if alive(node)):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster at {self.nodes_setting} did not become ready")
            time.sleep(0.1)

    @staticmethod
    def _node_ready(node: RedisProcess, want: int) -> bool:
        try:
            with node.client() as c:
                info = cluster_info(c)
                if info.get("cluster_state") != "ok" or info.get("cluster_known_nodes") != str(
                    want
                ):
                    return False
                replication = c.info("replication")
                if replication.get("role") == "slave":
                    return bool(replication.get("master_link_status") == "up")
                return True
        except redis.exceptions.RedisError:
            return False

    def primaries(self) -> list[RedisProcess]:
        """The nodes that are primaries now (a failover changes this)."""
        return [n for n in self.nodes if alive(n) and _role(n) == "master"]

    def replicas_of(self, primary: RedisProcess) -> list[RedisProcess]:
        return [
            n
            for n in self.nodes
            if alive(n) and n is not primary and _master_port(n) == primary.port
        ]

    def flushall(self) -> None:
        for node in self.primaries():
            with node.client() as c:
                c.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def cluster_info(client: redis.Redis) -> dict[str, str]:
    """CLUSTER INFO as str -> str (redis-py parses it into a dict, or leaves the raw text)."""
    raw = client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def alive(node: RedisProcess) -> bool:
    """Started, and neither exited nor killed (a SIGSTOPped node is still alive)."""
    return node.proc is not None and node.proc.poll() is None


def _cli(server_binary: str) -> str | None:
    """redis-cli or valkey-cli: beside the server binary first, then on PATH."""
    for name in ("valkey-cli", "redis-cli") if "valkey" in server_binary else ("redis-cli",):
        beside = Path(server_binary).with_name(name)
        if beside.exists():
            return str(beside)
        found = shutil.which(name)
        if found:
            return found
    return None


def _node_id(node: RedisProcess) -> str:
    with node.client() as c:
        raw = c.execute_command("CLUSTER MYID")
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _role(node: RedisProcess) -> str:
    try:
        with node.client() as c:
            return str(c.info("replication").get("role", ""))
    except redis.exceptions.RedisError:
        return ""


def _master_port(node: RedisProcess) -> int | None:
    try:
        with node.client() as c:
            port = c.info("replication").get("master_port")
    except redis.exceptions.RedisError:
        return None
    return int(port) if port is not None else None
