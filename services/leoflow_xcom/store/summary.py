"""Per-run summaries for the XCom browser: counts, bytes and push times of live XComs.

One `no-writes` script call per run, all runs of a request pipelined into one round trip, so a
read-only ACL user may run it and no value is ever read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from leoflow_xcom.core import keys
from leoflow_xcom.core.model import RunInfo
from leoflow_xcom.store import scripts
from leoflow_xcom.store.connection import StoreClient, translated
from leoflow_xcom.store.reader import ReadOnlyScript, run_info_from


@dataclasses.dataclass(frozen=True, slots=True)
class RunSummary:
    dag_id: str
    run_id: str
    xcoms: int
    bytes: int
    first_pushed_ms: int | None  # None when every XCom of the run has expired
    last_pushed_ms: int | None
    run_info: RunInfo


class RunSummaries:
    def __init__(self, client: StoreClient) -> None:
        self._script = ReadOnlyScript(client, scripts.RUN_SUMMARY)

    def __call__(self, runs: Sequence[tuple[str, str]]) -> list[RunSummary]:
        """Summaries of `runs`, in the order given; one round trip for all of them."""
        if not runs:
            return []
        no_args: list[str | int] = []
        calls = [([keys.run_keys(dag, run).meta], no_args) for dag, run in runs]
        with translated():
            replies = self._script.many(calls)
        return [_summary(dag, run, reply) for (dag, run), reply in zip(runs, replies, strict=True)]


def _summary(dag_id: str, run_id: str, reply: list[Any]) -> RunSummary:
    count, size, first, last, info = reply
    return RunSummary(
        dag_id=dag_id,
        run_id=run_id,
        xcoms=int(count),
        bytes=int(size),
        first_pushed_ms=int(first) if int(first) >= 0 else None,
        last_pushed_ms=int(last) if int(last) >= 0 else None,
        run_info=run_info_from(info),
    )
