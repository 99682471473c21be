"""Quotas: one task instance or run cannot fill the store. Refused atomically in the push
script (a race cannot overshoot), with counters that follow overwrite, expiry and clear."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import redis

from leoflow_xcom.client import NO_RETRY, XComClient, XComQuotaExceededError
from leoflow_xcom.core import keys
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.service import ServiceProcess
from tests.fixture_types import Mint
from tests.security.tenants import figure


def _client(serve: ServiceProcess, mint: Mint, task: str, run: str = "r1") -> XComClient:
    return XComClient(
        serve.target, mint("quota_dag", run, task), timeout=5, retry=NO_RETRY, transport="unary"
    )


def _usage(raw: redis.Redis, run: str = "r1") -> dict[str, int]:
    found: dict[bytes, bytes] = raw.hgetall(keys.run_keys("quota_dag", run).quota)  # type: ignore[assignment]
    return {k.decode(): int(v) for k, v in found.items()}


def test_task_instance_count_and_bytes_quota_refuse_with_usage_limit_and_advice(
    serve: ServiceProcess, raw: redis.Redis, mint: Mint
) -> None:
    with _client(serve, mint, "t1") as t1:
        for i in range(5):
            t1.push(f"k{i}", i)
        with pytest.raises(XComQuotaExceededError) as info:
            t1.push("k5", 5)
        error = info.value
        assert error.metadata["scope"] == "task_instance" and error.metadata["measure"] == "count"
        assert (error.metadata["usage"], error.metadata["limit"]) == ("5", "5")
        assert "xcom_quota.task_instance_count" in error.message
        assert "clear" in error.message
        t1.push("k4", "overwrite is no new XCom")  # same key again: count unchanged
        figure(f"QUOTA count: 6th push of a task instance refused: {error.message}")
    assert raw.get(keys.run_keys("quota_dag", "r1").value(keys.member("t1", -1, "k5"))) is None
    with _client(serve, mint, "t2") as t2:
        t2.push("big", "x" * 3000)
        with pytest.raises(XComQuotaExceededError) as info:
            t2.push("more", "y" * 1500)
        assert info.value.metadata["measure"] == "bytes"
        assert info.value.metadata["usage"] == "3002"  # JSON quotes included
        t2.push("big", "x" * 100)  # shrinking overwrite frees bytes...
        t2.push("more", "y" * 1500)  # ...that the next push may use
    usage = _usage(raw)
    ti1, ti2 = keys.task_instance_prefix("t1", -1), keys.task_instance_prefix("t2", -1)
    assert usage[f"n:{ti1}"] == 5 and usage[f"n:{ti2}"] == 2 and usage["n"] == 7
    assert usage[f"b:{ti2}"] == 102 + 1502


def test_concurrent_pushes_cannot_overshoot_the_run_quota(
    serve: ServiceProcess, raw: redis.Redis, mint: Mint
) -> None:
    """12 XComs per run; 4 tasks x 5 keys pushed at once by 4 threads: exactly 12 stored."""
    refused: list[str] = []

    def pusher(task: str) -> None:
        with _client(serve, mint, task, "race") as client:
            for i in range(5):
                try:
                    client.push(f"k{i}", i)
                except XComQuotaExceededError as exc:
                    refused.append(exc.metadata["scope"])

    threads = [threading.Thread(target=pusher, args=(t,)) for t in ("t1", "t2", "t3", "t4")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    stored = raw.zcard(keys.run_keys("quota_dag", "race").index)
    figure(
        f"QUOTA race: 20 concurrent pushes, run_count 12: stored={stored} refused={len(refused)}"
    )
    assert stored == 12 and len(refused) == 8 and set(refused) == {"run"}
    assert _usage(raw, "race")["n"] == 12


def test_expired_values_and_clears_give_their_quota_back(
    serve: ServiceProcess, raw: redis.Redis, mint: Mint
) -> None:
    run = keys.run_keys("quota_dag", "r1")
    with _client(serve, mint, "t1") as t1:
        for i in range(5):
            t1.push(f"k{i}", i)
        # Two values expire, exactly as Redis expires them: the value key goes, the expiry
        # score is in the past. The next push prunes them and their quota comes back.
        past = int(time.time() * 1000) - 1000
        for i in (0, 1):
            member = keys.member("t1", -1, f"k{i}")
            raw.delete(run.value(member))
            raw.zadd(run.expiry, {member: past})
        t1.push("k5", 5)
        t1.push("k6", 6)
        assert _usage(raw)["n"] == 5
        with XComClient(
            serve.target, mint("quota_dag", "r1", "t1", control_plane=True), retry=NO_RETRY
        ) as control:
            assert control.clear("quota_dag", "r1", task_id="t1", map_index=-1) == 5
        assert _usage(raw) == {}  # the run is empty: its bookkeeping went with it
        assert raw.zscore(keys.RUNS_ALL_KEY, keys.run_member("quota_dag", "r1")) is None
        t1.push("k0", 0)
    assert _usage(raw)["n"] == 1


def test_default_quotas_come_from_settings(
    own_redis: RedisProcess, raw: redis.Redis, mint: Mint, signing_key_file: Path
) -> None:
    service = ServiceProcess(
        own_redis.url,
        signing_key_file,
        LEOFLOW_XCOM_QUOTA_TASK_INSTANCE_COUNT="2",
        LEOFLOW_XCOM_METRICS_LISTEN="",
    ).start()
    try:
        with XComClient(
            service.target, mint("open_dag", "r1", "big"), retry=NO_RETRY, transport="unary"
        ) as client:
            client.push("a", 1)
            client.push("b", 2)
            with pytest.raises(XComQuotaExceededError, match="open_dag"):
                client.push("c", 3)
    finally:
        service.kill()
