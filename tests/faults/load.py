"""Sustained concurrent pushes for the fault scenarios, and the figures each scenario prints.

Several writer threads push distinct keys in a bounded loop (a deadline and a cap on
iterations), each through its own SDK client, and record what was acknowledged, what was
refused (by reason) and when. After the fault, `audit` reads Redis directly: every
acknowledged key must hold its value, and index, meta and values must agree.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable

import redis

from leoflow_xcom.client import NO_RETRY, XComClient, XComError
from leoflow_xcom.core import keys

WRITER_TASK = "b"  # test_dag's task "b": no schema on its keys
MAX_PUSHES_PER_WRITER = 20_000  # a hard cap, whatever the clock does
# Every figure line of the session, repeated in pytest's terminal summary (conftest.py) so a
# run without `-s` still shows them.
PRINTED: list[str] = []


@dataclasses.dataclass
class Tally:
    acknowledged: dict[str, int] = dataclasses.field(default_factory=dict)  # key -> value
    acknowledged_at: dict[str, float] = dataclasses.field(default_factory=dict)  # monotonic
    errors: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    successes: list[float] = dataclasses.field(default_factory=list)  # monotonic times
    slowest: dict[str, float] = dataclasses.field(default_factory=dict)  # code -> seconds
    # (call start, "CODE/REASON") of every refusal, to tell in-flight calls from later ones
    refusals: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def first_success_after(self, moment: float) -> float | None:
        with self.lock:
            later = [t for t in self.successes if t >= moment]
        return min(later) - moment if later else None

    def refused_between(self, start: float, end: float) -> collections.Counter[str]:
        with self.lock:
            return collections.Counter(code for t, code in self.refusals if start <= t < end)


class Load:
    """`writers` threads pushing `{"w": n, "i": i}` as key `w<n>-<i>` until `stop()`."""

    def __init__(
        self,
        target: str,
        token: Callable[[], str],
        *,
        writers: int = 6,
        timeout: float = 3.0,
        pause: float = 0.0,
    ) -> None:
        self.tally = Tally()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._write, args=(n, target, token(), timeout, pause), daemon=True
            )
            for n in range(writers)
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

    def _write(self, n: int, target: str, token: str, timeout: float, pause: float) -> None:
        tally = self.tally
        with XComClient(target, token, timeout=timeout, retry=NO_RETRY) as client:
            for i in range(MAX_PUSHES_PER_WRITER):
                if self._stop.is_set():
                    return
                key, started = f"w{n}-{i}", time.monotonic()
                try:
                    client.push(key, {"w": n, "i": i})
                except XComError as exc:
                    with tally.lock:
                        tally.errors[f"{exc.code.name}/{exc.reason}"] += 1
                        tally.refusals.append((started, f"{exc.code.name}/{exc.reason}"))
                        code = f"{exc.code.name}/{exc.reason}"
                        took = time.monotonic() - started
                        tally.slowest[code] = round(max(tally.slowest.get(code, 0.0), took), 3)
                    time.sleep(0.01)  # an agent would back off; keeps a dead store's loop cheap
                else:
                    with tally.lock:
                        now = time.monotonic()
                        tally.acknowledged[key] = i
                        tally.acknowledged_at[key] = now
                        tally.successes.append(now)
                if pause:
                    time.sleep(pause)


@dataclasses.dataclass(frozen=True)
class Audit:
    acknowledged: int
    present: int
    lost: int
    lost_keys: tuple[str, ...]
    dangling_index: int  # index member without its value or meta
    orphan_values: int  # value without an index member


def audit(raw: redis.Redis, dag_id: str, run_id: str, tally: Tally) -> Audit:
    """Reads the run straight from Redis, in pipelined batches."""
    run = keys.run_keys(dag_id, run_id)
    acked = sorted(tally.acknowledged.items())
    missing: list[str] = []
    for start in range(0, len(acked), 500):
        batch = acked[start : start + 500]
        pipe = raw.pipeline(transaction=False)
        for key, _ in batch:
            pipe.get(run.value(keys.member(WRITER_TASK, -1, key)))
        for (key, i), got in zip(batch, pipe.execute(), strict=True):
            if got is None or f'"i":{i}' not in got.decode().replace(" ", ""):
                missing.append(key)
    indexed = {_text(m) for m in raw.zrange(run.index, 0, -1)}
    metas = {_text(m) for m in raw.hkeys(run.meta)} - {
        keys.RUN_INFO_FIELD,
        keys.RUN_FIRST_PUSH_FIELD,
    }
    values = {
        k.decode()[len(run.tag) + 3 :]
        for k in raw.scan_iter(match=f"{_glob(run.tag)}:v:*", count=1000)
    }
    dangling = len(indexed - values) + len(indexed - metas)
    orphans = len(values - indexed) + len(metas - indexed)
    present = len(acked) - len(missing)
    return Audit(len(acked), present, len(missing), tuple(missing), dangling, orphans)


def _text(reply: object) -> str:
    assert isinstance(reply, bytes)
    return reply.decode()


def _glob(text: str) -> str:
    """Escapes glob characters in the hash-tag prefix (it contains `{` and `}`... and `[`)."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def figures(name: str, result: Audit, tally: Tally, **extra: object) -> str:
    errors = ",".join(f"{k}={v}" for k, v in sorted(tally.errors.items())) or "none"
    rest = " ".join(f"{k}={v}" for k, v in extra.items())
    line = (
        f"FAULT {name}: acknowledged={result.acknowledged} present={result.present} "
        f"lost={result.lost} dangling_index={result.dangling_index} "
        f"orphan_values={result.orphan_values} errors[{errors}] {rest}"
    ).rstrip()
    print(line, flush=True)
    PRINTED.append(line)
    return line
