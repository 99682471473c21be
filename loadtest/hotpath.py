"""The hot-path users' calls, free of Locust and gevent: what one simulated agent does.

Each `Agent` is one user's worth of work on one OS thread, as a task instance calls XCom in a
plain Python process: realistic DAG runs through the SDK's default session transport, the same
runs as unary RPCs, or the bench-only echo (the floor under both). Every call waits for its
slot (loadtest/pacing.py), then is timed around the call exactly as the caller sees it, and
the outcome goes to `emit`. loadtest/native.py runs agents on real threads for the Locust
users (loadtest/users.py), which turn each outcome into a Locust request event.

Request names start with their scenario ("session: push"); loadtest/verdict.py groups by it.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.client import NO_RETRY, XComClient
from leoflow_xcom.client._channel import open_channel
from leoflow_xcom.client._core import SessionOp
from leoflow_xcom.client._session import SessionTransport
from leoflow_xcom.core import tokens
from leoflow_xcom.core.errors import XComError
from loadtest import dags
from loadtest.pacing import Pacer

DEADLINE_SECONDS = 5.0  # every call has one
ECHO_VALUE_BYTES = 1_000
# Finished runs an agent keeps before clearing the oldest (the control plane's clean-up, which
# keeps Redis, noeviction and 512 MB in the shipped redis.conf, from filling up in long runs,
# as real runs age out by TTL).
DONE_KEPT = 50
KINDS = ("session", "unary", "echo")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One timed call: what Locust's request event needs."""

    kind: str  # Locust's request_type: "sdk" (through XComClient) or "grpc" (unary)
    name: str
    seconds: float
    length: int
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Finished:
    """A task instance the hot path finished, for the UI scenario to browse."""

    dag_id: str
    run_id: str
    task_id: str


class EchoUnavailableError(Exception):
    """The target does not serve the bench-only echo: the floor scenario is skipped."""


Emit = Callable[[Outcome | Finished], None]


def signing_key(path: str | None) -> bytes:
    if not path:
        raise SystemExit("loadtest: set LEOFLOW_XCOM_SIGNING_KEY_FILE to mint task tokens")
    return Path(path).read_text().strip().encode()


def _code(exc: grpc.RpcError) -> str:
    return exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"


class Agent:
    """One user's calls; not thread-safe (one agent per thread)."""

    def __init__(self, target: str, key: bytes, pacer: Pacer, emit: Emit) -> None:
        self.target = target
        self.key = key
        self.pacer = pacer
        self.emit = emit
        self.rng = random.Random()
        self.dags = dags.load()
        self.channel = open_channel(target)
        self.stub = pb_grpc.XComServiceStub(self.channel)
        self.done: list[tuple[str, str]] = []
        self._echo: _Echo | None = None

    def close(self) -> None:
        if self._echo is not None:
            self._echo.close()
        self.channel.close()

    def run(self, kind: str) -> None:
        """One round of `kind` (session, unary: a DAG run; echo: four floor calls)."""
        if kind == "session":
            self._dag_run(self._session_instance)
        elif kind == "unary":
            self._dag_run(self._unary_instance)
        elif kind == "echo":
            if self._echo is None:
                self._echo = _Echo(self)
            self._echo.round()
        else:
            raise ValueError(f"unknown agent kind {kind!r}; one of {', '.join(KINDS)}")

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

    # -- timing -----------------------------------------------------------------------------

    def timed(self, kind: str, name: str, call: Callable[[], int]) -> None:
        """Wait for the slot, then time the call itself (nothing else) as its caller sees it."""
        self.pacer.wait()
        started = time.perf_counter()
        error: str | None = None
        length = 0
        try:
            length = call()
        except XComError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except grpc.RpcError as exc:
            error = f"{_code(exc)}: {exc.details() if isinstance(exc, grpc.Call) else exc}"
        self.emit(Outcome(kind, name, time.perf_counter() - started, length, error))

    def unary(self, method: Any, request: Any, token: str, name: str) -> None:
        metadata = (("authorization", f"Bearer {token}"),)

        def call() -> int:
            reply = method(request, timeout=DEADLINE_SECONDS, metadata=metadata)
            return int(reply.ByteSize())

        self.timed("grpc", name, call)

    # -- the DAG runs -----------------------------------------------------------------------

    def _dag_run(self, instance_calls: Callable[[dags.Dag, str, dags.TaskInstance], str]) -> None:
        dag = self.rng.choice(self.dags)
        run_id = f"loadtest__{uuid.uuid4().hex[:12]}"
        prefix = ""
        for instance in dags.plan(dag, self.rng):
            prefix = instance_calls(dag, run_id, instance)
            self.emit(Finished(dag.dag_id, run_id, instance.task_id))
        self._finish_run(dag.dag_id, run_id, prefix)

    def _session_instance(self, dag: dags.Dag, run_id: str, instance: dags.TaskInstance) -> str:
        token = self.token(dag.dag_id, run_id, instance.task_id, instance.map_index)
        # One client (one session stream) per task instance, as an agent does. NO_RETRY: every
        # refused call shows as a failure instead of a slow success.
        with XComClient(self.target, token, timeout=DEADLINE_SECONDS, retry=NO_RETRY) as xcom:
            first = True
            for op in instance.ops:
                name, call = _session_op(xcom, op)
                self.timed("sdk", "session: first call (connects)" if first else name, call)
                first = False
        return "session"

    def _unary_instance(self, dag: dags.Dag, run_id: str, instance: dags.TaskInstance) -> str:
        token = self.token(dag.dag_id, run_id, instance.task_id, instance.map_index)
        for op in instance.ops:
            if isinstance(op, dags.Push):
                push = pb.PushXComRequest(key=op.key, value=op.value)
                self.unary(self.stub.PushXCom, push, token, "unary: push")
            elif isinstance(op, dags.FetchMany):
                selector = pb.XComSelector(task_id=op.task_id, key=op.key, all_map_indexes=True)
                many = pb.FetchXComsRequest(selectors=[selector])
                self.unary(self.stub.FetchXComs, many, token, "unary: fetch_many mapped")
            else:
                fetch = pb.FetchXComRequest(task_id=op.task_id, key=op.key)
                self.unary(self.stub.FetchXCom, fetch, token, "unary: fetch")
        return "unary"

    def _finish_run(self, dag_id: str, run_id: str, scenario: str) -> None:
        """Keep the run browsable for a while, then clear this agent's oldest runs."""
        self.done.append((dag_id, run_id))
        while len(self.done) > DONE_KEPT:
            old_dag, old_run = self.done.pop(0)
            token = tokens.mint(self.key, now=int(time.time()), expires_in=600, control_plane=True)
            request = pb.ClearXComsRequest(dag_id=old_dag, run_id=old_run)
            self.unary(self.stub.ClearXComs, request, token, f"{scenario}: clear run")


def _session_op(xcom: XComClient, op: dags.Op) -> tuple[str, Callable[[], int]]:
    if isinstance(op, dags.Push):
        push = op
        return "session: push", lambda: xcom.push_json(push.key, push.value).size_bytes
    if isinstance(op, dags.FetchMany):
        many = op
        return "session: fetch_many mapped", lambda: len(xcom.pull_many(many.task_id, many.key))
    fetch = op
    return "session: fetch", lambda: len(xcom.pull_json(fetch.task_id, fetch.key))


class _Echo:
    """The bench-only echo (only `python -m bench.server` serves it) on the agent's channel:
    the SDK's session machinery and unary calls with no work behind them, i.e. the floor
    under the hot-path figures, measured the same way in the same run."""

    def __init__(self, agent: Agent) -> None:
        try:
            from bench import echo  # the bench's server registers it; no product image has it
        except ImportError:
            raise EchoUnavailableError("the bench package is not installed here") from None
        self.agent = agent
        channel = agent.channel
        self.push = channel.unary_unary(
            echo.PUSH,
            request_serializer=pb.PushXComRequest.SerializeToString,
            response_deserializer=pb.PushXComResponse.FromString,
        )
        self.fetch = channel.unary_unary(
            echo.FETCH,
            request_serializer=pb.FetchXComRequest.SerializeToString,
            response_deserializer=pb.FetchXComResponse.FromString,
        )
        self.push_request = pb.PushXComRequest(key="echo", value=dags.padded(ECHO_VALUE_BYTES))
        self.fetch_request = pb.FetchXComRequest(task_id="echo", key=str(ECHO_VALUE_BYTES))
        try:  # not counted; a target without the echo answers UNIMPLEMENTED
            self.push(self.push_request, timeout=DEADLINE_SECONDS)
        except grpc.RpcError as exc:
            raise EchoUnavailableError(
                f"the target does not serve the bench-only echo ({_code(exc)})"
            ) from None
        self.session = SessionTransport(
            channel.stream_stream(
                echo.SESSION,
                request_serializer=pb.SessionRequest.SerializeToString,
                response_deserializer=pb.SessionResponse.FromString,
            ),
            "",
            (),
        )

    def close(self) -> None:
        self.session.close()

    def round(self) -> None:
        for op, request, name in (
            (SessionOp.PUSH, self.push_request, "echo: session push"),
            (SessionOp.FETCH, self.fetch_request, "echo: session fetch"),
        ):
            self.agent.timed("sdk", name, functools.partial(self._session_call, op, request))
        for method, request, name in (
            (self.push, self.push_request, "echo: unary push"),
            (self.fetch, self.fetch_request, "echo: unary fetch"),
        ):
            self.agent.timed("grpc", name, functools.partial(self._unary_call, method, request))

    def _session_call(self, op: SessionOp, request: Any) -> int:
        return _sized(self.session.call(op, request, DEADLINE_SECONDS))

    @staticmethod
    def _unary_call(method: Any, request: Any) -> int:
        return _sized(method(request, timeout=DEADLINE_SECONDS))


def _sized(reply: Any) -> int:
    return int(reply.ByteSize())
