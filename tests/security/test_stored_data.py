"""Data already in Redis cannot hurt readers, and policies can be removed.

Out-of-range entries (written straight to Redis, as a laxer older version or an operator
could) are left out of listings, never an INTERNAL error; `dags apply --prune` and `dags rm`
stop pushes at once while reads of stored values keep working until the TTL; a key filter
lists through the by-key index, not a scan of the run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from leoflow_xcom.client import NO_RETRY, DagNotRegisteredError, XComClient
from leoflow_xcom.core import keys
from leoflow_xcom.core.model import ListFilter, XComRef
from leoflow_xcom.proxy.browse import Browser, Query
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.service import ServiceProcess
from tests.fixture_types import Mint
from tests.security.tenants import QUOTA_DAG, figure

CLI = str(Path(sys.executable).parent / "leoflow-xcom")


def test_out_of_range_stored_entries_never_fail_a_listing(
    serve: ServiceProcess, raw: redis.Redis, mint: Mint
) -> None:
    with XComClient(serve.target, mint("open_dag", "r1", "big"), retry=NO_RETRY) as big:
        big.push("good", 1)
    run = keys.run_keys("open_dag", "r1")
    far = int(time.time() * 1000) + 3_600_000
    hostile = {
        "big!2147483649!huge_index": "5:1:" + str(far),  # map index 2^31
        "big!-999999999999!negative": "5:1:" + str(far),  # map index -10^12
        "big!0000000000!bad_meta": "not-a-meta",
        "big!0000000000!too!many!parts": "5:1:" + str(far),
        "big!0000000000!huge_size": f"{2**70}:1:{far}",
    }
    for member, meta in hostile.items():
        raw.zadd(run.index, {member: 0})
        raw.zadd(run.expiry, {member: far})
        raw.hset(run.meta, member, meta)
    raw.hset(run.meta, keys.RUN_INFO_FIELD, b"\xff{not json")
    raw.zadd(keys.RUNS_ALL_KEY, {"no-separator": far, "a!b!c": far})
    with XComClient(serve.target, mint("open_dag", "r1", "big"), retry=NO_RETRY) as big:
        listed = big.list(limit=100)
    assert [e.key for e in listed.entries] == ["good"]
    rows, _ = Browser(raw).page(Query("~", "~", "~", None, None, limit=100, offset=0))
    assert [r.entry.key for r in rows] == ["good"]
    figure(
        f"STORED DATA: {len(hostile)} out-of-range index entries, bad run facts and bad run "
        f"index members written straight to Redis; ListXComs and the proxy's ~ listing answer "
        f"OK with the {len(listed.entries)} good entry"
    )


def test_key_filter_lists_through_the_key_index_not_a_scan(raw: redis.Redis) -> None:
    writer = XComWriter(raw)
    for i in range(2_000):
        writer.push("open_dag", "r1", XComRef("mapped", f"k{i % 50}", i), b"1", 3600)
    raw.config_resetstat()
    page = XComReader(raw).list("open_dag", "r1", ListFilter(key="k7", limit=5))
    stats = raw.info("commandstats")
    assert page.total == 40 and len(page.entries) == 5
    assert {e.key for e in page.entries} == {"k7"}
    assert [e.map_index for e in page.entries] == [7, 57, 107, 157, 207]
    # Fast path: one bounded range read, no per-entry look-ups over the run's 2,000 XComs.
    assert "cmdstat_zscore" not in stats
    assert stats["cmdstat_zrangebylex"]["calls"] == 1


def _env(own_redis: RedisProcess) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEOFLOW_")}
    return {**base, "LEOFLOW_REDIS_URL": own_redis.url}


def test_removed_policies_refuse_pushes_and_keep_reads(
    serve: ServiceProcess, raw: redis.Redis, mint: Mint, own_redis: RedisProcess, tmp_path: Path
) -> None:
    with XComClient(serve.target, mint("open_dag", "r1", "big"), retry=NO_RETRY) as big:
        big.push("kept", {"n": 1})
    only_quota = tmp_path / "dags"
    only_quota.mkdir()
    (only_quota / "quota.json").write_text(__import__("json").dumps(QUOTA_DAG))
    applied = subprocess.run(
        [CLI, "dags", "apply", "--prune", str(only_quota)],
        env=_env(own_redis),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    assert "removed 1 DAG policies not in" in applied.stdout and "open_dag" in applied.stdout
    deadline = time.monotonic() + 10  # servers follow a publication within about a second
    with XComClient(
        serve.target, mint("open_dag", "r1", "big"), retry=NO_RETRY, transport="unary"
    ) as big:
        while True:
            try:
                big.push("new", 2)
            except DagNotRegisteredError:
                break
            assert time.monotonic() < deadline, "the removed policy still accepts pushes"
            time.sleep(0.2)
    with XComClient(serve.target, mint("open_dag", "r1", "reader"), retry=NO_RETRY) as reader:
        assert reader.pull("big", "kept") == {"n": 1}  # stored values readable until TTL
    removed = subprocess.run(
        [CLI, "dags", "rm", "quota_dag"],
        env=_env(own_redis),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert removed.returncode == 0, removed.stderr
    again = subprocess.run(
        [CLI, "dags", "rm", "quota_dag"],
        env=_env(own_redis),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 1 and "no published policy for 'quota_dag'" in again.stderr
    assert raw.hkeys(keys.POLICIES_KEY) == []


def test_dags_ls_lists_published_policies(raw: redis.Redis, own_redis: RedisProcess) -> None:
    out = subprocess.run(
        [CLI, "dags", "ls"], env=_env(own_redis), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "open_dag" in out.stdout and "quota_dag" in out.stdout
