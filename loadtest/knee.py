"""The capacity shape's result: per step offered and achieved calls/s and exact percentiles;
the sub-ms capacity (the highest offered rate at which every hot-path push and fetch keeps p50
and p99 under 1 ms) and the saturation rate (the first step whose achieved rate fell short of
the offered one by more than SATURATED_BELOW).

Pure apart from writing the files (no Locust import; matplotlib only for the plot).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from loadtest.recorder import LatencyRecorder, Summary

SUB_MS_US = 1_000
SATURATED_BELOW = 0.9  # achieved / offered under this: the target (or Locust) is saturated
HOT_NAMES = ("session: push", "session: fetch", "unary: push", "unary: fetch")


@dataclasses.dataclass(frozen=True)
class Step:
    label: str
    offered: float  # calls/s, all users
    seconds: float
    calls: int  # successful calls of every name in the step
    latencies: dict[str, Summary]

    @property
    def achieved(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    @property
    def saturated(self) -> bool:
        return self.achieved < SATURATED_BELOW * self.offered

    def sub_ms(self) -> bool:
        hot = [self.latencies[n] for n in HOT_NAMES if n in self.latencies]
        return bool(hot) and all(s.p50_us < SUB_MS_US and s.p99_us < SUB_MS_US for s in hot)


@dataclasses.dataclass(frozen=True)
class Result:
    steps: list[Step]
    sub_ms_capacity: float | None  # offered calls/s
    saturation: float | None  # offered calls/s of the first saturated step
    max_achieved: float

    def lines(self) -> list[str]:
        out = ["step       offered   achieved  " + "  ".join(f"{n:>22}" for n in HOT_NAMES)]
        out.append(" " * 31 + "  ".join(f"{'p50/p99 µs':>22}" for _ in HOT_NAMES))
        for s in self.steps:
            cells = []
            for name in HOT_NAMES:
                got = s.latencies.get(name)
                cells.append(f"{f'{got.p50_us}/{got.p99_us}' if got else '-':>22}")
            mark = " saturated" if s.saturated else ""
            out.append(
                f"{s.label:<9} {s.offered:>8.0f} {s.achieved:>10.0f}  " + "  ".join(cells) + mark
            )
        capacity = f"{self.sub_ms_capacity:.0f} calls/s" if self.sub_ms_capacity else "none"
        saturation = f"{self.saturation:.0f} calls/s offered" if self.saturation else "not reached"
        out.append(
            f"sub-ms capacity: {capacity} (push and fetch p50 and p99 < 1 ms); "
            f"saturation: {saturation}; max achieved {self.max_achieved:.0f} calls/s"
        )
        return out


def steps_from(recorder: LatencyRecorder, log: list[tuple[str, float, float]]) -> list[Step]:
    """log: (step label, offered calls/s, seconds) in order."""
    by_step: dict[str, dict[str, Summary]] = {}
    for summary in recorder.summaries():
        by_step.setdefault(summary.step, {})[summary.name] = summary
    out = []
    for label, offered, seconds in log:
        latencies = by_step.get(label, {})
        calls = sum(s.count for s in latencies.values())
        out.append(Step(label, offered, seconds, calls, latencies))
    return out


def analyse(steps: list[Step]) -> Result:
    capacity = None
    saturation = None
    for step in steps:
        if saturation is None and step.saturated:
            saturation = step.offered
        if step.sub_ms() and not step.saturated and saturation is None:
            capacity = step.offered
    top = max((s.achieved for s in steps), default=0.0)
    return Result(steps, capacity, saturation, top)


def write(result: Result, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    doc = {
        "unit": {"rates": "calls/s", "latency": "us"},
        "sub_ms_capacity": result.sub_ms_capacity,
        "saturation": result.saturation,
        "max_achieved": result.max_achieved,
        "steps": [
            {
                "step": s.label,
                "offered": s.offered,
                "achieved": round(s.achieved, 1),
                "seconds": round(s.seconds, 2),
                "saturated": s.saturated,
                "latencies": {n: dataclasses.asdict(v) for n, v in s.latencies.items()},
            }
            for s in result.steps
        ],
    }
    json_path = directory / "capacity.json"
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    written = [json_path]
    png = plot(result, directory / "capacity.png")
    if png is not None:
        written.append(png)
    return written


def plot(result: Result, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("loadtest: matplotlib is not installed: no capacity plot (pip install matplotlib)")
        return None
    fig, ax = plt.subplots(figsize=(9, 5))
    offered = [s.offered for s in result.steps]
    for colour, name in enumerate(HOT_NAMES):  # one colour per request, p50 solid, p99 dashed
        for pct, style in (("p50_us", "-"), ("p99_us", "--")):
            ys = [s.latencies[name].__dict__[pct] / 1000 if name in s.latencies else None
                  for s in result.steps]  # fmt: skip
            points = [(x, y) for x, y in zip(offered, ys, strict=True) if y is not None]
            if points:
                xs, vals = zip(*points, strict=True)
                ax.plot(xs, vals, style, color=f"C{colour}", marker="o", label=f"{name} {pct[:-3]}")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    if result.sub_ms_capacity:
        ax.axvline(result.sub_ms_capacity, color="green", linestyle=":", label="sub-ms capacity")
    if result.saturation:
        ax.axvline(result.saturation, color="red", linestyle=":", label="saturation")
    ax.set_xlabel("offered rate (calls/s, all users)")
    ax.set_ylabel("latency (ms, exact HDR percentiles)")
    ax.set_yscale("log")
    ax.set_title("XCom hot path: latency against offered rate")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
