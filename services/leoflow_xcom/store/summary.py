"""Per-run summaries for the XCom browser: counts, bytes and push times of live XComs.

One `no-writes` script call per run, all runs of a request pipelined into one round trip, so a
read-only ACL user may run it and no value is ever read.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

import redis
import redis.exceptions

from leoflow_xcom.core import keys
from leoflow_xcom.core.model import RunInfo
from leoflow_xcom.store import scripts
from leoflow_xcom.store.connection import translated
from leoflow_xcom.store.reader import run_info_from

_SHA = hashlib.sha1(scripts.RUN_SUMMARY.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class RunSummary:
    dag_id: str
    run_id: str
    xcoms: int
    bytes: int
    first_pushed_ms: int | None  # None when every XCom of the run has expired
    last_pushed_ms: int | None
    run_info: RunInfo


def summarize(client: redis.Redis, runs: Sequence[tuple[str, str]]) -> list[RunSummary]:
    """Summaries of `runs`, in the order given; one round trip for all of them."""
    if not runs:
        return []
    with translated():
        try:
            replies = _run_all(client, runs)
        except redis.exceptions.NoScriptError:
            # Redis restarted or flushed its script cache: load once, run again.
            client.script_load(scripts.RUN_SUMMARY)
            replies = _run_all(client, runs)
    return [_summary(dag, run, reply) for (dag, run), reply in zip(runs, replies, strict=True)]


def _run_all(client: redis.Redis, runs: Sequence[tuple[str, str]]) -> list[Any]:
    with client.pipeline(transaction=False) as pipe:
        for dag_id, run_id in runs:
            pipe.evalsha_ro(_SHA, 1, keys.run_keys(dag_id, run_id).meta)
        return pipe.execute()


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
