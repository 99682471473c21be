"""Exact per-call latencies in HDR histograms: what Locust's integer-millisecond table cannot show.

Locust rounds every response time under 100 ms to a whole millisecond, so a 0.45 ms and a
1.4 ms call both read "1". This recorder keeps every duration in microseconds in an HDR
histogram per (step, request name): 3 significant digits, so every value below 2 ms is kept to
the microsecond and larger ones within 0.1 %. HDR histograms merge exactly (counts per bucket
add up), which is how workers' figures reach the master in distributed runs: a worker sends
its histograms encoded (the standard compressed HDR format) and starts afresh; the master adds
them to its own.

Pure: no Locust import, so the unit tests can load it into the pytest process.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 60_000_000  # one minute: longer than any call's deadline
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
# The step of a run without steps (every scenario but the capacity shape).
NO_STEP = ""
AGGREGATE = "Aggregated"


def _histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


@dataclasses.dataclass(frozen=True)
class Summary:
    step: str
    name: str
    count: int
    p50_us: int
    p90_us: int
    p99_us: int
    p999_us: int
    max_us: int

    def row(self) -> dict[str, str | int]:
        return dataclasses.asdict(self)


def _summary(step: str, name: str, h: HdrHistogram) -> Summary:
    p50, p90, p99, p999 = (int(h.get_value_at_percentile(p)) for p in PERCENTILES)
    return Summary(step, name, h.get_total_count(), p50, p90, p99, p999, int(h.get_max_value()))


class LatencyRecorder:
    """Histograms by (step, request name); `step` is set by the capacity shape."""

    def __init__(self) -> None:
        self._histograms: dict[tuple[str, str], HdrHistogram] = {}
        self.step = NO_STEP

    def record(self, name: str, seconds: float, step: str | None = None) -> None:
        """step: the step the call was made in, when it is reported later (default: now's)."""
        us = max(LOWEST_US, min(HIGHEST_US, round(seconds * 1_000_000)))
        key = (self.step if step is None else step, name)
        histogram = self._histograms.get(key)
        if histogram is None:
            histogram = self._histograms[key] = _histogram()
        histogram.record_value(us)

    def count(self, name: str, step: str | None = None) -> int:
        return sum(
            h.get_total_count()
            for (s, n), h in self._histograms.items()
            if n == name and (step is None or s == step)
        )

    # -- distributed runs: a worker drains, the master merges -------------------------------

    def drain(self) -> list[list[str]]:
        """Everything recorded since the last drain, encoded, and the recorder emptied."""
        encoded = [[s, n, h.encode().decode()] for (s, n), h in self._histograms.items()]
        self._histograms = {}
        return encoded

    def merge(self, encoded: Iterable[list[str]]) -> None:
        for step, name, payload in encoded:
            histogram = self._histograms.get((step, name))
            if histogram is None:
                histogram = self._histograms[(step, name)] = _histogram()
            histogram.decode_and_add(payload.encode())

    # -- results ------------------------------------------------------------------------------

    def summaries(self) -> list[Summary]:
        return [_summary(s, n, h) for (s, n), h in sorted(self._histograms.items())]

    def aggregate(self, step: str = NO_STEP) -> Summary | None:
        """All request names of a step in one histogram (exact, like Locust's Aggregated)."""
        parts = [h for (s, _n), h in self._histograms.items() if s == step]
        if not parts:
            return None
        total = _histogram()
        for part in parts:
            total.add(part)
        return _summary(step, AGGREGATE, total)

    def summary(self, name: str, step: str = NO_STEP) -> Summary | None:
        return next((s for s in self.summaries() if s.step == step and s.name == name), None)

    def write(self, directory: Path, stem: str = "latency_us") -> tuple[Path, Path]:
        """CSV and JSON beside Locust's own files; percentiles in microseconds."""
        directory.mkdir(parents=True, exist_ok=True)
        rows = [s.row() for s in self.summaries()]
        csv_path, json_path = directory / f"{stem}.csv", directory / f"{stem}.json"
        with csv_path.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=[f.name for f in dataclasses.fields(Summary)])
            writer.writeheader()
            writer.writerows(rows)
        total = self.aggregate()
        doc = {"unit": "us", "latencies": rows, "aggregate": total.row() if total else None}
        json_path.write_text(json.dumps(doc, indent=2) + "\n")
        return csv_path, json_path


def table(summaries: Iterable[Summary], extra: Mapping[str, str] | None = None) -> list[str]:
    """Printable lines: one per request name, percentiles in µs."""
    lines = [
        f"{'request':<34} {'calls':>8} {'p50':>7} {'p90':>7} {'p99':>7} {'p99.9':>7} {'max':>8}"
        "  (µs)"
    ]
    for s in summaries:
        label = f"{s.step} {s.name}".strip()
        note = f"  {extra[s.name]}" if extra and s.name in extra else ""
        lines.append(
            f"{label:<34} {s.count:>8} {s.p50_us:>7} {s.p90_us:>7} {s.p99_us:>7} "
            f"{s.p999_us:>7} {s.max_us:>8}{note}"
        )
    return lines
