"""The run indexes: which (dag_id, run_id) have live XComs, in time order, for listing across
runs (`~`) and for the operator's `clear --older-than`.

Every push registers its run (score = expiry of the run's newest value, see scripts.PUSH), so
a run is listed as long as any of its values lives, and reading a page of runs is
O(log N + page) whatever the number of runs: runs that expired are skipped by score, never
visited. Pushes drop expired runs a bounded few at a time; the service's housekeeper drops the
rest.
"""

from __future__ import annotations

import time
from typing import cast

from leoflow_xcom.core import keys
from leoflow_xcom.store.connection import StoreClient, translated


def _index(dag_id: str | None) -> str:
    return keys.RUNS_ALL_KEY if dag_id is None else keys.dag_runs_key(dag_id)


def _now_ms() -> int:
    return int(time.time() * 1000)


class RunRegistry:
    def __init__(self, client: StoreClient) -> None:
        self._client = client

    def page(self, dag_id: str | None, offset: int, limit: int) -> list[tuple[str, str]]:
        """Live runs, of one DAG or of all, oldest newest-value first."""
        with translated():
            members = cast(
                list[bytes],
                self._client.zrangebyscore(
                    _index(dag_id), f"({_now_ms()}", "+inf", start=offset, num=limit
                ),
            )
        return _parsed(members)

    def live(self, dag_id: str | None) -> list[tuple[str, str]]:
        """Every live run, of one DAG or of all: O(runs), for the browser's overview totals."""
        with translated():
            members = cast(
                list[bytes],
                self._client.zrangebyscore(_index(dag_id), f"({_now_ms()}", "+inf"),
            )
        return _parsed(members)

    def older_than(self, dag_id: str, expires_before_ms: int, limit: int) -> list[tuple[str, str]]:
        """Up to `limit` runs of the DAG whose newest value expires before the given time."""
        with translated():
            members = cast(
                list[bytes],
                self._client.zrangebyscore(
                    keys.dag_runs_key(dag_id), "-inf", f"({expires_before_ms}", start=0, num=limit
                ),
            )
        return _parsed(members)

    def prune(self) -> int:
        """Drop runs whose values have all expired from the global index. Service-side only;
        per-DAG indexes are pruned by pushes and expire with their newest run."""
        with translated():
            return int(self._client.zremrangebyscore(keys.RUNS_ALL_KEY, "-inf", _now_ms()))


def _parsed(members: list[bytes]) -> list[tuple[str, str]]:
    """Run members as (dag_id, run_id); one not written by this code is skipped, never fatal."""
    runs = []
    for member in members:
        try:
            runs.append(keys.parse_run_member(member.decode()))
        except (ValueError, UnicodeDecodeError):
            continue
    return runs
