"""`make bench`'s Redis Cluster section: SDK push and fetch on a real 3+3 cluster beside the same
calls on one standalone Redis, measured in the same run, interleaved round after round so
that noise from the machine lands on all of them alike; plus the cluster with
LEOFLOW_REDIS_MIN_REPLICA_ACKS=1 (WAIT 1 after every push), to print what durable pushes cost.

Target: the cluster's p50 within 1.1x of standalone's (one client, session transport). The
service sends each call to the one shard owning the run's slot, so the cluster should add only
what its client library does per call; the run registration it writes on the shard owning the
global slot travels beside the push (both written before either reply is read), not after it.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import stack
from bench.report import Check
from bench.runner import ClientPool, Runner, side_by_side
from bench.stats import Series
from leoflow_xcom.core.policies import parse_policy
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store.connection import connect
from leoflow_xcom.store.layout import ensure_layout
from leoflow_xcom.store.registry import PolicyStore
from leoflow_xcom.testing.cluster import LocalCluster
from leoflow_xcom.testing.paths import ROOT
from leoflow_xcom.testing.redis_binary import INSTALL_HINT, any_binary

SCENARIOS = ("sdk-push-session", "sdk-fetch-session")
RATIO_LIMIT = 1.1
# The three deployments, as labels in the table and the JSON: `<label>:<scenario>`.
STANDALONE, CLUSTER, CLUSTER_ACKS = "standalone", "cluster", "cluster-acks1"


def _prepare(cluster: LocalCluster) -> dict[str, str]:
    env = {"LEOFLOW_REDIS_MODE": "cluster", "LEOFLOW_REDIS_NODES": cluster.nodes_setting}
    client = connect(RedisSettings(mode="cluster", nodes=cluster.nodes_setting))
    try:
        ensure_layout(client)
        docs = [
            parse_policy(p.read_bytes(), str(p))
            for p in sorted((ROOT / "config/dags").glob("*.json"))
        ]
        PolicyStore(client).publish(docs)
    finally:
        client.close()
    return env


def measure(
    pool: ClientPool,
    payload: int,
    rounds: int,
    seconds: float,
    progress: Callable[[str], None],
) -> tuple[list[Series], list[Check]]:
    cluster = LocalCluster(
        any_binary() or sys.exit(INSTALL_HINT), Path(tempfile.mkdtemp(prefix="leoflow-bench-"))
    )
    cluster.start()
    progress(f"cluster 3+3 up in {cluster.bring_up_seconds:.1f} s")
    stacks: dict[str, stack.Stack] = {}
    try:
        env = _prepare(cluster)
        seed = cluster.primaries()[0]
        stacks[STANDALONE] = stack.start(log_name="service-standalone")
        stacks[CLUSTER] = stack.start(log_name="service-cluster", redis=seed, redis_env=env)
        stacks[CLUSTER_ACKS] = stack.start(
            log_name="service-cluster-acks",
            redis=seed,
            redis_env={**env, "LEOFLOW_REDIS_MIN_REPLICA_ACKS": "1"},
        )
        runners = {label: Runner(s, pool, payload) for label, s in stacks.items()}
        series = side_by_side(runners, SCENARIOS, 1, rounds, seconds, progress, "cluster section")
    finally:
        for running in stacks.values():
            running.stop()
        cluster.stop()
    return series, checks(series)


def checks(series: list[Series]) -> list[Check]:
    by_name = {s.scenario: s for s in series}
    out: list[Check] = []
    for name in SCENARIOS:
        alone, spread = by_name.get(f"{STANDALONE}:{name}"), by_name.get(f"{CLUSTER}:{name}")
        if alone is None or spread is None:
            continue
        ratio = spread.p50 / alone.p50
        out.append(
            Check(
                f"cluster {name} p50 / standalone p50",
                ratio,
                RATIO_LIMIT,
                ratio <= RATIO_LIMIT,
                f"x ({spread.p50 * 1000:.0f} µs vs {alone.p50 * 1000:.0f} µs)",
            )
        )
    acked = by_name.get(f"{CLUSTER_ACKS}:sdk-push-session")
    plain = by_name.get(f"{CLUSTER}:sdk-push-session")
    if acked is not None and plain is not None:
        cost = (acked.p50 - plain.p50) * 1000
        out.append(
            Check(
                "cluster push p50 with LEOFLOW_REDIS_MIN_REPLICA_ACKS=1 (cost of WAIT 1)",
                acked.p50,
                float("inf"),
                True,
                f"ms (+{cost:.0f} µs over acks=0; p99 {acked.p99:.3f} vs {plain.p99:.3f} ms)",
                diagnostic=True,
            )
        )
    return out
