"""Redis and the XCom service as separate processes, for the bench and the load tests.

Redis runs with the product's compose/redis/redis.conf (the tests' RedisProcess helper); the
service runs as `python -m bench.server` (the product server plus the bench-only echo) or as
`leoflow-xcom serve`, with the example DAG policies from config/dags published.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from leoflow_xcom.core import tokens
from leoflow_xcom.core.policies import parse_policy
from leoflow_xcom.store.registry import PolicyStore
from tests.redis_proc import ROOT, RedisProcess, find_binary, free_port


@dataclasses.dataclass
class Stack:
    redis: RedisProcess
    service: subprocess.Popen[bytes]
    target: str
    signing_key: bytes
    workdir: Path
    log: IO[bytes] | None = None  # the service's log file, closed with it

    def token(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        return tokens.mint(
            self.signing_key,
            now=int(time.time()),
            expires_in=3600,
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            map_index=map_index,
        )

    def stop(self) -> None:
        if self.service.poll() is None:
            self.service.terminate()
            try:
                self.service.wait(15)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait(5)
        self.redis.stop()
        if self.log is not None:
            self.log.close()

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def redis_binary() -> str:
    for kind in ("redis", "valkey"):
        found = find_binary(kind)
        if found:
            return found
    sys.exit("no redis-server or valkey-server: run `make redis-bin` (or `make test`) first")


def publish_example_policies(redis: RedisProcess) -> None:
    docs = [
        parse_policy(p.read_bytes(), str(p)) for p in sorted((ROOT / "config/dags").glob("*.json"))
    ]
    PolicyStore(redis.client()).publish(docs)


BENCH_SERVER = [sys.executable, "-m", "bench.server"]


def start(
    *, command: list[str] | None = None, workers: int = 32, log_name: str = "service"
) -> Stack:
    """command: how to run the service (default: the bench server, with the echo service)."""
    workdir = Path(tempfile.mkdtemp(prefix="leoflow-bench-"))
    redis = RedisProcess(redis_binary(), workdir / "redis").start()
    publish_example_policies(redis)
    key = secrets.token_urlsafe(48)
    key_file = workdir / "signing-key"
    key_file.write_text(key)
    key_file.chmod(0o600)
    port = free_port()
    env = {
        **os.environ,
        "LEOFLOW_REDIS_URL": redis.url,
        "LEOFLOW_XCOM_LISTEN": f"127.0.0.1:{port}",
        "LEOFLOW_XCOM_SIGNING_KEY_FILE": str(key_file),
        "LEOFLOW_XCOM_WORKERS": str(workers),
        "LEOFLOW_XCOM_DRAIN_SECONDS": "2",
    }
    log = open(workdir / f"{log_name}.log", "wb")  # lives as long as the child
    service = subprocess.Popen(
        command or BENCH_SERVER, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    target = f"127.0.0.1:{port}"
    stack = Stack(redis, service, target, key.encode(), workdir, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if service.poll() is not None:
            stack.stop()
            sys.exit(f"the service exited ({service.returncode}); see {workdir}/{log_name}.log")
        if _serving(target):
            return stack
        time.sleep(0.1)
    stack.stop()
    sys.exit(f"the service did not become ready; see {workdir}/{log_name}.log")


def _serving(target: str) -> bool:
    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
