"""Publishing DAG policies into Redis, as `leoflow-xcom init --stage apply` would."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import redis

from leoflow_xcom.core.policies import DagPolicy, parse_policy
from leoflow_xcom.store.registry import PolicyStore
from leoflow_xcom.testing.paths import EXAMPLE_DAGS


def example_policies(directory: Path = EXAMPLE_DAGS) -> list[DagPolicy]:
    """The example DAG policies (config/dags/*.json), parsed and checked like the init job."""
    return [parse_policy(p.read_bytes(), str(p)) for p in sorted(directory.glob("*.json"))]


def publish_policies(
    client: redis.Redis, extra: Iterable[DagPolicy] = (), *, examples: bool = True
) -> None:
    """Publish the example policies (unless examples=False) plus `extra`."""
    docs = example_policies() if examples else []
    PolicyStore(client).publish([*docs, *extra])
