"""Shared helpers for the tenant attack tests: a fresh Redis and a real `serve` per test, the
figures each test prints, and memory readings of both processes."""

from __future__ import annotations

from pathlib import Path

import redis

from leoflow_xcom.core.policies import policy_from_document
from leoflow_xcom.store.registry import PolicyStore

FIGURES: list[str] = []

QUOTA_DAG = {
    "dag_id": "quota_dag",
    "xcom_ttl": 3600,
    "xcom_quota": {"run_count": 12, "task_instance_count": 5, "task_instance_bytes": 4096},
    "tasks": [{"task_id": "t1"}, {"task_id": "t2"}, {"task_id": "t3"}, {"task_id": "t4"}],
}
OPEN_DAG = {
    "dag_id": "open_dag",
    "xcom_ttl": 3600,
    "tasks": [
        {"task_id": "big"},
        {"task_id": "mapped"},
        {"task_id": "reader", "depends_on": ["big", "mapped"]},
    ],
}


def figure(line: str) -> None:
    print(line, flush=True)
    FIGURES.append(line)


def publish(client: redis.Redis, *docs: dict[str, object]) -> None:
    PolicyStore(client).publish([policy_from_document(d, "tests") for d in docs])


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def redis_peak(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory_peak"])
