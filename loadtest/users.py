"""The Locust users. Request names start with their scenario ("session: push"), which is how
loadtest/verdict.py groups them.

- SessionHotPathUser: realistic DAG runs through the SDK's default transport (`XComClient`,
  one XComSession stream per task instance, as an agent does): lazy fetches of upstream
  outputs, fan-in of a mapped upstream in one call, pushes of 100 B-64 KB. A new client
  connects on its first call; that call is reported apart ("session: first call (connects)").
- UnaryHotPathUser: the same runs as unary RPCs on one channel per user.
- EchoFloorUser: the bench-only echo on the same server (only `python -m bench.server` serves
  it): the SDK's session machinery and a unary call with no work behind them, i.e. what
  Locust, gevent and gRPC add. Against a target without it the user stops and the scenario is
  reported skipped.
- SizeSweepUser: pushes up to the 256 KiB limit and one byte over (refused, as expected).
- UiBrowserUser: the read-only HTTP proxy (Airflow's /api/v1 xcomEntries); only when
  LEOFLOW_UI_URL is set.

Every gRPC call waits for its slot (loadtest/pacing.py) when the run is paced. The locustfile
switches grpc to gevent before importing this module (before any channel exists).
"""

from __future__ import annotations

import collections
import os
import random
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import grpc
from locust import HttpUser, between, constant, task
from locust.env import Environment
from locust.exception import StopUser

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.client import NO_RETRY, XComClient
from leoflow_xcom.client._channel import open_channel
from leoflow_xcom.client._core import SessionOp
from leoflow_xcom.client._session import SessionTransport
from leoflow_xcom.core import tokens
from leoflow_xcom.core.errors import XComError
from leoflow_xcom.core.limits import MAX_VALUE_BYTES
from loadtest import dags
from loadtest.grpc_user import DEADLINE_SECONDS, EXPECT, GrpcUser
from loadtest.pacing import Pacer

DAGS = dags.load()
# Runs the hot path finished, for the UI scenario to browse: (dag_id, run_id, task_id).
RECENT: collections.deque[tuple[str, str, str]] = collections.deque(maxlen=200)
# Finished runs, oldest first; beyond DONE_KEPT they are cleared.
DONE: collections.deque[tuple[str, str]] = collections.deque()
DONE_KEPT = 200
ECHO_VALUE_BYTES = 1_000


def _signing_key() -> bytes:
    path = os.environ.get("LEOFLOW_XCOM_SIGNING_KEY_FILE")
    if not path:
        raise SystemExit("loadtest: set LEOFLOW_XCOM_SIGNING_KEY_FILE to mint task tokens")
    with open(path) as key_file:
        return key_file.read().strip().encode()


def _metadata(token: str, name: str, expect: str | None = None) -> tuple[tuple[str, str], ...]:
    md = [("authorization", f"Bearer {token}"), ("x-loadtest-name", name)]
    if expect:
        md.append((EXPECT, expect))
    return tuple(md)


class _XComUser(GrpcUser):
    abstract = True
    wait_time = constant(0)  # the pacer spaces the calls
    scenario = ""

    def on_start(self) -> None:
        self.key = _signing_key()
        self.stub = pb_grpc.XComServiceStub(self.channel)
        self.rng = random.Random()
        self.pacer = Pacer()

    def token(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        return tokens.mint(
            self.key,
            now=int(time.time()),
            expires_in=3600,
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            map_index=map_index,
        )

    def call(self, method: Any, request: Any, token: str, name: str, expect: str = "") -> None:
        self.pacer.wait()
        try:
            method(request, timeout=DEADLINE_SECONDS, metadata=_metadata(token, name, expect))
        except grpc.RpcError:
            pass  # already reported to Locust by the interceptor

    def finish_run(self, dag_id: str, run_id: str) -> None:
        """Keep the run browsable by the UI scenario for a while, then clear the oldest runs:
        the control plane's clean-up, which keeps Redis (noeviction, 512 MB in the shipped
        redis.conf) from filling up during long runs, as real runs age out by TTL."""
        DONE.append((dag_id, run_id))
        while len(DONE) > DONE_KEPT:
            old_dag, old_run = DONE.popleft()
            token = tokens.mint(self.key, now=int(time.time()), expires_in=600, control_plane=True)
            request = pb.ClearXComsRequest(dag_id=old_dag, run_id=old_run)
            self.call(self.stub.ClearXComs, request, token, f"{self.scenario}: clear run")


class SessionHotPathUser(_XComUser):
    weight = 2
    scenario = "session"

    @task
    def dag_run(self) -> None:
        dag = self.rng.choice(DAGS)
        run_id = f"loadtest__{uuid.uuid4().hex[:12]}"
        for instance in dags.plan(dag, self.rng):
            token = self.token(dag.dag_id, run_id, instance.task_id, instance.map_index)
            # NO_RETRY: every refused call shows as a failure instead of a slow success.
            with XComClient(self.target, token, timeout=DEADLINE_SECONDS, retry=NO_RETRY) as xcom:
                first = True
                for op in instance.ops:
                    name, run = self._op(xcom, op)
                    self.pacer.wait()
                    self._timed("session: first call (connects)" if first else name, run)
                    first = False
            RECENT.append((dag.dag_id, run_id, instance.task_id))
        self.finish_run(dag.dag_id, run_id)

    @staticmethod
    def _op(xcom: XComClient, op: dags.Op) -> tuple[str, Callable[[], int]]:
        if isinstance(op, dags.Push):
            push = op
            return "session: push", lambda: xcom.push_json(push.key, push.value).size_bytes
        if isinstance(op, dags.FetchMany):
            many = op
            return "session: fetch_many mapped", lambda: len(xcom.pull_many(many.task_id, many.key))
        fetch = op
        return "session: fetch", lambda: len(xcom.pull_json(fetch.task_id, fetch.key))

    def _timed(self, name: str, run: Callable[[], int]) -> None:
        started = time.perf_counter()
        exception: Exception | None = None
        length = 0
        try:
            length = run()
        except XComError as exc:
            exception = exc
        fire(self.environment, "sdk", name, started, length, exception)


class UnaryHotPathUser(_XComUser):
    weight = 2
    scenario = "unary"

    @task
    def dag_run(self) -> None:
        dag = self.rng.choice(DAGS)
        run_id = f"loadtest__{uuid.uuid4().hex[:12]}"
        for instance in dags.plan(dag, self.rng):
            token = self.token(dag.dag_id, run_id, instance.task_id, instance.map_index)
            for op in instance.ops:
                if isinstance(op, dags.Push):
                    push = pb.PushXComRequest(key=op.key, value=op.value)
                    self.call(self.stub.PushXCom, push, token, "unary: push")
                elif isinstance(op, dags.FetchMany):
                    selector = pb.XComSelector(task_id=op.task_id, key=op.key, all_map_indexes=True)
                    many = pb.FetchXComsRequest(selectors=[selector])
                    self.call(self.stub.FetchXComs, many, token, "unary: fetch_many mapped")
                else:
                    fetch = pb.FetchXComRequest(task_id=op.task_id, key=op.key)
                    self.call(self.stub.FetchXCom, fetch, token, "unary: fetch")
            RECENT.append((dag.dag_id, run_id, instance.task_id))
        self.finish_run(dag.dag_id, run_id)


class EchoFloorUser(GrpcUser):
    """The floor under the hot-path figures, measured in the same Locust process and run."""

    weight = 1
    wait_time = constant(0)

    def on_start(self) -> None:
        try:
            from bench import echo  # the bench's server registers it; no product image has it
        except ImportError:
            self._skip("the bench package is not installed here")
        self.pacer = Pacer()
        self.push = self.channel.unary_unary(
            echo.PUSH,
            request_serializer=pb.PushXComRequest.SerializeToString,
            response_deserializer=pb.PushXComResponse.FromString,
        )
        self.fetch = self.channel.unary_unary(
            echo.FETCH,
            request_serializer=pb.FetchXComRequest.SerializeToString,
            response_deserializer=pb.FetchXComResponse.FromString,
        )
        raw = open_channel(self.target)  # not intercepted: the SDK times its calls
        self.raw = raw
        self.session = SessionTransport(
            raw.stream_stream(
                echo.SESSION,
                request_serializer=pb.SessionRequest.SerializeToString,
                response_deserializer=pb.SessionResponse.FromString,
            ),
            "",
            (),
        )
        self.push_request = pb.PushXComRequest(key="echo", value=dags.padded(ECHO_VALUE_BYTES))
        self.fetch_request = pb.FetchXComRequest(task_id="echo", key=str(ECHO_VALUE_BYTES))
        probe = raw.unary_unary(
            echo.PUSH,
            request_serializer=pb.PushXComRequest.SerializeToString,
            response_deserializer=pb.PushXComResponse.FromString,
        )
        try:  # not counted; a target without the echo answers UNIMPLEMENTED
            probe(self.push_request, timeout=DEADLINE_SECONDS)
        except grpc.RpcError as exc:
            code = exc.code().name if isinstance(exc, grpc.Call) else "an error"
            self._skip(f"the target does not serve the bench-only echo ({code})")

    def _skip(self, why: str) -> None:
        print(f"loadtest: echo floor skipped: {why} (`make loadtest` serves it)", flush=True)
        raise StopUser()

    def on_stop(self) -> None:
        if hasattr(self, "session"):
            self.session.close()
            self.raw.close()
        super().on_stop()

    @task
    def floor(self) -> None:
        for op, request, name in (
            (SessionOp.PUSH, self.push_request, "echo: session push"),
            (SessionOp.FETCH, self.fetch_request, "echo: session fetch"),
        ):
            self.pacer.wait()
            started = time.perf_counter()
            exception: Exception | None = None
            try:
                self.session.call(op, request, DEADLINE_SECONDS)
            except XComError as exc:
                exception = exc
            fire(self.environment, "sdk", name, started, ECHO_VALUE_BYTES, exception)
        for method, request, name in (
            (self.push, self.push_request, "echo: unary push"),
            (self.fetch, self.fetch_request, "echo: unary fetch"),
        ):
            self.pacer.wait()
            try:
                method(request, timeout=DEADLINE_SECONDS, metadata=(("x-loadtest-name", name),))
            except grpc.RpcError:
                pass  # reported by the interceptor


def fire(
    environment: Environment,
    kind: str,
    name: str,
    started: float,
    length: int,
    exception: Exception | None,
) -> None:
    environment.events.request.fire(  # type: ignore[no-untyped-call]
        request_type=kind,
        name=name,
        response_time=(time.perf_counter() - started) * 1000,
        response_length=length,
        exception=exception,
        context=None,
    )


class SizeSweepUser(_XComUser):
    weight = 1
    wait_time = between(0.0, 0.01)
    scenario = "sweep"
    SIZES = (1_000, 16_000, 64_000, 128_000, MAX_VALUE_BYTES - 1, MAX_VALUE_BYTES)

    @task
    def sweep(self) -> None:
        run_id = f"sweep__{uuid.uuid4().hex[:12]}"
        token = self.token("etl_daily", run_id, "load")
        for size in self.SIZES:
            request = pb.PushXComRequest(key=f"size_{size}", value=dags.padded(size))
            self.call(self.stub.PushXCom, request, token, f"sweep: push {size} B")
        over = pb.PushXComRequest(key="over", value=dags.padded(MAX_VALUE_BYTES + 1))
        self.call(
            self.stub.PushXCom, over, token, "sweep: push limit+1 (refused)", "INVALID_ARGUMENT"
        )
        self.finish_run("etl_daily", run_id)


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
