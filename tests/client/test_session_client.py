"""The SDK over the session stream (its default) against the real service: same results and
typed errors as the unary transport, concurrent callers, client-side deadlines, and reconnects
that never lose an acknowledged push."""

from __future__ import annotations

import gc
import os
import queue
import threading
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
import redis

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.client import (
    DEFAULT_RETRY,
    NO_RETRY,
    DeadlineExceededError,
    TokenInvalidError,
    XComClient,
    XComForbiddenError,
    XComNotFoundError,
    XComSchemaMismatchError,
    XComTooLargeError,
)
from leoflow_xcom.client import _session as session
from leoflow_xcom.core.limits import MAX_VALUE_BYTES
from leoflow_xcom.server import app
from leoflow_xcom.testing.redis_server import RedisProcess
from tests.dag_data import publish_test_policies
from tests.fixture_types import Mint, StartService

TRANSPORTS = ["session", "unary"]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(target: str, token: str, transport: str = "session", **kw: object) -> XComClient:
    kw.setdefault("retry", NO_RETRY)
    return XComClient(target, token, transport=transport, **kw)  # type: ignore[arg-type]


def test_push_pull_and_pull_many(target: str, mint: Mint, transport: str) -> None:
    with make(target, mint(task_id="a"), transport) as a:
        result = a.push("k", {"v": 1})
        assert result.size_bytes == 7 and result.expires_at_ms > time.time() * 1000
    for i in range(3):
        with make(target, mint(task_id="mapped", map_index=i), transport) as m:
            m.push("out", i * 10)
    with make(target, mint(task_id="fanin"), transport) as fanin:
        assert fanin.pull_many("mapped", "out") == {0: 0, 1: 10, 2: 20}
        assert fanin.pull_many("mapped", "out", [2, 7]) == {2: 20}
        assert fanin.pull("mapped", "out", 1) == 10
        # list and clear stay unary whatever the transport.
        assert fanin.list(task_id="mapped").total_entries == 3


@pytest.mark.parametrize(
    ("task_id", "action", "error"),
    [
        ("a", lambda c: c.push_json("typed", b'{"rows": "x"}'), XComSchemaMismatchError),
        ("a", lambda c: c.push_json("big", b"1" * (MAX_VALUE_BYTES + 1)), XComTooLargeError),
        ("other", lambda c: c.pull("a", "k"), XComForbiddenError),
        ("b", lambda c: c.pull("a", "nope"), XComNotFoundError),
        ("b", lambda c: c.pull_many("a", "nope", [1]) or c.pull("a", "nope"), XComNotFoundError),
    ],
)
def test_typed_errors_are_the_same_on_both_transports(
    target: str, mint: Mint, transport: str, task_id: str, action: object, error: type
) -> None:
    with make(target, mint(task_id=task_id), transport) as client, pytest.raises(error):
        action(client)  # type: ignore[operator]


def test_bad_token_is_token_invalid(target: str, transport: str) -> None:
    with make(target, "not.a.token", transport) as client, pytest.raises(TokenInvalidError):
        client.pull("a", "k")


def test_concurrent_callers_share_one_stream(target: str, mint: Mint) -> None:
    with make(target, mint(task_id="a")) as a:
        with futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: a.push(f"k{i}", {"i": i}), range(200)))
            got = list(pool.map(lambda i: a.pull("a", f"k{i}"), range(200)))
    assert got == [{"i": i} for i in range(200)]


def test_close_frees_the_stream_without_a_garbage_collection(target: str, mint: Mint) -> None:
    """close() ends the receiver and frees the stream's call. A call left to the garbage
    collection at interpreter exit is finalised under its lock, which a daemon thread frozen
    by that exit may hold: the CLI then never exits (seen under load, one run in ~50)."""
    gc.collect()
    gc.disable()
    try:
        before = _live_streams()
        with make(target, mint(task_id="a")) as client:
            client.push("k", {"v": 1})
            assert len(_live_streams() - before) == 1
        assert _live_streams() - before == set()
        assert "xcom-session-receiver" not in {t.name for t in threading.enumerate()}
    finally:
        gc.enable()


def test_a_client_never_closed_is_closed_before_the_interpreter_exits(
    target: str, mint: Mint
) -> None:
    gc.collect()
    gc.disable()
    try:
        before = _live_streams()
        client = make(target, mint(task_id="a"))
        client.push("k", {"v": 1})
        session.close_open_streams()  # what atexit runs
        assert _live_streams() - before == set()
        assert "xcom-session-receiver" not in {t.name for t in threading.enumerate()}
    finally:
        gc.enable()


def test_a_forked_child_leaves_its_parents_stream_alone(target: str, mint: Mint) -> None:
    with make(target, mint(task_id="a")) as client:
        client.push("k", {"v": 1})
        pid = os.fork()
        if pid == 0:  # the child: what its exit would run, then a bare exit
            streams = list(session._open_streams)
            session.close_open_streams()
            os._exit(0 if streams and all(s._call is not None for s in streams) else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child closed its parent's stream"
        assert client.push("k2", {"v": 2}).size_bytes == 7  # still served on that stream


def _live_streams() -> set[int]:
    """The grpc streaming calls alive now (ids), found without collecting anything."""
    return {id(o) for o in gc.get_objects() if type(o).__name__ == "_MultiThreadedRendezvous"}


def test_answers_out_of_order_reach_their_own_callers() -> None:
    """A peer that answers each pair of items in reverse order (the protocol allows any order):
    the SDK matches answers by id, not by position."""

    def reversed_pairs(
        requests: Iterator[pb.SessionRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.SessionResponse]:
        held: list[pb.SessionRequest] = []
        for request in requests:
            held.append(request)
            if len(held) == 2:
                for r in reversed(held):
                    yield pb.SessionResponse(
                        id=r.id, fetch=pb.FetchXComResponse(value=r.fetch.key.encode())
                    )
                held.clear()

    handler = grpc.method_handlers_generic_handler(
        "leoflow.xcom.v1.XComService",
        {
            "XComSession": grpc.stream_stream_rpc_method_handler(
                reversed_pairs,
                pb.SessionRequest.FromString,
                pb.SessionResponse.SerializeToString,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with make(f"127.0.0.1:{port}", "t") as client, futures.ThreadPoolExecutor(2) as pool:
            for _ in range(20):
                first = pool.submit(client.pull_json, "a", "first")
                time.sleep(0.002)
                second = pool.submit(client.pull_json, "a", "second")
                assert (first.result(5), second.result(5)) == (b"first", b"second")
    finally:
        server.stop(0)


def test_deadline_is_enforced_by_the_client(
    target: str, mint: Mint, redis_server: RedisProcess
) -> None:
    with make(target, mint(task_id="a"), timeout=0.15) as a:
        a.push("warm", 1, timeout=10)  # connects; only the call under test has the short deadline
        redis_server.pause()
        try:
            started = time.monotonic()
            with pytest.raises(DeadlineExceededError):
                a.push("k", 1)
            # Well before the store's own 0.5 s socket timeout.
            assert time.monotonic() - started < 0.4
        finally:
            redis_server.resume()


def test_restart_loses_no_acknowledged_push(
    r: redis.Redis, start_service: StartService, mint: Mint
) -> None:
    publish_test_policies(r)

    def serve(listen: str) -> app.RunningService:
        return start_service(listen=listen)

    first = serve("127.0.0.1:0")
    target = f"127.0.0.1:{first.port}"
    acked: list[str] = []
    errors: queue.SimpleQueue[BaseException] = queue.SimpleQueue()
    stop = threading.Event()
    client = make(target, mint(task_id="a"), retry=DEFAULT_RETRY, timeout=10.0)

    def pusher() -> None:
        i = 0
        while not stop.is_set() and i < 900:  # a listing page holds 1,000
            try:
                client.push(f"k{i}", {"i": i})
            except BaseException as exc:
                errors.put(exc)
                return
            acked.append(f"k{i}")
            i += 1
            time.sleep(0.001)

    thread = threading.Thread(target=pusher)
    thread.start()
    try:
        time.sleep(0.3)
        first.stop(0)
        second = serve(target)
        try:
            time.sleep(0.5)
            stop.set()
            thread.join(15)
            assert errors.empty(), errors.get()
            assert len(acked) > 50
            with make(target, mint(task_id="b")) as reader:
                for key in acked:
                    assert reader.pull("a", key) == {"i": int(key[1:])}
                listed = reader.list(task_id="a", limit=1000).entries
            keys = [e.key for e in listed]
            assert len(keys) == len(set(keys))  # one entry per key, never a duplicate
            assert set(acked) <= set(keys)
        finally:
            second.stop(0)
    finally:
        stop.set()
        client.close()
