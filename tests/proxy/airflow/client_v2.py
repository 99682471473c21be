"""Driven by tests/proxy/airflow/test_airflow_clients.py, run by the python of a virtualenv holding
apache-airflow-client 3.3.2 (Airflow 3's generated client) and requests, never by the suite's.

It logs in as the client's README shows: `POST {host}/auth/token` with the username and
password (201 expected), then `Configuration(host=host, access_token=...)`.

stdin: {"url", "username", "password", "calls": [{"op": <XComApi method>, "kwargs": {...}}]}
stdout: {"login": {"status", "body"}, "results": [{"ok": {...}} | {"error": {...}}]}
"""

from __future__ import annotations

import json
import sys
from typing import Any

import airflow_client.client  # type: ignore[import-not-found]
import requests


def get_access_token(host: str, username: str, password: str) -> requests.Response:
    return requests.post(
        f"{host}/auth/token",
        json={"username": username, "password": password},
        headers={"Content-Type": "application/json"},
        timeout=10,
    )


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def main() -> None:
    request = json.load(sys.stdin)
    host = request["url"]
    login = get_access_token(host, request["username"], request["password"])
    out: dict[str, Any] = {"login": {"status": login.status_code, "body": login.json()}}
    results: list[dict[str, Any]] = []
    if login.status_code == 201:
        configuration = airflow_client.client.Configuration(
            host=host, access_token=login.json()["access_token"]
        )
        with airflow_client.client.ApiClient(configuration) as api_client:
            api = airflow_client.client.XComApi(api_client)
            for call in request["calls"]:
                method = getattr(api, call["op"])
                try:
                    model = method(**call["kwargs"])
                    results.append({"ok": json.loads(json.dumps(model.to_dict(), default=_plain))})
                except airflow_client.client.ApiException as exc:
                    results.append({"error": {"status": exc.status, "body": exc.body}})
                except Exception as exc:  # pydantic refusing a body: the contract is broken
                    results.append({"error": {"type": type(exc).__name__, "message": str(exc)}})
    out["results"] = results
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
