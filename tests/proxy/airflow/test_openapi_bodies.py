"""Every status the proxy answers on Airflow's paths, checked against the OpenAPI documents
Airflow ships in its wheels (the `http` fixture checks every other proxy test's bodies too)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import jsonschema
import pytest

from tests.fixture_types import ClientFor
from tests.proxy.airflow import spec
from tests.proxy.conftest import Proxy
from tests.proxy.data import push_fixture_data

ENTRIES = "/api/{gen}/dags/test_dag/dagRuns/run_1/taskInstances/a/xcomEntries"


@pytest.fixture
def checked(proxy: Proxy, http: httpx.Client, client_for: ClientFor) -> Iterator[httpx.Client]:
    """Unauthenticated, with the same Airflow OpenAPI check on every response."""
    push_fixture_data(client_for)
    hooks = {"response": [spec.check_response]}
    with httpx.Client(base_url=proxy.url, timeout=10, event_hooks=hooks) as client:
        yield client


def test_every_status_matches_airflows_documents(proxy: Proxy, checked: httpx.Client) -> None:
    auth = proxy.basic
    login = {"username": proxy.user, "password": proxy.password}
    seen: dict[str, set[int]] = {"v1": set(), "v2": set(), "auth": set()}
    for gen in ("v1", "v2"):
        url = ENTRIES.format(gen=gen)
        for resp in (
            checked.get(url, headers=auth),
            checked.get(f"{url}/k/with/slash", headers=auth, params={"stringify": "false"}),
            checked.get(f"{url}/typed", headers=auth),
            checked.get(url.replace("run_1", "~").replace("/a/", "/~/"), headers=auth),
            checked.get(url, headers=auth, params={"limit": "-1"}),  # v1 400, v2 422
            checked.get(url, params={"offset": "x"}, headers=auth),
            checked.get(url),  # 401
            checked.get(f"{url}/missing", headers=auth),  # 404
            checked.delete(f"{url}/typed", headers=auth),  # 405
        ):
            seen[gen].add(resp.status_code)
    for resp in (
        checked.post("/auth/token", json=login),
        checked.post("/auth/token", json={**login, "password": "wrong"}),
        checked.post("/auth/token", json={**login, "password": ""}),
        checked.post("/auth/token", json={"username": "x"}),
        checked.post("/auth/token", content=b"x", headers={"Content-Type": "text/plain"}),
        checked.post("/auth/token", json={**login, "password": "x" * 20_000}),
        checked.put("/auth/token", json=login),
        checked.get("/auth/token"),
    ):
        seen["auth"].add(resp.status_code)
    token = checked.post("/auth/token", json=login).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert checked.get(ENTRIES.format(gen="v2"), headers=bearer).status_code == 200
    assert seen == {
        "v1": {200, 400, 401, 404, 405},
        "v2": {200, 401, 404, 405, 422},
        "auth": {201, 400, 401, 403, 405, 413, 415, 422},
    }


def test_the_check_refuses_what_airflows_clients_refuse() -> None:
    """The documents really hold the contract: a null where a value is required fails."""
    v1_item = {
        "key": "k",
        "timestamp": "2026-05-21T08:00:00+00:00",
        "execution_date": None,
        "map_index": -1,
        "task_id": "t",
        "dag_id": "d",
    }
    v2_item = {
        **{k: v for k, v in v1_item.items() if k != "execution_date"},
        "timestamp": "2026-05-21T08:00:00Z",
        "logical_date": None,  # nullable in Airflow 3: allowed
        "run_id": "r",
        "dag_display_name": "d",
        "task_display_name": "t",
        "run_after": None,
    }
    path = "/dags/d/dagRuns/r/taskInstances/t/xcomEntries"
    with pytest.raises(jsonschema.ValidationError, match="None is not of type 'string'"):
        spec.v1().check("GET", f"/api/v1{path}", 200, {"xcom_entries": [v1_item]})
    with pytest.raises(jsonschema.ValidationError, match="None is not of type 'string'"):
        spec.v2().check("GET", f"/api/v2{path}", 200, {"xcom_entries": [v2_item]})
    v2_item["run_after"] = "2026-05-21T08:00:00"  # no offset: not an RFC 3339 date-time
    with pytest.raises(jsonschema.ValidationError, match="is not a 'date-time'"):
        spec.v2().check("GET", f"/api/v2{path}", 200, {"xcom_entries": [v2_item]})
    v2_item["run_after"] = "2026-05-21T08:00:00Z"
    spec.v2().check("GET", f"/api/v2{path}", 200, {"xcom_entries": [v2_item], "total_entries": 1})
