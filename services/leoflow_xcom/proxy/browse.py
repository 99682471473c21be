"""What both API generations ask of the store: a page of entries, one entry with its value.

Paging happens in Redis: one run costs one listing script call, O(page) on the indexed fast
path. A `~` dag_id or dag_run_id walks the live runs from the time-ordered run index (oldest
newest-value first), asking each run for its count and the part of the page that falls in it,
and stops once the page is full: the cost depends on the page and the offset, not on how many
runs exist. `total_entries` then counts the runs visited, plus one when runs remain unvisited
(a client paging until `offset >= total_entries` still reaches every entry; the last page
reports the exact total).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from leoflow_xcom.core.errors import XComNotFoundError
from leoflow_xcom.core.model import ListFilter, RunInfo, XComEntry, XComRef
from leoflow_xcom.core.policies import DagPolicy
from leoflow_xcom.proxy import names
from leoflow_xcom.store.connection import StoreClient, translated
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.registry import PolicyStore
from leoflow_xcom.store.runs import RunRegistry

WILDCARD = "~"
# Lua numbers print in %.14g: offsets past this would reach Redis as "1e+14". No run holds
# this many entries, so a larger offset gives the same (empty) page.
_MAX_OFFSET = 2**31
# Runs read from the run index per round trip while walking a `~` listing.
_RUN_CHUNK = 64


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
    def __init__(self, client: StoreClient) -> None:
        self._client = client
        self._reader = XComReader(client)
        self._runs = RunRegistry(client)
        self._names = names.DisplayNames(PolicyStore(client))

    def ping(self) -> None:
        with translated():
            self._client.ping()

    def page(self, q: Query) -> tuple[list[Row], int]:
        """Entries ordered by run (oldest first), then (task_id, map_index, key), and the total
        count (see the module docstring for `~` runs)."""
        flt = ListFilter(
            task_id=None if q.task_id == WILDCARD else q.task_id,
            map_index=q.map_index,
            key=q.key,
        )
        skip, want = min(q.offset, _MAX_OFFSET), q.limit
        rows: list[tuple[XComEntry, RunInfo]] = []
        total = 0
        runs = self._matching_runs(q.dag_id, q.run_id)
        for dag_id, run_id in runs:
            page = self._reader.list(
                dag_id, run_id, dataclasses.replace(flt, offset=skip, limit=max(want, 1))
            )
            total += page.total
            taken = page.entries[:want]
            rows += [(entry, page.run_info) for entry in taken]
            want -= len(taken)
            skip = max(0, skip - page.total)
            if want == 0:
                break  # the page is full: later runs are not read
        else:
            return self._rows(rows), total  # every run visited: the exact total
        if next(runs, None) is not None:
            total += 1  # runs not visited may hold more: say so without counting them
        return self._rows(rows), total

    def _rows(self, rows: list[tuple[XComEntry, RunInfo]]) -> list[Row]:
        policies = self._names.snapshot() if rows else {}
        return [_row(e, info, policies) for e, info in rows]

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

    def _matching_runs(self, dag_id: str, run_id: str) -> Iterator[tuple[str, str]]:
        """The runs a listing covers, read from the run index a chunk at a time, lazily."""
        if dag_id != WILDCARD and run_id != WILDCARD:
            yield dag_id, run_id
            return
        offset = 0
        while True:
            chunk = self._runs.page(None if dag_id == WILDCARD else dag_id, offset, _RUN_CHUNK)
            for run in chunk:
                if run_id in (WILDCARD, run[1]):
                    yield run
            if len(chunk) < _RUN_CHUNK:
                return
            offset += len(chunk)


def _row(entry: XComEntry, info: RunInfo, policies: dict[str, DagPolicy]) -> Row:
    return Row(
        entry=entry,
        run_info=info,
        dag_display_name=names.dag_display_name(policies, entry.dag_id),
        task_display_name=names.task_display_name(policies, entry.dag_id, entry.task_id),
    )
