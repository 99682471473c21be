"""Airflow 2 shapes at /api/v1, against the real gunicorn server and real Redis."""

from __future__ import annotations

import httpx
import pytest

from tests.fixture_types import ClientFor
from tests.proxy.data import LOGICAL_UTC_V1, push_fixture_data

BASE = "/api/v1/dags/test_dag/dagRuns/run_1/taskInstances"
ITEM_FIELDS = {"key", "timestamp", "execution_date", "map_index", "task_id", "dag_id"}
DOCS = "https://airflow.apache.org/docs/apache-airflow/2.10.5/stable-rest-api-ref.html"


@pytest.fixture
def data(http: httpx.Client, client_for: ClientFor) -> httpx.Client:
    push_fixture_data(client_for)
    return http


def test_list_one_task_instance_has_airflow_2_fields_and_no_values(data: httpx.Client) -> None:
    resp = data.get(f"{BASE}/a/xcomEntries")
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"xcom_entries", "total_entries"}
    assert body["total_entries"] == 2
    assert [e["key"] for e in body["xcom_entries"]] == ["k/with/slash", "typed"]
    for entry in body["xcom_entries"]:
        assert set(entry) == ITEM_FIELDS  # no value, no run_id: as Airflow 2
        assert entry["execution_date"] == LOGICAL_UTC_V1
        assert entry["timestamp"].endswith("+00:00")
        assert (entry["map_index"], entry["task_id"], entry["dag_id"]) == (-1, "a", "test_dag")


def test_list_filters_and_wildcards(data: httpx.Client) -> None:
    def keys(url: str, **params: str | int) -> list[tuple[str, int, str]]:
        body = data.get(url, params=params).json()
        return [(e["task_id"], e["map_index"], e["key"]) for e in body["xcom_entries"]]

    assert keys(f"{BASE}/mapped/xcomEntries", map_index=1) == [("mapped", 1, "out")]
    assert keys(f"{BASE}/~/xcomEntries", map_index=2) == [("mapped", 2, "out")]
    assert keys(f"{BASE}/~/xcomEntries", xcom_key="typed") == [("a", -1, "typed")]
    assert len(keys(f"{BASE}/~/xcomEntries")) == 6
    everything = data.get("/api/v1/dags/~/dagRuns/~/taskInstances/~/xcomEntries").json()
    assert everything["total_entries"] == 7
    across = data.get("/api/v1/dags/test_dag/dagRuns/~/taskInstances/a/xcomEntries").json()
    assert [e["key"] for e in across["xcom_entries"]] == ["k/with/slash", "typed", "typed"]
    # A run whose tokens carried no logical date shows its first push time (never null:
    # Airflow 2's OpenAPI requires a string); run_2 has one XCom, so that is its timestamp.
    no_facts = across["xcom_entries"][2]
    assert no_facts["execution_date"] == no_facts["timestamp"]
    assert data.get(f"{BASE}/nope/xcomEntries").json() == {"xcom_entries": [], "total_entries": 0}


def test_paging_limit_offset_and_caps(data: httpx.Client) -> None:
    url = f"{BASE}/~/xcomEntries"
    full = [e["key"] + str(e["map_index"]) for e in data.get(url).json()["xcom_entries"]]
    page = data.get(url, params={"limit": 2, "offset": 3}).json()
    assert page["total_entries"] == 6
    assert [e["key"] + str(e["map_index"]) for e in page["xcom_entries"]] == full[3:5]
    assert data.get(url, params={"offset": 99}).json()["xcom_entries"] == []
    # Airflow 2's check_limit: 0 means the fallback (100), over the maximum gives the maximum.
    assert len(data.get(url, params={"limit": 0}).json()["xcom_entries"]) == 6
    assert len(data.get(url, params={"limit": 10_000}).json()["xcom_entries"]) == 6


def test_get_entry_value_stringified_by_default_native_on_request(data: httpx.Client) -> None:
    resp = data.get(f"{BASE}/a/xcomEntries/typed")
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == ITEM_FIELDS | {"value"}
    assert body["value"] == "{'rows': 3}"  # Airflow 2 stringify: Python str() of the value
    assert data.get(f"{BASE}/a/xcomEntries/typed?stringify=false").json()["value"] == {"rows": 3}
    native = data.get(f"{BASE}/a/xcomEntries/typed?stringify=false&deserialize=true").json()
    assert native["value"] == {"rows": 3}
    assert data.get(f"{BASE}/a/xcomEntries/k/with/slash").json()["value"] == "slashy"
    assert data.get(f"{BASE}/b/xcomEntries/none").json()["value"] is None
    mapped = data.get(f"{BASE}/mapped/xcomEntries/out?map_index=2&stringify=False").json()
    assert (mapped["map_index"], mapped["value"]) == (2, [2, "x"])


def test_not_found_is_problem_json(data: httpx.Client) -> None:
    for url in (f"{BASE}/a/xcomEntries/missing", f"{BASE}/mapped/xcomEntries/out"):
        resp = data.get(url)  # the second: map_index defaults to -1, pushed only 0..2
        assert resp.status_code == 404
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json() == {
            "detail": "XCom entry not found",
            "status": 404,
            "title": "Not Found",
            "type": f"{DOCS}#section/Errors/NotFound",
        }
    unknown = data.get("/api/v1/variables")
    assert unknown.status_code == 404
    assert unknown.json()["type"] == f"{DOCS}#section/Errors/NotFound"


@pytest.mark.parametrize(
    ("query", "detail", "title"),
    [
        ("limit=x", "Wrong type, expected 'integer' for query parameter 'limit'", "Bad Request"),
        ("offset=-1", "-1 is less than the minimum of 0 - 'offset'", "Bad Request"),
        ("map_index=1.5", "Wrong type, expected 'integer' for query parameter 'map_index'", None),
        (
            "limit=-1",
            "Page limit must be a positive integer",
            "Page limit must be a positive integer",
        ),
    ],
)
def test_list_bad_parameters_are_400(
    http: httpx.Client, query: str, detail: str, title: str | None
) -> None:
    resp = http.get(f"{BASE}/a/xcomEntries?{query}")
    assert resp.status_code == 400
    body = resp.json()
    assert body["detail"] == detail
    assert body["title"] == (title or "Bad Request")
    assert (body["status"], body["type"]) == (400, f"{DOCS}#section/Errors/BadRequest")


@pytest.mark.parametrize("query", ["stringify=yes", "deserialize=1", "map_index=a"])
def test_entry_bad_parameters_are_400(http: httpx.Client, query: str) -> None:
    resp = http.get(f"{BASE}/a/xcomEntries/typed?{query}")
    assert resp.status_code == 400
    assert resp.json()["detail"].startswith("Wrong type, expected ")
