"""Writes: push (one script call; two on a cluster) and clear (bounded script calls).
Service-side only.

On Redis Cluster the run indexes live in the global slot, not the run's: the push script writes
the run's keys and REGISTER_RUN lists the run (idempotent), both in flight together
(store/overlap.py: one round trip, not two in a row). The push is acknowledged only when both
succeeded, so a retry after a partial failure lists the run. Registered beside the push rather
than after it, a run can be listed by a push that then failed or was refused over a quota:
listed with no live values for at most its TTL, which readers skip. A run this process saw
registered a moment ago is not registered again unless its push needs it
(store/registrations.py): most pushes are then one call on one shard.

With `min_replica_acks` > 0 each write is followed, on the same connection, by `WAIT n t`: a
push is acknowledged only when that many replicas confirmed it (StoreUnavailableError, saying
the push may have landed, otherwise).
"""

from __future__ import annotations

from typing import Any

from leoflow_xcom.core import keys
from leoflow_xcom.core.errors import StoreUnavailableError, XComQuotaExceededError
from leoflow_xcom.core.model import XComRef
from leoflow_xcom.core.quotas import SCOPES, Quota
from leoflow_xcom.store import scripts
from leoflow_xcom.store.connection import StoreClient, is_cluster, translated
from leoflow_xcom.store.node_scripts import NodeScript
from leoflow_xcom.store.overlap import Call, Outcome, run_together
from leoflow_xcom.store.registrations import GRACE_MS, RecentRegistrations

# XComs one clear script call deletes: Redis stays responsive between batches of a big run.
CLEAR_BATCH = 512


def push_call(
    dag_id: str,
    run_id: str,
    member: str,
    value: bytes,
    ttl_ms: int,
    run_info: bytes = b"",
    quota: Quota | None = None,
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of one call of the push script (the bench's raw-Redis floor uses it too).
    Its reply: {expiry ms}, or {-1, which limit, usage, limit} over a quota."""
    run = keys.run_keys(dag_id, run_id)
    args = [value, ttl_ms, member, run_info, keys.run_member(dag_id, run_id)]
    return (
        [run.value(member), *keys.run_bookkeeping(dag_id, run_id)],
        [*args, *(quota or Quota()).as_args()],
    )


class XComWriter:
    def __init__(
        self,
        client: StoreClient,
        min_replica_acks: int = 0,
        wait_timeout_ms: int = 400,
        recent: RecentRegistrations | None = None,
    ) -> None:
        self._client = client
        self._recent = recent or RecentRegistrations()
        self._cluster = is_cluster(client)
        self._acks = min_replica_acks
        self._wait_ms = wait_timeout_ms
        self._push = NodeScript(client, scripts.PUSH)
        self._register = NodeScript(client, scripts.REGISTER_RUN)
        self._clear = NodeScript(client, scripts.CLEAR)

    def _run(self, script: NodeScript, script_keys: list[str], args: list[Any]) -> Any:
        if not self._acks:
            return script(script_keys, args)
        reply, acked = script.acked(script_keys, args, self._acks, self._wait_ms)
        if acked < self._acks:
            raise StoreUnavailableError.unconfirmed(acked, self._acks, self._wait_ms)
        return reply

    def push(
        self,
        dag_id: str,
        run_id: str,
        ref: XComRef,
        value: bytes,
        ttl_seconds: int,
        run_info: bytes = b"",
        quota: Quota | None = None,
    ) -> int:
        """Store the value with its TTL, index it, count it against the quotas and list its run,
        atomically. Returns expiry (Unix ms). Over a quota: XComQuotaExceededError, nothing
        stored."""
        member = keys.member(ref.task_id, ref.map_index, ref.key)
        script_keys, args = push_call(
            dag_id, run_id, member, value, ttl_seconds * 1000, run_info, quota
        )
        if self._cluster:
            return self._push_and_register(dag_id, run_id, script_keys, args, len(value))
        with translated():
            reply: list[Any] = self._run(self._push, script_keys, args)
        return _expiry(reply, dag_id, len(value))

    def _push_and_register(
        self, dag_id: str, run_id: str, script_keys: list[str], args: list[Any], size: int
    ) -> int:
        """The push script on the run's shard (its first six keys), REGISTER_RUN on the shard
        of the run indexes (the rest), overlapped, unless this process registered the run a
        moment ago. Registered at the indexes' node's now + ttl + a grace; registered again,
        before the push is acknowledged, when the push's own expiry is later still (clocks far
        apart, or the recent registration is getting old) or when a recent registration was
        undone (the push script found the run new: a clear emptied it meanwhile)."""
        ttl_ms, run_member = args[1], args[4]
        indexes = script_keys[6:]
        push = Call(self._push, script_keys[:6], args)
        known = self._recent.registered_until(run_member)
        registered: Outcome | None = None
        with translated():
            if known is None:
                # Registration first: written first, its node starts first.
                register = self._registration(indexes, 0, ttl_ms, run_member)
                registered, pushed = run_together([register, push], self._acks, self._wait_ms)
            else:
                [pushed] = run_together([push], self._acks, self._wait_ms)
            reply: list[Any] = self._confirmed(pushed)
        expires = _expiry(reply, dag_id, size)  # a refusal over a quota wins over the rest
        with translated():
            if registered is not None:
                until = int(self._confirmed(registered))
            else:
                assert known is not None
                if not int(reply[1]) and known >= expires:
                    return expires  # covered; the window is not extended by not registering
                # Undone meanwhile (the run is new again: a clear emptied it), or too short.
                until = self._register_alone(indexes, 0, ttl_ms, run_member)
            if until < expires:  # the push ran later than the grace covers (clocks apart)
                until = self._register_alone(indexes, expires, ttl_ms, run_member)
        self._recent.confirmed(run_member, until)
        return expires

    def _registration(self, indexes: list[str], expires: int, ttl_ms: int, run: str) -> Call:
        """REGISTER_RUN for `expires`, or for its node's now + ttl + the grace when 0."""
        return Call(self._register, indexes, [expires, ttl_ms, run, GRACE_MS])

    def _register_alone(self, indexes: list[str], expires: int, ttl_ms: int, run: str) -> int:
        [outcome] = run_together(
            [self._registration(indexes, expires, ttl_ms, run)], self._acks, self._wait_ms
        )
        return int(self._confirmed(outcome))

    def _confirmed(self, outcome: Outcome) -> Any:
        if outcome.error is not None:
            raise outcome.error
        if self._acks and (outcome.acked or 0) < self._acks:
            raise StoreUnavailableError.unconfirmed(outcome.acked or 0, self._acks, self._wait_ms)
        return outcome.reply

    def clear(
        self,
        dag_id: str,
        run_id: str,
        task_id: str | None = None,
        map_index: int | None = None,
        batch: int = CLEAR_BATCH,
    ) -> int:
        """Delete a task instance's XComs (task_id and map_index), a task's (map_index None),
        or the whole run's (task_id None). Returns how many were deleted.

        Works when Redis is at maxmemory (the script is `allow-oom`). Each call deletes at most
        `batch` XComs atomically, index and counters in step; a value pushed meanwhile is either
        cleared with its index entry or kept with it.
        """
        run = keys.run_keys(dag_id, run_id)
        if task_id is None:
            prefix = ""
        elif map_index is None:
            prefix = keys.task_prefix(task_id)
        else:
            prefix = keys.task_instance_prefix(task_id, map_index)
        low, high = keys.lex_range(prefix)
        script_keys = keys.run_bookkeeping(dag_id, run_id)
        indexes = script_keys[5:]
        if self._cluster:
            script_keys = script_keys[:5]  # the run's own slot; unlisting follows
        run_member = keys.run_member(dag_id, run_id)
        args: list[str | int] = [low, high, batch, run.tag, run_member]
        deleted = 0
        with translated():
            # Bounded: what was there when the clear began, plus what concurrent pushes add
            # while it runs, is at most a few batches more; stop when a batch finds nothing.
            while True:
                done, left, emptied = self._clear(script_keys, args)
                deleted += int(done)
                if int(left) == 0 or int(done) == 0:
                    break
            if self._cluster and int(emptied):
                self._recent.forget(run_member)
                for index in indexes:
                    self._client.zrem(index, run_member)
        return deleted


def _expiry(reply: list[Any], dag_id: str, size: int) -> int:
    """The push script's expiry (Unix ms), or its refusal over a quota raised."""
    if int(reply[0]) < 0:
        scope, measure = SCOPES[int(reply[1]) - 1]
        adding = size if measure == "bytes" else 1
        raise XComQuotaExceededError.over(
            scope, measure, int(reply[2]), int(reply[3]), adding, dag_id
        )
    return int(reply[0])
