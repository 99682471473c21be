"""Driven by tests/proxy/airflow/test_airflow_clients.py, run by the python of a virtualenv holding
apache-airflow-client 2.10.0 (Airflow 2's generated client), never by the suite's own.

stdin: {"url", "username", "password", "calls": [{"op": <XComApi method>, "kwargs": {...}}]}
stdout: one result per call: {"ok": <the client's model as a dict>} or {"error": {...}}
The client checks each body against the types of Airflow's OpenAPI as it deserializes it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import airflow_client.client as client  # type: ignore[import-not-found]
from airflow_client.client.api import x_com_api  # type: ignore[import-not-found]


def main() -> None:
    request = json.load(sys.stdin)
    configuration = client.Configuration(
        host=f"{request['url']}/api/v1",
        username=request["username"],
        password=request["password"],
    )
    results: list[dict[str, Any]] = []
    with client.ApiClient(configuration) as api_client:
        api = x_com_api.XComApi(api_client)
        for call in request["calls"]:
            method = getattr(api, call["op"])
            try:
                results.append({"ok": method(**call["kwargs"]).to_dict()})
            except client.ApiException as exc:
                body = exc.body.decode() if isinstance(exc.body, bytes) else exc.body
                results.append({"error": {"status": exc.status, "body": body}})
            except Exception as exc:  # the client's own type checks: the proxy broke the contract
                results.append({"error": {"type": type(exc).__name__, "message": str(exc)}})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
