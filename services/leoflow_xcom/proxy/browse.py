"""What both API generations ask of the store: a page of entries, one entry with its value.

Paging happens in Redis: one run costs one listing script call, O(page) on the indexed fast
path. A `~` dag_id or dag_run_id walks the live runs from the run registry in (dag_id, run_id)
order in two pipelined round trips: every run's count, then the part of the page that falls in
each run that holds some of it.
"""

from __future__ import annotations

import dataclasses

import redis

from leoflow_xcom.core.errors import XComNotFoundError
from leoflow_xcom.core.model import ListFilter, RunInfo, XComEntry, XComRef
from leoflow_xcom.core.policies import DagPolicy
from leoflow_xcom.proxy import names
from leoflow_xcom.store.connection import translated
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.registry import PolicyStore
from leoflow_xcom.store.runs import RunRegistry

WILDCARD = "~"
# Lua numbers print in %.14g: offsets past this would reach Redis as "1e+14". No run holds
# this many entries, so a larger offset gives the same (empty) page.
_MAX_OFFSET = 2**31


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    entry: XComEntry
    run_info: RunInfo
    dag_display_name: str
    task_display_name: str


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int | None
    key: str | None
    limit: int
    offset: int


class Browser:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._reader = XComReader(client)
        self._runs = RunRegistry(client)
        self._names = names.DisplayNames(PolicyStore(client))

    def ping(self) -> None:
        with translated():
            self._client.ping()

    def page(self, q: Query) -> tuple[list[Row], int]:
        """Entries ordered by (dag_id, run_id, task_id, map_index, key), and the total count."""
        flt = ListFilter(
            task_id=None if q.task_id == WILDCARD else q.task_id,
            map_index=q.map_index,
            key=q.key,
        )
        skip, want = min(q.offset, _MAX_OFFSET), q.limit
        runs = self._matching_runs(q.dag_id, q.run_id)
        if len(runs) == 1:
            [(dag_id, run_id)] = runs
            page = self._reader.list(
                dag_id, run_id, dataclasses.replace(flt, offset=skip, limit=want)
            )
            found = [(entry, page.run_info) for entry in page.entries]
            return self._rows(found), page.total
        # Across runs, two round trips whatever their number: every run's count (limit 0),
        # then only the runs the page falls in, each asked for its part of the page.
        counted = self._reader.list_many(
            [(d, r, dataclasses.replace(flt, limit=0)) for d, r in runs]
        )
        wanted = []
        for (dag_id, run_id), count in zip(runs, counted, strict=True):
            if want <= 0:
                break
            if skip >= count.total:
                skip -= count.total
                continue
            take = min(want, count.total - skip)
            wanted.append((dag_id, run_id, dataclasses.replace(flt, offset=skip, limit=take)))
            want, skip = want - take, 0
        found = [
            (entry, page.run_info)
            for page in self._reader.list_many(wanted)
            for entry in page.entries
        ]
        return self._rows(found), sum(c.total for c in counted)

    def _rows(self, found: list[tuple[XComEntry, RunInfo]]) -> list[Row]:
        policies = self._names.snapshot() if found else {}
        return [_row(e, info, policies) for e, info in found]

    def entry(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, key: str
    ) -> tuple[Row, bytes] | None:
        found = self._reader.list(
            dag_id, run_id, ListFilter(task_id=task_id, map_index=map_index, key=key, limit=1)
        )
        if not found.entries:
            return None
        try:
            value = self._reader.fetch(dag_id, run_id, XComRef(task_id, key, map_index))
        except XComNotFoundError:
            return None  # expired between the two reads
        return _row(found.entries[0], found.run_info, self._names.snapshot()), value

    def _matching_runs(self, dag_id: str, run_id: str) -> list[tuple[str, str]]:
        if dag_id != WILDCARD and run_id != WILDCARD:
            return [(dag_id, run_id)]
        runs = self._runs.runs(None if dag_id == WILDCARD else dag_id)
        return [r for r in runs if run_id in (WILDCARD, r[1])]


def _row(entry: XComEntry, info: RunInfo, policies: dict[str, DagPolicy]) -> Row:
    return Row(
        entry=entry,
        run_info=info,
        dag_display_name=names.dag_display_name(policies, entry.dag_id),
        task_display_name=names.task_display_name(policies, entry.dag_id, entry.task_id),
    )
