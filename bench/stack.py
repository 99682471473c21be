"""Redis and the XCom service as separate processes, for the bench and the load tests.

Both come from the development harness (leoflow_xcom.testing, which the tests use too): Redis
runs with the product's compose/redis/redis.conf; the service runs as `python -m bench.server`
(the product server plus the bench-only echo) or as `leoflow-xcom serve`, with the example DAG
policies from config/dags published.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

from leoflow_xcom.testing.health import NotServingError, wait_serving
from leoflow_xcom.testing.paths import ROOT
from leoflow_xcom.testing.policies import publish_policies
from leoflow_xcom.testing.ports import free_port
from leoflow_xcom.testing.redis_binary import INSTALL_HINT, any_binary
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.tokens import mint_token, write_signing_key


@dataclasses.dataclass
class Stack:
    redis: RedisProcess
    service: subprocess.Popen[bytes]
    target: str
    signing_key: bytes
    workdir: Path
    # False when the Redis deployment is shared with other stacks (the cluster section).
    owns_redis: bool = True

    def token(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        return mint_token(self.signing_key, dag_id, run_id, task_id, map_index, expires_in=3600)

    def stop(self) -> None:
        if self.service.poll() is None:
            self.service.terminate()
            try:
                self.service.wait(15)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait(5)
        if self.owns_redis:
            self.redis.stop()
            # Throwaway data (redis-benchmark alone writes ~100 MB); the logs stay for reading.
            shutil.rmtree(self.redis.data_dir, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


BENCH_SERVER = [sys.executable, "-m", "bench.server"]


def start(
    *,
    command: list[str] | None = None,
    workers: int = 32,
    log_name: str = "service",
    redis: RedisProcess | None = None,
    redis_env: dict[str, str] | None = None,
) -> Stack:
    """command: how to run the service (default: the bench server, with the echo service);
    redis/redis_env: a Redis deployment someone else started and prepared (its policies
    published), the node whose CPU is sampled and the LEOFLOW_REDIS_* settings reaching it."""
    workdir = Path(tempfile.mkdtemp(prefix="leoflow-bench-"))
    owns_redis = redis is None
    if redis is None:
        redis = RedisProcess(any_binary() or sys.exit(INSTALL_HINT), workdir / "redis").start()
        client = redis.client()
        try:
            publish_policies(client)
        finally:
            client.close()
    key_file = workdir / "signing-key"
    key = write_signing_key(key_file)
    port = free_port()
    env = {
        **os.environ,
        "LEOFLOW_REDIS_URL": redis.url,
        "LEOFLOW_XCOM_LISTEN": f"127.0.0.1:{port}",
        "LEOFLOW_XCOM_SIGNING_KEY_FILE": str(key_file),
        "LEOFLOW_XCOM_WORKERS": str(workers),
        "LEOFLOW_XCOM_DRAIN_SECONDS": "2",
        **(redis_env or {}),
    }
    with open(workdir / f"{log_name}.log", "wb") as log:  # the child keeps its own copy
        service = subprocess.Popen(
            command or BENCH_SERVER, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    target = f"127.0.0.1:{port}"
    stack = Stack(redis, service, target, key, workdir, owns_redis=owns_redis)
    _wait_serving(stack, service, target, workdir / f"{log_name}.log")
    return stack


def _wait_serving(stack: Stack, proc: subprocess.Popen[bytes], target: str, log: Path) -> None:
    try:
        wait_serving(target, proc, 30)
    except NotServingError as exc:
        stack.stop()
        sys.exit(f"{exc}; see {log}")
