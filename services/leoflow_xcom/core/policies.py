"""DAG XCom policies: which tasks a DAG has, what each may read, TTL and optional schemas.

A policy file (config/dags/*.json) has the shape of ADR 0006:

    {"dag_id": "etl", "xcom_ttl": "2d",
     "tasks": [{"task_id": "extract", "entrypoint": "tasks.extract:run",
                "xcom_schema": {"output": {"type": "object"}}},
               {"task_id": "load", "entrypoint": "tasks.load:run", "depends_on": ["extract"]}]}

Parsing is pure (text in, model out); reading files and publishing to Redis live elsewhere.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import pydantic

from leoflow_xcom.core import limits
from leoflow_xcom.core.codec import depth_exceeds
from leoflow_xcom.core.quotas import Quota, XComQuota
from leoflow_xcom.core.schema import CompiledSchema, json_path, schema_problem

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: int | str) -> int:
    """Seconds from an int or a string like "90", "45m", "12h", "7d", "2w"."""
    if isinstance(value, bool):
        raise ValueError("must be a number of seconds or a duration like '7d'")
    if isinstance(value, int):
        return value
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration: use seconds or e.g. '45m', '12h', '7d'")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


IdStr = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=limits.MAX_ID_CHARS)]


class TaskPolicy(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    task_id: IdStr
    entrypoint: str = ""
    display_name: str | None = None
    depends_on: tuple[IdStr, ...] = ()
    xcom_schema: dict[str, Any] = pydantic.Field(default_factory=dict)

    @pydantic.field_validator("xcom_schema")
    @classmethod
    def _schemas_are_valid(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, schema in value.items():
            if not key or len(key) > limits.MAX_KEY_CHARS:
                raise ValueError(f"XCom key {key!r} must have 1..{limits.MAX_KEY_CHARS} characters")
            problem = schema_problem(schema)
            if problem is not None:
                where, why = problem
                raise ValueError(
                    f"schema for key {key!r} is not a valid JSON Schema at {where}: {why}"
                )
        return value


class DagPolicy(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    dag_id: IdStr
    display_name: str | None = None
    xcom_ttl: int = limits.DEFAULT_TTL_SECONDS
    # Limits on what one run / task instance may hold; unset ones take the service defaults.
    xcom_quota: XComQuota | None = None
    tasks: tuple[TaskPolicy, ...] = pydantic.Field(min_length=1)

    @pydantic.field_validator("xcom_ttl", mode="before")
    @classmethod
    def _ttl_in_bounds(cls, value: int | str | None) -> int:
        if value is None:
            return limits.DEFAULT_TTL_SECONDS
        seconds = parse_duration(value)
        if not limits.MIN_TTL_SECONDS <= seconds <= limits.MAX_TTL_SECONDS:
            raise ValueError(
                f"{seconds} s is outside {limits.MIN_TTL_SECONDS}..{limits.MAX_TTL_SECONDS} s"
            )
        return seconds

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules pydantic cannot place on one field: (JSON path, reason) pairs."""
        found: list[tuple[str, str]] = []
        declared = [t.task_id for t in self.tasks]
        for i, task in enumerate(self.tasks):
            if declared.index(task.task_id) != i:
                found.append((f"$.tasks[{i}].task_id", f"{task.task_id!r} is declared twice"))
            for j, dep in enumerate(task.depends_on):
                where = f"$.tasks[{i}].depends_on[{j}]"
                if dep == task.task_id:
                    found.append((where, f"task {task.task_id!r} depends on itself"))
                elif dep not in declared:
                    found.append((where, f"{dep!r} is not a task of this DAG"))
        return found

    def task(self, task_id: str) -> TaskPolicy | None:
        for task in self.tasks:
            if task.task_id == task_id:
                return task
        return None


class PolicyError(ValueError):
    """A policy document is invalid: names the source, the JSON path and the reason."""

    def __init__(self, source: str, path: str, reason: str) -> None:
        super().__init__(f"{source}: {path}: {reason}")
        self.source = source
        self.path = path
        self.reason = reason


# Deeper documents are refused before a parser recurses into them; up to this depth they are
# parsed, and a schema nested deeper than MAX_SCHEMA_DEPTH is refused with its path.
MAX_DOCUMENT_DEPTH = limits.MAX_JSON_DEPTH
TOO_DEEP = (
    f"nested deeper than {MAX_DOCUMENT_DEPTH} levels (a schema may nest at most "
    f"{limits.MAX_SCHEMA_DEPTH}); flatten it with $defs and $ref"
)


def parse_policy(text: str | bytes, source: str) -> DagPolicy:
    try:
        decoded = text.decode("utf-8") if isinstance(text, bytes) else text
        if depth_exceeds(decoded, MAX_DOCUMENT_DEPTH):
            raise PolicyError(source, "$", TOO_DEEP)
        document = json.loads(decoded)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(source, "$", f"not valid JSON: {exc}") from None
    return policy_from_document(document, source)


def policy_from_document(document: Any, source: str) -> DagPolicy:
    try:
        policy = DagPolicy.model_validate(document)
    except RecursionError:
        raise PolicyError(source, "$", TOO_DEEP) from None
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        loc = [p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        reason = first["msg"].removeprefix("Value error, ")
        raise PolicyError(source, json_path(loc), reason) from None
    problems = policy.problems()
    if problems:
        path, reason = problems[0]
        raise PolicyError(source, path, reason)
    return policy


def policy_to_json(policy: DagPolicy) -> str:
    return policy.model_dump_json(exclude_defaults=False)


class CompiledDag:
    """A policy plus what the hot path needs precomputed: dependency sets and validators."""

    __slots__ = ("dependencies", "policy", "quota", "schemas", "ttl_seconds")

    def __init__(self, policy: DagPolicy, quota_defaults: Quota | None = None) -> None:
        self.policy = policy
        self.ttl_seconds = policy.xcom_ttl
        self.quota = (quota_defaults or Quota()).resolve(policy.xcom_quota)
        self.dependencies: dict[str, frozenset[str]] = {
            t.task_id: frozenset(t.depends_on) for t in policy.tasks
        }
        self.schemas: dict[tuple[str, str], CompiledSchema] = {
            (t.task_id, key): CompiledSchema(schema)
            for t in policy.tasks
            for key, schema in t.xcom_schema.items()
        }
