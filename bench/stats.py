"""Latency summaries: nearest-rank percentiles over every sample of a run, in milliseconds."""

from __future__ import annotations

import array
import dataclasses
import math
from collections.abc import Sequence

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclasses.dataclass(frozen=True)
class Series:
    scenario: str
    clients: int
    calls: int
    errors: int
    seconds: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    throughput: float  # calls per second, all clients together
    service_cpu_us: float  # service process CPU per call (µs)
    client_cpu_us: float  # client processes' CPU per call (µs)
    redis_cpu_us: float
    first_error: str = ""

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def percentile(sorted_ms: Sequence[float], p: float) -> float:
    if not sorted_ms:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_ms)))
    return sorted_ms[rank - 1]


def merge(chunks: Sequence[bytes]) -> list[float]:
    """All clients' samples (array('d') bytes, seconds) as one sorted list of milliseconds."""
    samples = array.array("d")
    for chunk in chunks:
        samples.frombytes(chunk)
    return sorted(s * 1000 for s in samples)


def summarize(
    scenario: str,
    clients: int,
    ms: Sequence[float],
    errors: int,
    seconds: float,
    cpu: tuple[float, float, float],
    first_error: str = "",
) -> Series:
    """ms: every sample, sorted, in milliseconds (see merge)."""
    calls = len(ms)
    per_call = [c / calls * 1e6 if calls else math.nan for c in cpu]
    p50, p90, p99, p999 = (percentile(ms, p) for p in PERCENTILES)
    return Series(
        scenario=scenario,
        clients=clients,
        calls=calls,
        errors=errors,
        seconds=seconds,
        p50=p50,
        p90=p90,
        p99=p99,
        p999=p999,
        max=ms[-1] if ms else math.nan,
        throughput=calls / seconds if seconds else math.nan,
        service_cpu_us=per_call[0],
        client_cpu_us=per_call[1],
        redis_cpu_us=per_call[2],
        first_error=first_error,
    )


def cdf_points(sorted_ms: Sequence[float], points: int = 400) -> tuple[list[float], list[float]]:
    n = len(sorted_ms)
    if n == 0:
        return [], []
    step = max(1, n // points)
    xs = [sorted_ms[i] for i in range(0, n, step)] + [sorted_ms[-1]]
    ys = [i / n for i in range(0, n, step)] + [1.0]
    return xs, ys
