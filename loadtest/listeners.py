"""Locust event wiring: exact latencies, workers -> master, the verdict and the output files.

- `request`: every successful call's exact duration into the recorder (loadtest/recorder.py).
- `report_to_master` / `worker_report`: in distributed runs each worker sends its histograms
  with its regular stats report and starts afresh; the master adds them up (exact).
- `quitting` (master or local runner): prints the µs table with the echo floor beside the hot
  path, writes it as CSV/JSON next to Locust's files, and sets the exit code from the limits
  of the scenarios that ran (loadtest/verdict.py).

Options (also as environment variables, for the Compose service):
  --xcom-rate / LEOFLOW_LOADTEST_RATE      offered calls/s per user; 0: unpaced
  --xcom-limits / LEOFLOW_LOADTEST_LIMITS  paced | stress | failures (default: paced when the
                                           rate is above 0, stress when unpaced)
  --xcom-out / LEOFLOW_LOADTEST_OUT        output directory (default build/loadtest)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtest import verdict
from loadtest.pacing import RATE
from loadtest.recorder import NO_STEP, LatencyRecorder, Summary, table

RECORDER = LatencyRecorder()
DEFAULT_RATE = 50.0
STEP_MESSAGE = "xcom-step"
STEP_CONTEXT = "xcom_step"  # in a request event's context
LIMITS = {"paced": verdict.PACED, "stress": verdict.STRESS, "failures": verdict.FAILURES}
# Hot-path request names shown beside their floor in the final table.
FLOORS = {
    "session: push": "echo: session push",
    "session: fetch": "echo: session fetch",
    "unary: push": "echo: unary push",
    "unary: fetch": "echo: unary fetch",
}


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _options(parser: Any) -> None:
    parser.add_argument(
        "--xcom-rate",
        type=float,
        default=DEFAULT_RATE,
        env_var="LEOFLOW_LOADTEST_RATE",
        help="offered gRPC calls per second per user (0: unpaced)",
    )
    parser.add_argument(
        "--xcom-limits",
        choices=sorted(LIMITS),
        default=None,
        env_var="LEOFLOW_LOADTEST_LIMITS",
        help="which limits decide the exit code (default: paced, or stress when unpaced)",
    )
    parser.add_argument(
        "--xcom-out",
        default="build/loadtest",
        env_var="LEOFLOW_LOADTEST_OUT",
        help="directory for the exact-latency CSV/JSON (and the capacity results)",
    )


@events.init.add_listener  # type: ignore[untyped-decorator]
def _init(environment: Environment, **_: object) -> None:
    options = environment.parsed_options
    if options is not None:
        RATE.per_user = float(options.xcom_rate)
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message(STEP_MESSAGE, _on_step)


def _on_step(environment: Environment, msg: Any, **_: object) -> None:
    set_step(str(msg.data["step"]), float(msg.data["rate"]))


def set_step(step: str, rate: float) -> None:
    RECORDER.step = step
    RATE.per_user = rate


def broadcast_step(environment: Environment, step: str, rate: float) -> None:
    """The capacity shape (on the master or the local runner) moves every process on."""
    set_step(step, rate)
    if isinstance(environment.runner, MasterRunner):
        environment.runner.send_message(STEP_MESSAGE, {"step": step, "rate": rate})


@events.request.add_listener  # type: ignore[untyped-decorator]
def _record(
    name: str,
    response_time: float,
    exception: BaseException | None,
    context: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    """A call reported after its round (the agent processes) carries the step it ran in."""
    if exception is None:
        step = (context or {}).get(STEP_CONTEXT)
        RECORDER.record(name, response_time / 1000, None if step is None else str(step))


@events.report_to_master.add_listener  # type: ignore[untyped-decorator]
def _send(client_id: str, data: dict[str, Any]) -> None:
    data["xcom_hdr"] = RECORDER.drain()


@events.worker_report.add_listener  # type: ignore[untyped-decorator]
def _receive(client_id: str, data: dict[str, Any]) -> None:
    RECORDER.merge(data.get("xcom_hdr", ()))


def out_dir(environment: Environment) -> Path:
    options = environment.parsed_options
    return Path(options.xcom_out if options is not None else "build/loadtest")


def counts(environment: Environment) -> dict[str, tuple[int, int]]:
    """Locust's own request and failure counts by name (all workers)."""
    return {
        name: (entry.num_requests, entry.num_failures)
        for (name, _method), entry in environment.stats.entries.items()
    }


def limits(environment: Environment) -> tuple[verdict.Scenario, ...]:
    options = environment.parsed_options
    chosen = getattr(options, "xcom_limits", None)
    if chosen is None:
        chosen = "paced" if RATE.per_user > 0 else "stress"
    return LIMITS[chosen]


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _quitting(environment: Environment, **_: object) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    summaries = [s for s in RECORDER.summaries() if s.step == NO_STEP]
    exact = {s.name: s for s in summaries}
    if summaries:
        print(f"\nexact latencies (HDR histograms, µs), offered {_offered(environment)}:")
        for line in table(summaries, _floor_notes(exact)):
            print(f"  {line}")
    csv_path, _json = RECORDER.write(out_dir(environment))
    print(f"  exact latencies written: {csv_path} and .json")
    result = verdict.evaluate(limits(environment), counts(environment), exact)
    for line in result.lines:
        print(f"loadtest: {line}")
    if result.failed:
        environment.process_exit_code = 1


def _offered(environment: Environment) -> str:
    if RATE.per_user <= 0:
        return "unpaced (calls back to back)"
    return f"{RATE.per_user:g} calls/s per user"


def _floor_notes(exact: dict[str, Summary]) -> dict[str, str]:
    """'ours: p50 +X µs over its echo floor' beside each hot-path name that has one."""
    notes = {}
    for name, floor_name in FLOORS.items():
        ours, floor = exact.get(name), exact.get(floor_name)
        if ours and floor:
            notes[name] = (
                f"floor {floor_name}: p50 {floor.p50_us} µs; ours {ours.p50_us - floor.p50_us:+} µs"
            )
    return notes
