"""The run registry: which (dag_id, run_id) have XComs, for listing across runs (`~`).

A run is added by the push that creates its index (the push script reports it), so the hot
path pays one extra command only once per run. Runs whose index expired or was cleared are
filtered out on read and pruned in the background by the service.
"""

from __future__ import annotations

from typing import cast

import redis

from leoflow_xcom.core import keys
from leoflow_xcom.store.connection import translated


class RunRegistry:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def add(self, dag_id: str, run_id: str) -> None:
        with translated():
            self._client.zadd(keys.RUNS_KEY, {keys.run_member(dag_id, run_id): 0})

    def runs(self, dag_id: str | None = None) -> list[tuple[str, str]]:
        """Every live run, of one DAG or of all, in (dag_id, run_id) lexical order."""
        low, high = keys.lex_range(keys.dag_runs_prefix(dag_id) if dag_id is not None else "")
        with translated():
            members = cast(list[bytes], self._client.zrangebylex(keys.RUNS_KEY, low, high))
            found = [keys.parse_run_member(m.decode()) for m in members]
            if not found:
                return []
            with self._client.pipeline(transaction=False) as pipe:
                for dag, run in found:
                    pipe.exists(keys.run_keys(dag, run).index)
                alive = pipe.execute()
        return [run for run, live in zip(found, alive, strict=True) if live]

    def prune(self, batch: int = 500) -> int:
        """Remove runs whose index no longer exists (expired or cleared). Service-side only."""
        removed = 0
        cursor = 0
        with translated():
            while True:
                cursor, items = self._client.zscan(keys.RUNS_KEY, cursor, count=batch)
                members = [cast(bytes, m).decode() for m, _ in items]
                if members:
                    with self._client.pipeline(transaction=False) as pipe:
                        for member in members:
                            pipe.exists(keys.run_keys(*keys.parse_run_member(member)).index)
                        alive = pipe.execute()
                    dead = [m for m, live in zip(members, alive, strict=True) if not live]
                    if dead:
                        removed += int(self._client.zrem(keys.RUNS_KEY, *dead))
                if cursor == 0:
                    return removed
