"""Older stores (as earlier releases wrote them) are upgraded in place to layout 3: layout 1
gets its by-key index, quota counters and time-ordered run indexes rebuilt, layout 2's global
keys move under the global hash tag; the values stay.

Run against every deployment of LEOFLOW_TEST_REDIS_MODES (`make cluster-test`: a Sentinel
group, whose primary may hold a store an earlier release wrote on that node, and a cluster,
where only the check of an unknown layout applies: layouts 1 and 2 never ran on one)."""

from __future__ import annotations

import time

import pytest

from leoflow_xcom.core import keys
from leoflow_xcom.core.errors import LayoutMismatchError, XComQuotaExceededError
from leoflow_xcom.core.model import ListFilter, Selector, XComRef
from leoflow_xcom.core.quotas import Quota
from leoflow_xcom.store.connection import StoreClient, connect
from leoflow_xcom.store.layout import ensure_layout
from leoflow_xcom.store.migrate import BATCH
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.runs import RunRegistry
from leoflow_xcom.store.writer import XComWriter
from tests.redis_modes import RedisTarget
from tests.store.test_store_contract import raw  # noqa: F401  (fixture)


def _old_layouts_only_on_one_node(target: RedisTarget) -> None:
    if target.mode == "cluster":
        pytest.skip(
            "layouts 1 and 2 never ran on a Redis Cluster: their global keys span hash slots "
            "(the release that wrote them could not start on one)"
        )


def _write_v1(client: StoreClient, dag: str, run: str, items: list[tuple[str, int, str]]) -> None:
    """What layout 1's push script left in Redis for these (task, map_index, key)."""
    rk = keys.run_keys(dag, run)
    now = int(time.time() * 1000)
    with client.pipeline(transaction=False) as pipe:
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


def test_layout_1_is_migrated_in_place(
    raw: StoreClient,  # noqa: F811
    redis_target: RedisTarget,
) -> None:
    _old_layouts_only_on_one_node(redis_target)
    big = [("mapped", i, "out") for i in range(BATCH + 7)]  # more than one batch
    _write_v1(raw, "d", "r1", [*big, ("t", -1, "a"), ("t", -1, "b")])
    _write_v1(raw, "d:x", "r {2}", [("t", -1, "a")])
    raw.set(keys.V2_LAYOUT_KEY, "1")
    client = connect(redis_target.settings())
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


def test_layout_2_is_migrated_to_layout_3_and_reads_back(
    raw: StoreClient,  # noqa: F811
    redis_target: RedisTarget,
) -> None:
    """Pushed by the previous release's own push script (layout 2, untagged global keys),
    with its policies published under the old names; `ensure_layout` (what init runs) moves
    everything under the global hash tag and every read works."""
    from tests.store import layout2

    _old_layouts_only_on_one_node(redis_target)
    push = raw.register_script(layout2.PUSH)
    pushed: dict[tuple[str, str, str], bytes] = {}
    for dag, run in (("d", "r1"), ("d", "r2"), ("d:x", "r {2}")):
        for task, key in (("t", "a"), ("u", "b")):
            member = keys.member(task, -1, key)
            rk = keys.run_keys(dag, run)
            value = f'{{"{dag}/{run}/{task}/{key}": 1}}'.encode()
            push(
                keys=[
                    rk.value(member),
                    rk.index,
                    rk.expiry,
                    rk.meta,
                    rk.by_key,
                    rk.quota,
                    layout2.RUNS_ALL_KEY,
                    layout2.dag_runs_key(keys.escape(dag)),
                ],
                args=[value, 3_600_000, member, b"", keys.run_member(dag, run), 0, 0, 0, 0],
            )
            pushed[(dag, run, f"{task}/{key}")] = value
    raw.hset(layout2.POLICIES_KEY, mapping={"d": '{"dag_id": "d", "tasks": []}'})
    raw.set(layout2.POLICIES_REV_KEY, 7)
    raw.hset(layout2.RETIRED_POLICIES_KEY, mapping={"gone": '{"until_ms": 1}'})
    raw.set(layout2.LAYOUT_KEY, "2")

    client = connect(redis_target.settings())
    ensure_layout(client)
    assert raw.get(keys.LAYOUT_KEY) == b"3"
    assert raw.get(layout2.LAYOUT_KEY) == b"3"  # a layout-2 service now refuses the store
    for old in (
        layout2.POLICIES_KEY,
        layout2.POLICIES_REV_KEY,
        layout2.RETIRED_POLICIES_KEY,
        layout2.RUNS_ALL_KEY,
        layout2.dag_runs_key("d"),
    ):
        assert raw.exists(old) == 0, old
    assert raw.hget(keys.POLICIES_KEY, "d") is not None
    assert raw.get(keys.POLICIES_REV_KEY) == b"7"
    assert raw.hexists(keys.RETIRED_POLICIES_KEY, "gone")
    runs = RunRegistry(client)
    assert set(runs.page(None, 0, 10)) == {("d", "r1"), ("d", "r2"), ("d:x", "r {2}")}
    assert set(runs.page("d", 0, 10)) == {("d", "r1"), ("d", "r2")}
    assert 0 < raw.pttl(keys.RUNS_ALL_KEY) <= 3_600_000
    reader = XComReader(client)
    for (dag, run, name), value in pushed.items():
        task, key = name.split("/")
        assert reader.fetch(dag, run, XComRef(task, key)) == value
        assert reader.list(dag, run, ListFilter(task_id=task)).total == 1
    # Writes go on in layout 3: the run stays listed once, its counters carry on.
    XComWriter(client).push("d", "r1", XComRef("t", "c"), b"1", 60)
    assert runs.page("d", 0, 10).count(("d", "r1")) == 1
    assert int(raw.hget(keys.run_keys("d", "r1").quota, "n") or 0) == 3
    ensure_layout(client)  # a second start finds layout 3 and changes nothing
    assert raw.get(keys.POLICIES_REV_KEY) == b"7"
    client.close()


def test_an_unknown_old_layout_is_refused(
    raw: StoreClient,  # noqa: F811
    redis_target: RedisTarget,
) -> None:
    raw.set(keys.V2_LAYOUT_KEY, "9")
    client = connect(redis_target.settings())
    with pytest.raises(LayoutMismatchError, match="layout version 9"):
        ensure_layout(client)
    client.close()
