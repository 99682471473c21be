"""Page URLs. A page's path is its API path without `/api/v1`, so `~` works exactly as there."""

from __future__ import annotations

from urllib.parse import quote, urlencode

WILDCARD = "~"
API_V2 = "/api/v2"


def _id(text: str) -> str:
    return quote(text, safe="")  # `~` stays: quote never escapes it


def runs(dag_id: str, offset: int = 0) -> str:
    url = f"/dags/{_id(dag_id)}/dagRuns"
    return f"{url}?offset={offset}" if offset else url


def run(dag_id: str, run_id: str, offset: int = 0) -> str:
    url = f"/dags/{_id(dag_id)}/dagRuns/{_id(run_id)}"
    return f"{url}?offset={offset}" if offset else url


def entries(dag_id: str, run_id: str, task_id: str, **params: str | int | None) -> str:
    url = f"/dags/{_id(dag_id)}/dagRuns/{_id(run_id)}/taskInstances/{_id(task_id)}/xcomEntries"
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{url}?{query}" if query else url


def value(dag_id: str, run_id: str, task_id: str, map_index: int, key: str) -> str:
    url = entries(dag_id, run_id, task_id) + "/" + quote(key, safe="/")
    return f"{url}?map_index={map_index}" if map_index != -1 else url


def raw_json(dag_id: str, run_id: str, task_id: str, map_index: int, key: str) -> str:
    """The whole value from Airflow 3's API (its default answers the value as JSON)."""
    return API_V2 + value(dag_id, run_id, task_id, map_index, key)
