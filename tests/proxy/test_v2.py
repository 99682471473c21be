"""Airflow 3 shapes at /api/v2, against the real gunicorn server and real Redis."""

from __future__ import annotations

import time

import httpx
import pytest
import redis

from leoflow_xcom.core.policies import policy_from_document
from leoflow_xcom.store.registry import PolicyStore
from tests.dag_data import TEST_DAG
from tests.fixture_types import ClientFor
from tests.proxy.data import LOGICAL_UTC_V2, RUN_AFTER_V2, push_fixture_data

BASE = "/api/v2/dags/test_dag/dagRuns/run_1/taskInstances"
ITEM_FIELDS = {
    "key",
    "timestamp",
    "logical_date",
    "map_index",
    "task_id",
    "dag_id",
    "run_id",
    "dag_display_name",
    "task_display_name",
    "run_after",
}


@pytest.fixture
def data(http: httpx.Client, client_for: ClientFor) -> httpx.Client:
    push_fixture_data(client_for)
    return http


def test_list_has_airflow_3_fields_and_no_values(data: httpx.Client) -> None:
    body = data.get(f"{BASE}/a/xcomEntries").json()
    assert body["total_entries"] == 2
    entry = body["xcom_entries"][1]
    assert set(entry) == ITEM_FIELDS
    assert entry["key"] == "typed"
    assert entry["timestamp"].endswith("Z")
    assert (entry["logical_date"], entry["run_after"]) == (LOGICAL_UTC_V2, RUN_AFTER_V2)
    assert (entry["run_id"], entry["map_index"]) == ("run_1", -1)
    # Declared in the policy without display_name: Airflow's default, the id itself.
    assert (entry["dag_display_name"], entry["task_display_name"]) == ("test_dag", "a")


def test_display_names_come_from_the_policy(data: httpx.Client, r: redis.Redis) -> None:
    named = {**TEST_DAG, "display_name": "Test DAG"}
    named["tasks"] = [
        {**t, "display_name": "Task A"} if t["task_id"] == "a" else t
        for t in TEST_DAG["tasks"]  # type: ignore[attr-defined]
    ]
    PolicyStore(r).publish([policy_from_document(named, "test")])
    entry = data.get(f"{BASE}/a/xcomEntries/typed").json()
    assert (entry["dag_display_name"], entry["task_display_name"]) == ("Test DAG", "Task A")
    PolicyStore(r).remove(["test_dag"])
    entry = data.get(f"{BASE}/a/xcomEntries/typed").json()
    # No policy declares it any more: the ids, as Airflow shows a DAG without display_name.
    assert (entry["dag_display_name"], entry["task_display_name"]) == ("test_dag", "a")


def test_run_without_dates_shows_its_first_push_as_run_after(
    data: httpx.Client, client_for: ClientFor
) -> None:
    """Airflow 3 requires run_after; a run whose tokens carried no dates shows the time of its
    first push, the same for every entry and kept when later pushes come."""
    time.sleep(0.01)  # a later push gets a later timestamp (ms)
    client_for(task_id="a", run_id="run_2").push("later", 1)
    url = "/api/v2/dags/test_dag/dagRuns/run_2/taskInstances/a/xcomEntries"
    later, first = data.get(url).json()["xcom_entries"]
    assert (first["key"], later["key"]) == ("typed", "later")
    assert later["timestamp"] > first["timestamp"]
    assert first["run_after"] == later["run_after"] == first["timestamp"]
    # Airflow 3 declares logical_date nullable: a run without one shows null, as Airflow does.
    assert first["logical_date"] is None


def test_paging_default_50_max_100_and_zero(data: httpx.Client) -> None:
    url = f"{BASE}/~/xcomEntries"
    assert len(data.get(url, params={"limit": 0}).json()["xcom_entries"]) == 0
    page = data.get(url, params={"limit": 1, "offset": 5}).json()
    assert page["total_entries"] == 6
    assert [(e["task_id"], e["map_index"]) for e in page["xcom_entries"]] == [("mapped", 2)]


def test_default_limit_and_cap_on_a_large_run(http: httpx.Client, client_for: ClientFor) -> None:
    client = client_for(task_id="b")
    for i in range(120):
        client.push(f"k{i:03d}", i)
    url = f"{BASE}/b/xcomEntries"
    assert len(http.get(url).json()["xcom_entries"]) == 50
    assert len(http.get(url, params={"limit": 500}).json()["xcom_entries"]) == 100
    assert len(http.get(url.replace("/api/v2", "/api/v1")).json()["xcom_entries"]) == 100
    last = http.get(url, params={"offset": 110, "limit": 100}).json()
    assert [e["key"] for e in last["xcom_entries"]] == [f"k{i:03d}" for i in range(110, 120)]
    assert last["total_entries"] == 120


def test_get_entry_native_by_default(data: httpx.Client) -> None:
    body = data.get(f"{BASE}/a/xcomEntries/typed").json()
    assert set(body) == ITEM_FIELDS | {"value"}
    assert body["value"] == {"rows": 3}
    assert data.get(f"{BASE}/a/xcomEntries/typed?stringify=true").json()["value"] == "{'rows': 3}"
    assert data.get(f"{BASE}/a/xcomEntries/typed?deserialize=yes").json()["value"] == {"rows": 3}
    assert data.get(f"{BASE}/a/xcomEntries/k/with/slash").json()["value"] == "slashy"
    assert data.get(f"{BASE}/b/xcomEntries/none?stringify=1").json()["value"] is None


def test_not_found_detail(data: httpx.Client) -> None:
    resp = data.get(f"{BASE}/a/xcomEntries/k/missing")
    assert resp.status_code == 404
    assert resp.json() == {"detail": "XCom entry with key: `k/missing` not found"}
    assert data.get("/api/v2/nothing").json() == {"detail": "Not Found"}


def test_bad_parameters_are_422_with_every_problem(http: httpx.Client) -> None:
    resp = http.get(f"{BASE}/a/xcomEntries?limit=ten&offset=-1&map_index=-2")
    assert resp.status_code == 422
    assert resp.json() == {
        "detail": [
            {
                "type": "int_parsing",
                "loc": ["query", "limit"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "input": "ten",
            },
            {
                "type": "greater_than_equal",
                "loc": ["query", "offset"],
                "msg": "Input should be greater than or equal to 0",
                "input": "-1",
                "ctx": {"ge": 0},
            },
            {
                "type": "greater_than_equal",
                "loc": ["query", "map_index"],
                "msg": "Input should be greater than or equal to -1",
                "input": "-2",
                "ctx": {"ge": -1},
            },
        ]
    }
    entry = http.get(f"{BASE}/a/xcomEntries/typed?stringify=maybe").json()
    assert entry["detail"][0]["type"] == "bool_parsing"
    assert entry["detail"][0]["loc"] == ["query", "stringify"]
