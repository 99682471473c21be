from __future__ import annotations

import json
from pathlib import Path

import pytest

from leoflow_xcom.core import limits
from leoflow_xcom.core.errors import XComSchemaMismatchError
from leoflow_xcom.core.policies import CompiledDag, PolicyError, parse_duration, parse_policy

ROOT = Path(__file__).resolve().parents[2]


def doc(**overrides: object) -> str:
    base: dict[str, object] = {"dag_id": "d", "tasks": [{"task_id": "a"}]}
    base.update(overrides)
    return json.dumps(base)


@pytest.mark.parametrize("path", sorted((ROOT / "config" / "dags").glob("*.json")))
def test_shipped_example_dags_are_valid(path: Path) -> None:
    policy = parse_policy(path.read_bytes(), str(path))
    assert policy.tasks


def test_ttl_defaults_to_seven_days_and_accepts_durations() -> None:
    assert parse_policy(doc(), "f").xcom_ttl == 604_800 == limits.DEFAULT_TTL_SECONDS
    assert parse_policy(doc(xcom_ttl="2d"), "f").xcom_ttl == 172_800
    assert parse_policy(doc(xcom_ttl=3600), "f").xcom_ttl == 3600
    assert parse_duration("45m") == 2700


@pytest.mark.parametrize(
    ("document", "path", "reason"),
    [
        (doc(xcom_ttl="5"), "$.xcom_ttl", "outside 60"),
        (doc(xcom_ttl="forever"), "$.xcom_ttl", "not a duration"),
        (doc(tasks=[]), "$.tasks", "at least 1"),
        (doc(tasks=[{"task_id": "a"}, {"task_id": "a"}]), "$.tasks[1].task_id", "twice"),
        (
            doc(tasks=[{"task_id": "a", "depends_on": ["zz"]}]),
            "$.tasks[0].depends_on[0]",
            "not a task of this DAG",
        ),
        (
            doc(tasks=[{"task_id": "a", "depends_on": ["a"]}]),
            "$.tasks[0].depends_on[0]",
            "depends on itself",
        ),
        (
            doc(tasks=[{"task_id": "a", "xcom_schema": {"out": {"type": "wat"}}}]),
            "$.tasks[0].xcom_schema",
            "not a valid JSON Schema at $.type",
        ),
        (doc(tasks=[{"task_id": "a", "bogus": 1}]), "$.tasks[0].bogus", "Extra inputs"),
        (json.dumps({"tasks": [{"task_id": "a"}]}), "$.dag_id", "required"),
        ("{not json", "$", "not valid JSON"),
    ],
)
def test_bad_policies_name_file_path_and_reason(document: str, path: str, reason: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(document, "dags/bad.json")
    assert info.value.source == "dags/bad.json"
    assert info.value.path == path
    assert reason in info.value.reason
    assert str(info.value).startswith(f"dags/bad.json: {path}: ")


def test_schemas_compile_once_and_report_the_failing_path() -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"id": {"type": "integer"}}},
            }
        },
    }
    dag = CompiledDag(
        parse_policy(doc(tasks=[{"task_id": "a", "xcom_schema": {"out": schema}}]), "f")
    )
    check = dag.schemas[("a", "out")]
    check.check({"items": [{"id": 1}]}, "a", "out")
    with pytest.raises(XComSchemaMismatchError) as info:
        check.check({"items": [{"id": 1}, {"id": 1}, {"id": "x"}]}, "a", "out")
    assert info.value.metadata["path"] == "$.items[2].id"
    assert "'x' is not of type 'integer'" in info.value.metadata["message"]
    assert dag.dependencies == {"a": frozenset()}
