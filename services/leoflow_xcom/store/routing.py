"""Hot-path commands sent straight to the primary that owns their key's slot.

On Redis Cluster, redis-py's `RedisCluster` sends every command through its generic path
(command flags, node selection, its own retry loop): ~45-75 µs more CPU per GET than computing
the slot here and calling the owning node's own client (3+3 local nodes on the 2-core VM). The
hot path (push, fetch, batch fetch) goes the short way; the rest of store/ keeps the generic
client. Outside a cluster the "node" is the client itself, at no extra cost.

Following a cluster that changes: a MOVED/ASK (failover, resharding) re-reads the slot map and
tries again, at most twice; a connection error or timeout (a dead or stalled primary that the map
still names, which never answers MOVED) re-reads the map at most every 0.1 s and stands, so the
caller retries and reaches the replica the cluster promotes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import redis
import redis.exceptions

from leoflow_xcom.core.errors import StoreUnavailableError
from leoflow_xcom.store.connection import StoreClient, is_cluster, node_for, refresh_slots

T = TypeVar("T")

_REFRESH_EVERY_S = 0.1


class NodeRouter:
    def __init__(self, client: StoreClient) -> None:
        self._client = client
        self._cluster = is_cluster(client)
        self._refreshed_at = 0.0

    def node(self, key: str) -> redis.Redis:
        """The client of the primary that owns `key` (the client itself outside a cluster)."""
        if not self._cluster:
            return cast(redis.Redis, self._client)
        return node_for(self._client, key)

    def get(self, key: str) -> bytes | None:
        if not self._cluster:
            return cast(bytes | None, self._client.get(key))
        return cast(bytes | None, self.retrying(lambda: self.node(key).get(key)))

    def refresh(self) -> None:
        """After a MOVED/ASK on a cluster: re-read the slot map now."""
        refresh_slots(self._client)

    def refresh_soon(self) -> None:
        """After a connection error on a cluster: re-read the slot map (rate-limited, however
        many calls fail at once)."""
        if not self._cluster:
            return
        now = time.monotonic()
        if now - self._refreshed_at < _REFRESH_EVERY_S:
            return
        self._refreshed_at = now
        try:
            refresh_slots(self._client)
        except StoreUnavailableError:
            pass  # no node answered yet; the next failing call tries again

    def retrying(self, attempt: Callable[[], T], reload: Callable[[], Any] | None = None) -> T:
        """`attempt`, up to two more times after `reload` (a NOSCRIPT, when given) or after
        re-reading the slot map (a MOVED/ASK); then the error stands. Both can follow each
        other: after a failover the MOVED leads to a promoted replica that has never loaded a
        script (SCRIPT LOAD is not replicated)."""
        for tries_left in (2, 1, 0):
            try:
                return attempt()
            except redis.exceptions.NoScriptError:
                if reload is None or not tries_left:
                    raise
                reload()
            except redis.exceptions.AskError:  # MovedError too
                if not self._cluster or not tries_left:
                    raise
                self.refresh()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                self.refresh_soon()
                raise
        raise AssertionError("unreachable: the last try returns or raises")
