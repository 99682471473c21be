"""A real Sentinel group on loopback for tests: 1 primary and 2 replicas (the product's
redis.conf), watched by 3 Sentinels under the master name `leoflow` (quorum 2).

Every wait is bounded; `stop()` ends every process it started.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from leoflow_xcom.testing.ports import free_port
from leoflow_xcom.testing.redis_server import RedisProcess

MASTER_NAME = "leoflow"
# Short, so a failover in a test takes seconds; the Compose profile sets its own.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


class SentinelProcess:
    def __init__(self, binary: str, directory: Path, primary_port: int, master: str) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        # Sentinel rewrites its own file (known replicas, epochs): one file per process.
        (directory / "sentinel.conf").write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {directory}\n"
            f"logfile {directory / 'sentinel.log'}\n"
            f"sentinel monitor {master} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {master} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {master} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {master} 1\n"
        )

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> SentinelProcess:
        self.proc = subprocess.Popen(
            [self.binary, str(self.directory / "sentinel.conf"), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class LocalSentinelGroup:
    def __init__(self, binary: str, directory: Path, replicas: int = 2, sentinels: int = 3) -> None:
        self.binary = binary
        self.master = MASTER_NAME
        # Sentinel runs CONFIG REWRITE on the nodes it reconfigures: each gets its own copy of
        # redis.conf, or a failover would write into the repository's file.
        self.primary = RedisProcess(binary, directory / "primary").private_config()
        self.replicas = [
            RedisProcess(
                binary, directory / f"replica-{i}", "--replicaof", "127.0.0.1", "PRIMARY_PORT"
            ).private_config()
            for i in range(replicas)
        ]
        for replica in self.replicas:
            replica.extra[-1] = str(self.primary.port)
        self.sentinels = [
            SentinelProcess(binary, directory / f"sentinel-{i}", self.primary.port, self.master)
            for i in range(sentinels)
        ]
        self.bring_up_seconds = 0.0

    @property
    def nodes_setting(self) -> str:
        """LEOFLOW_REDIS_NODES for this group: the Sentinel addresses."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    @property
    def servers(self) -> list[RedisProcess]:
        return [self.primary, *self.replicas]

    def start(self, timeout: float = 60.0) -> LocalSentinelGroup:
        began = time.monotonic()
        try:
            for server in self.servers:
                server.start()
            for sentinel in self.sentinels:
                sentinel.start()
            self.wait_healthy(began + timeout)
        except BaseException:
            self.stop()
            raise
        self.bring_up_seconds = time.monotonic() - began
        return self

    def current_primary_port(self) -> int | None:
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as c:
                    addr = c.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", self.master)
            except redis.exceptions.RedisError:
                continue
            if addr:
                return int(addr[1])
        return None

    def wait_healthy(self, deadline: float) -> None:
        """Every replica in sync, every Sentinel knows the primary, both replicas and the other
        Sentinels (so a failover can reach quorum)."""
        while True:
            if self._ready():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Sentinel group at {self.nodes_setting} is not ready")
            time.sleep(0.1)

    def _ready(self) -> bool:
        want_replicas, want_others = len(self.replicas), len(self.sentinels) - 1
        try:
            for replica in self.replicas:
                with replica.client() as c:
                    if c.info("replication").get("master_link_status") != "up":
                        return False
            for sentinel in self.sentinels:
                with sentinel.client() as c:
                    state = c.execute_command("SENTINEL MASTER", self.master)
                    fields = _pairs(state)
                    if int(fields.get("num-slaves", 0)) < want_replicas:
                        return False
                    if int(fields.get("num-other-sentinels", 0)) < want_others:
                        return False
        except redis.exceptions.RedisError:
            return False
        return True

    def flushall(self) -> None:
        port = self.current_primary_port()
        for server in self.servers:
            if server.port == port:
                with server.client() as c:
                    c.flushall()

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()


def _pairs(reply: object) -> dict[str, str]:
    """SENTINEL MASTER's reply (a flat list, or a dict under RESP3) as str -> str."""
    if isinstance(reply, dict):
        items = list(reply.items())
    else:
        flat = list(reply)  # type: ignore[call-overload]
        items = list(zip(flat[::2], flat[1::2], strict=True))
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in items
    }
