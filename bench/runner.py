"""Runs scenarios on a pool of client processes against one stack and measures CPU per call."""

from __future__ import annotations

import dataclasses
import multiprocessing
import multiprocessing.connection
import time
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.process import BaseProcess

import psutil

from bench import stack as stack_mod
from bench import workload
from bench.echo import value_of
from bench.stats import Series, merge, summarize
from leoflow_xcom.client import XComClient


class ClientPool:
    """`size` spawned client processes; a run with k clients uses the first k."""

    def __init__(self, size: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conns: list[multiprocessing.connection.Connection] = []
        self.processes: list[BaseProcess] = []
        for _ in range(size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=workload.serve, args=(child,), daemon=True)
            proc.start()
            self._conns.append(parent)
            self.processes.append(proc)

    def start(self, jobs: list[workload.Job]) -> tuple[float, float]:
        """Send the jobs, wait until every client has warmed up, open the shared window."""
        conns = self._conns[: len(jobs)]
        for conn, job in zip(conns, jobs, strict=True):
            conn.send(job)
        for conn in conns:
            ready = conn.recv()
            if ready != "ready":  # the client failed while warming up
                raise RuntimeError(f"bench client failed to start: {ready}")
        start_at = time.time() + 0.05
        window = (start_at, start_at + jobs[0].seconds)
        for conn in conns:
            conn.send(window)
        return window

    def results(self, count: int) -> list[workload.Result]:
        return [conn.recv() for conn in self._conns[:count]]

    def close(self) -> None:
        for conn in self._conns:
            conn.send(None)
        for proc in self.processes:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()


class Runner:
    def __init__(self, stack: stack_mod.Stack, pool: ClientPool, payload: int) -> None:
        self.stack = stack
        self.pool = pool
        self.payload = payload
        self._service = psutil.Process(stack.service.pid)
        assert stack.redis.proc is not None
        self._redis = psutil.Process(stack.redis.proc.pid)
        self._prepared: set[str] = set()

    def _prepare(self, run_id: str) -> tuple[str, str]:
        """Tokens for the run, and the value the fetch scenarios read, pushed once."""
        push = self.stack.token(workload.DAG_ID, run_id, workload.PUSH_TASK)
        fetch = self.stack.token(workload.DAG_ID, run_id, workload.FETCH_TASK)
        if run_id not in self._prepared:
            with XComClient(self.stack.target, push, transport="unary") as client:
                client.push_json(workload.FETCH_KEY, value_of(self.payload))
            self._prepared.add(run_id)
        return push, fetch

    def measure(self, scenario: str, clients: int, seconds: float) -> Raw:
        jobs = []
        for index in range(clients):
            run_id = f"bench-{index}"
            push, fetch = self._prepare(run_id)
            jobs.append(
                workload.Job(
                    scenario=scenario,
                    target=self.stack.target,
                    redis_url=self.stack.redis.url,
                    run_id=run_id,
                    push_token=push,
                    fetch_token=fetch,
                    payload=self.payload,
                    seconds=seconds,
                    warmup=200 if clients == 1 else 50,
                )
            )
        start_at, stop_at = self.pool.start(jobs)
        _sleep_until(start_at)
        service0, redis0 = _cpu(self._service), _cpu(self._redis)
        _sleep_until(stop_at)
        service1, redis1 = _cpu(self._service), _cpu(self._redis)
        results = self.pool.results(len(jobs))
        return Raw(
            scenario,
            clients,
            [r.latencies for r in results],
            sum(r.errors for r in results),
            seconds,
            (service1 - service0, sum(r.cpu_seconds for r in results), redis1 - redis0),
            next((r.first_error for r in results if r.first_error), ""),
        )


@dataclasses.dataclass
class Raw:
    """One scenario's samples, possibly gathered over several interleaved rounds."""

    scenario: str
    clients: int
    chunks: list[bytes]
    errors: int
    seconds: float
    cpu: tuple[float, float, float]  # service, clients, redis: CPU seconds in the window
    first_error: str

    def add(self, other: Raw) -> Raw:
        return Raw(
            self.scenario,
            self.clients,
            self.chunks + other.chunks,
            self.errors + other.errors,
            self.seconds + other.seconds,
            (
                self.cpu[0] + other.cpu[0],
                self.cpu[1] + other.cpu[1],
                self.cpu[2] + other.cpu[2],
            ),
            self.first_error or other.first_error,
        )

    def summary(self) -> tuple[Series, list[float]]:
        ms = merge(self.chunks)
        return (
            summarize(
                self.scenario,
                self.clients,
                ms,
                self.errors,
                self.seconds,
                self.cpu,
                self.first_error,
            ),
            ms,
        )


def side_by_side(
    runners: Mapping[str, Runner],
    scenarios: Sequence[str],
    clients: int,
    rounds: int,
    seconds: float,
    progress: Callable[[str], None],
    section: str,
    alternate: bool = False,
) -> list[Series]:
    """Each scenario on each runner, interleaved round after round so noise lands on all
    alike (`alternate`: the order of the runners reversed every other round, so a drift in
    load favours none); one series per runner and scenario, named `<runner>:<scenario>`."""
    gathered: dict[tuple[str, str], Raw] = {}
    labels = list(runners)
    for round_no in range(rounds):
        for name in scenarios:
            order = labels[::-1] if alternate and round_no % 2 else labels
            for label in order:
                raw = runners[label].measure(name, clients, seconds)
                key = (label, name)
                gathered[key] = gathered[key].add(raw) if key in gathered else raw
                progress(f"{section} round {round_no + 1}/{rounds} {label} {name}")
    return [
        dataclasses.replace(raw.summary()[0], scenario=f"{label}:{name}")
        for (label, name), raw in gathered.items()
    ]


def _cpu(proc: psutil.Process) -> float:
    """CPU seconds of the process and its live children (a service with worker processes is
    counted whole; a worker that exits inside a window takes its share with it)."""
    total = 0.0
    for p in (proc, *proc.children(recursive=True)):
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _sleep_until(when: float) -> None:
    delay = when - time.time()
    if delay > 0:
        time.sleep(delay)
