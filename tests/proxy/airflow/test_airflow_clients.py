"""Airflow's own generated REST clients read the proxy unchanged: apache-airflow-client 2.10.0
against /api/v1 and 3.3.2 against /api/v2 (logging in through /auth/token as its README shows),
each in its own virtualenv, against the real proxy (gunicorn) over real Redis, with values
pushed through the real gRPC service. The clients type-check every body as they read it."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixture_types import ClientFor
from tests.proxy.airflow import cache
from tests.proxy.conftest import Proxy
from tests.proxy.data import LOGICAL_UTC_V1, LOGICAL_UTC_V2, RUN_AFTER_V2, push_fixture_data

HERE = Path(__file__).parent
RUN_1 = {"dag_id": "test_dag", "dag_run_id": "run_1"}
RUN_2 = {"dag_id": "test_dag", "dag_run_id": "run_2"}
ALL = {"dag_id": "~", "dag_run_id": "~", "task_id": "~"}
TASK_A_ALL_RUNS = {"dag_id": "test_dag", "dag_run_id": "~", "task_id": "a"}
MAPPED_OUT = {**RUN_1, "task_id": "mapped", "xcom_key": "out"}
# Building a client's virtualenv the first time takes a while on a busy machine.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def python_v1() -> Path:
    return cache.client_python("v1")


@pytest.fixture(scope="module")
def python_v2() -> Path:
    return cache.client_python("v2")


def drive(python: Path, script: str, proxy: Proxy, calls: list[dict[str, Any]], **over: str) -> Any:
    request = {"url": proxy.url, "username": proxy.user, "password": proxy.password, **over}
    done = subprocess.run(
        [str(python), str(HERE / script)],
        input=json.dumps({**request, "calls": calls}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def call(op: str, **kwargs: Any) -> dict[str, Any]:
    return {"op": op, "kwargs": kwargs}


@pytest.fixture
def pushed(http: httpx.Client, client_for: ClientFor) -> None:
    """run_1 (token with logical date and run_after): a/typed, a/"k/with/slash", b/none (JSON
    null), mapped[0..2]/out; run_2 (token without dates): a/typed."""
    push_fixture_data(client_for)


def moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def ok(result: dict[str, Any]) -> Any:
    assert "ok" in result, result
    return result["ok"]


def test_airflow_2_client_reads_v1(pushed: None, proxy: Proxy, python_v1: Path) -> None:
    results = drive(
        python_v1,
        "client_v1.py",
        proxy,
        [
            call("get_xcom_entries", **RUN_1, task_id="a"),
            call("get_xcom_entries", **ALL),
            call("get_xcom_entries", **ALL, xcom_key="typed"),
            call("get_xcom_entries", **RUN_1, task_id="mapped", map_index=1),
            call(
                "get_xcom_entries",
                dag_id="test_dag",
                dag_run_id="~",
                task_id="a",
                limit=2,
                offset=1,
            ),
            call("get_xcom_entry", **RUN_1, task_id="a", xcom_key="k/with/slash"),
            call(
                "get_xcom_entry",
                **RUN_1,
                task_id="mapped",
                xcom_key="out",
                map_index=2,
                stringify=False,
            ),
            call("get_xcom_entry", **RUN_1, task_id="a", xcom_key="typed"),
            call("get_xcom_entry", **RUN_2, task_id="a", xcom_key="typed", stringify=False),
            call("get_xcom_entry", **RUN_1, task_id="b", xcom_key="none", stringify=False),
            call("get_xcom_entry", **RUN_1, task_id="a", xcom_key="missing"),
        ],
    )
    one_task, everything, typed, mapped, paged = (ok(r) for r in results[:5])
    assert [e["key"] for e in one_task["xcom_entries"]] == ["k/with/slash", "typed"]
    assert {e["execution_date"] for e in one_task["xcom_entries"]} == {LOGICAL_UTC_V1}
    assert everything["total_entries"] == 7 and len(everything["xcom_entries"]) == 7
    assert [(e["dag_id"], e["key"]) for e in typed["xcom_entries"]] == [("test_dag", "typed")] * 2
    assert [(e["task_id"], e["map_index"]) for e in mapped["xcom_entries"]] == [("mapped", 1)]
    assert paged["total_entries"] == 3 and [e["key"] for e in paged["xcom_entries"]] == [
        "typed",
        "typed",
    ]
    # run_2's token carried no dates: its first push time, never null.
    no_dates = paged["xcom_entries"][1]
    assert no_dates["execution_date"] == no_dates["timestamp"]

    slash, mapped_2, stringified, native, null, missing = results[5:]
    assert ok(slash)["value"] == "slashy"
    assert (ok(mapped_2)["map_index"], ok(mapped_2)["value"]) == (2, [2, "x"])
    assert ok(stringified)["value"] == "{'rows': 3}"  # Airflow 2's default: str() of the value
    assert ok(native)["value"] == {"rows": 7}
    assert ok(native)["execution_date"] == ok(native)["timestamp"]
    assert ok(null)["value"] is None
    assert missing["error"]["status"] == 404
    assert json.loads(missing["error"]["body"])["detail"] == "XCom entry not found"


def test_airflow_3_client_logs_in_and_reads_v2(pushed: None, proxy: Proxy, python_v2: Path) -> None:
    out = drive(
        python_v2,
        "client_v2.py",
        proxy,
        [
            call("get_xcom_entries", **RUN_1, task_id="a"),
            call("get_xcom_entries", **ALL),
            call("get_xcom_entries", **ALL, xcom_key="typed"),
            call("get_xcom_entries", **RUN_1, task_id="mapped", map_index=1),
            call("get_xcom_entries", **RUN_2, task_id="~"),
            call("get_xcom_entry", **RUN_1, task_id="a", xcom_key="k/with/slash"),
            call("get_xcom_entry", **MAPPED_OUT, map_index=2),
            call("get_xcom_entry", **RUN_1, task_id="a", xcom_key="typed", stringify=True),
            call("get_xcom_entry", **RUN_2, task_id="a", xcom_key="typed"),
            call("get_xcom_entry", **RUN_1, task_id="b", xcom_key="none"),
            call("get_xcom_entry", **RUN_1, task_id="a", xcom_key="missing"),
        ],
    )
    assert out["login"]["status"] == 201
    results = out["results"]
    one_task, everything, typed, mapped, run_2 = (ok(r) for r in results[:5])
    first = one_task["xcom_entries"][0]
    assert (first["key"], first["run_id"]) == ("k/with/slash", "run_1")
    # The client parsed them into datetimes (printed back with isoformat()).
    assert (moment(first["logical_date"]), moment(first["run_after"])) == (
        moment(LOGICAL_UTC_V2),
        moment(RUN_AFTER_V2),
    )
    assert (first["dag_display_name"], first["task_display_name"]) == ("test_dag", "a")
    assert everything["total_entries"] == 7
    assert [e["run_id"] for e in typed["xcom_entries"]] == ["run_1", "run_2"]
    assert [(e["task_id"], e["map_index"]) for e in mapped["xcom_entries"]] == [("mapped", 1)]
    (no_dates,) = run_2["xcom_entries"]
    # Nullable in Airflow 3 (a run without one); the client's to_dict() leaves out None.
    assert no_dates.get("logical_date") is None
    assert no_dates["run_after"] == no_dates["timestamp"]  # required: the first push time

    slash, mapped_2, stringified, native, null, missing = results[5:]
    assert ok(slash)["value"] == "slashy"
    assert (ok(mapped_2)["map_index"], ok(mapped_2)["value"]) == (2, [2, "x"])
    assert ok(stringified)["value"] == "{'rows': 3}"
    assert ok(native)["value"] == {"rows": 7}
    assert ok(native)["run_after"] == ok(native)["timestamp"]
    assert ok(null).get("value") is None
    assert missing["error"]["status"] == 404
    assert json.loads(missing["error"]["body"]) == {
        "detail": "XCom entry with key: `missing` not found"
    }


def test_airflow_3_client_login_with_a_wrong_password_is_refused(
    pushed: None, proxy: Proxy, python_v2: Path
) -> None:
    out = drive(python_v2, "client_v2.py", proxy, [], password="wrong")
    assert out["login"] == {"status": 401, "body": {"detail": "Invalid credentials"}}
