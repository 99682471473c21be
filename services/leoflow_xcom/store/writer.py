"""Writes: push (one script call) and clear (bounded script calls). Service-side only."""

from __future__ import annotations

from typing import Any

from leoflow_xcom.core import keys
from leoflow_xcom.core.errors import XComQuotaExceededError
from leoflow_xcom.core.model import XComRef
from leoflow_xcom.core.quotas import SCOPES, Quota
from leoflow_xcom.store import scripts
from leoflow_xcom.store.connection import StoreClient, translated

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
    def __init__(self, client: StoreClient) -> None:
        self._client = client
        self._push = client.register_script(scripts.PUSH)
        self._clear = client.register_script(scripts.CLEAR)

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
        with translated():
            reply: list[Any] = self._push(keys=script_keys, args=args)
        if int(reply[0]) < 0:
            scope, measure = SCOPES[int(reply[1]) - 1]
            adding = len(value) if measure == "bytes" else 1
            raise XComQuotaExceededError.over(
                scope, measure, int(reply[2]), int(reply[3]), adding, dag_id
            )
        return int(reply[0])

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
        args: list[str | int] = [low, high, batch, run.tag, keys.run_member(dag_id, run_id)]
        deleted = 0
        with translated():
            # Bounded: what was there when the clear began, plus what concurrent pushes add
            # while it runs, is at most a few batches more; stop when a batch finds nothing.
            while True:
                done, left = self._clear(keys=script_keys, args=args)
                deleted += int(done)
                if int(left) == 0 or int(done) == 0:
                    return deleted
