"""Display names from the DAG policies, reloaded only when the policy revision moves."""

from __future__ import annotations

import threading

from leoflow_xcom.core.policies import DagPolicy
from leoflow_xcom.store.registry import PolicyStore


class DisplayNames:
    """Airflow's rule: a DAG's or task's display name is its `display_name`, else its id. We
    apply it only to DAGs and tasks the policies declare; for anything else the name is unknown
    and shown as null rather than invented."""

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


def dag_display_name(policies: dict[str, DagPolicy], dag_id: str) -> str | None:
    policy = policies.get(dag_id)
    if policy is None:
        return None
    return policy.display_name or dag_id


def task_display_name(policies: dict[str, DagPolicy], dag_id: str, task_id: str) -> str | None:
    policy = policies.get(dag_id)
    task = policy.task(task_id) if policy is not None else None
    if task is None:
        return None
    return task.display_name or task_id
