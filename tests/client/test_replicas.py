"""An SDK client given several replicas' addresses: sessions spread over them, and when one
replica is SIGKILLed under load, its clients move to the other without losing an answered push.

Two real `leoflow-xcom serve` processes on the same Redis; each one's calls are read from its
own Prometheus endpoint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from leoflow_xcom.client import XComClient, XComError
from leoflow_xcom.testing.ports import free_port
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.service import ServiceProcess
from tests.dag_data import publish_test_policies
from tests.fixture_types import Mint

# Each client's session lands on one replica at random: with n clients all land on the same one
# with probability 2 / 2**n (6 clients: 3 %, a flaky precondition; 12: 0.05 %).
CLIENTS = 12
DEADLINE = 5.0


class Replica:
    def __init__(self, redis_url: str, signing_key_file: Path) -> None:
        self.metrics_port = free_port()
        self.process = ServiceProcess(
            redis_url,
            signing_key_file,
            LEOFLOW_XCOM_METRICS_LISTEN=f"127.0.0.1:{self.metrics_port}",
        ).start()

    def session_pushes(self) -> float:
        """XComSession/push items this replica answered OK, from its own metrics."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        wanted = 'leoflow_xcom_grpc_calls_total{code="OK",method="XComSession/push"}'
        for line in text.splitlines():
            if line.startswith(wanted):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture
def replicas(
    r: redis.Redis, redis_server: RedisProcess, signing_key_file: Path
) -> Iterator[tuple[Replica, Replica]]:
    publish_test_policies(r)
    pair = (
        Replica(redis_server.url, signing_key_file),
        Replica(redis_server.url, signing_key_file),
    )
    yield pair
    for replica in pair:
        replica.process.kill()


def both(replicas: tuple[Replica, Replica]) -> str:
    return ",".join(replica.process.target for replica in replicas)


def test_sessions_spread_over_both_replicas(replicas: tuple[Replica, Replica], mint: Mint) -> None:
    clients = [XComClient(both(replicas), mint(task_id="a")) for _ in range(CLIENTS)]
    try:
        for round_ in range(3):
            for i, client in enumerate(clients):
                client.push(f"spread-{i}-{round_}", round_)
        counts = [replica.session_pushes() for replica in replicas]
        assert sum(counts) == CLIENTS * 3
        assert all(count > 0 for count in counts), counts
        # Either replica reads what the other stored: one Redis behind both.
        assert clients[0].pull("a", f"spread-{CLIENTS - 1}-2") == 2
    finally:
        for client in clients:
            client.close()


def test_a_replica_killed_under_load_loses_no_acknowledged_push(
    replicas: tuple[Replica, Replica], mint: Mint
) -> None:
    target = both(replicas)
    acknowledged: list[str] = []
    failures: list[tuple[str, float]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def agent(n: int) -> None:
        with XComClient(target, mint(task_id="a"), timeout=DEADLINE) as xcom:
            i = 0
            while not stop.is_set():
                key = f"load-{n}-{i}"
                started = time.monotonic()
                try:
                    xcom.push(key, {"n": n, "i": i})
                except XComError as exc:
                    with lock:
                        failures.append((repr(exc), time.monotonic() - started))
                else:
                    with lock:
                        acknowledged.append(key)
                i += 1

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    before = [replica.session_pushes() for replica in replicas]
    replicas[0].process.proc.kill()  # type: ignore[union-attr]  # SIGKILL: no drain
    with lock:
        at_kill = len(acknowledged)
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join(DEADLINE + 5)
    assert not any(thread.is_alive() for thread in threads)

    after = len(acknowledged) - at_kill
    print(
        f"\nreplica kill under load: {len(acknowledged)} pushes acknowledged "
        f"({after} after the kill, all through the survivor), {len(failures)} failed; "
        f"before the kill each replica had answered {before}"
    )
    assert all(count > 0 for count in before), before  # both served the agents
    assert after > 0  # the killed replica's agents went on through the other one
    # Every call either succeeded (after retry) or failed clearly within its deadline.
    for message, elapsed in failures:
        assert elapsed <= DEADLINE + 1.0, (message, elapsed)
        assert "unavailable" in message.lower() or "deadline" in message.lower(), message
    # Nothing acknowledged is lost: every answered push reads back through the survivor.
    with XComClient(replicas[1].process.target, mint(task_id="a")) as reader:
        values = {key: reader.pull("a", key, default=None) for key in acknowledged}
    lost = [key for key, value in values.items() if value is None]
    assert not lost, f"{len(lost)} acknowledged pushes lost, e.g. {lost[:3]}"
    assert all(
        values[key] == {"n": int(key.split("-")[1]), "i": int(key.split("-")[2])}
        for key in acknowledged
    )
