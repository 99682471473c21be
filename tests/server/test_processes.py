"""`leoflow-xcom serve` with LEOFLOW_XCOM_PROCESSES=2: real worker processes sharing one port.

Load comes from SDK clients in their own processes (clients in one process share one
connection, hence one worker). Which worker a connection lands on is the kernel's choice, so
the clients reconnect every few pushes and the waits are bounded, not timed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from leoflow_xcom.testing.paths import ROOT
from leoflow_xcom.testing.ports import free_port
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.service import CLI, ServiceProcess
from tests.dag_data import publish_test_policies
from tests.faults.load import Tally, audit
from tests.fixture_types import Mint
from tests.servers import start_redis

CLIENTS = 4
PUSH_CLIENT = [sys.executable, "-m", "tests.server.push_client"]
RUN = "procs_1"


def worker_pids(parent: int) -> set[int]:
    """The parent's spawned workers (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    pids = set()
    for pid in map(int, children):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmdline:
            pids.add(pid)
    return pids


def scrape(port: int) -> dict[str, float]:
    """Samples of the replica's /metrics as {"name{label=value,...}": value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def worker_calls(port: int) -> tuple[float, float]:
    samples = scrape(port)
    return (
        samples.get("leoflow_xcom_grpc_worker_calls_total{worker=0}", 0.0),
        samples.get("leoflow_xcom_grpc_worker_calls_total{worker=1}", 0.0),
    )


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.25)


@pytest.fixture
def procs_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = start_redis("redis", tmp_path / "redis")
    with server.client() as client:
        publish_test_policies(client)
    yield server
    server.stop()


def start_service(redis_url: str, key: Path, metrics_port: int, **env: str) -> ServiceProcess:
    return ServiceProcess(
        redis_url,
        key,
        log_level="INFO",
        LEOFLOW_XCOM_PROCESSES="2",
        LEOFLOW_XCOM_WORKERS="16",
        LEOFLOW_XCOM_METRICS_LISTEN=f"127.0.0.1:{metrics_port}",
        LEOFLOW_XCOM_QUOTA_TASK_INSTANCE_COUNT="0",
        LEOFLOW_XCOM_QUOTA_RUN_COUNT="0",
        **env,
    ).start()


class Clients:
    """CLIENTS push_client processes, stopped through a file."""

    def __init__(self, target: str, token: str, tmp: Path) -> None:
        self.stop_file = tmp / "stop"
        env = {**os.environ, "LEOFLOW_XCOM_TOKEN": token, "PYTHONPATH": str(ROOT)}
        self.procs = [
            subprocess.Popen(
                [*PUSH_CLIENT, target, str(n), str(self.stop_file), "120"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(CLIENTS)
        ]

    def stop(self) -> tuple[dict[str, int], dict[str, int]]:
        self.stop_file.touch()
        acknowledged: dict[str, int] = {}
        errors: dict[str, int] = {}
        for proc in self.procs:
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, out
            result = json.loads(out.strip().splitlines()[-1])
            acknowledged.update(result["acknowledged"])
            for code, count in result["errors"].items():
                errors[code] = errors.get(code, 0) + count
        return acknowledged, errors

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_two_workers_share_the_load_survive_a_sigkill_and_drain_on_sigterm(
    procs_redis: RedisProcess, signing_key_file: Path, mint: Mint, tmp_path: Path
) -> None:
    metrics_port = free_port()
    service = start_service(procs_redis.url, signing_key_file, metrics_port)
    clients = None
    try:
        assert service.proc is not None
        parent = service.proc.pid
        first = worker_pids(parent)
        assert len(first) == 2, first
        clients = Clients(service.target, mint("test_dag", RUN, "b"), tmp_path)

        # Several clients' connections land on both workers; each worker's count is its own.
        wait_for("both workers answer calls", lambda: min(worker_calls(metrics_port)) > 0)

        before_kill = worker_calls(metrics_port)
        victim = min(first)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_for(
            "the parent replaces the killed worker",
            lambda: len(worker_pids(parent)) == 2 and victim not in worker_pids(parent),
        )
        replaced_after = time.monotonic() - killed_at
        assert scrape(metrics_port)["leoflow_xcom_grpc_worker_restarts_total{}"] == 1
        at_restart = worker_calls(metrics_port)
        # Both slots count on: the survivor, and the replacement once it serves (a slot's
        # count is the sum over its processes, the dead one's included).
        wait_for(
            "both workers answer calls after the restart",
            lambda: all(a > b for a, b in zip(worker_calls(metrics_port), at_restart, strict=True)),
        )

        acknowledged, errors = clients.stop()
        clients = None
        # Calls on the killed worker's connections were retried by the SDK (UNAVAILABLE), so
        # none failed; every acknowledged push is in Redis.
        assert errors == {}
        with procs_redis.client() as raw:
            result = audit(raw, "test_dag", RUN, Tally(acknowledged=acknowledged))
        print(
            f"PROCESSES=2: calls per worker before the kill {before_kill}, at the end "
            f"{worker_calls(metrics_port)}; killed worker replaced after {replaced_after:.1f} s; "
            f"acknowledged={result.acknowledged} lost={result.lost} failed_calls={errors}",
            flush=True,
        )
        assert result.acknowledged > 0
        assert (result.lost, result.dangling_index, result.orphan_values) == (0, 0, 0)

        workers = worker_pids(parent)
        assert service.terminate(timeout=60) == 0, service.output
        assert "all workers drained and stopped" in service.output
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists() or b"Z" in _state(pid)
    finally:
        if clients is not None:
            clients.kill()
        service.kill()


def _state(pid: int) -> bytes:
    return Path(f"/proc/{pid}/stat").read_bytes().split(b")")[-1].split()[0]


def serve_env(redis_url: str, key: Path, **env: str) -> dict[str, str]:
    """The environment ServiceProcess gives `serve`, for tests that run it themselves."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("LEOFLOW_")},
        "LEOFLOW_REDIS_URL": redis_url,
        "LEOFLOW_XCOM_SIGNING_KEY_FILE": str(key),
        "LEOFLOW_XCOM_LISTEN": f"127.0.0.1:{free_port()}",
        **env,
    }


def test_a_worker_that_keeps_dying_stops_the_replica_with_a_clear_line(
    signing_key_file: Path,
) -> None:
    # Nothing listens on this port: every worker fails its start at once.
    env = serve_env(
        f"redis://127.0.0.1:{free_port()}/0",
        signing_key_file,
        LEOFLOW_XCOM_PROCESSES="2",
        LEOFLOW_XCOM_STARTUP_TIMEOUT_SECONDS="0",
        LEOFLOW_XCOM_METRICS_LISTEN="",
    )
    done = subprocess.run([CLI, "serve"], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 1, done.stderr
    assert "serving on port" not in done.stdout
    assert "keeps dying" in done.stderr, done.stderr
    assert "STORE_UNAVAILABLE" in done.stderr, done.stderr


def test_sigterm_before_the_workers_serve_still_exits_cleanly(
    procs_redis: RedisProcess, signing_key_file: Path
) -> None:
    env = serve_env(
        procs_redis.url,
        signing_key_file,
        LEOFLOW_XCOM_PROCESSES="2",
        LEOFLOW_XCOM_METRICS_LISTEN="",
    )
    proc = subprocess.Popen(
        [CLI, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for("the workers are spawned", lambda: len(worker_pids(proc.pid)) == 2, 30)
        proc.send_signal(signal.SIGTERM)  # they are still importing: nothing serves yet
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_where_so_reuseport_does_not_balance(
    procs_redis: RedisProcess, signing_key_file: Path
) -> None:
    """On a platform without Linux's SO_REUSEPORT: an explicit LEOFLOW_XCOM_PROCESSES > 1
    fails with a clear line; the default falls back to one process and serves."""
    script = (
        "import sys\n"
        "from leoflow_xcom.server import reuseport\n"
        "reuseport.PLATFORM = 'darwin'\n"
        "from leoflow_xcom.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = serve_env(
        procs_redis.url,
        signing_key_file,
        LEOFLOW_XCOM_PROCESSES="2",
        LEOFLOW_XCOM_METRICS_LISTEN="",
    )
    refused = subprocess.run(
        [sys.executable, "-c", script, "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "LEOFLOW_XCOM_PROCESSES=2 needs SO_REUSEPORT" in refused.stderr
    assert "set LEOFLOW_XCOM_PROCESSES=1" in refused.stderr

    env.pop("LEOFLOW_XCOM_PROCESSES")
    fallback = subprocess.Popen(
        [sys.executable, "-c", script, "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert fallback.stdout is not None
        line = fallback.stdout.readline()
        assert "serving on port" in line
        with redis.Redis.from_url(procs_redis.url) as raw:
            assert raw.ping()
        assert worker_pids(fallback.pid) == set()  # one process: no workers
        fallback.send_signal(signal.SIGTERM)
        _, err = fallback.communicate(timeout=60)
        assert fallback.returncode == 0
        if os.cpu_count() and len(os.sched_getaffinity(0)) > 1:
            assert "one process instead of" in err
    finally:
        if fallback.poll() is None:
            fallback.kill()
            fallback.wait(10)


def test_workers_drain_and_leave_when_the_parent_is_killed(
    procs_redis: RedisProcess, signing_key_file: Path
) -> None:
    """No orphans left serving (and holding the port) without a supervisor."""
    service = start_service(procs_redis.url, signing_key_file, free_port())
    try:
        assert service.proc is not None
        workers = worker_pids(service.proc.pid)
        assert len(workers) == 2
        service.proc.kill()
        service.proc.wait(10)
        wait_for(
            "the orphaned workers exit",
            lambda: all(
                not Path(f"/proc/{pid}").exists() or _state(pid) == b"Z" for pid in workers
            ),
        )
        # The port is free again: a new replica can bind it alone.
        again = ServiceProcess(procs_redis.url, signing_key_file)
        again.port = service.port
        again.env["LEOFLOW_XCOM_LISTEN"] = service.target
        again.start()
        assert again.terminate() == 0
    finally:
        service.kill()
