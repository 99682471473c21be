"""The asyncio store (AsyncXComStore) and the sync writer/reader agree, on every deployment the
mode-parametrized fixtures give (standalone servers; a real Redis Cluster and Sentinel group in
`make cluster-test`): what one side writes the other reads, the same answers, expiries and
errors; replica acks with a real replica stalled; NOSCRIPT after SCRIPT FLUSH; and on a real
cluster a slot that moved after the slot map was read."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import redis.cluster

from leoflow_xcom.core import keys, limits
from leoflow_xcom.core.errors import (
    InvalidRequestError,
    StoreFullError,
    StoreUnavailableError,
    XComError,
    XComNotFoundError,
    XComQuotaExceededError,
)
from leoflow_xcom.core.model import ListFilter, Selector, XComRef
from leoflow_xcom.core.quotas import Quota
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store.aio_store import AsyncXComStore
from leoflow_xcom.store.connection import StoreClient, connect, primaries
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.registrations import RecentRegistrations
from leoflow_xcom.store.runs import RunRegistry
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.cluster import LocalCluster
from leoflow_xcom.testing.redis_server import RedisProcess
from tests.cluster.slots import fail_over, move_slot, owner_port
from tests.redis_modes import RedisTarget, cluster_settings

TTL = 3600
T = TypeVar("T")
Body = Callable[[AsyncXComStore], Awaitable[T]]


@pytest.fixture
def client(redis_target: RedisTarget) -> Iterator[StoreClient]:
    """The service's sync client on a flushed deployment (the async store's slot map too)."""
    redis_target.flushall()
    found = connect(redis_target.settings())
    yield found
    found.close()  # not left to the garbage collector: an unclosed socket fails the session
    redis_target.flushall()  # also puts maxmemory back


def _run(settings: RedisSettings, client: StoreClient, body: Body[T], **store: Any) -> T:
    """`body` on a fresh event loop with an AsyncXComStore, closed afterwards."""

    async def main() -> T:
        found = AsyncXComStore(settings, client, **store)
        try:
            return await body(found)
        finally:
            await found.close()

    return asyncio.run(main())


def _error(call: Callable[[], object]) -> XComError:
    with pytest.raises(XComError) as info:
        call()
    return info.value


def _same_error(sync: XComError, aio: XComError) -> None:
    assert type(aio) is type(sync)
    assert (aio.message, aio.metadata) == (sync.message, sync.metadata)


def test_what_either_side_pushes_the_other_fetches_with_the_same_expiry(
    redis_target: RedisTarget, client: StoreClient
) -> None:
    writer, reader = XComWriter(client), XComReader(client)
    before = int(time.time() * 1000)
    sync_expires = writer.push("d", "r", XComRef("t", "sync"), b'"s"', TTL)

    async def body(store: AsyncXComStore) -> tuple[int, bytes, list[bytes]]:
        expires = await store.push("d", "r", XComRef("t", "aio"), b'"a"', TTL)
        # Concurrent pushes and fetches on one loop share the connections' writes.
        await asyncio.gather(
            *(store.push("d", "r", XComRef("m", "out", i), str(i).encode(), TTL) for i in range(50))
        )
        fetched = await asyncio.gather(
            *(store.fetch("d", "r", XComRef("m", "out", i)) for i in range(50))
        )
        return expires, await store.fetch("d", "r", XComRef("t", "sync")), list(fetched)

    aio_expires, from_sync, mapped = _run(redis_target.settings(), client, body)
    assert from_sync == b'"s"'
    assert mapped == [str(i).encode() for i in range(50)]
    assert reader.fetch("d", "r", XComRef("t", "aio")) == b'"a"'
    assert before + TTL * 1000 - 5000 < sync_expires <= aio_expires < sync_expires + 5000
    run = keys.run_keys("d", "r")
    value_ttl = client.pttl(run.value(keys.member("t", -1, "aio")))
    assert TTL * 1000 - 5000 < value_ttl <= TTL * 1000
    entries = {e.key: e for e in reader.list("d", "r", ListFilter(task_id="t")).entries}
    assert entries["aio"].expires_at_ms == aio_expires
    assert entries["aio"].size_bytes == 3
    assert len(reader.list("d", "r", ListFilter(limit=1000)).entries) == 52
    # Listed, on a cluster too (REGISTER_RUN on the shard of the run indexes).
    assert RunRegistry(client).page("d", 0, 10) == [("d", "r")]


def test_an_async_push_lists_its_run(redis_target: RedisTarget, client: StoreClient) -> None:
    async def body(store: AsyncXComStore) -> None:
        await store.push("d1", "r1", XComRef("t", "k"), b"1", TTL)
        await store.push("d1", "r2", XComRef("t", "k"), b"1", TTL)
        await store.push("d1", "r1", XComRef("t", "k2"), b"1", TTL)  # within the window

    _run(redis_target.settings(), client, body)
    runs = RunRegistry(client)
    assert set(runs.page("d1", 0, 10)) == {("d1", "r1"), ("d1", "r2")}
    # Cleared by the sync writer, pushed again by the async store: listed again, as the newest
    # (runs are ordered by their registered expiry, in ms: equal ones by name).
    XComWriter(client).clear("d1", "r1")
    assert runs.page("d1", 0, 10) == [("d1", "r2")]
    _run(
        redis_target.settings(),
        client,
        lambda store: store.push("d1", "r1", XComRef("t", "k"), b"1", TTL),
    )
    assert runs.page("d1", 0, 10) == [("d1", "r2"), ("d1", "r1")]


def test_fetch_many_answers_as_the_sync_reader(
    redis_target: RedisTarget, client: StoreClient
) -> None:
    reader = XComReader(client)

    async def pushed(store: AsyncXComStore) -> None:  # written by the async side this time
        for task_id, key, map_index, value in (
            ("m", "out", 5, b"5"),
            ("m", "out", 0, b"0"),
            ("m", "out", 12, b"12"),
            ("m", "other", 1, b"0"),
            ("u", "out", -1, b'"u"'),
        ):
            await store.push("d", "r", XComRef(task_id, key, map_index), value, TTL)

    _run(redis_target.settings(), client, pushed)
    selectors = [
        Selector("m", "out", all_map_indexes=True),
        Selector("u", "out"),
        Selector("u", "nope"),
        Selector("m", "out", 5),
        Selector("none", "x", all_map_indexes=True),
    ]
    got = _run(redis_target.settings(), client, lambda store: store.fetch_many("d", "r", selectors))
    assert got == reader.fetch_many("d", "r", selectors)
    # Expanded in map index order, the missing one None, the empty expansion nothing.
    assert [value for _, value in got] == [b"0", b"5", b"12", b'"u"', None, b"5"]
    # A run that does not exist: nothing, not an error.
    empty = [Selector("t", "k")]
    assert _run(
        redis_target.settings(), client, lambda store: store.fetch_many("d", "none", empty)
    ) == [(XComRef("t", "k"), None)]


def test_batches_too_large_are_refused_alike(
    redis_target: RedisTarget, client: StoreClient
) -> None:
    reader = XComReader(client)
    big = b"x" * (256 * 1024)
    XComWriter(client).push("d", "r", XComRef("t", "big"), big, TTL)
    too_many = [Selector("t", "k", i) for i in range(limits.MAX_BATCH_SELECTORS + 1)]
    # Within the count, over the bytes: the same 256 KiB value asked for 200 times (50 MiB).
    too_big = [Selector("t", "big")] * 200
    for selectors, field in ((too_many, "XComs"), (too_big, "bytes")):
        sync = _error(functools.partial(reader.fetch_many, "d", "r", selectors))

        async def body(store: AsyncXComStore, s: list[Selector] = selectors) -> XComError:
            with pytest.raises(XComError) as info:
                await store.fetch_many("d", "r", s)
            return info.value

        aio = _run(redis_target.settings(), client, body)
        assert isinstance(aio, InvalidRequestError) and field in aio.message
        _same_error(sync, aio)


def test_not_found_and_quota_refusals_match(redis_target: RedisTarget, client: StoreClient) -> None:
    writer, reader = XComWriter(client), XComReader(client)
    quota = Quota(run_count=1, run_bytes=0, task_instance_bytes=0, task_instance_count=0)
    writer.push("d", "sync", XComRef("t", "k1"), b"1", TTL, quota=quota)
    sync_quota = _error(
        lambda: writer.push("d", "sync", XComRef("t", "k2"), b"22", TTL, quota=quota)
    )
    sync_missing = _error(lambda: reader.fetch("d", "r", XComRef("t", "nope", 3)))
    dbsize_before = sum(int(node.dbsize()) for node in primaries(client))

    async def body(store: AsyncXComStore) -> tuple[XComError, XComError]:
        # The same first push of another run, then its refusal over the same quota.
        await store.push("d", "aio", XComRef("t", "k1"), b"1", TTL, quota=quota)
        dbsize = sum(int(node.dbsize()) for node in primaries(client))
        with pytest.raises(XComError) as refused:
            await store.push("d", "aio", XComRef("t", "k2"), b"22", TTL, quota=quota)
        # Nothing of the refused push stored.
        assert sum(int(node.dbsize()) for node in primaries(client)) == dbsize
        with pytest.raises(XComError) as missing:
            await store.fetch("d", "r", XComRef("t", "nope", 3))
        return refused.value, missing.value

    aio_quota, aio_missing = _run(redis_target.settings(), client, body)
    assert isinstance(aio_quota, XComQuotaExceededError)
    assert isinstance(aio_missing, XComNotFoundError)
    _same_error(sync_quota, aio_quota)
    _same_error(sync_missing, aio_missing)
    with pytest.raises(XComNotFoundError):
        reader.fetch("d", "aio", XComRef("t", "k2"))
    assert sum(int(node.dbsize()) for node in primaries(client)) > dbsize_before


def test_a_full_store_refuses_the_push_as_store_full(
    redis_target: RedisTarget, client: StoreClient
) -> None:
    XComWriter(client).push("d", "r", XComRef("t", "kept"), b'"v"', TTL)
    for node in primaries(client):
        node.config_set("maxmemory", str(int(node.info("memory")["used_memory"]) // 2))

    async def body(store: AsyncXComStore) -> bytes:
        with pytest.raises(StoreFullError):
            await store.push("d", "r", XComRef("t", "new"), b'"x"', TTL)
        return await store.fetch("d", "r", XComRef("t", "kept"))  # reads still work

    assert _run(redis_target.settings(), client, body) == b'"v"'


def test_scripts_flushed_everywhere_are_loaded_again(
    redis_target: RedisTarget, client: StoreClient
) -> None:
    """SCRIPT FLUSH on every primary (a restart, a promoted replica) while the store runs."""

    async def body(store: AsyncXComStore) -> list[tuple[XComRef, bytes | None]]:
        await store.push("d", "r", XComRef("t", "warm"), b"0", TTL)
        await store.fetch_many("d", "r", [Selector("t", "warm")])
        for node in primaries(client):
            node.script_flush()
        await store.push("d", "r", XComRef("t", "k"), b"1", TTL)
        await store.push("d", "other", XComRef("t", "k"), b"1", TTL)  # registers on a cluster
        return await store.fetch_many("d", "r", [Selector("t", "k"), Selector("t", "warm")])

    got = _run(redis_target.settings(), client, body)
    assert got == [(XComRef("t", "k"), b"1"), (XComRef("t", "warm"), b"0")]
    assert set(RunRegistry(client).page("d", 0, 10)) == {("d", "r"), ("d", "other")}


def test_an_unreachable_store_is_unavailable() -> None:
    settings = RedisSettings(url="redis://127.0.0.1:1/0", connect_timeout=0.5)
    client = connect(settings)
    try:
        with pytest.raises(StoreUnavailableError):
            _run(settings, client, lambda store: store.fetch("d", "r", XComRef("t", "k")))
    finally:
        client.close()


# Replica acks: a real primary and replica; the replica stalled with SIGSTOP.


def _acked_push(primary: RedisProcess, acks: int, run: str) -> int:
    settings = RedisSettings(url=primary.url, min_replica_acks=acks)
    client = connect(settings)
    try:
        return _run(
            settings,
            client,
            lambda store: store.push("d", run, XComRef("t", "k"), b"1", 60),
            min_replica_acks=settings.min_replica_acks,
            wait_timeout_ms=settings.wait_timeout_ms,
        )
    finally:
        client.close()


def test_acked_pushes_are_confirmed_or_refused_as_unconfirmed(
    pair: tuple[RedisProcess, RedisProcess],
) -> None:
    primary, replica = pair
    _acked_push(primary, 1, "acked")
    assert replica.client().exists("xcom:{d:acked}:i") == 1  # there when acknowledged
    with pytest.raises(StoreUnavailableError, match="1 of the 2"):
        _acked_push(primary, 2, "two")
    replica.pause()
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="may have been applied") as info:
            _acked_push(primary, 1, "stalled")
        assert "0 of the 1 Redis replicas" in info.value.message
        assert time.monotonic() - started < 5  # WAIT's own timeout, not a hang
        _acked_push(primary, 0, "stalled")  # without acks at once
    finally:
        replica.resume()
    _acked_push(primary, 1, "stalled")  # the SDK's retry


def _wait_calls(server: RedisProcess) -> int:
    with server.client() as node:
        return int(node.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))


def test_acked_pushes_of_one_loop_iteration_share_one_wait(
    pair: tuple[RedisProcess, RedisProcess],
) -> None:
    """A WAIT blocks its connection: one per push would cost a replica round trip each, in a
    row. The pushes issued together are written together and confirmed by one WAIT."""
    primary, replica = pair
    settings = RedisSettings(url=primary.url, min_replica_acks=1)
    client = connect(settings)

    async def body(store: AsyncXComStore) -> int:
        await store.push("d", "shared", XComRef("t", "warm"), b"0", 60)  # connected
        before = _wait_calls(primary)
        await asyncio.gather(
            *(store.push("d", "shared", XComRef("t", f"k{i}"), b"1", 60) for i in range(20))
        )
        return _wait_calls(primary) - before

    try:
        assert _run(settings, client, body, min_replica_acks=1) == 1
    finally:
        client.close()
    with replica.client() as copy:  # each of them confirmed by that one WAIT
        assert copy.zcard(keys.run_keys("d", "shared").index) == 21


def test_acked_pushes_on_a_cluster_are_confirmed_and_listed(redis_cluster: LocalCluster) -> None:
    settings = cluster_settings(redis_cluster, min_replica_acks=1, socket_timeout=6)
    client = connect(settings)
    try:

        async def body(store: AsyncXComStore) -> None:
            await asyncio.gather(
                *(store.push("d", f"aio-acked-{i}", XComRef("t", "k"), b"1", 60) for i in range(10))
            )

        _run(settings, client, body, min_replica_acks=1, wait_timeout_ms=5000)
        listed = set(RunRegistry(client).page("d", 0, 1000))
        assert {("d", f"aio-acked-{i}") for i in range(10)} <= listed
    finally:
        client.close()


# A slot that changed hands after the store read the slot map.


def _moved_replies(cluster: LocalCluster) -> int:
    total = 0
    for primary in cluster.primaries():
        with primary.client() as node:
            total += int(node.info("errorstats").get("errorstat_MOVED", {}).get("count", 0))
    return total


@pytest.mark.parametrize("moving", ["run", "global"])
def test_a_moved_slot_is_followed(redis_cluster: LocalCluster, moving: str) -> None:
    """The run's slot (push, fetch, fetch_many) or the run indexes' slot (the registration)
    really moved to another primary, keys and all, after the store read the slot map."""
    settings = cluster_settings(redis_cluster)
    client = connect(settings)
    assert isinstance(client, redis.cluster.RedisCluster)
    run = f"moved-{moving}-{time.monotonic_ns()}"
    key = keys.run_keys("d", run).index if moving == "run" else keys.RUNS_ALL_KEY
    slot = int(client.keyslot(key))  # type: ignore[no-untyped-call]
    home = owner_port(redis_cluster, slot)
    elsewhere = next(p.port for p in redis_cluster.primaries() if p.port != home)

    async def body(store: AsyncXComStore) -> list[tuple[XComRef, bytes | None]]:
        await store.push("d", run, XComRef("t", "warm"), b"0", 60)  # connections, map read
        await asyncio.to_thread(move_slot, redis_cluster, slot, elsewhere)
        moved_before = _moved_replies(redis_cluster)
        await store.push("d", run, XComRef("t", "k"), b'"moved"', 60)
        assert await store.fetch("d", run, XComRef("t", "warm")) == b"0"
        got = await store.fetch_many("d", run, [Selector("t", "k")])
        assert _moved_replies(redis_cluster) > moved_before  # it did meet MOVED
        return got

    try:
        # Every push registers (window 0): the moved global slot is met too.
        got = _run(settings, client, body, recent=RecentRegistrations(0.0))
        assert got == [(XComRef("t", "k"), b'"moved"')]
        assert XComReader(client).fetch("d", run, XComRef("t", "k")) == b'"moved"'
        assert ("d", run) in RunRegistry(client).page("d", 0, 1000)
    finally:
        move_slot(redis_cluster, slot, home)
        client.close()


def test_a_failover_under_acks_is_followed(redis_cluster: LocalCluster) -> None:
    """A manual failover of the run's shard after the store read the slot map, with acks: the
    old primary, now a replica, answers the push script with MOVED and the WAIT behind it with
    an error; the push goes to the new primary (which never loaded the script) and is
    confirmed there by its replica, the old primary."""
    settings = cluster_settings(redis_cluster, min_replica_acks=1, socket_timeout=6)
    client = connect(settings)
    run = f"failover-{time.monotonic_ns()}"
    old = owner_port(redis_cluster, int(client.keyslot(keys.run_keys("d", run).index)))  # type: ignore[union-attr]

    async def body(store: AsyncXComStore) -> tuple[bytes, int]:
        await store.push("d", run, XComRef("t", "warm"), b"0", 60)
        new = await asyncio.to_thread(fail_over, redis_cluster, old)
        await store.push("d", run, XComRef("t", "k"), b'"after"', 60)
        return await store.fetch("d", run, XComRef("t", "k")), new

    new = 0
    try:
        value, new = _run(settings, client, body, min_replica_acks=1, wait_timeout_ms=5000)
        assert value == b'"after"'
        assert ("d", run) in RunRegistry(client).page("d", 0, 1000)
    finally:
        if new:
            fail_over(redis_cluster, new)
        client.close()


def test_a_stalled_node_fails_by_the_deadline_and_the_next_call_goes_through(
    redis_cluster: LocalCluster,
) -> None:
    """The run's primary stops answering writes (CLIENT PAUSE WRITE) past the socket timeout:
    the push fails STORE_UNAVAILABLE by its deadline, and once the node answers again the
    next push (the caller's retry) reconnects and lands."""
    settings = cluster_settings(redis_cluster, socket_timeout=0.5)
    client = connect(settings)
    run = f"stalled-{time.monotonic_ns()}"
    port = owner_port(redis_cluster, int(client.keyslot(keys.run_keys("d", run).index)))  # type: ignore[union-attr]
    [node] = [p for p in redis_cluster.primaries() if p.port == port]

    async def body(store: AsyncXComStore) -> bytes:
        await store.push("d", run, XComRef("t", "warm"), b"0", 60)
        with node.client() as paused:
            paused.execute_command("CLIENT", "PAUSE", 1500, "WRITE")
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="did not answer in time"):
                await store.push("d", run, XComRef("t", "k"), b"1", 60)
            assert time.monotonic() - started < 1.4
            paused.execute_command("CLIENT", "UNPAUSE")
        await store.push("d", run, XComRef("t", "k"), b"2", 60)
        return await store.fetch("d", run, XComRef("t", "k"))

    try:
        assert _run(settings, client, body) == b"2"
    finally:
        client.close()
