"""The test suite's own DAG policies, with ids that break naive key layouts."""

from __future__ import annotations

import redis

from leoflow_xcom.core.policies import policy_from_document
from leoflow_xcom.testing.policies import publish_policies

# Ids that break naive key layouts: separators, hash-tag braces, slashes, spaces, unicode.
NASTY_DAG = "dag:{with}/odd chars é"
NASTY_RUN = "manual__2026-11-26T00:00:00+00:00 {x}:y"

TEST_DAG = {
    "dag_id": "test_dag",
    "xcom_ttl": 3600,
    "tasks": [
        {
            "task_id": "a",
            "xcom_schema": {
                "typed": {
                    "type": "object",
                    "properties": {"rows": {"type": "integer"}},
                    "required": ["rows"],
                }
            },
        },
        {"task_id": "b", "depends_on": ["a"]},
        {"task_id": "mapped", "depends_on": ["a"]},
        {"task_id": "fanin", "depends_on": ["mapped", "b"]},
        {"task_id": "other"},
    ],
}
NASTY_TASKS = ["t:1", "t{1}", "t/1", "t 1", "tâche ✓", "t:1:-1"]
NASTY_DAG_DOC = {
    "dag_id": NASTY_DAG,
    "tasks": [{"task_id": t} for t in NASTY_TASKS]
    + [{"task_id": "reader", "depends_on": NASTY_TASKS}],
}
SHORT_TTL_DAG = {"dag_id": "short_ttl", "xcom_ttl": 60, "tasks": [{"task_id": "a"}]}


def publish_test_policies(client: redis.Redis) -> None:
    """The example policies (config/dags) plus the three above."""
    publish_policies(
        client,
        [policy_from_document(d, "tests") for d in (TEST_DAG, NASTY_DAG_DOC, SHORT_TTL_DAG)],
    )
