"""Everything the browser pages read, behind one small interface.

Runs are found in the time-ordered run indexes and ordered newest first here, after one
pipelined summary call per run: O(runs) per overview page, because the overview shows each
DAG's totals. A runs page without totals could read one page of the index instead; only this
module would change.
"""

from __future__ import annotations

import codecs
import dataclasses
import itertools
from typing import Any

from leoflow_xcom.core import authz, limits
from leoflow_xcom.core.errors import XComNotFoundError
from leoflow_xcom.core.model import ListFilter, RunInfo, XComEntry, XComRef
from leoflow_xcom.core.policies import DagPolicy
from leoflow_xcom.proxy.names import DisplayNames
from leoflow_xcom.store.connection import StoreClient
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.registry import PolicyStore
from leoflow_xcom.store.runs import RunRegistry
from leoflow_xcom.store.summary import RunSummaries, RunSummary


@dataclasses.dataclass(frozen=True, slots=True)
class DagOverview:
    dag_id: str
    policy: DagPolicy | None
    runs: int
    xcoms: int
    bytes: int
    newest: list[RunSummary]  # one page, newest first


@dataclasses.dataclass(frozen=True, slots=True)
class TaskGroup:
    """One task's XComs in a run; a mapped task's map indexes stay together."""

    task_id: str
    entries: list[XComEntry]
    readers: list[str]
    schema_keys: frozenset[str]

    @property
    def map_indexes(self) -> list[int]:
        return sorted({e.map_index for e in self.entries if e.map_index >= 0})

    @property
    def bytes(self) -> int:
        return sum(e.size_bytes for e in self.entries)


@dataclasses.dataclass(frozen=True, slots=True)
class RunView:
    summary: RunSummary
    policy: DagPolicy | None
    tasks: list[TaskGroup]
    total: int  # XComs in the run; `tasks` hold one page of them


@dataclasses.dataclass(frozen=True, slots=True)
class ValueView:
    entry: XComEntry
    run_info: RunInfo
    policy: DagPolicy | None
    text: str  # the value as pushed, or its first display-cap bytes
    truncated: bool
    schema: dict[str, Any] | None
    readers: list[str]


def _newest_first(summaries: list[RunSummary]) -> list[RunSummary]:
    # By the run's first live push, newest first; run id breaks ties (and orders equal times).
    return sorted(summaries, key=lambda s: (s.first_pushed_ms or 0, s.run_id), reverse=True)


def _utf8_prefix(head: bytes) -> str:
    """The text of a byte prefix, without the character the cut may have split."""
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(head, final=False)


class Catalog:
    def __init__(self, client: StoreClient) -> None:
        self._client = client
        self._reader = XComReader(client)
        self._runs = RunRegistry(client)
        self._policies = DisplayNames(PolicyStore(client))
        self._summarize = RunSummaries(client)

    def policy(self, dag_id: str) -> DagPolicy | None:
        return self._policies.snapshot().get(dag_id)

    def _summaries(self, dag_id: str | None) -> list[RunSummary]:
        found = self._summarize(self._runs.live(dag_id))
        return [s for s in found if s.xcoms]

    def dags(self, newest: int) -> list[DagOverview]:
        """Every DAG with live XComs, by dag_id, with its `newest` most recent runs."""
        policies = self._policies.snapshot()
        overviews = []
        summaries = sorted(self._summaries(None), key=lambda s: s.dag_id)
        by_dag = itertools.groupby(summaries, key=lambda s: s.dag_id)
        for dag_id, group in by_dag:
            runs = list(group)
            overviews.append(
                DagOverview(
                    dag_id=dag_id,
                    policy=policies.get(dag_id),
                    runs=len(runs),
                    xcoms=sum(s.xcoms for s in runs),
                    bytes=sum(s.bytes for s in runs),
                    newest=_newest_first(runs)[:newest],
                )
            )
        return overviews

    def runs(self, dag_id: str, offset: int, limit: int) -> DagOverview:
        """One DAG's totals and one page of its runs, newest first."""
        runs = self._summaries(dag_id)
        return DagOverview(
            dag_id=dag_id,
            policy=self.policy(dag_id),
            runs=len(runs),
            xcoms=sum(s.xcoms for s in runs),
            bytes=sum(s.bytes for s in runs),
            newest=_newest_first(runs)[offset : offset + limit],
        )

    def run(self, dag_id: str, run_id: str, offset: int, limit: int) -> RunView | None:
        page = self._reader.list(dag_id, run_id, ListFilter(offset=offset, limit=limit))
        if not page.total:
            return None
        policy = self.policy(dag_id)
        tasks = []
        for task_id, entries in itertools.groupby(page.entries, key=lambda e: e.task_id):
            task = policy.task(task_id) if policy is not None else None
            tasks.append(
                TaskGroup(
                    task_id=task_id,
                    entries=list(entries),
                    readers=authz.readers_of(policy, task_id) if policy is not None else [],
                    schema_keys=frozenset(task.xcom_schema) if task is not None else frozenset(),
                )
            )
        [summary] = self._summarize([(dag_id, run_id)])
        return RunView(summary=summary, policy=policy, tasks=tasks, total=page.total)

    def value(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, key: str
    ) -> ValueView | None:
        found = self._reader.list(
            dag_id, run_id, ListFilter(task_id=task_id, map_index=map_index, key=key, limit=1)
        )
        if not found.entries:
            return None
        cap = limits.UI_VALUE_DISPLAY_BYTES
        try:
            head, size = self._reader.fetch_head(
                dag_id, run_id, XComRef(task_id, key, map_index), cap
            )
        except XComNotFoundError:
            return None  # expired between the two reads
        policy = self.policy(dag_id)
        task = policy.task(task_id) if policy is not None else None
        return ValueView(
            entry=dataclasses.replace(found.entries[0], size_bytes=size),
            run_info=found.run_info,
            policy=policy,
            text=_utf8_prefix(head) if size > cap else head.decode("utf-8", errors="replace"),
            truncated=size > cap,
            schema=task.xcom_schema.get(key) if task is not None else None,
            readers=authz.readers_of(policy, task_id) if policy is not None else [],
        )
