"""Plain value types shared by every layer (no I/O, no wire types)."""

from __future__ import annotations

import dataclasses

from leoflow_xcom.core import limits

ROLE_TASK = "task"
ROLE_CONTROL_PLANE = "control-plane"


@dataclasses.dataclass(frozen=True, slots=True)
class Claims:
    """Who is calling, as the verified task token says. Control-plane tokens carry no ids."""

    role: str
    expires_at: int  # Unix seconds
    dag_id: str = ""
    run_id: str = ""
    task_id: str = ""
    map_index: int = limits.UNMAPPED
    # Run facts the UI shows (Airflow's logical_date / run_after), recorded on push when given.
    logical_date: str | None = None
    run_after: str | None = None

    @property
    def is_control_plane(self) -> bool:
        return self.role == ROLE_CONTROL_PLANE


@dataclasses.dataclass(frozen=True, slots=True)
class XComRef:
    """One XCom inside a known DAG run."""

    task_id: str
    key: str
    map_index: int = limits.UNMAPPED


@dataclasses.dataclass(frozen=True, slots=True)
class Selector:
    """One item of a batch fetch: a ref, or every map index of (task_id, key)."""

    task_id: str
    key: str
    map_index: int = limits.UNMAPPED
    all_map_indexes: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class XComEntry:
    """What a listing shows of one XCom: everything but the value."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str
    size_bytes: int
    pushed_at_ms: int
    expires_at_ms: int


@dataclasses.dataclass(frozen=True, slots=True)
class RunInfo:
    """Run-level facts recorded with the first push of a run (for Airflow-compatible JSON)."""

    logical_date: str | None = None
    run_after: str | None = None
    # When the run's first XCom was pushed (Redis clock); None for runs stored before it was kept.
    first_push_ms: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing, with the count of all matching entries."""

    entries: list[XComEntry]
    total: int
    run_info: RunInfo


@dataclasses.dataclass(frozen=True, slots=True)
class ListFilter:
    task_id: str | None = None
    map_index: int | None = None
    key: str | None = None
    limit: int = limits.LIST_DEFAULT_LIMIT
    offset: int = 0
