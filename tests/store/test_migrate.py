"""A layout-1 store (as the previous release wrote it) is upgraded in place to layout 2: the
values stay, the by-key index, quota counters and time-ordered run indexes are rebuilt."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from leoflow_xcom.core import keys
from leoflow_xcom.core.errors import XComQuotaExceededError
from leoflow_xcom.core.model import ListFilter, Selector, XComRef
from leoflow_xcom.core.quotas import Quota
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store.connection import connect
from leoflow_xcom.store.layout import ensure_layout
from leoflow_xcom.store.migrate import BATCH
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.runs import RunRegistry
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.redis_server import RedisProcess


@pytest.fixture
def raw(any_redis_server: RedisProcess) -> Iterator[redis.Redis]:
    client = any_redis_server.client()
    client.flushall()
    yield client


def _write_v1(raw: redis.Redis, dag: str, run: str, items: list[tuple[str, int, str]]) -> None:
    """What layout 1's push script left in Redis for these (task, map_index, key)."""
    rk = keys.run_keys(dag, run)
    now = int(time.time() * 1000)
    with raw.pipeline(transaction=False) as pipe:
        for i, (task, index, key) in enumerate(items):
            member = keys.member(task, index, key)
            expires = now + 3_600_000 + i
            pipe.set(rk.value(member), b'"xx"', px=3_600_000)
            pipe.zadd(rk.index, {member: 0})
            pipe.zadd(rk.expiry, {member: expires})
            pipe.hset(rk.meta, member, f"4:{now}:{expires}")
        for name in (rk.index, rk.expiry, rk.meta):
            pipe.pexpire(name, 3_600_000 + len(items))
        pipe.zadd(keys.LEGACY_RUNS_KEY, {keys.run_member(dag, run): 0})
        pipe.execute()


def test_layout_1_is_migrated_in_place(raw: redis.Redis, any_redis_server: RedisProcess) -> None:
    big = [("mapped", i, "out") for i in range(BATCH + 7)]  # more than one batch
    _write_v1(raw, "d", "r1", [*big, ("t", -1, "a"), ("t", -1, "b")])
    _write_v1(raw, "d:x", "r {2}", [("t", -1, "a")])
    raw.set(keys.LAYOUT_KEY, "1")
    client = connect(RedisSettings(url=any_redis_server.url))
    ensure_layout(client)
    assert raw.get(keys.LAYOUT_KEY) == str(keys.LAYOUT_VERSION).encode()
    assert raw.exists(keys.LEGACY_RUNS_KEY) == 0
    rk = keys.run_keys("d", "r1")
    assert raw.zcard(rk.by_key) == BATCH + 9
    assert int(raw.hget(rk.quota, "n") or 0) == BATCH + 9
    assert int(raw.hget(rk.quota, "b") or 0) == 4 * (BATCH + 9)
    assert 0 < raw.pttl(rk.by_key) <= 3_600_000 + BATCH + 9
    assert set(RunRegistry(client).page(None, 0, 10)) == {("d", "r1"), ("d:x", "r {2}")}
    reader, writer = XComReader(client), XComWriter(client)
    assert reader.list("d", "r1", ListFilter(key="a")).total == 1
    fan_in = reader.fetch_many("d", "r1", [Selector("t", "b"), Selector("t", "a")])
    assert [v for _, v in fan_in] == [b'"xx"', b'"xx"']
    # The rebuilt counters are live: quotas hold, clears give back.
    with pytest.raises(XComQuotaExceededError):
        writer.push("d", "r1", XComRef("t", "c"), b"1", 60, quota=Quota(run_count=BATCH + 9))
    assert writer.clear("d", "r1", "mapped") == BATCH + 7
    assert int(raw.hget(rk.quota, "n") or 0) == 2
    ensure_layout(client)  # a second start finds layout 2 and changes nothing
    assert raw.zcard(rk.by_key) == 2
