"""A primary SIGKILLed under SDK load through two service replicas, on a real Redis Cluster
(3 primaries + 3 replicas) and a real Sentinel group (1 primary, 2 replicas, 3 Sentinels).

Each scenario prints one `FAILOVER` line: how long the dead primary's slots refused writes,
what the writers on the other shards saw, and how many acknowledged pushes were lost. With
LEOFLOW_REDIS_MIN_REPLICA_ACKS=1 nothing acknowledged may be lost, also when the replicas
were stalled (SIGSTOP) for a second before the primary died; without it the loss is printed
(and is the price of asynchronous replication, so the docs quote it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.cluster

from leoflow_xcom.core import keys
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store.connection import StoreClient, connect
from leoflow_xcom.store.layout import ensure_layout
from leoflow_xcom.testing.cluster import LocalCluster
from leoflow_xcom.testing.redis_binary import find_binary
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.sentinel import LocalSentinelGroup
from leoflow_xcom.testing.service import ServiceProcess
from tests.cluster.failover.load import WRITER_TASK, Load, Writer, wait_until_all_back
from tests.dag_data import publish_test_policies
from tests.fixture_types import Mint

pytestmark = pytest.mark.failover

DAG = "test_dag"
BEFORE_S = 1.5  # load before the fault
AFTER_S = 1.5  # load after the first write the failover let through
STALL_S = 1.0  # replicas SIGSTOPped this long before the primary dies
RECOVERY_BOUND_S = 30.0  # the failover must let writes through within this
PRINTED: list[str] = []


def _binary() -> str:
    found = find_binary("redis")
    if found is None:
        pytest.fail("no redis-server binary (`make test` installs it)", pytrace=False)
    return found


@dataclasses.dataclass
class Figures:
    mode: str
    acks: int
    stalled: bool
    gap_s: float  # kill -> first push acknowledged on the dead primary's slots
    promoted_s: float  # kill -> a replica promoted
    rejoined_s: float  # kill -> the old primary restarted
    refused_in_stall: int  # refusals on the victim's slots while the replicas were stalled
    refused_on_victim: int
    refused_elsewhere: int
    acknowledged: int
    lost: int

    def line(self) -> str:
        return (
            f"FAILOVER {self.mode} acks={self.acks} replica_stalled={self.stalled}: "
            f"writes refused on the dead primary's slots for {self.gap_s:.2f} s "
            f"(replica promoted after {self.promoted_s:.2f} s, old primary restarted at "
            f"{self.rejoined_s:.2f} s; {self.refused_on_victim} refusals, "
            f"{self.refused_in_stall} of them during the stall), refusals on other shards="
            f"{self.refused_elsewhere}, acknowledged={self.acknowledged} lost={self.lost}"
        )


@contextlib.contextmanager
def _services(
    settings: dict[str, str], signing_key_file: Path, acks: int
) -> Iterator[list[ServiceProcess]]:
    services = [
        ServiceProcess(
            "redis://127.0.0.1:1/0",  # unused outside standalone mode
            signing_key_file,
            LEOFLOW_REDIS_MIN_REPLICA_ACKS=str(acks),
            LEOFLOW_XCOM_QUOTA_TASK_INSTANCE_COUNT="0",
            LEOFLOW_XCOM_QUOTA_RUN_COUNT="0",
            **settings,
        )
        for _ in range(2)
    ]
    try:
        for service in services:
            service.start()
        yield services
    finally:
        for service in services:
            service.kill()
            # An unexpected refusal is easier to judge with the server's own account of it.
            if "Traceback" in service.output:
                start = service.output.index("Traceback")
                print(f"service {service.target} logged:\n{service.output[start:][-4000:]}")


def _prepare(client: StoreClient) -> None:
    ensure_layout(client)
    publish_test_policies(client)  # type: ignore[arg-type]


def _lost(client: StoreClient, writers: list[Writer]) -> int:
    lost = 0
    for writer in writers:
        run = keys.run_keys(DAG, writer.run_id)
        for key, i in list(writer.acknowledged.items()):
            got = client.get(run.value(keys.member(WRITER_TASK, -1, key)))
            text = got.decode() if isinstance(got, bytes) else str(got or "")
            lost += f'"i":{i}' not in text.replace(" ", "")
    return lost


@dataclasses.dataclass
class Timeline:
    stalled: float  # replicas stopped and cut off (0.0: not stalled)
    killed: float
    promoted: float  # a replica is the primary now
    rejoined: float  # the old primary restarted (it rejoins as a replica)
    back: float  # every writer on the dead primary's slots acknowledged a push again


def _run(
    writers: list[Writer],
    victim_runs: set[str],
    kill: RedisProcess,
    stall: list[RedisProcess],
    promoted: Callable[[], bool],
) -> Timeline:
    victims = [w for w in writers if w.run_id in victim_runs]
    stalled = 0.0
    with Load(writers):
        time.sleep(BEFORE_S)
        if stall:
            # The replicas freeze and lose their link: what the primary acknowledges from now
            # on exists only on the primary.
            stalled = time.monotonic()
            for replica in stall:
                replica.pause()
            with kill.client() as primary:
                primary.client_kill_filter(_type="replica")
            time.sleep(STALL_S)
        killed = time.monotonic()
        kill.kill()
        for replica in stall:
            replica.resume()
        deadline = killed + RECOVERY_BOUND_S
        while not promoted():
            assert time.monotonic() < deadline, "no replica was promoted"
            time.sleep(0.02)
        promoted_at = time.monotonic()
        # The old primary comes back (same port and data) and rejoins as a replica: with one
        # replica per shard, acknowledged pushes (WAIT 1) need it.
        kill.start()
        rejoined = time.monotonic()
        back = wait_until_all_back(victims, killed, deadline, poll=0.02)
        time.sleep(AFTER_S)
    return Timeline(stalled, killed, promoted_at, rejoined, back)


def _report(
    mode: str, acks: int, writers: list[Writer], victim_runs: set[str], t: Timeline, lost: int
) -> Figures:
    on_victim = [r for w in writers if w.run_id in victim_runs for r in w.refusals]
    elsewhere = [r for w in writers if w.run_id not in victim_runs for r in w.refusals]
    figures = Figures(
        mode=mode,
        acks=acks,
        stalled=bool(t.stalled),
        gap_s=t.back - t.killed,
        promoted_s=t.promoted - t.killed,
        rejoined_s=t.rejoined - t.killed,
        refused_in_stall=sum(1 for start, _, _ in on_victim if t.stalled and start < t.killed),
        refused_on_victim=len(on_victim),
        refused_elsewhere=len(elsewhere),
        acknowledged=sum(len(w.acknowledged) for w in writers),
        lost=lost,
    )
    line = figures.line()
    print(line, flush=True)
    PRINTED.append(line)
    unexpected = {code for _, _, code in on_victim} - {"UNAVAILABLE/STORE_UNAVAILABLE"}
    assert not unexpected, f"refusals other than STORE_UNAVAILABLE: {unexpected}"
    return figures


# --- Redis Cluster -------------------------------------------------------------------------


def _role(node: RedisProcess) -> str:
    try:
        with node.client() as client:
            return str(client.info("replication").get("role", ""))
    except redis.exceptions.RedisError:
        return ""


def _shard_of(client: redis.cluster.RedisCluster, key: str) -> int:
    return int(client.get_node_from_key(key).port)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("acks", "stalled"), [(0, False), (0, True), (1, False), (1, True)], ids=str
)
def test_cluster_primary_sigkill_under_load(
    acks: int, stalled: bool, tmp_path: Path, signing_key_file: Path, mint: Mint
) -> None:
    cluster = LocalCluster(_binary(), tmp_path / "cluster").start()
    try:
        print(f"\ncluster 3+3 up in {cluster.bring_up_seconds:.2f} s")
        settings = RedisSettings(mode="cluster", nodes=cluster.nodes_setting)
        client = connect(settings)
        assert isinstance(client, redis.cluster.RedisCluster)
        _prepare(client)
        # The victim shard must not hold the global slot (run registration): its death would
        # stall every push, which the other scenarios' figures would hide.
        global_shard = _shard_of(client, keys.LAYOUT_KEY)
        shards = sorted({n.port for n in cluster.primaries()})
        victim_port = next(p for p in shards if p != global_shard)
        runs: dict[int, list[str]] = {p: [] for p in shards}
        for i in range(1000):
            run_id = f"failover_{i}"
            port = _shard_of(client, keys.run_keys(DAG, run_id).index)
            if len(runs[port]) < 2:
                runs[port].append(run_id)
            if all(len(r) == 2 for r in runs.values()):
                break
        env = {"LEOFLOW_REDIS_MODE": "cluster", "LEOFLOW_REDIS_NODES": cluster.nodes_setting}
        with _services(env, signing_key_file, acks) as services:
            # Each shard's two runs go through different service replicas.
            writers = [
                Writer(run_id, services[j].target, mint(DAG, run_id, WRITER_TASK))
                for shard_runs in runs.values()
                for j, run_id in enumerate(shard_runs)
            ]
            victim = next(n for n in cluster.nodes if n.port == victim_port)
            replicas = cluster.replicas_of(victim)
            stall = replicas if stalled else []
            timeline = _run(
                writers,
                set(runs[victim_port]),
                victim,
                stall,
                lambda: any(_role(r) == "master" for r in replicas),
            )
        client.close()
        audit = connect(settings)
        try:
            lost = _lost(audit, writers)
        finally:
            audit.close()
        figures = _report("cluster", acks, writers, set(runs[victim_port]), timeline, lost)
    finally:
        cluster.stop()
    assert figures.acknowledged > 0
    assert figures.refused_elsewhere == 0, "a shard whose primary lived refused writes"
    if acks:
        assert figures.lost == 0


# --- Sentinel ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("acks", "stalled"), [(0, False), (0, True), (1, False), (1, True)], ids=str
)
def test_sentinel_primary_sigkill_under_load(
    acks: int, stalled: bool, tmp_path: Path, signing_key_file: Path, mint: Mint
) -> None:
    group = LocalSentinelGroup(_binary(), tmp_path / "sentinel").start()
    try:
        print(f"\nSentinel group up in {group.bring_up_seconds:.2f} s")
        settings = RedisSettings(
            mode="sentinel", nodes=group.nodes_setting, sentinel_master=group.master
        )
        client = connect(settings)
        _prepare(client)
        client.close()
        env = {
            "LEOFLOW_REDIS_MODE": "sentinel",
            "LEOFLOW_REDIS_NODES": group.nodes_setting,
            "LEOFLOW_REDIS_SENTINEL_MASTER": group.master,
        }
        with _services(env, signing_key_file, acks) as services:
            run_ids = [f"failover_{i}" for i in range(4)]
            writers = [
                Writer(run_id, services[i % 2].target, mint(DAG, run_id, WRITER_TASK))
                for i, run_id in enumerate(run_ids)
            ]
            primary = next(s for s in group.servers if s.port == group.current_primary_port())
            replicas = [s for s in group.servers if s is not primary]
            timeline = _run(
                writers,
                set(run_ids),
                primary,
                replicas if stalled else [],
                lambda: group.current_primary_port() not in (None, primary.port),
            )
        audit = connect(settings)
        try:
            lost = _lost(audit, writers)
        finally:
            audit.close()
        figures = _report("sentinel", acks, writers, set(run_ids), timeline, lost)
    finally:
        group.stop()
    assert figures.acknowledged > 0
    if acks:
        assert figures.lost == 0
