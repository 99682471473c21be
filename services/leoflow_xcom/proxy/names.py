"""Display names from the DAG policies, reloaded only when the policy revision moves."""

from __future__ import annotations

import threading

from leoflow_xcom.core.policies import DagPolicy
from leoflow_xcom.store.registry import PolicyStore


class DisplayNames:
    """Airflow's rule: a DAG's or task's display name is its `display_name`, else its id. A DAG
    or task no policy declares (any more) has no display name: its id, as Airflow shows it."""

    def __init__(self, store: PolicyStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._revision = -1
        self._policies: dict[str, DagPolicy] = {}

    def snapshot(self) -> dict[str, DagPolicy]:
        """The current policies: one GET per request, a reload only after `dags apply`."""
        revision = self._store.revision()
        with self._lock:
            if revision != self._revision:
                self._revision, self._policies = self._store.load()
            return self._policies


def dag_display_name(policies: dict[str, DagPolicy], dag_id: str) -> str:
    policy = policies.get(dag_id)
    return (policy.display_name if policy is not None else None) or dag_id


def task_display_name(policies: dict[str, DagPolicy], dag_id: str, task_id: str) -> str:
    policy = policies.get(dag_id)
    task = policy.task(task_id) if policy is not None else None
    return (task.display_name if task is not None else None) or task_id
