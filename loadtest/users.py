"""The Locust users. Request names start with their scenario ("session: push"), which is how
loadtest/verdict.py groups them.

The hot-path users make their gRPC calls in a plain Python process of their own, on an
ordinary OS thread (loadtest/native.py runs loadtest/hotpath.py's `Agent`): Locust's gevent
loop decides when each round runs and at what rate, and turns every timed call into a request
event, but is not inside the measured path.

- SessionHotPathUser: realistic DAG runs through the SDK's default transport (`XComClient`,
  one XComSession stream per task instance, as an agent does): lazy fetches of upstream
  outputs, fan-in of a mapped upstream in one call, pushes of 100 B-64 KB. A new client
  connects on its first call; that call is reported apart ("session: first call (connects)").
- UnaryHotPathUser: the same runs as unary RPCs on one channel per user.
- EchoFloorUser: the bench-only echo on the same server (only `python -m bench.server` serves
  it), through the SDK's session machinery and as unary calls, from the same kind of process
  and thread: what gRPC, the client's threads and the machine add with no work behind them.
  Against a target without it the user stops and the scenario is reported skipped.
- SizeSweepUser: pushes up to the 256 KiB limit and one byte over (refused, as expected), from
  the Locust process itself (the locustfile switches grpc to gevent for it).
- UiBrowserUser: the read-only HTTP proxy (Airflow's /api/v1 xcomEntries); only when
  LEOFLOW_UI_URL is set.
"""

from __future__ import annotations

import collections
import json
import os
import random
import time
import uuid
from typing import Any
from urllib.parse import quote

import grpc
from locust import HttpUser, User, between, constant, task
from locust.exception import StopUser

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.core import tokens
from leoflow_xcom.core.limits import MAX_VALUE_BYTES
from loadtest import dags, hotpath, listeners, native
from loadtest.agents import SPARE, AgentProcess, target_of
from loadtest.grpc_user import DEADLINE_SECONDS, EXPECT, GrpcUser
from loadtest.pacing import RATE, Pacer

# Task instances the hot path finished, for the UI scenario to browse: (dag_id, run_id, task_id).
RECENT: collections.deque[tuple[str, str, str]] = collections.deque(maxlen=200)


class _NativeUser(User):
    """Runs `kind` rounds in its own process (loadtest/native.py) and reports every call."""

    abstract = True
    wait_time = constant(0)  # the agent's pacer spaces the calls
    kind = ""
    # The target without a flag: the SDK's own variable (the Compose service sets it); --host
    # or Locust's web form win when given.
    host = os.environ.get("LEOFLOW_XCOM_ADDR")

    def on_start(self) -> None:
        hotpath.signing_key(os.environ.get("LEOFLOW_XCOM_SIGNING_KEY_FILE"))  # fail early
        target = target_of(self.host)
        spare = next((a for a in SPARE if a.target == target), None)
        if spare is not None:
            SPARE.remove(spare)
        self._agent = spare or AgentProcess(target)
        self._agent.wait_ready()
        self._stream = self._agent.stream

    def on_stop(self) -> None:
        if hasattr(self, "_agent"):
            self._agent.close()

    stop_after_error = False

    @task
    def round(self) -> None:
        if self.stop_after_error:
            raise StopUser()
        # The rate holds for the whole round: its calls belong to the step it started in.
        self._step = listeners.RECORDER.step
        command = {"kind": self.kind, "rate": RATE.per_user}
        self._stream.write(json.dumps(command).encode() + b"\n")
        self._stream.flush()
        for line in self._stream:
            answer = native.decode(line)
            if "outcome" in answer:
                self._report(answer["outcome"])
            elif "finished" in answer:
                done = answer["finished"]
                RECENT.append((done.dag_id, done.run_id, done.task_id))
            elif "skip" in answer:
                print(f"loadtest: echo floor skipped: {answer['skip']} (`make loadtest` serves it)")
                raise StopUser()
            elif answer.get("done"):
                return
        # Once, as a Locust error (the run's exit code is 1); the user stops after it.
        self.stop_after_error = True
        code = self._agent.process.wait()
        raise RuntimeError(f"the {self.kind} agent process ended (exit code {code})")

    def _report(self, outcome: hotpath.Outcome) -> None:
        self.environment.events.request.fire(
            request_type=outcome.kind,
            name=outcome.name,
            response_time=outcome.seconds * 1000,
            response_length=outcome.length,
            exception=CallFailedError(outcome.error) if outcome.error else None,
            context={listeners.STEP_CONTEXT: self._step},
        )


class CallFailedError(Exception):
    """A call the agent process saw fail (its error type and message)."""


class SessionHotPathUser(_NativeUser):
    weight = 2
    kind = "session"


class UnaryHotPathUser(_NativeUser):
    weight = 2
    kind = "unary"


class EchoFloorUser(_NativeUser):
    """The floor under the hot-path figures, measured the same way in the same run."""

    weight = 1
    kind = "echo"


class GeventEchoUser(GrpcUser):
    """The old way, for comparison: the unary echo called from Locust's own process (gevent
    loop, grpc switched to gevent, timed by the interceptor). Beside `echo: unary ...` in the
    same run it shows what calling from inside Locust would add to every figure. Opt-in
    (`python -m loadtest.run --gevent-echo`); skipped like the echo floor without the echo."""

    weight = 1
    abstract = False
    wait_time = constant(0)

    def on_start(self) -> None:
        try:
            from bench import echo
        except ImportError:
            print("loadtest: gevent echo skipped: the bench package is not installed here")
            raise StopUser() from None
        self.pacer = Pacer()
        self.calls = [
            (
                self.channel.unary_unary(
                    method,
                    request_serializer=kind.SerializeToString,
                    response_deserializer=reply.FromString,
                ),
                request,
                name,
            )
            for method, kind, reply, request, name in (
                (
                    echo.PUSH,
                    pb.PushXComRequest,
                    pb.PushXComResponse,
                    pb.PushXComRequest(key="echo", value=dags.padded(hotpath.ECHO_VALUE_BYTES)),
                    "gevent echo: unary push",
                ),
                (
                    echo.FETCH,
                    pb.FetchXComRequest,
                    pb.FetchXComResponse,
                    pb.FetchXComRequest(task_id="echo", key=str(hotpath.ECHO_VALUE_BYTES)),
                    "gevent echo: unary fetch",
                ),
            )
        ]

    @task
    def floor(self) -> None:
        for method, request, name in self.calls:
            self.pacer.wait()
            try:
                method(request, timeout=DEADLINE_SECONDS, metadata=(("x-loadtest-name", name),))
            except grpc.RpcError as exc:
                if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    print("loadtest: gevent echo skipped: the target does not serve the echo")
                    raise StopUser() from None


def _metadata(token: str, name: str, expect: str | None = None) -> tuple[tuple[str, str], ...]:
    md = [("authorization", f"Bearer {token}"), ("x-loadtest-name", name)]
    if expect:
        md.append((EXPECT, expect))
    return tuple(md)


class SizeSweepUser(GrpcUser):
    weight = 1
    wait_time = between(0.0, 0.01)
    SIZES = (1_000, 16_000, 64_000, 128_000, MAX_VALUE_BYTES - 1, MAX_VALUE_BYTES)

    def on_start(self) -> None:
        self.key = hotpath.signing_key(os.environ.get("LEOFLOW_XCOM_SIGNING_KEY_FILE"))
        self.stub = pb_grpc.XComServiceStub(self.channel)
        self.pacer = Pacer()
        self.done: collections.deque[str] = collections.deque()

    def call(self, method: Any, request: Any, token: str, name: str, expect: str = "") -> None:
        self.pacer.wait()
        try:
            method(request, timeout=DEADLINE_SECONDS, metadata=_metadata(token, name, expect))
        except grpc.RpcError:
            pass  # already reported to Locust by the interceptor

    @task
    def sweep(self) -> None:
        run_id = f"sweep__{uuid.uuid4().hex[:12]}"
        token = tokens.mint(
            self.key, now=int(time.time()), expires_in=3600, dag_id="etl_daily",
            run_id=run_id, task_id="load", map_index=-1,
        )  # fmt: skip
        for size in self.SIZES:
            request = pb.PushXComRequest(key=f"size_{size}", value=dags.padded(size))
            self.call(self.stub.PushXCom, request, token, f"sweep: push {size} B")
        over = pb.PushXComRequest(key="over", value=dags.padded(MAX_VALUE_BYTES + 1))
        self.call(
            self.stub.PushXCom, over, token, "sweep: push limit+1 (refused)", "INVALID_ARGUMENT"
        )
        self._finish_run(run_id)

    def _finish_run(self, run_id: str) -> None:
        """Clear the oldest sweep runs (as the control plane does), keeping Redis from filling."""
        self.done.append(run_id)
        while len(self.done) > hotpath.DONE_KEPT:
            token = tokens.mint(self.key, now=int(time.time()), expires_in=600, control_plane=True)
            request = pb.ClearXComsRequest(dag_id="etl_daily", run_id=self.done.popleft())
            self.call(self.stub.ClearXComs, request, token, "sweep: clear run")


class UiBrowserUser(HttpUser):
    """Browses through the proxy (contract: Airflow 2 stable REST API xcomEntries routes)."""

    weight = 1
    wait_time = between(0.05, 0.2)
    abstract = not os.environ.get("LEOFLOW_UI_URL")
    host = os.environ.get("LEOFLOW_UI_URL")

    def on_start(self) -> None:
        # Its own address: --host (or LEOFLOW_XCOM_ADDR) is the gRPC service's.
        self.client.base_url = os.environ["LEOFLOW_UI_URL"]
        self.client.auth = (
            os.environ.get("LEOFLOW_UI_USER", ""),
            os.environ.get("LEOFLOW_UI_PASSWORD", ""),
        )

    @task
    def browse(self) -> None:
        if not RECENT:
            time.sleep(0.1)
            return
        dag_id, run_id, task_id = random.choice(RECENT)
        base = (
            f"/api/v1/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
            f"/taskInstances/{quote(task_id, safe='')}/xcomEntries"
        )
        with self.client.get(base, name="ui: list entries", catch_response=True) as reply:
            if reply.status_code != 200 or "xcom_entries" not in reply.json():
                reply.failure(f"list: HTTP {reply.status_code}")
                return
        self.client.get(f"{base}/return_value", name="ui: get entry")
