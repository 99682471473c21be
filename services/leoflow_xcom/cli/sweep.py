"""`leoflow-xcom clear --dag D --older-than DURATION`: the operator's emergency clear.

Straight to Redis (LEOFLOW_REDIS_* as the service or admin user), not through the service, so
it works when the service is down or the store is full. It reads the DAG's time-ordered run
index a batch at a time and clears each run with the bounded `allow-oom` clear script, so each
Redis call does bounded work and every call works at maxmemory.
"""

from __future__ import annotations

import time

from leoflow_xcom.cli.errors import CommandError
from leoflow_xcom.core import limits
from leoflow_xcom.core.policies import parse_duration

RUNS_PER_BATCH = 100


def clear_older_than(dag_id: str, older_than: str) -> int:
    from leoflow_xcom.settings import RedisSettings
    from leoflow_xcom.store.connection import connect
    from leoflow_xcom.store.layout import ensure_layout
    from leoflow_xcom.store.registry import PolicyStore
    from leoflow_xcom.store.runs import RunRegistry
    from leoflow_xcom.store.writer import XComWriter

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise CommandError(f"--older-than: {exc}") from None
    client = connect(RedisSettings())
    ensure_layout(client)
    # The run index holds when a run's newest value expires; pushed-at = expiry - TTL.
    policy = PolicyStore(client).get(dag_id)
    ttl = policy.xcom_ttl if policy is not None else limits.DEFAULT_TTL_SECONDS
    cutoff_ms = int((time.time() - age + ttl) * 1000)
    runs, writer = RunRegistry(client), XComWriter(client)
    cleared_runs = cleared = 0
    while True:
        batch = runs.older_than(dag_id, cutoff_ms, RUNS_PER_BATCH)
        for _, run_id in batch:
            cleared += writer.clear(dag_id, run_id)
            cleared_runs += 1
        if len(batch) < RUNS_PER_BATCH:
            break
    print(
        f"cleared {cleared} XCom(s) in {cleared_runs} run(s) of DAG {dag_id!r} whose newest "
        f"XCom is older than {age} s (judged with the DAG's TTL of {ttl} s)"
    )
    return 0
