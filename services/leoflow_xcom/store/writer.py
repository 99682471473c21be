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

Those rules are store/push_plan.py's, shared with the asyncio store (store/aio_store.py); this
class runs their calls on redis-py.
"""

from __future__ import annotations

from leoflow_xcom.core import keys
from leoflow_xcom.core.model import XComRef
from leoflow_xcom.core.quotas import Quota
from leoflow_xcom.store import scripts
from leoflow_xcom.store.connection import StoreClient, is_cluster, translated
from leoflow_xcom.store.node_scripts import NodeScript
from leoflow_xcom.store.overlap import Call, run_together
from leoflow_xcom.store.push_plan import Acks, Outcome, PushRules, Step, drive
from leoflow_xcom.store.registrations import RecentRegistrations

# XComs one clear script call deletes: Redis stays responsive between batches of a big run.
CLEAR_BATCH = 512


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
        self._acks = Acks(min_replica_acks, wait_timeout_ms)
        self._rules = PushRules(self._cluster, self._acks, self._recent)
        self._push = NodeScript(client, scripts.PUSH)
        self._scripts = {
            scripts.PUSH: self._push,
            scripts.REGISTER_RUN: NodeScript(client, scripts.REGISTER_RUN),
        }
        self._clear = NodeScript(client, scripts.CLEAR)

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
        stored. What is decided is store/push_plan.py's (shared with AsyncXComStore); here
        its calls run on redis-py."""
        plan = self._rules.plan(dag_id, run_id, ref, value, ttl_seconds, run_info, quota)
        with translated():
            return drive(plan, self._run_steps)

    def _run_steps(self, steps: list[Step]) -> list[Outcome]:
        if not self._cluster:
            # The one push call: the node script's own path (a pipeline with WAIT under acks).
            [step] = steps
            if not self._acks.replicas:
                return [Outcome(reply=self._push(step.keys, step.args))]
            reply, acked = self._push.acked(
                step.keys, step.args, self._acks.replicas, self._acks.wait_ms
            )
            return [Outcome(reply=reply, acked=acked)]
        calls = [Call(self._scripts[s.script], s.keys, s.args) for s in steps]
        return run_together(calls, self._acks.replicas, self._acks.wait_ms)

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
