"""A real Redis-protocol server process: redis-server or valkey-server in its own directory.

Started with the product's compose/redis/redis.conf (AOF on, noeviction) on 127.0.0.1 and a
free port by default, so what the tests, the bench and `make run` prove holds for the
configuration we ship.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from leoflow_xcom.testing.paths import REDIS_CONF
from leoflow_xcom.testing.ports import free_port


class RedisProcess:
    """One server process. `extra`: more server arguments (e.g. "--maxmemory", "4gb").

    port: a free one by default. ready: how to tell it answers (default: PING as the default
    user; pass your own when the default user is off). logfile: default data_dir/server.log.
    """

    def __init__(
        self,
        binary: str,
        data_dir: Path,
        *extra: str,
        port: int | None = None,
        config: Path = REDIS_CONF,
        logfile: Path | None = None,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = free_port() if port is None else port
        self.extra = list(extra)
        self.config = config
        self.logfile = logfile or data_dir / "server.log"
        self._ready = ready or self._pings
        self.proc: subprocess.Popen[bytes] | None = None
        data_dir.mkdir(parents=True, exist_ok=True)

    def private_config(self) -> RedisProcess:
        """Run on a copy of the configuration in the data directory: a server whose config
        Sentinel rewrites at failover (CONFIG REWRITE) must not change the product's file."""
        copy = self.data_dir / "redis.conf"
        copy.write_text(self.config.read_text())
        self.config = copy
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, **kwargs)  # type: ignore[arg-type]

    def _pings(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        finally:
            client.close()

    def start(self, timeout: float = 20) -> RedisProcess:
        """Start and wait until it answers; RuntimeError (with its log's tail) if it does not."""
        if not self.config.exists():
            raise RuntimeError(
                f"no Redis configuration at {self.config}: the harness runs from a source "
                "checkout, or pass config= your own redis.conf"
            )
        args = [
            self.binary,
            str(self.config),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "no",
            "--logfile",
            str(self.logfile),
            *self.extra,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.binary} exited: {self._log_tail()}")
            try:
                if self._ready():
                    return self
            except (OSError, redis.ConnectionError, redis.exceptions.BusyLoadingError):
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.binary} did not answer on port {self.port}")

    def _log_tail(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

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
        """SIGTERM (Redis flushes its AOF), SIGKILL after 10 s; also when it was paused."""
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
