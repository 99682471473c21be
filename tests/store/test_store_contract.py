"""One contract for the store, run against every Redis-protocol server we support
(Debian's redis-server and valkey-server), each a real process started by the suite, and, in
`make cluster-test`, against a real Redis Cluster and a real Sentinel group too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import cast

import pytest

from leoflow_xcom.core import keys
from leoflow_xcom.core.errors import (
    LayoutMismatchError,
    StoreFullError,
    StoreUnavailableError,
    XComNotFoundError,
)
from leoflow_xcom.core.model import ListFilter, RunInfo, Selector, XComRef
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store.connection import StoreClient, connect
from leoflow_xcom.store.layout import ensure_layout
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.registrations import RecentRegistrations
from leoflow_xcom.store.runs import RunRegistry
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.ports import free_port
from tests.redis_modes import RedisTarget

TTL = 3600


@pytest.fixture
def raw(redis_target: RedisTarget) -> Iterator[StoreClient]:
    redis_target.flushall()
    client = redis_target.raw()
    yield client
    client.close()  # not left to the garbage collector: an unclosed socket fails the session
    redis_target.flushall()  # also puts maxmemory back


@pytest.fixture
def store(raw: StoreClient, redis_target: RedisTarget) -> Iterator[tuple[XComWriter, XComReader]]:
    client = connect(redis_target.settings())
    yield XComWriter(client), XComReader(client)
    client.close()


def test_push_then_fetch_returns_the_exact_bytes_with_ttl(
    store: tuple[XComWriter, XComReader], raw: StoreClient
) -> None:
    writer, reader = store
    before = int(time.time() * 1000)
    expires = writer.push("d", "r", XComRef("t", "k"), b'{"a": 1}', TTL)
    assert before + TTL * 1000 - 5000 < expires < before + TTL * 1000 + 5000
    assert reader.fetch("d", "r", XComRef("t", "k")) == b'{"a": 1}'
    run = keys.run_keys("d", "r")
    value_ttl = raw.pttl(run.value(keys.member("t", -1, "k")))
    assert TTL * 1000 - 5000 < value_ttl <= TTL * 1000
    # Index keys live exactly as long as their longest-lived member, never forever.
    for index_key in (run.index, run.expiry, run.meta):
        assert TTL * 1000 - 5000 < raw.pttl(index_key) <= TTL * 1000


def test_index_keys_keep_the_longest_member_ttl(
    store: tuple[XComWriter, XComReader], raw: StoreClient
) -> None:
    writer, _ = store
    writer.push("d", "r", XComRef("t", "long"), b"1", 7200)
    writer.push("d", "r", XComRef("t", "short"), b"1", 60)
    assert raw.pttl(keys.run_keys("d", "r").index) > 7000 * 1000


def test_overwrite_keeps_one_entry(store: tuple[XComWriter, XComReader]) -> None:
    writer, reader = store
    writer.push("d", "r", XComRef("t", "k"), b"1", TTL)
    writer.push("d", "r", XComRef("t", "k"), b"22", TTL)
    page = reader.list("d", "r", ListFilter())
    assert page.total == 1 and page.entries[0].size_bytes == 2
    assert reader.fetch("d", "r", XComRef("t", "k")) == b"22"


def test_fetch_of_missing_value_is_not_found(store: tuple[XComWriter, XComReader]) -> None:
    _, reader = store
    with pytest.raises(XComNotFoundError) as info:
        reader.fetch("d", "r", XComRef("t", "k", 3))
    assert info.value.metadata["map_index"] == "3"


def test_listing_pages_in_order_with_filters(store: tuple[XComWriter, XComReader]) -> None:
    writer, reader = store
    for task in ("b", "a"):
        for map_index in (10, -1, 2):
            for key in ("y", "x"):
                writer.push("d", "r", XComRef(task, key, map_index), b"0", TTL)
    everything = reader.list("d", "r", ListFilter(limit=100))
    order = [(e.task_id, e.map_index, e.key) for e in everything.entries]
    assert order == sorted(order) and everything.total == 12
    page = reader.list("d", "r", ListFilter(limit=5, offset=5))
    assert [(e.task_id, e.map_index, e.key) for e in page.entries] == order[5:10]
    assert page.total == 12
    only_a = reader.list("d", "r", ListFilter(task_id="a"))
    assert only_a.total == 6 and {e.task_id for e in only_a.entries} == {"a"}
    a2 = reader.list("d", "r", ListFilter(task_id="a", map_index=2))
    assert [(e.map_index, e.key) for e in a2.entries] == [(2, "x"), (2, "y")]
    keyed = reader.list("d", "r", ListFilter(key="x", limit=2, offset=1))
    assert keyed.total == 6 and [e.key for e in keyed.entries] == ["x", "x"]
    assert reader.list("d", "other-run", ListFilter()).total == 0


@pytest.mark.slow
def test_expired_values_are_gone_from_fetch_and_listing(
    store: tuple[XComWriter, XComReader], raw: StoreClient
) -> None:
    writer, reader = store
    writer.push("d", "r", XComRef("t", "short"), b"1", 1)
    writer.push("d", "r", XComRef("t", "long"), b"1", TTL)
    time.sleep(1.2)
    with pytest.raises(XComNotFoundError):
        reader.fetch("d", "r", XComRef("t", "short"))
    page = reader.list("d", "r", ListFilter())
    assert [e.key for e in page.entries] == ["long"] and page.total == 1
    # The next push prunes the stale index entry for good.
    writer.push("d", "r", XComRef("t", "other"), b"1", TTL)
    members = {
        m.decode() for m in cast(list[bytes], raw.zrange(keys.run_keys("d", "r").index, 0, -1))
    }
    assert keys.member("t", -1, "short") not in members


def test_clearing_a_task_instance_removes_only_its_values(
    store: tuple[XComWriter, XComReader], raw: StoreClient
) -> None:
    writer, reader = store
    for map_index in (-1, 0, 1):
        for task in ("t", "u"):
            writer.push("d", "r", XComRef(task, "k", map_index), b"1", TTL)
    assert writer.clear("d", "r", "t", 0) == 1
    left = {(e.task_id, e.map_index) for e in reader.list("d", "r", ListFilter()).entries}
    assert left == {("t", -1), ("t", 1), ("u", -1), ("u", 0), ("u", 1)}
    assert raw.hget(keys.run_keys("d", "r").meta, keys.member("t", 0, "k")) is None
    assert writer.clear("d", "r", "t", None) == 2  # every map index of the task
    assert {e.task_id for e in reader.list("d", "r", ListFilter()).entries} == {"u"}
    assert writer.clear("d", "r") == 3
    assert raw.keys("xcom:{*") == []


def test_batch_fetch_expands_map_indexes_in_order(store: tuple[XComWriter, XComReader]) -> None:
    writer, reader = store
    for map_index in (5, 0, 12):
        writer.push("d", "r", XComRef("m", "out", map_index), str(map_index).encode(), TTL)
    writer.push("d", "r", XComRef("m", "other", 1), b"0", TTL)
    writer.push("d", "r", XComRef("u", "out"), b'"u"', TTL)
    got = reader.fetch_many(
        "d",
        "r",
        [Selector("m", "out", all_map_indexes=True), Selector("u", "out"), Selector("u", "nope")],
    )
    assert [(ref.map_index, value) for ref, value in got] == [
        (0, b"0"),
        (5, b"5"),
        (12, b"12"),
        (-1, b'"u"'),
        (-1, None),
    ]


NASTY_IDS = ["a", "a:b", "a{b}", "{}", "a/b", "a b", "é✓", "%2F", "a:-1", "x" * 250]


def test_nasty_ids_never_collide_and_round_trip(store: tuple[XComWriter, XComReader]) -> None:
    writer, reader = store
    key_512 = "k:{}/ é" + "k" * 505
    written = {}
    for i, dag in enumerate(NASTY_IDS):
        run = NASTY_IDS[(i + 3) % len(NASTY_IDS)]
        for task in NASTY_IDS[:5]:
            for key in (key_512, "k", "k:"):
                value = f'"{i}-{task}-{len(key)}"'.encode()
                writer.push(dag, run, XComRef(task, key), value, TTL)
                written[(dag, run, task, key)] = value
    for (dag, run, task, key), value in written.items():
        assert reader.fetch(dag, run, XComRef(task, key)) == value
    entries = reader.list(NASTY_IDS[0], NASTY_IDS[3], ListFilter(limit=1000)).entries
    assert {(e.task_id, e.key) for e in entries} == {
        (t, k) for t in NASTY_IDS[:5] for k in (key_512, "k", "k:")
    }


def test_run_registry_lists_runs_and_forgets_cleared_ones(
    store: tuple[XComWriter, XComReader], raw: StoreClient
) -> None:
    writer, _ = store
    runs = RunRegistry(raw)
    writer.push("d1", "r1", XComRef("t", "k"), b"1", TTL)
    writer.push("d1", "r2", XComRef("t", "k"), b"1", TTL)
    writer.push("d1:x", "r", XComRef("t", "k"), b"1", TTL)
    assert runs.page("d1", 0, 10) == [("d1", "r1"), ("d1", "r2")]  # oldest first
    assert len(runs.page(None, 0, 10)) == 3
    assert runs.page(None, 1, 1) == [("d1", "r2")]
    # A later push makes its run the newest; on a cluster once this process's registration
    # window has passed (store/registrations.py), as for a process that never saw the run.
    later = XComWriter(raw, recent=RecentRegistrations(window_seconds=0))
    later.push("d1", "r1", XComRef("t", "k2"), b"1", TTL)
    assert runs.page("d1", 0, 10) == [("d1", "r2"), ("d1", "r1")]
    writer.clear("d1", "r1")
    assert runs.page("d1", 0, 10) == [("d1", "r2")]
    assert raw.zcard(keys.RUNS_ALL_KEY) == 2
    assert runs.prune() == 0


def test_a_full_store_refuses_whole_pushes_keeps_reads_and_recovers(
    store: tuple[XComWriter, XComReader], raw: StoreClient, redis_target: RedisTarget
) -> None:
    writer, reader = store
    writer.push("d", "r", XComRef("t", "kept"), b'"v"', TTL)
    node = redis_target.node_of(raw, keys.run_keys("d", "r").index)  # the run's shard
    keys_before = node.dbsize()
    used = int(node.info("memory")["used_memory"])
    node.config_set("maxmemory", str(used // 2))
    with pytest.raises(StoreFullError) as info:
        writer.push("d", "r", XComRef("t", "new"), b'"x"', TTL)
    assert "maxmemory" in info.value.message
    # Nothing half-written, nothing evicted, and reads still work.
    assert node.dbsize() == keys_before
    assert raw.zscore(keys.run_keys("d", "r").index, keys.member("t", -1, "new")) is None
    assert reader.fetch("d", "r", XComRef("t", "kept")) == b'"v"'
    node.config_set("maxmemory", "512mb")
    writer.push("d", "r", XComRef("t", "new"), b'"x"', TTL)
    assert reader.fetch("d", "r", XComRef("t", "new")) == b'"x"'


def test_unreachable_store_fails_fast_with_unavailable() -> None:
    with connect(RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0")) as client:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="cannot connect"):
            XComReader(client).fetch("d", "r", XComRef("t", "k"))
    assert time.monotonic() - started < 5  # bounded, never a hang (generous for CI noise)


def test_layout_version_is_stamped_and_an_unknown_one_refused(
    raw: StoreClient, redis_target: RedisTarget
) -> None:
    with connect(redis_target.settings()) as client:
        ensure_layout(client)
        assert raw.get(keys.LAYOUT_KEY) == str(keys.LAYOUT_VERSION).encode()
        raw.set(keys.LAYOUT_KEY, "99")
        with pytest.raises(LayoutMismatchError, match="layout version 99"):
            ensure_layout(client)


def test_run_keeps_its_first_push_time_and_shrugs_off_bad_facts(
    store: tuple[XComWriter, XComReader], raw: StoreClient
) -> None:
    """The first push's time (Redis clock) is kept for the run; later pushes do not move it.
    A run-facts field that is not the JSON the push writes reads as unknown facts."""
    writer, reader = store
    writer.push("d", "r", XComRef("t", "first"), b"1", TTL)
    first = reader.list("d", "r", ListFilter()).entries[0].pushed_at_ms
    time.sleep(0.01)
    writer.push("d", "r", XComRef("t", "second"), b"2", TTL, run_info=b'{"run_after": "x"}')
    page = reader.list("d", "r", ListFilter())
    assert page.run_info == RunInfo(run_after="x", first_push_ms=first)
    assert page.entries[1].pushed_at_ms > first
    meta = keys.run_keys("d", "r").meta
    assert raw.hget(meta, keys.RUN_FIRST_PUSH_FIELD) == str(first).encode()
    for garbage in (b"\xff\xfe", b"[1, 2]", b'{"logical_date": 5}'):
        raw.hset(meta, keys.RUN_INFO_FIELD, garbage)
        assert reader.list("d", "r", ListFilter()).run_info == RunInfo(first_push_ms=first)
