"""The XComSession stream against the real service: same outcomes and reasons as the unary
RPCs, correlation by id, per-item deadlines, and a stream that survives failed items."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.core import keys
from leoflow_xcom.core.limits import MAX_VALUE_BYTES
from leoflow_xcom.server import app
from tests.deployment import Deployment
from tests.fixture_types import Mint


class RawSession:
    """A session stream driven by hand: send items, read answers in arrival order."""

    def __init__(self, channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self._out: queue.SimpleQueue[pb.SessionRequest | None] = queue.SimpleQueue()
        self._call = pb_grpc.XComServiceStub(channel).XComSession(
            iter(self._out.get, None), metadata=metadata
        )

    def send(self, **fields: object) -> None:
        self._out.put(pb.SessionRequest(**fields))  # type: ignore[arg-type]

    def receive(self) -> pb.SessionResponse:
        return next(self._call)

    def ask(self, **fields: object) -> pb.SessionResponse:
        self.send(**fields)
        return self.receive()

    def close(self) -> None:
        self._out.put(None)
        self._call.cancel()


@pytest.fixture
def channel(target: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(target) as ch:
        yield ch


@pytest.fixture
def session(channel: grpc.Channel) -> Iterator[RawSession]:
    raw = RawSession(channel)
    yield raw
    raw.close()


def reason_of(status: status_pb2.Status) -> str:
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def unary_reason(exc: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    from grpc_status import rpc_status

    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None
    return exc.code(), reason_of(status)


def test_push_fetch_and_batch_over_one_stream(session: RawSession, mint: Mint) -> None:
    a = mint(task_id="a")
    pushed = session.ask(id=1, token=a, push=pb.PushXComRequest(key="k", value=b'{"x":1}'))
    assert pushed.id == 1 and pushed.status.code == 0
    assert pushed.push.size_bytes == 7 and pushed.push.expires_at_ms > 0
    b = mint(task_id="b")
    fetched = session.ask(id=2, token=b, fetch=pb.FetchXComRequest(task_id="a", key="k"))
    assert fetched.status.code == 0 and fetched.fetch.value == b'{"x":1}'
    many = session.ask(
        id=3,
        token=b,
        fetch_many=pb.FetchXComsRequest(
            selectors=[pb.XComSelector(task_id="a", key="k"), pb.XComSelector(task_id="a", key="z")]
        ),
    )
    assert [(r.found, r.value) for r in many.fetch_many.results] == [
        (True, b'{"x":1}'),
        (False, b""),
    ]


def test_stream_metadata_token_is_used_when_the_item_has_none(
    channel: grpc.Channel, mint: Mint
) -> None:
    raw = RawSession(channel, (("authorization", f"Bearer {mint(task_id='a')}"),))
    try:
        answer = raw.ask(id=7, push=pb.PushXComRequest(key="k", value=b"1"))
        assert answer.status.code == 0
    finally:
        raw.close()


@pytest.mark.parametrize(
    ("task_id", "op", "code", "reason"),
    [
        ("a", pb.PushXComRequest(key="big", value=b'"' + b"x" * MAX_VALUE_BYTES + b'"'),
         grpc.StatusCode.INVALID_ARGUMENT, "XCOM_TOO_LARGE"),
        ("a", pb.PushXComRequest(key="typed", value=b'{"rows":"many"}'),
         grpc.StatusCode.INVALID_ARGUMENT, "XCOM_SCHEMA_MISMATCH"),
        ("a", pb.PushXComRequest(key="k", value=b"{not json"),
         grpc.StatusCode.INVALID_ARGUMENT, "XCOM_INVALID_JSON"),
        ("other", pb.FetchXComRequest(task_id="a", key="k"),
         grpc.StatusCode.PERMISSION_DENIED, "XCOM_FORBIDDEN"),
        ("b", pb.FetchXComRequest(task_id="a", key="missing"),
         grpc.StatusCode.NOT_FOUND, "XCOM_NOT_FOUND"),
        ("not-a-task", pb.PushXComRequest(key="k", value=b"1"),
         grpc.StatusCode.FAILED_PRECONDITION, "TASK_NOT_DECLARED"),
    ],
)  # fmt: skip
def test_item_errors_match_the_unary_rpcs(
    session: RawSession,
    channel: grpc.Channel,
    mint: Mint,
    task_id: str,
    op: pb.PushXComRequest | pb.FetchXComRequest,
    code: grpc.StatusCode,
    reason: str,
) -> None:
    token = mint(task_id=task_id)
    field = "push" if isinstance(op, pb.PushXComRequest) else "fetch"
    answer = session.ask(id=11, token=token, **{field: op})
    assert (answer.status.code, reason_of(answer.status)) == (code.value[0], reason)
    assert answer.WhichOneof("result") is None
    stub = pb_grpc.XComServiceStub(channel)
    unary = stub.PushXCom if field == "push" else stub.FetchXCom
    with pytest.raises(grpc.RpcError) as raised:
        unary(op, metadata=(("authorization", f"Bearer {token}"),), timeout=5)  # type: ignore[arg-type]
    assert unary_reason(raised.value) == (code, reason)
    assert answer.status.message == raised.value.details()
    # A failed item leaves the stream usable.
    assert session.ask(id=12, token=mint(task_id="a"), push=pb.PushXComRequest(
        key="after", value=b"2")).status.code == 0  # fmt: skip


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
def test_bad_token_is_token_invalid(session: RawSession, token: str) -> None:
    answer = session.ask(id=5, token=token, push=pb.PushXComRequest(key="k", value=b"1"))
    assert answer.status.code == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert reason_of(answer.status) == "TOKEN_INVALID"


def test_expired_token_is_refused_even_after_it_was_cached(session: RawSession, mint: Mint) -> None:
    expired = mint(task_id="a", expires_in=-60)
    answer = session.ask(id=1, token=expired, push=pb.PushXComRequest(key="k", value=b"1"))
    assert reason_of(answer.status) == "TOKEN_INVALID"


def test_item_without_an_operation_is_invalid_request(session: RawSession, mint: Mint) -> None:
    answer = session.ask(id=9, token=mint(task_id="a"))
    assert reason_of(answer.status) == "INVALID_REQUEST"


def test_pipelined_items_are_each_answered_under_their_own_id(
    session: RawSession, mint: Mint
) -> None:
    a, b = mint(task_id="a"), mint(task_id="b")
    for i in range(50):
        session.send(
            id=1000 + i, token=a, push=pb.PushXComRequest(key=f"k{i}", value=str(i).encode())
        )
    for i in range(50):
        session.send(id=2000 + i, token=b, fetch=pb.FetchXComRequest(task_id="a", key=f"k{i}"))
    answers = {r.id: r for r in (session.receive() for _ in range(100))}
    assert sorted(answers) == [*range(1000, 1050), *range(2000, 2050)]
    for i in range(50):
        assert answers[1000 + i].status.code == 0
        assert json.loads(answers[2000 + i].fetch.value) == i


def test_a_stalled_store_fails_the_item_and_the_stream_goes_on(
    session: RawSession, mint: Mint, redis_deployment: Deployment
) -> None:
    a = mint(task_id="a")
    # The primary holding the run's keys (the only Redis, on standalone).
    store = redis_deployment.primary_for(keys.run_keys("test_dag", "run_1").index)
    store.pause()
    try:
        session.send(id=1, token=a, push=pb.PushXComRequest(key="first", value=b"1"))
        session.send(id=2, token=a, push=pb.PushXComRequest(key="second", value=b"2"))
        first = session.receive()
    finally:
        store.resume()
    second = session.receive()
    assert (first.id, reason_of(first.status)) == (1, "STORE_UNAVAILABLE")
    assert (second.id, second.status.code) == (2, 0)
    b = mint(task_id="b")
    again = session.ask(id=3, token=b, fetch=pb.FetchXComRequest(task_id="a", key="second"))
    assert again.fetch.value == b"2"


def test_draining_ends_idle_sessions_at_once(
    session: RawSession, mint: Mint, service: app.RunningService
) -> None:
    assert (
        session.ask(
            id=1, token=mint(task_id="a"), push=pb.PushXComRequest(key="k", value=b"1")
        ).status.code
        == 0
    )
    started = time.monotonic()
    service.stop(10)
    assert time.monotonic() - started < 5  # the idle stream does not hold the grace period
    # Ended: cancelled while idle, or closed cleanly right after its last answer.
    with pytest.raises((grpc.RpcError, StopIteration)):
        session.receive()
