"""Writes: push (one script call) and clear (optimistic transaction). Service-side only."""

from __future__ import annotations

from typing import cast

import redis
import redis.client

from leoflow_xcom.core import keys
from leoflow_xcom.core.model import XComRef
from leoflow_xcom.store import scripts
from leoflow_xcom.store.connection import translated
from leoflow_xcom.store.runs import RunRegistry


class XComWriter:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._push = client.register_script(scripts.PUSH)
        self._runs = RunRegistry(client)

    def push(
        self,
        dag_id: str,
        run_id: str,
        ref: XComRef,
        value: bytes,
        ttl_seconds: int,
        run_info: bytes = b"",
    ) -> int:
        """Store the value with its TTL and index it, atomically. Returns expiry (Unix ms)."""
        run = keys.run_keys(dag_id, run_id)
        member = keys.member(ref.task_id, ref.map_index, ref.key)
        with translated():
            expires, fresh = self._push(
                keys=[run.value(member), run.index, run.expiry, run.meta],
                args=[value, ttl_seconds * 1000, member, run_info],
            )
        if fresh:
            # First XCom of this run: register it for cross-run listing (once per run).
            self._runs.add(dag_id, run_id)
        return int(expires)

    def clear(
        self,
        dag_id: str,
        run_id: str,
        task_id: str | None = None,
        map_index: int | None = None,
    ) -> int:
        """Delete a task instance's XComs (task_id and map_index), a task's (map_index None),
        or the whole run's (task_id None). Returns how many values were indexed for deletion.
        """
        run = keys.run_keys(dag_id, run_id)
        if task_id is None:
            prefix = ""
        elif map_index is None:
            prefix = keys.task_prefix(task_id)
        else:
            prefix = keys.task_instance_prefix(task_id, map_index)
        low, high = keys.lex_range(prefix)
        deleted = 0

        def clear_in(pipe: redis.client.Pipeline) -> None:
            # Runs under WATCH of the index: a concurrent push restarts the clear, so a value
            # pushed meanwhile is either cleared with its index entry or kept with it.
            nonlocal deleted
            raw = cast(list[bytes], pipe.zrangebylex(run.index, low, high))
            members = [m.decode() for m in raw]
            deleted = len(members)
            pipe.multi()
            if not prefix:
                pipe.delete(run.index, run.expiry, run.meta)
                for chunk in _chunks(members, 512):
                    pipe.delete(*(run.value(m) for m in chunk))
                return
            for chunk in _chunks(members, 512):
                pipe.delete(*(run.value(m) for m in chunk))
                pipe.zrem(run.index, *chunk)
                pipe.zrem(run.expiry, *chunk)
                pipe.hdel(run.meta, *chunk)

        with translated():
            self._client.transaction(clear_in, run.index)
        return deleted


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
