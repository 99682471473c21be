"""Lua scripts run on the node that owns their keys, by SHA, reloaded there when missing.

On a cluster redis-py routes EVALSHA by its keys, but EVALSHA_RO through `COMMAND GETKEYS`
(one more round trip to some node on every call), and its Script objects load a missing
script with SCRIPT LOAD on every primary. Here the call goes to the owning primary's own client
(store/routing.py), and a NOSCRIPT (a restarted node, a replica promoted by a failover: SCRIPT
LOAD is not replicated) loads the script and runs it again. Outside a cluster the "node" is the
client itself, so the cost is the same as before.

A call can carry `WAIT n timeout` on the same connection right after it (a pipeline on that
node): the reply then says how many replicas have the write.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import redis

from leoflow_xcom.store.connection import StoreClient, is_cluster
from leoflow_xcom.store.routing import NodeRouter

Call = tuple[list[str], list[Any]]


class NodeScript:
    def __init__(self, client: StoreClient, source: str, read_only: bool = False) -> None:
        self._client = client
        self._source = source
        self._sha = hashlib.sha1(source.encode("utf-8")).hexdigest()
        # EVALSHA_RO: Redis lets a read-only ACL user (the UI proxy) run `no-writes` scripts
        # only this way; plain EVALSHA declares its keys as written.
        self._command = "EVALSHA_RO" if read_only else "EVALSHA"
        self._cluster = is_cluster(client)
        self._router = NodeRouter(client)

    def __call__(self, keys: list[str], args: list[Any]) -> Any:
        [reply] = self.many([(keys, args)])
        return reply

    def many(self, calls: Sequence[Call]) -> list[Any]:
        """Each (keys, args) call; one pipelined round trip per node involved."""
        if not self._cluster:
            return list(self._retrying(lambda: self._on(self._node(calls[0][0]), calls)))
        by_node: dict[int, tuple[redis.Redis, list[int]]] = {}
        for i, (keys, _) in enumerate(calls):
            node = self._node(keys)
            by_node.setdefault(id(node), (node, []))[1].append(i)
        replies: list[Any] = [None] * len(calls)
        for node, positions in by_node.values():
            answered = self._retrying(
                lambda n=node, p=positions: self._on(n, [calls[i] for i in p])
            )
            for i, reply in zip(positions, answered, strict=True):
                replies[i] = reply
        return replies

    def acked(self, keys: list[str], args: list[Any], replicas: int, timeout_ms: int) -> Any:
        """Run the script, then `WAIT replicas timeout_ms` on the same connection: (reply,
        how many replicas confirmed the write)."""

        def attempt() -> list[Any]:
            with self._node(keys).pipeline(transaction=False) as pipe:
                pipe.execute_command(self._command, self._sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
                pipe.execute_command("WAIT", replicas, timeout_ms)  # type: ignore[no-untyped-call]
                return list(pipe.execute())

        reply, acked = self._retrying(attempt)
        return reply, int(acked)

    def node(self, keys: list[str]) -> redis.Redis:
        """The client of the node that runs a call with these keys (see store/overlap.py)."""
        return self._node(keys)

    def command(self, keys: list[str], args: list[Any]) -> tuple[Any, ...]:
        """The call as one Redis command, for a caller that sends it on a connection itself."""
        return (self._command, self._sha, len(keys), *keys, *args)

    def reload(self) -> None:
        """After a NOSCRIPT: load the script where it is missing."""
        self._load_everywhere_needed()

    def refresh(self) -> None:
        """After a MOVED/ASK on a cluster: re-read the slot map now."""
        self._router.refresh()

    def refresh_soon(self) -> None:
        """After a connection error on a cluster: re-read the slot map (rate-limited)."""
        self._router.refresh_soon()

    def _node(self, keys: list[str]) -> redis.Redis:
        return self._router.node(keys[0])

    def _on(self, node: redis.Redis, calls: Sequence[Call]) -> list[Any]:
        if len(calls) == 1:  # no pipeline object for the common single call
            keys, args = calls[0]
            return [node.execute_command(*self.command(keys, args))]  # type: ignore[no-untyped-call]
        with node.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.execute_command(self._command, self._sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
            return list(pipe.execute())

    def _retrying(self, attempt: Any) -> Any:
        return self._router.retrying(attempt, reload=self._load_everywhere_needed)

    def _load_everywhere_needed(self) -> None:
        # Outside a cluster: the one server. On a cluster: every primary (cheap, rare, and the
        # next NOSCRIPT on another shard is avoided).
        self._client.script_load(self._source)
