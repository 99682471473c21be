"""The sub-ms capacity shape: the offered rate raised step by step, bounded in steps and time.

A fixed number of paced hot-path users (session and unary, `--xcom-users`, default 4) starts at the
first rate per user; every `--xcom-step-seconds` the rate goes to the next one of
`--xcom-rates` (calls/s per user). The run stops after the last step, or after the first step
whose achieved rate fell clearly short of the offered one (saturated), so it is bounded by
steps x seconds. Each call is recorded in its step's exact histogram. At the end it prints, per
step, offered and achieved calls/s and the µs percentiles of push and fetch, then the sub-ms
capacity and the saturation rate, and writes capacity.json and capacity.png next to Locust's
report (loadtest/knee.py).

    locust -f loadtest/capacity.py --headless --xcom-limits failures SessionHotPathUser ...
    python -m loadtest.run --scenario capacity                 # `make loadtest` does this
"""

from __future__ import annotations

# Its users call from their own agent processes (loadtest/native.py): no gRPC channel in this
# process, so grpc is not switched to gevent here.
from typing import Any

from locust import LoadTestShape, events
from locust.env import Environment
from locust.runners import WorkerRunner

from loadtest import knee, listeners
from loadtest.users import SessionHotPathUser, UnaryHotPathUser  # noqa: F401

DEFAULT_RATES = "25,50,100,150,200,300,400,600"
DEFAULT_STEP_SECONDS = 8.0
DEFAULT_WARMUP_SECONDS = 4.0
WARMUP = "warm-up"  # the recorder's step for calls made before the first step
DEFAULT_USERS = 4
# Counted by Locust (all workers, a few seconds late in distributed runs): enough to see that
# a step fell short; the reported figures come from the exact histograms at the end.
STOP_WHEN_BELOW = knee.SATURATED_BELOW * 0.9


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _options(parser: Any) -> None:
    parser.add_argument(
        "--xcom-rates",
        default=DEFAULT_RATES,
        env_var="LEOFLOW_LOADTEST_RATES",
        help="calls/s per user, one step each, comma-separated",
    )
    parser.add_argument(
        "--xcom-users",
        type=int,
        default=DEFAULT_USERS,
        env_var="LEOFLOW_LOADTEST_USERS",
        help="paced users for every step (the shape's own: --users is Locust's)",
    )
    parser.add_argument(
        "--xcom-warmup-seconds",
        type=float,
        default=DEFAULT_WARMUP_SECONDS,
        env_var="LEOFLOW_LOADTEST_WARMUP_SECONDS",
        help="seconds at the first rate before the first step (not reported)",
    )
    parser.add_argument(
        "--xcom-step-seconds",
        type=float,
        default=DEFAULT_STEP_SECONDS,
        env_var="LEOFLOW_LOADTEST_STEP_SECONDS",
        help="seconds per step",
    )


class SubMsCapacityShape(LoadTestShape):
    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.log: list[tuple[str, float, float]] = []  # (label, offered calls/s, seconds)
        self._index = -1
        self._started = 0.0
        self._calls_at_start = 0

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        options = self.runner.environment.parsed_options
        assert options is not None
        rates = [float(r) for r in options.xcom_rates.split(",") if r.strip()]
        step_seconds = float(options.xcom_step_seconds)
        users = int(options.xcom_users)
        warmup = float(options.xcom_warmup_seconds)
        now = float(self.get_run_time())  # type: ignore[no-untyped-call]
        if now < warmup:
            # Users start their agent processes and settle in at the first rate; not a step.
            if self._index == -1:
                self._index = -2
                listeners.broadcast_step(self.runner.environment, WARMUP, rates[0])
            return users, float(users * 100)
        now -= warmup
        index = int(now // step_seconds)
        if index != self._index:
            if self._index >= 0 and self._end_step(now, users, rates[self._index]):
                return None
            if index >= len(rates):
                return None
            self._index, self._started = index, now
            self._calls_at_start = self._calls()
            listeners.broadcast_step(self.runner.environment, f"step {index + 1}", rates[index])
        return users, float(users * 100)  # all at once: the first step is not a ramp

    def _end_step(self, now: float, users: int, rate: float) -> bool:
        """Log the step that ended; True to stop (it fell clearly short of its rate)."""
        seconds = now - self._started
        offered = users * rate
        self.log.append((f"step {self._index + 1}", offered, seconds))
        achieved = (self._calls() - self._calls_at_start) / seconds if seconds else 0.0
        print(
            f"loadtest: step {self._index + 1}: offered {offered:.0f} calls/s, achieved "
            f"~{achieved:.0f}",
            flush=True,
        )
        return achieved < STOP_WHEN_BELOW * offered

    def _calls(self) -> int:
        assert self.runner is not None
        return int(self.runner.environment.stats.total.num_requests)


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _report(environment: Environment, **_: object) -> None:
    shape = environment.shape_class
    if isinstance(environment.runner, WorkerRunner) or not isinstance(shape, SubMsCapacityShape):
        return
    result = knee.analyse(knee.steps_from(listeners.RECORDER, shape.log))
    print("\nsub-ms capacity (exact HDR percentiles per step):")
    for line in result.lines():
        print(f"  {line}")
    for path in knee.write(result, listeners.out_dir(environment)):
        print(f"  written: {path}")
