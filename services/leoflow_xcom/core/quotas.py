"""XCom quotas: how many values and bytes one run and one task instance may hold.

A DAG policy may set any of the four limits (`xcom_quota`); what it leaves out comes from the
service's defaults (settings `LEOFLOW_XCOM_QUOTA_*`, themselves defaulting to core/limits.py).
0 means no limit. The push script enforces the resolved limits atomically in Redis.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import pydantic

from leoflow_xcom.core import limits

Limit = Annotated[int, pydantic.Field(ge=0, le=2**53)]


class XComQuota(pydantic.BaseModel):
    """The `xcom_quota` object of a DAG policy; every field is optional."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    run_bytes: Limit | None = None
    run_count: Limit | None = None
    task_instance_bytes: Limit | None = None
    task_instance_count: Limit | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Quota:
    """Resolved limits (0 = none), in the order the push script takes them."""

    run_bytes: int = limits.DEFAULT_QUOTA_RUN_BYTES
    run_count: int = limits.DEFAULT_QUOTA_RUN_COUNT
    task_instance_bytes: int = limits.DEFAULT_QUOTA_TASK_INSTANCE_BYTES
    task_instance_count: int = limits.DEFAULT_QUOTA_TASK_INSTANCE_COUNT

    def resolve(self, declared: XComQuota | None) -> Quota:
        """These defaults overridden by what a DAG declares."""
        if declared is None:
            return self
        return Quota(
            *(
                getattr(self, f.name)
                if getattr(declared, f.name) is None
                else getattr(declared, f.name)
                for f in dataclasses.fields(self)
            )
        )

    def as_args(self) -> list[int]:
        return [getattr(self, f.name) for f in dataclasses.fields(self)]


# The push script names the limit it refused by its position in `as_args()`.
SCOPES: tuple[tuple[str, str], ...] = (
    ("run", "bytes"),
    ("run", "count"),
    ("task_instance", "bytes"),
    ("task_instance", "count"),
)
