"""SDK load for the failover scenarios: one writer thread per DAG run, each through one of the
service replicas, every push recorded with its call time and outcome.

A run's keys share one hash slot, so on a cluster each writer's pushes all land on one shard:
what a writer saw is what that shard did.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time

from leoflow_xcom.client import NO_RETRY, XComClient, XComError

WRITER_TASK = "b"  # test_dag's task "b": no schema on its keys
MAX_PUSHES_PER_WRITER = 20_000  # a hard cap, whatever the clock does


@dataclasses.dataclass
class Writer:
    run_id: str
    target: str
    token: str
    acknowledged: dict[str, int] = dataclasses.field(default_factory=dict)
    # (call start, call end, "CODE/REASON") of every refusal
    refusals: list[tuple[float, float, str]] = dataclasses.field(default_factory=list)
    # (call start, call end) of every acknowledged push
    successes: list[tuple[float, float]] = dataclasses.field(default_factory=list)

    def first_success_after(self, moment: float) -> float | None:
        """When the first push called after `moment` was acknowledged (a call in flight at
        `moment` may still complete: it does not show that the store is back)."""
        later = [end for start, end in list(self.successes) if start >= moment]
        return min(later) if later else None


def wait_until_all_back(
    writers: list[Writer], since: float, deadline: float, poll: float = 0.05
) -> float:
    """When the last of `writers` had its first acknowledged push after `since`; fails with
    what they were refused if that has not happened by `deadline`."""
    while True:
        firsts = [w.first_success_after(since) for w in writers]
        if all(f is not None for f in firsts):
            return max(f for f in firsts if f is not None)
        if time.monotonic() > deadline:
            seen = collections.Counter(c for w in writers for _, _, c in w.refusals)
            raise AssertionError(f"pushes never came back after the failover: {seen}")
        time.sleep(poll)


class Load:
    def __init__(self, writers: list[Writer], *, timeout: float = 3.0) -> None:
        self.writers = writers
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._write, args=(w, timeout), daemon=True) for w in writers
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
            assert not thread.is_alive(), "a writer thread hung past every deadline"

    def _write(self, writer: Writer, timeout: float) -> None:
        with XComClient(writer.target, writer.token, timeout=timeout, retry=NO_RETRY) as client:
            for i in range(MAX_PUSHES_PER_WRITER):
                if self._stop.is_set():
                    return
                key, started = f"k{i}", time.monotonic()
                try:
                    client.push(key, {"i": i})
                except XComError as exc:
                    writer.refusals.append(
                        (started, time.monotonic(), f"{exc.code.name}/{exc.reason}")
                    )
                    time.sleep(0.01)  # an agent would back off; keeps a dead shard's loop cheap
                else:
                    writer.acknowledged[key] = i
                    writer.successes.append((started, time.monotonic()))
