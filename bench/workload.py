"""What one bench client process does: build one caller for a scenario, warm it up, then call
it back to back inside a shared time window and report every latency and its own CPU time.

Clients are separate processes (spawned, never forked: grpc does not survive fork), one per
concurrent client, so the client side never shares a GIL with another client or the service.
"""

from __future__ import annotations

import array
import dataclasses
import queue
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection

import grpc

from bench import echo
from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.client import NO_RETRY, AsyncXComClient, XComClient
from leoflow_xcom.client._core import SessionOp
from leoflow_xcom.client._session import SessionTransport
from leoflow_xcom.core import keys
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store import scripts
from leoflow_xcom.store.connection import connect
from leoflow_xcom.store.push_plan import push_call

# The DAG the bench pushes and fetches through (config/dags/etl_daily.json, no schema on this
# key): `load` pushes, `notify` (which depends on it) fetches.
DAG_ID = "etl_daily"
PUSH_TASK = "load"
FETCH_TASK = "notify"
FETCH_KEY = "summary"
TTL_MS = 2 * 24 * 3600 * 1000
KEYS_PER_CLIENT = 100


@dataclasses.dataclass(frozen=True)
class Job:
    scenario: str
    target: str
    redis_url: str
    run_id: str
    push_token: str
    fetch_token: str
    payload: int
    seconds: float  # the measured window, shared by all clients of a run
    warmup: int = 300


@dataclasses.dataclass(frozen=True)
class Result:
    latencies: bytes  # array('d') of seconds
    calls: int
    cpu_seconds: float
    errors: int
    first_error: str


Caller = Callable[[int], object]


def _md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _raw_session(channel: grpc.Channel, method: str) -> Callable[[pb.SessionRequest], object]:
    """The bare stream: the caller's own thread sends and reads the answer (no SDK)."""
    out: queue.SimpleQueue[pb.SessionRequest | None] = queue.SimpleQueue()
    stream = channel.stream_stream(
        method,
        request_serializer=pb.SessionRequest.SerializeToString,
        response_deserializer=pb.SessionResponse.FromString,
    )
    answers: Iterator[pb.SessionResponse] = stream(iter(out.get, None))

    def ask(request: pb.SessionRequest) -> object:
        out.put(request)
        return next(answers)

    return ask


def build(job: Job) -> tuple[Caller, Callable[[], None]]:
    """Returns (call(i), close)."""
    value = echo.value_of(job.payload)
    name = job.scenario
    if name.startswith("redis-"):
        client = connect(RedisSettings(url=job.redis_url))
        run = keys.run_keys(DAG_ID, job.run_id)
        if name == "redis-push":
            script = client.register_script(scripts.PUSH)
            members = [keys.member(PUSH_TASK, -1, f"k{i}") for i in range(KEYS_PER_CLIENT)]
            calls = [push_call(DAG_ID, job.run_id, m, value, TTL_MS) for m in members]
            return (
                lambda i: script(*calls[i % KEYS_PER_CLIENT]),
                client.close,
            )
        key = run.value(keys.member(PUSH_TASK, -1, FETCH_KEY))
        return (lambda i: client.get(key)), client.close
    channel = grpc.insecure_channel(job.target)
    if name in ("echo-unary-push", "echo-unary-fetch"):
        push_echo = channel.unary_unary(
            echo.PUSH,
            request_serializer=pb.PushXComRequest.SerializeToString,
            response_deserializer=pb.PushXComResponse.FromString,
        )
        fetch_echo = channel.unary_unary(
            echo.FETCH,
            request_serializer=pb.FetchXComRequest.SerializeToString,
            response_deserializer=pb.FetchXComResponse.FromString,
        )
        md = _md(job.push_token)
        if name == "echo-unary-push":
            return (
                lambda i: push_echo(
                    pb.PushXComRequest(key=f"k{i % KEYS_PER_CLIENT}", value=value),
                    timeout=5,
                    metadata=md,
                ),
                channel.close,
            )
        return (
            lambda i: fetch_echo(
                pb.FetchXComRequest(task_id=PUSH_TASK, key=str(job.payload)), timeout=5, metadata=md
            ),
            channel.close,
        )
    if name in ("echo-session-push", "echo-session-fetch"):
        ask = _raw_session(channel, echo.SESSION)
        if name == "echo-session-push":
            return (
                lambda i: ask(
                    pb.SessionRequest(
                        id=i,
                        token=job.push_token,
                        timeout_ms=5000,
                        push=pb.PushXComRequest(key=f"k{i % KEYS_PER_CLIENT}", value=value),
                    )
                ),
                channel.close,
            )
        return (
            lambda i: ask(
                pb.SessionRequest(
                    id=i,
                    token=job.fetch_token,
                    timeout_ms=5000,
                    fetch=pb.FetchXComRequest(task_id=PUSH_TASK, key=str(job.payload)),
                )
            ),
            channel.close,
        )
    if name in ("echo-store-session-push", "echo-store-session-fetch"):
        ask = _raw_session(channel, echo.SESSION_STORE)
        if name == "echo-store-session-push":
            return (
                lambda i: ask(
                    pb.SessionRequest(
                        id=i,
                        push=pb.PushXComRequest(
                            key=f"k{i % KEYS_PER_CLIENT}", value=value, run_id=job.run_id
                        ),
                    )
                ),
                channel.close,
            )
        return (
            lambda i: ask(
                pb.SessionRequest(id=i, fetch=pb.FetchXComRequest(key=FETCH_KEY, run_id=job.run_id))
            ),
            channel.close,
        )
    if name == "echo-sdk-session-push":
        # The SDK's own session machinery (receiver thread, waiters) against the echo.
        stream = channel.stream_stream(
            echo.SESSION,
            request_serializer=pb.SessionRequest.SerializeToString,
            response_deserializer=pb.SessionResponse.FromString,
        )
        transport = SessionTransport(stream, job.push_token, ())

        def close() -> None:
            transport.close()
            channel.close()

        return (
            lambda i: transport.call(
                SessionOp.PUSH, pb.PushXComRequest(key=f"k{i % KEYS_PER_CLIENT}", value=value), 5.0
            ),
            close,
        )
    channel.close()
    _, op, transport_name = name.split("-")  # sdk-push-session, sdk-fetch-unary, ...
    token = job.push_token if op == "push" else job.fetch_token
    xcom = XComClient(job.target, token, retry=NO_RETRY, transport=transport_name)  # type: ignore[arg-type]
    if op == "push":
        return (lambda i: xcom.push_json(f"k{i % KEYS_PER_CLIENT}", value)), xcom.close
    return (lambda i: xcom.pull_json(PUSH_TASK, FETCH_KEY)), xcom.close


def run(job: Job, conn: Connection) -> Result:
    """Warm up, report ready, get the shared window (time.time() start, stop), measure."""
    if job.scenario.endswith("-aio"):
        import uvloop

        return uvloop.run(_run_aio(job, conn))
    call, close = build(job)
    errors, first_error = 0, ""
    try:
        for i in range(job.warmup):
            call(i)
        conn.send("ready")
        start_at, stop_at = conn.recv()
        while time.time() < start_at:
            time.sleep(0.0005)
        samples = array.array("d")
        clock = time.perf_counter
        cpu0 = time.process_time()
        i = 0
        while time.time() < stop_at:
            t0 = clock()
            try:
                call(i)
            except Exception as exc:
                errors += 1
                first_error = first_error or repr(exc)
                continue
            samples.append(clock() - t0)
            i += 1
        cpu = time.process_time() - cpu0
    finally:
        close()
    return Result(samples.tobytes(), len(samples), cpu, errors, first_error)


def serve(conn: Connection) -> None:
    """A client process: run jobs from the pipe until it is closed."""
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            conn.send(run(job, conn))
        except Exception as exc:
            conn.send(Result(b"", 0, 0.0, 1, repr(exc)))


async def _run_aio(job: Job, conn: Connection) -> Result:
    """The asyncio SDK on uvloop: sdk-push-aio, sdk-fetch-aio."""
    value = echo.value_of(job.payload)
    push = job.scenario.startswith("sdk-push")
    xcom = AsyncXComClient(job.target, job.push_token if push else job.fetch_token, retry=NO_RETRY)

    async def call(i: int) -> object:
        if push:
            return await xcom.push_json(f"k{i % KEYS_PER_CLIENT}", value)
        return await xcom.pull_json(PUSH_TASK, FETCH_KEY)

    errors, first_error = 0, ""
    try:
        for i in range(job.warmup):
            await call(i)
        conn.send("ready")
        start_at, stop_at = conn.recv()
        while time.time() < start_at:
            time.sleep(0.0005)
        samples = array.array("d")
        clock = time.perf_counter
        cpu0 = time.process_time()
        i = 0
        while time.time() < stop_at:
            t0 = clock()
            try:
                await call(i)
            except Exception as exc:
                errors += 1
                first_error = first_error or repr(exc)
                continue
            samples.append(clock() - t0)
            i += 1
        cpu = time.process_time() - cpu0
    finally:
        await xcom.close()
    return Result(samples.tobytes(), len(samples), cpu, errors, first_error)
