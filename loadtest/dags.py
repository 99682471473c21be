"""Realistic DAG runs from config/dags: who pushes what, who fetches what, which tasks are mapped.

Each task, in dependency order, first fetches its upstreams' outputs at the moment of use
(lazily; a mapped upstream's outputs in one batch over all map indexes), then pushes its own:
the keys its schema declares (valid documents) and a `return_value` from the payload mix.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Where the policies are: LEOFLOW_LOADTEST_DAGS if set, else the checkout's config/dags, else
# where the project image keeps them (the Locust image is built on it).
IMAGE_DAGS = Path("/etc/leoflow/dags")

# Payload mix for `return_value`: mostly small, some up to 64 KB (bytes of encoded JSON).
PAYLOAD_SIZES = (100, 1_000, 4_000, 16_000, 64_000)
PAYLOAD_WEIGHTS = (40, 30, 15, 10, 5)
# The example DAGs do not say which tasks are mapped; these are, in the runs we simulate.
MAPPED = {("fanout_files", "process_file"): 8}


def _valid(dag_id: str, task_id: str, key: str) -> Any:
    """A document that satisfies the example DAGs' declared schemas."""
    docs: dict[tuple[str, str, str], Any] = {
        ("etl_daily", "extract", "output"): {"rows": 1200, "uri": "s3://bucket/extract.parquet"},
        ("etl_daily", "transform", "stats"): {"kept": 1100, "dropped": 100},
        ("fanout_files", "list_files", "files"): [f"s3://in/file-{i}.csv" for i in range(8)],
        ("fanout_files", "process_file", "result"): {"file": "s3://in/file.csv", "bytes": 4096},
        ("ml_training", "train", "model"): {"uri": "s3://models/42", "params": {"lr": 0.01}},
        ("ml_training", "evaluate", "metrics"): {"accuracy": 0.93, "f1": 0.91},
    }
    return docs[(dag_id, task_id, key)]


def padded(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    head = b'{"pad":"'
    return head + b"x" * max(size - len(head) - 2, 0) + b'"}'


@dataclasses.dataclass(frozen=True)
class Task:
    task_id: str
    depends_on: tuple[str, ...]
    schema_keys: tuple[str, ...]
    map_count: int  # 0: unmapped


@dataclasses.dataclass(frozen=True)
class Dag:
    dag_id: str
    tasks: tuple[Task, ...]  # in dependency order

    def task(self, task_id: str) -> Task:
        return next(t for t in self.tasks if t.task_id == task_id)

    def output(self, task: Task, key: str, rng: random.Random) -> bytes:
        if key == "return_value":
            size = rng.choices(PAYLOAD_SIZES, PAYLOAD_WEIGHTS)[0]
            return padded(size)
        return json.dumps(_valid(self.dag_id, task.task_id, key)).encode()


def policies_dir() -> Path:
    given = os.environ.get("LEOFLOW_LOADTEST_DAGS")
    candidates = [Path(given)] if given else [ROOT / "config" / "dags", IMAGE_DAGS]
    for candidate in candidates:
        if any(candidate.glob("*.json")):
            return candidate
    raise SystemExit(
        f"loadtest: no DAG policies (*.json) in {' or '.join(map(str, candidates))}; set "
        "LEOFLOW_LOADTEST_DAGS to the directory the service's policies were applied from"
    )


@dataclasses.dataclass(frozen=True)
class Fetch:
    task_id: str
    key: str


@dataclasses.dataclass(frozen=True)
class FetchMany:
    """Fan-in: one key of every map index of a mapped upstream, in one call."""

    task_id: str
    key: str


@dataclasses.dataclass(frozen=True)
class Push:
    key: str
    value: bytes


Op = Fetch | FetchMany | Push


@dataclasses.dataclass(frozen=True)
class TaskInstance:
    task_id: str
    map_index: int
    ops: tuple[Op, ...]


def plan(dag: Dag, rng: random.Random) -> list[TaskInstance]:
    """One run of `dag`: each task instance, in dependency order, fetches its upstreams'
    outputs at the moment of use (a mapped upstream's in one batch), then pushes its own."""
    out = []
    for t in dag.tasks:
        for map_index in range(t.map_count) if t.map_count else (-1,):
            ops: list[Op] = []
            for upstream_id in t.depends_on:
                upstream = dag.task(upstream_id)
                if upstream.map_count:
                    ops.append(FetchMany(upstream_id, "return_value"))
                    continue
                keys = (*upstream.schema_keys, "return_value")
                ops.extend(Fetch(upstream_id, key) for key in keys)
            own = (*t.schema_keys, "return_value")
            ops.extend(Push(key, dag.output(t, key, rng)) for key in own)
            out.append(TaskInstance(t.task_id, map_index, tuple(ops)))
    return out


def load() -> list[Dag]:
    dags = []
    for path in sorted(policies_dir().glob("*.json")):
        doc = json.loads(path.read_text())
        tasks = [
            Task(
                t["task_id"],
                tuple(t.get("depends_on", ())),
                tuple(sorted(t.get("xcom_schema", {}))),
                MAPPED.get((doc["dag_id"], t["task_id"]), 0),
            )
            for t in doc["tasks"]
        ]
        dags.append(Dag(doc["dag_id"], tuple(_ordered(tasks))))
    return dags


def _ordered(tasks: list[Task]) -> list[Task]:
    done: set[str] = set()
    out: list[Task] = []
    pending = list(tasks)
    while pending:
        ready = [t for t in pending if set(t.depends_on) <= done]
        if not ready:
            raise ValueError("dependency cycle")
        for t in ready:
            out.append(t)
            done.add(t.task_id)
            pending.remove(t)
    return out
