"""The store can always be cleared: fill a real Redis to STORE_FULL through pushes, then clear
through the real CLI (via the service, and the operator's --older-than path straight to
Redis), and push again. On Debian's redis-server 7.0 and on valkey."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from leoflow_xcom.client import NO_RETRY, StoreFullError, XComClient
from leoflow_xcom.core import keys
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.service import ServiceProcess
from tests.fixture_types import Mint
from tests.security.tenants import OPEN_DAG, figure, publish
from tests.servers import SERVER_KINDS, start_redis

CLI = str(Path(sys.executable).parent / "leoflow-xcom")
VALUE = "v" * (256 * 1024 - 2)  # a full 256 KiB value with its JSON quotes
MAX_FILL_PUSHES = 64


@pytest.fixture(params=SERVER_KINDS)
def kind_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisProcess]:
    server = start_redis(request.param, tmp_path / request.param)
    yield server
    server.stop()


def _fill(client: XComClient, raw: redis.Redis, prefix: str) -> tuple[int, bool]:
    """Push 256 KiB values until Redis refuses with STORE_FULL, then put Redis over maxmemory.
    Returns how many fit and whether Redis now refuses a MULTI/EXEC of one DEL."""
    raw.config_set("maxmemory", str(int(raw.info("memory")["used_memory"]) + 3 * 1024 * 1024))
    for i in range(MAX_FILL_PUSHES):
        try:
            client.push(f"{prefix}{i}", VALUE)
        except StoreFullError:
            # Over maxmemory, not just near it (buffers and the AOF put a live Redis there):
            # now Redis refuses every command that may add memory (and redis-server 7.0 every
            # queued MULTI command, even a DEL: how the old clear failed).
            used = int(raw.info("memory")["used_memory"])
            raw.config_set("maxmemory", str(used - 512 * 1024))
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                raw.set("xcom:probe", "1")
            try:
                with raw.pipeline(transaction=True) as pipe:
                    pipe.delete("xcom:nothing")
                    pipe.execute()
            except redis.exceptions.OutOfMemoryError:
                return i, True
            return i, False
    raise AssertionError("Redis never became full")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_clear_works_at_maxmemory_then_pushes_succeed(
    kind_redis: RedisProcess, signing_key_file: Path, mint: Mint
) -> None:
    raw = kind_redis.client()
    publish(raw, OPEN_DAG)
    service = ServiceProcess(
        kind_redis.url, signing_key_file, LEOFLOW_XCOM_METRICS_LISTEN=""
    ).start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LEOFLOW_")},
        "LEOFLOW_XCOM_ADDR": service.target,
        "LEOFLOW_REDIS_URL": kind_redis.url,
        "LEOFLOW_XCOM_SIGNING_KEY_FILE": str(signing_key_file),
        "LEOFLOW_XCOM_TOKEN": mint("open_dag", "r1", "big", control_plane=True),
    }
    try:
        with XComClient(
            service.target, mint("open_dag", "r1", "big"), retry=NO_RETRY, transport="unary"
        ) as r1:
            fitted, multi_refused = _fill(r1, raw, "k")
            if "redis-server" in kind_redis.binary:
                assert multi_refused  # Redis 7.0 semantics this test exists for
            # Redis lost its script cache too: the clear script must load while full.
            raw.script_flush()
            started = time.monotonic()
            out = _cli(env, "clear", "--dag", "open_dag", "--run", "r1")
            took = time.monotonic() - started
            assert out.returncode == 0, out.stderr
            assert f"cleared {fitted} XCom(s)" in out.stdout
            r1.push("after", VALUE)  # room again
            assert raw.zcard(keys.run_keys("open_dag", "r1").index) == 1
        with XComClient(
            service.target, mint("open_dag", "r2", "big"), retry=NO_RETRY, transport="unary"
        ) as r2:
            fitted2, _ = _fill(r2, raw, "k")
            raw.script_flush()
            swept = _cli(env, "clear", "--dag", "open_dag", "--older-than", "0s")
            assert swept.returncode == 0, swept.stderr
            assert "in 2 run(s)" in swept.stdout
            r2.push("after", VALUE)
        assert raw.zcard(keys.dag_runs_key("open_dag")) == 1
    finally:
        service.kill()
        raw.close()
    figure(
        f"CLEAR at maxmemory ({kind_redis.binary.rsplit('/', 1)[-1]}): {fitted} x 256 KiB "
        f"pushed until STORE_FULL, then over maxmemory (MULTI/EXEC refused: {multi_refused}); "
        f"`clear --run` answered in {took * 1000:.0f} ms (CLI process "
        f"included, measured under load); `clear --older-than 0s` cleared {fitted2 + 1} more; "
        f"pushes succeed again"
    )
