"""A push on Redis Cluster: the push script on the run's shard and the run registration on the
shard of the global slot, in flight together (one pipelined write when one node owns both), or
the push script alone for a run this process registered a moment ago.

Real 3+3 cluster, real slot moves, real error replies and stalls: each call reaches the node
that owns its keys, a MOVED during either is followed, a registration that fails after its push
landed fails the push (and the retry lists the run), and no pooled connection is left holding
a reply that the next call would read as its own."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis
import redis.cluster

from leoflow_xcom.core import keys
from leoflow_xcom.core.errors import StoreFullError, StoreUnavailableError
from leoflow_xcom.core.model import XComRef
from leoflow_xcom.store.connection import StoreClient, connect, node_for, primaries
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.registrations import GRACE_MS, WINDOW_SECONDS, RecentRegistrations
from leoflow_xcom.store.runs import RunRegistry
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.cluster import LocalCluster
from tests.cluster.slots import fail_over, move_slot, owner_port
from tests.redis_modes import cluster_settings

DAG = "overlap_dag"
# The overlapped path is the one every push takes without a recent registration: the tests of
# that path register on every push (window 0), as a process that never saw the run does.
EVERY_PUSH = 0.0


def _port(node: redis.Redis) -> int:
    return int(node.connection_pool.connection_kwargs["port"])


def _global_port(client: StoreClient) -> int:
    return _port(node_for(client, keys.RUNS_ALL_KEY))


def _run_port(client: StoreClient, run: str) -> int:
    return _port(node_for(client, keys.run_keys(DAG, run).index))


def _run_id(client: StoreClient, same_node: bool) -> str:
    """A fresh run whose slot is (or is not) on the node of the global slot."""
    prefix = uuid.uuid4().hex[:8]
    for i in range(10_000):
        run = f"{prefix}-{i}"
        if (_run_port(client, run) == _global_port(client)) == same_node:
            return run
    raise AssertionError("no run id found for that placement")


def _stats(cluster: LocalCluster, section: str, name: str, field: str) -> dict[int, int]:
    out = {}
    for primary in cluster.primaries():
        with primary.client() as node:
            out[primary.port] = int(node.info(section).get(name, {}).get(field, 0))
    return out


def _evalsha_calls(cluster: LocalCluster) -> dict[int, int]:
    return _stats(cluster, "commandstats", "cmdstat_evalsha", "calls")


def _moved_replies(cluster: LocalCluster) -> dict[int, int]:
    return _stats(cluster, "errorstats", "errorstat_MOVED", "count")


def _changed(before: dict[int, int], after: dict[int, int]) -> dict[int, int]:
    return {port: after[port] - before[port] for port in after if after[port] != before[port]}


def _listed(client: StoreClient, run: str) -> bool:
    return (DAG, run) in RunRegistry(client).page(DAG, 0, 1000) and (DAG, run) in RunRegistry(
        client
    ).page(None, 0, 1000)


def _assert_no_reply_left(client: StoreClient) -> None:
    """Every connection of every node pool is back in its pool, holds no unread reply, and
    answers the next command with that command's own reply."""
    for node in primaries(client):
        pool: Any = node.connection_pool
        assert not list(pool._get_in_use_connections()), f"node {_port(node)}: not released"
        for n, conn in enumerate(pool._get_free_connections()):
            if not conn.is_connected:
                continue  # closed after an error; reopened clean on next use
            assert not conn.can_read(timeout=0.05), f"node {_port(node)}: a reply left unread"
            token = f"echo-{n}-{uuid.uuid4().hex}"
            conn.send_command("ECHO", token)
            assert conn.read_response() == token.encode()


@pytest.fixture
def client(redis_cluster: LocalCluster) -> Any:
    found = connect(cluster_settings(redis_cluster))
    yield found
    found.close()


@pytest.fixture
def patient(redis_cluster: LocalCluster) -> Any:
    """A client that waits seconds for replies and WAIT 5 s for replicas: a loaded machine
    must not turn a slow replica acknowledgement into a refused push here."""
    found = connect(cluster_settings(redis_cluster, socket_timeout=6))
    yield found
    found.close()


def _writer(client: StoreClient, acks: int = 0) -> XComWriter:
    return XComWriter(client, acks, 5000, RecentRegistrations(EVERY_PUSH))


@pytest.mark.parametrize("acks", [0, 1], ids=["acks0", "acks1"])
@pytest.mark.parametrize("same_node", [False, True], ids=["two-nodes", "one-node"])
def test_each_call_reaches_the_node_that_owns_its_keys(
    redis_cluster: LocalCluster, patient: StoreClient, same_node: bool, acks: int
) -> None:
    client = patient
    run = _run_id(client, same_node)
    writer = _writer(client, acks)
    writer.push(DAG, run, XComRef("t", "warm"), b"0", 60)  # scripts loaded where needed
    before = _evalsha_calls(redis_cluster)
    expires = writer.push(DAG, run, XComRef("t", "k"), b"value", 60)
    calls = _changed(before, _evalsha_calls(redis_cluster))
    run_port, global_port = _run_port(client, run), _global_port(client)
    assert calls == ({global_port: 2} if same_node else {run_port: 1, global_port: 1})
    assert XComReader(client).fetch(DAG, run, XComRef("t", "k")) == b"value"
    assert _listed(client, run)
    # Listed at least as long as its newest value lives, at most the grace longer.
    score = client.zscore(keys.dag_runs_key(DAG), keys.run_member(DAG, run))
    assert score is not None and expires <= score <= expires + GRACE_MS
    _assert_no_reply_left(client)


def test_scripts_missing_on_both_nodes_are_loaded_there(
    redis_cluster: LocalCluster, client: StoreClient
) -> None:
    """NOSCRIPT from both nodes of one push (restarted nodes, promoted replicas)."""
    run = _run_id(client, same_node=False)
    writer = _writer(client)
    writer.push(DAG, run, XComRef("t", "warm"), b"0", 60)
    for node in primaries(client):
        node.script_flush()
    writer.push(DAG, run, XComRef("t", "k"), b"1", 60)
    assert XComReader(client).fetch(DAG, run, XComRef("t", "k")) == b"1"
    assert _listed(client, run)
    _assert_no_reply_left(client)


@pytest.mark.parametrize("moving", ["run", "global"])
def test_a_moved_slot_is_followed_for_either_call(
    redis_cluster: LocalCluster, client: StoreClient, moving: str
) -> None:
    """The run's slot, or the global slot, really moved to the third primary (keys and all)
    after the client read the slot map: that call meets MOVED, re-reads the map and goes to
    the new owner; the other call is not sent twice."""
    run = _run_id(client, same_node=False)
    writer = _writer(client)
    writer.push(DAG, run, XComRef("t", "warm"), b"0", 60)
    assert isinstance(client, redis.cluster.RedisCluster)
    key = keys.run_keys(DAG, run).index if moving == "run" else keys.RUNS_ALL_KEY
    slot = int(client.keyslot(key))  # type: ignore[no-untyped-call]
    home = owner_port(redis_cluster, slot)
    staying = _global_port(client) if moving == "run" else _run_port(client, run)
    third = next(p.port for p in redis_cluster.primaries() if p.port not in (home, staying))
    moved_before, calls_before = _moved_replies(redis_cluster), _evalsha_calls(redis_cluster)
    move_slot(redis_cluster, slot, third)
    try:
        expires = writer.push(DAG, run, XComRef("t", "k"), b"moved", 60)
        assert _changed(moved_before, _moved_replies(redis_cluster)) == {home: 1}
        # Each call ran once (the MOVED refusal is no call), on the node that owns its keys.
        calls = _changed(calls_before, _evalsha_calls(redis_cluster))
        assert calls == {third: 1, staying: 1}
        assert _run_port(client, run) == (third if moving == "run" else staying)
        assert XComReader(client).fetch(DAG, run, XComRef("t", "k")) == b"moved"
        assert XComReader(client).fetch(DAG, run, XComRef("t", "warm")) == b"0"
        assert _listed(client, run)
        score = client.zscore(keys.dag_runs_key(DAG), keys.run_member(DAG, run))
        assert score is not None and score >= expires
        _assert_no_reply_left(client)
    finally:
        move_slot(redis_cluster, slot, home)


def test_a_failover_under_acks_is_followed(
    redis_cluster: LocalCluster, patient: StoreClient
) -> None:
    """A manual failover of the run's shard after the client read the slot map, with
    LEOFLOW_REDIS_MIN_REPLICA_ACKS=1: the old primary, now a replica, answers the push script
    with MOVED and the WAIT behind it with an error; the push goes to the new primary and is
    confirmed there by its replica (the old primary)."""
    client = patient
    run = _run_id(client, same_node=False)
    writer = _writer(client, 1)
    writer.push(DAG, run, XComRef("t", "warm"), b"0", 60)
    old = _run_port(client, run)
    new = fail_over(redis_cluster, old)
    try:
        writer.push(DAG, run, XComRef("t", "k"), b"after", 60)
        assert _run_port(client, run) == new
        assert XComReader(client).fetch(DAG, run, XComRef("t", "k")) == b"after"
        assert _listed(client, run)
        _assert_no_reply_left(client)
    finally:
        fail_over(redis_cluster, new)


def test_a_push_that_runs_later_than_the_grace_is_registered_exactly(
    redis_cluster: LocalCluster,
) -> None:
    """The registration stamps the run at the global node's now + ttl + the grace, before the
    push's own expiry is known. The run's node stalls writes for longer than the grace (as a
    clock far ahead would): the push's expiry is later than that stamp, and the writer
    registers the exact expiry before acknowledging, so the run is listed as long as its
    newest value lives."""
    # Waits out the whole stall for its reply.
    client = connect(cluster_settings(redis_cluster, socket_timeout=GRACE_MS / 1000 + 5))
    run = _run_id(client, same_node=False)
    writer = _writer(client, 0)
    writer.push("overlap_warm", run, XComRef("t", "warm"), b"0", 60)  # scripts loaded
    by_port = {p.port: p for p in redis_cluster.primaries()}
    global_port = _global_port(client)
    before = _evalsha_calls(redis_cluster)
    with by_port[_run_port(client, run)].client() as run_node:
        run_node.execute_command("CLIENT", "PAUSE", GRACE_MS + 1500, "WRITE")
        try:
            expires = writer.push(DAG, run, XComRef("t", "k"), b"late", 60)
        finally:
            run_node.execute_command("CLIENT", "UNPAUSE")
    assert _changed(before, _evalsha_calls(redis_cluster))[global_port] == 2  # stamp, exact
    score = client.zscore(keys.dag_runs_key(DAG), keys.run_member(DAG, run))
    assert score == expires
    assert client.zscore(keys.RUNS_ALL_KEY, keys.run_member(DAG, run)) == expires
    assert client.pttl(keys.dag_runs_key(DAG)) > 59_000
    _assert_no_reply_left(client)
    client.close()


def test_a_registration_that_fails_after_its_push_landed_fails_the_push(
    redis_cluster: LocalCluster, client: StoreClient
) -> None:
    """The global slot's node stalls writes (CLIENT PAUSE WRITE) past the client's socket
    timeout: the push lands on its own node, the registration times out, the push is not
    acknowledged (STORE_UNAVAILABLE); the retry, once the node answers, lists the run."""
    run = _run_id(client, same_node=False)
    writer, reader = _writer(client), XComReader(client)
    writer.push("overlap_warm", run, XComRef("t", "warm"), b"0", 60)  # scripts loaded
    by_port = {p.port: p for p in redis_cluster.primaries()}
    with by_port[_global_port(client)].client() as global_node:
        global_node.execute_command("CLIENT", "PAUSE", 3000, "WRITE")
        try:
            with pytest.raises(StoreUnavailableError, match="did not answer in time"):
                writer.push(DAG, run, XComRef("t", "k"), b"landed", 60)
            assert reader.fetch(DAG, run, XComRef("t", "k")) == b"landed"  # half landed
            assert not _listed(client, run)  # reads go on during a write pause
        finally:
            global_node.execute_command("CLIENT", "UNPAUSE")
    _assert_no_reply_left(client)
    writer.push(DAG, run, XComRef("t", "k"), b"landed", 60)  # the SDK's retry
    assert _listed(client, run)
    _assert_no_reply_left(client)


@pytest.mark.parametrize("same_node", [False, True], ids=["two-nodes", "one-node"])
def test_an_error_reply_leaves_no_reply_unread(
    redis_cluster: LocalCluster, client: StoreClient, same_node: bool
) -> None:
    """The run's node is full (maxmemory): the push script's error reply is read with the
    rest (the registration's, on the same pipelined write when one node owns both), and the
    next pushes and reads on the same pooled connections get their own replies."""
    run = _run_id(client, same_node)
    writer, reader = _writer(client), XComReader(client)
    writer.push(DAG, run, XComRef("t", "warm"), b"0", 60)
    by_port = {p.port: p for p in redis_cluster.primaries()}
    with by_port[_run_port(client, run)].client() as run_node:
        used = int(run_node.info("memory")["used_memory"])
        run_node.config_set("maxmemory", str(used // 2))
        try:
            with pytest.raises(StoreFullError):
                writer.push(DAG, run, XComRef("t", "big"), b"x" * 1000, 60)
        finally:
            run_node.config_set("maxmemory", "512mb")
    _assert_no_reply_left(client)
    for i in range(5):
        writer.push(DAG, run, XComRef("t", f"k{i}"), f"v{i}".encode(), 60)
    assert [reader.fetch(DAG, run, XComRef("t", f"k{i}")) for i in range(5)] == [
        f"v{i}".encode() for i in range(5)
    ]
    assert _listed(client, run)
    _assert_no_reply_left(client)


class FrozenClock:
    """The registration window's clock, moved only by the test: the path a push takes does not
    depend on how fast this machine runs the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _recent_writer(client: StoreClient) -> tuple[XComWriter, FrozenClock]:
    clock = FrozenClock()
    return XComWriter(client, recent=RecentRegistrations(clock=clock)), clock


def _score(client: StoreClient, run: str) -> float | None:
    return client.zscore(keys.dag_runs_key(DAG), keys.run_member(DAG, run))


def test_a_run_registered_a_moment_ago_is_pushed_in_one_call(
    redis_cluster: LocalCluster, client: StoreClient
) -> None:
    """Within the window after a registration this process saw confirmed, a push of the same
    run is one call on the run's shard and the indexes' shard sees nothing; the run stays
    listed as long as its newest value lives. After the window the run is registered again,
    beside the push."""
    run = _run_id(client, same_node=False)
    writer, clock = _recent_writer(client)
    run_port, global_port = _run_port(client, run), _global_port(client)
    writer.push(DAG, run, XComRef("t", "first"), b"0", 60)
    before = _evalsha_calls(redis_cluster)
    clock.now += WINDOW_SECONDS - 0.5
    expires = writer.push(DAG, run, XComRef("t", "k"), b"1", 60)
    assert _changed(before, _evalsha_calls(redis_cluster)) == {run_port: 1}
    assert _listed(client, run)
    score = _score(client, run)
    assert score is not None and score >= expires
    clock.now += 0.5
    before = _evalsha_calls(redis_cluster)
    writer.push(DAG, run, XComRef("t", "k2"), b"2", 60)
    assert _changed(before, _evalsha_calls(redis_cluster)) == {run_port: 1, global_port: 1}
    _assert_no_reply_left(client)


def test_a_run_cleared_meanwhile_is_listed_again_before_the_push_is_acknowledged(
    redis_cluster: LocalCluster, client: StoreClient
) -> None:
    """Another replica clears the whole run (and unlists it) inside this process's window: the
    push script finds the run new, so the next push here registers it again, after the push
    and before acknowledging it."""
    run = _run_id(client, same_node=False)
    writer, _ = _recent_writer(client)
    writer.push(DAG, run, XComRef("t", "k"), b"0", 60)
    assert _writer(client).clear(DAG, run) == 1
    assert not _listed(client, run)
    before = _evalsha_calls(redis_cluster)
    writer.push(DAG, run, XComRef("t", "k"), b"1", 60)
    changed = _changed(before, _evalsha_calls(redis_cluster))
    assert changed == {_run_port(client, run): 1, _global_port(client): 1}
    assert _listed(client, run)
    assert XComReader(client).fetch(DAG, run, XComRef("t", "k")) == b"1"


def test_a_lost_registration_is_restored_by_the_first_push_after_the_window(
    redis_cluster: LocalCluster, client: StoreClient
) -> None:
    """A confirmed registration vanishes (what a failover of the indexes' shard without replica
    acks can do): pushes inside the window leave the run unlisted, which is the documented
    bound; the first push after the window lists it again."""
    run = _run_id(client, same_node=False)
    writer, clock = _recent_writer(client)
    writer.push(DAG, run, XComRef("t", "k"), b"0", 60)
    for index in (keys.RUNS_ALL_KEY, keys.dag_runs_key(DAG)):
        client.zrem(index, keys.run_member(DAG, run))
    writer.push(DAG, run, XComRef("t", "k"), b"1", 60)
    assert not _listed(client, run)
    clock.now += WINDOW_SECONDS
    writer.push(DAG, run, XComRef("t", "k"), b"2", 60)
    assert _listed(client, run)


def test_a_push_past_a_recent_registration_registers_its_exact_expiry(
    redis_cluster: LocalCluster, client: StoreClient
) -> None:
    """A push inside the window whose expiry is later than the registered one (a longer TTL
    than the run's first push had): registered again before it is acknowledged, so the run
    is listed as long as its newest value lives."""
    run = _run_id(client, same_node=False)
    writer, _ = _recent_writer(client)
    writer.push(DAG, run, XComRef("t", "short"), b"0", 60)
    expires = writer.push(DAG, run, XComRef("t", "long"), b"1", 3600)
    score = _score(client, run)
    assert score is not None and score >= expires
    assert client.pttl(keys.dag_runs_key(DAG)) > 3_500_000
