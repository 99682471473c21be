"""The service's hot path (push, fetch, batch fetch) on asyncio: what XComWriter.push,
XComReader.fetch and XComReader.fetch_many do, with the same answers and errors, sent on
auto-pipelined connections (store/pipelined.py) from the grpc.aio server's event loop.

Nothing is decided here twice: a push's rules are store/push_plan.py's (driven here with
`asyncio.gather`, by the sync writer with store/overlap.py), fetch_many's call and reply are
store/reader.py's `fetch_many_call` / `fetch_many_result`.

Connections: standalone and Sentinel, one PipelinedRedis (it follows a Sentinel failover
itself). Redis Cluster, one PipelinedRedis per primary, opened lazily, the node chosen by the
slot map that the service's sync client (RedisCluster) already holds, as store/routing.py
does. A MOVED/ASK re-reads that map (blocking redis-py: in a thread) and the call goes again,
at most twice; a connection error or a missed deadline re-reads it soon (at most every 0.1 s,
however many calls fail at once) and stands, so the caller's retry reaches the replica the
cluster promotes. Every call of a push is retried alone: each is idempotent.

With `min_replica_acks` > 0 each script call is followed by `WAIT n t` in the same write on
the same connection, so the WAIT covers that write; the pushes of one loop iteration share one
WAIT at the end of their write (PipelinedRedis.script_acked): Redis runs nothing else of a
connection while a WAIT blocks it, so a WAIT per push would cost a replica round trip each, in
a row. What is queued behind a WAIT on that connection (a fetch too) waits for it: the price
of the guarantee, as the sync client pays it per pooled connection.

All methods must be called on one event loop, the one the store was first used on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from leoflow_xcom.core.errors import StoreUnavailableError
from leoflow_xcom.core.model import Selector, XComRef
from leoflow_xcom.core.quotas import Quota
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store import scripts
from leoflow_xcom.store.connection import StoreClient, is_cluster
from leoflow_xcom.store.pipelined import PipelinedRedis, SlotMovedError, connection_lost
from leoflow_xcom.store.push_plan import Acks, Outcome, PushPlan, PushRules, Step
from leoflow_xcom.store.reader import fetch_many_call, fetch_many_result, fetched, value_key
from leoflow_xcom.store.registrations import RecentRegistrations
from leoflow_xcom.store.routing import NodeRouter

T = TypeVar("T")

# As store/routing.py: a slot map re-read after a connection error at most this often.
_REFRESH_EVERY_S = 0.1


class AsyncXComStore:
    def __init__(
        self,
        settings: RedisSettings,
        client: StoreClient,
        min_replica_acks: int = 0,
        wait_timeout_ms: int = 400,
        recent: RecentRegistrations | None = None,
    ) -> None:
        """`client`: the service's connected sync client, used only for what is rare (the
        cluster's slot map and its refresh)."""
        self._settings = settings
        self._cluster = is_cluster(client)
        self._router = NodeRouter(client)
        self._acks = Acks(min_replica_acks, wait_timeout_ms)
        self._rules = PushRules(self._cluster, self._acks, recent or RecentRegistrations())
        # Outside a cluster the one connection; on a cluster one per primary, by address.
        self._single = None if self._cluster else PipelinedRedis(settings)
        self._nodes: dict[tuple[str, int], PipelinedRedis] = {}
        self._refreshing: asyncio.Task[None] | None = None
        self._refreshed_at = 0.0

    async def push(
        self,
        dag_id: str,
        run_id: str,
        ref: XComRef,
        value: bytes,
        ttl_seconds: int,
        run_info: bytes = b"",
        quota: Quota | None = None,
    ) -> int:
        """As XComWriter.push: the expiry (Unix ms); XComQuotaExceededError over a quota,
        nothing stored; StoreUnavailableError.unconfirmed when too few replicas confirmed."""
        plan = self._rules.plan(dag_id, run_id, ref, value, ttl_seconds, run_info, quota)
        return await self._drive(plan)

    async def fetch(self, dag_id: str, run_id: str, ref: XComRef) -> bytes:
        """As XComReader.fetch: the value, or XComNotFoundError."""
        key = value_key(dag_id, run_id, ref)
        value = await self._on_node(key, lambda node: node.execute("GET", key))
        return fetched(value, dag_id, run_id, ref)

    async def fetch_many(
        self, dag_id: str, run_id: str, selectors: list[Selector]
    ) -> list[tuple[XComRef, bytes | None]]:
        """As XComReader.fetch_many: one FETCH_MANY call (EVALSHA_RO, as the sync reader)."""
        script_keys, args = fetch_many_call(dag_id, run_id, selectors)
        reply = await self._on_node(
            script_keys[0],
            lambda node: node.script(scripts.FETCH_MANY, script_keys, args, read_only=True),
        )
        return fetch_many_result(reply)

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
        for node in [self._single, *self._nodes.values()]:
            if node is not None:
                await node.close()
        self._nodes.clear()

    async def _drive(self, plan: PushPlan) -> int:
        """A plan's rounds, each round's calls at once (a node's calls share its write)."""
        try:
            steps = next(plan)
            while True:
                if len(steps) == 1:  # the usual push: no task for gather to schedule
                    outcomes = [await self._outcome(steps[0])]
                else:
                    outcomes = list(await asyncio.gather(*(self._outcome(s) for s in steps)))
                steps = plan.send(outcomes)
        except StopIteration as done:
            return int(done.value)

    async def _outcome(self, step: Step) -> Outcome:
        """One call of a plan, never raising for its own failure (the plan judges it)."""
        try:
            return await self._on_node(step.keys[0], lambda node: self._script(node, step))
        except Exception as exc:  # the store's errors and error replies; not cancellation
            return Outcome(error=exc)

    async def _script(self, node: PipelinedRedis, step: Step) -> Outcome:
        if not self._acks.replicas:
            return Outcome(reply=await node.script(step.script, step.keys, step.args))
        reply, acked = await node.script_acked(
            step.script, step.keys, step.args, self._acks.replicas, self._acks.wait_ms
        )
        if isinstance(reply, BaseException):
            raise reply  # a MOVED is followed by _on_node; the WAIT behind it says nothing
        if isinstance(acked, BaseException) and connection_lost(acked):
            # WAIT's reply lost with the connection: the call failed, as store/overlap.py
            # reads it (and on a cluster the slot map is re-read soon).
            raise acked
        # WAIT refused (a primary demoted meanwhile): nothing is confirmed.
        return Outcome(reply=reply, acked=0 if isinstance(acked, BaseException) else int(acked))

    async def _on_node(self, key: str, attempt: Callable[[PipelinedRedis], Awaitable[T]]) -> T:
        """`attempt` on the connection of the primary owning `key`; after a MOVED/ASK the slot
        map is re-read and it goes again, at most twice (NodeRouter.retrying's rule)."""
        if self._single is not None:
            try:
                return await attempt(self._single)
            except SlotMovedError as exc:  # a cluster node configured as standalone
                raise exc.unavailable() from None
        for tries_left in (2, 1, 0):
            node = self._node(key)
            try:
                return await attempt(node)
            except SlotMovedError as exc:
                if not tries_left:
                    raise exc.unavailable() from None
                await self._refresh(now=True)
            except StoreUnavailableError as exc:
                if connection_lost(exc):
                    await self._refresh(now=False)
                raise
        raise AssertionError("unreachable: the last try returns or raises")

    def _node(self, key: str) -> PipelinedRedis:
        # The slot map lookup is in memory (redis-py's own cache); no I/O on the loop.
        kwargs = self._router.node(key).connection_pool.connection_kwargs
        address = (str(kwargs["host"]), int(kwargs["port"]))
        node = self._nodes.get(address)
        if node is None:
            node = self._nodes[address] = PipelinedRedis(self._settings, address=address)
        return node

    async def _refresh(self, now: bool) -> None:
        """Re-read the slot map in a thread; concurrent callers share one re-read. `now`
        after a MOVED/ASK (its error stands if no node answers); otherwise rate-limited and
        never failing (the caller's own error stands)."""
        if not now and time.monotonic() - self._refreshed_at < _REFRESH_EVERY_S:
            return
        if self._refreshing is None or self._refreshing.done():
            self._refreshed_at = time.monotonic()
            self._refreshing = asyncio.ensure_future(asyncio.to_thread(self._router.refresh))
        task = self._refreshing
        if now:
            await asyncio.shield(task)
            return
        try:
            await asyncio.shield(task)
        except Exception:
            pass  # no node answered yet; the next failing call tries again
