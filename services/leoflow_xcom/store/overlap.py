"""Script calls on different cluster nodes in flight together: one round trip, not one each.

A push on Redis Cluster is two calls (the push script on the run's shard, REGISTER_RUN on the
shard of the global slot). Each node's part is written to a connection of that node's pool
before any reply is read, so the nodes work at the same time; when both land on one node they
are one pipelined write. Every reply written for is read before a connection goes back to
its pool, error replies too, so a pooled connection never holds a stale reply; a connection
that failed mid-exchange was closed by redis-py and is reopened on next use.

Per call, as NodeScript does for one: NOSCRIPT loads the script and MOVED/ASK re-reads the slot
map, then only the calls that failed go again (each is idempotent), at most twice; a connection
error or timeout re-reads the slot map soon and stands. With `acks` > 0 each node's part ends
with `WAIT acks timeout` on the same connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.exceptions

from leoflow_xcom.store.node_scripts import NodeScript
from leoflow_xcom.store.push_plan import Outcome

# What a node failed with that only the caller can judge (a connection error, OOM, ...).
_TRANSPORT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


@dataclass(frozen=True)
class Call:
    script: NodeScript
    keys: list[str]
    args: list[Any]


def run_together(calls: Sequence[Call], acks: int = 0, wait_ms: int = 0) -> list[Outcome]:
    """Run every call, overlapped across nodes; an Outcome per call, in order. Never raises
    for a call's own failure (the caller decides what a partial failure means); a failure
    outside any call (no node for a slot) raises."""
    outcomes = [Outcome() for _ in calls]
    pending = list(range(len(calls)))
    for tries_left in (2, 1, 0):
        groups: dict[int, tuple[redis.Redis, list[int]]] = {}
        for i in pending:
            node = calls[i].script.node(calls[i].keys)
            groups.setdefault(id(node), (node, []))[1].append(i)
        _exchange(calls, list(groups.values()), outcomes, acks, wait_ms)
        again: list[int] = []
        reloaded: set[int] = set()
        refreshed = refreshing_soon = False
        for i in pending:
            error, script = outcomes[i].error, calls[i].script
            if isinstance(error, redis.exceptions.NoScriptError) and tries_left:
                if id(script) not in reloaded:
                    script.reload()
                    reloaded.add(id(script))
                again.append(i)
            elif isinstance(error, redis.exceptions.AskError) and tries_left:  # MOVED too
                if not refreshed:
                    script.refresh()
                    refreshed = True
                again.append(i)
            elif isinstance(error, _TRANSPORT) and not refreshing_soon:
                script.refresh_soon()
                refreshing_soon = True
        if not again:
            break
        pending = again
    return outcomes


def _exchange(
    calls: Sequence[Call],
    groups: list[tuple[redis.Redis, list[int]]],
    outcomes: list[Outcome],
    acks: int,
    wait_ms: int,
) -> None:
    """Write each node's commands, then read every reply; the outcomes of `groups`' calls."""
    sent: list[tuple[redis.Redis, Any, list[int]]] = []
    try:
        for node, positions in groups:
            commands = [calls[i].script.command(calls[i].keys, calls[i].args) for i in positions]
            if acks:
                commands.append(("WAIT", acks, wait_ms))
            try:
                conn = node.connection_pool.get_connection()
            except _TRANSPORT as exc:
                _fail(outcomes, positions, exc)
                continue
            try:
                packed = conn.pack_commands(commands)  # type: ignore[no-untyped-call]
                conn.send_packed_command(packed)  # type: ignore[no-untyped-call]
            except BaseException as exc:
                conn.disconnect()  # type: ignore[no-untyped-call]  # maybe half written: not reused
                node.connection_pool.release(conn)
                if not isinstance(exc, _TRANSPORT):
                    raise
                _fail(outcomes, positions, exc)
                continue
            sent.append((node, conn, positions))
    finally:
        # Also when something else went wrong on the way: every connection written to is read
        # to the end (or closed) and released, each one whatever happened to the one before.
        failure: BaseException | None = None
        for node, conn, positions in sent:
            try:
                if failure is None:
                    _read(conn, positions, outcomes, acks)
                else:
                    conn.disconnect()
            except BaseException as exc:
                failure = exc
            finally:
                node.connection_pool.release(conn)
        if failure is not None:
            raise failure


def _read(conn: Any, positions: list[int], outcomes: list[Outcome], acks: int) -> None:
    read: list[int] = []
    try:
        for i in positions:
            try:
                outcomes[i] = Outcome(reply=conn.read_response())
            except redis.exceptions.ResponseError as exc:
                outcomes[i] = Outcome(error=exc)
            read.append(i)
        if acks:
            try:
                acked = int(conn.read_response())
            except redis.exceptions.ResponseError:
                # WAIT refused (a node that became a replica refuses it, after the MOVED its
                # call got): nothing is confirmed; a call's own error still says more.
                acked = 0
            for i in positions:
                if outcomes[i].error is None:
                    outcomes[i].acked = acked
    except _TRANSPORT as exc:
        # redis-py closed the connection. Without acks a reply read before stands; with acks
        # none is confirmed (WAIT's reply is lost), so every call of this node failed.
        for i in positions:
            if acks or i not in read:
                outcomes[i] = Outcome(error=exc)
    except BaseException:
        conn.disconnect()  # replies may be left unread: the connection must not be reused
        raise


def _fail(outcomes: list[Outcome], positions: list[int], exc: Exception) -> None:
    for i in positions:
        outcomes[i] = Outcome(error=exc)
