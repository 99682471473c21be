"""Hostile input over the real gRPC socket: never INTERNAL, never a crash, always a clear error."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from tests.fixture_types import ClientFor, Mint

# What a hostile or buggy client may get back; INTERNAL and UNKNOWN are never acceptable.
EXPECTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAUTHENTICATED,
}

ids = st.text(max_size=300)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=20,
)


@pytest.fixture
def stub(target: str) -> pb_grpc.XComServiceStub:
    channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", -1)])
    return pb_grpc.XComServiceStub(channel)


def call(method: object, request: object, token: str) -> grpc.StatusCode:
    try:
        method(request, metadata=(("authorization", f"Bearer {token}"),), timeout=10)  # type: ignore[operator]
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=ids,
    value=st.binary(max_size=2000),
    task=ids,
    run=ids,
    map_index=st.integers(-(2**31), 2**31 - 1),
)
def test_random_pushes_get_clear_statuses(
    stub: pb_grpc.XComServiceStub,
    mint: Mint,
    key: str,
    value: bytes,
    task: str,
    run: str,
    map_index: int,
) -> None:
    token = mint(task_id="b")
    request = pb.PushXComRequest(
        key=key, value=value, task_id=task, run_id=run, map_index=map_index
    )
    assert call(stub.PushXCom, request, token) in EXPECTED


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    task=ids,
    key=ids,
    map_index=st.integers(-(2**31), 2**31 - 1),
    limit=st.integers(-(2**31), 2**31 - 1),
    offset=st.integers(-(2**31), 2**31 - 1),
)
def test_random_reads_get_clear_statuses(
    stub: pb_grpc.XComServiceStub,
    mint: Mint,
    task: str,
    key: str,
    map_index: int,
    limit: int,
    offset: int,
) -> None:
    token = mint(task_id="b")
    assert (
        call(stub.FetchXCom, pb.FetchXComRequest(task_id=task, key=key, map_index=map_index), token)
        in EXPECTED
    )
    selectors = [pb.XComSelector(task_id=task, key=key, all_map_indexes=True)]
    assert call(stub.FetchXComs, pb.FetchXComsRequest(selectors=selectors), token) in EXPECTED
    listing = pb.ListXComsRequest(task_id=task, key=key, limit=limit, offset=offset)
    assert call(stub.ListXComs, listing, token) in EXPECTED


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=json_values)
def test_any_json_value_round_trips_through_the_sdk(client_for: ClientFor, value: object) -> None:
    client = client_for(task_id="b")
    client.push("any", value)
    assert client.pull("b", "any") == value


def test_a_10_mb_message_is_refused_by_grpc_and_the_server_stays_up(
    stub: pb_grpc.XComServiceStub, mint: Mint, client_for: ClientFor
) -> None:
    token = mint(task_id="b")
    huge = pb.PushXComRequest(key="k", value=b"1" * (10 * 1024 * 1024))
    assert call(stub.PushXCom, huge, token) == grpc.StatusCode.RESOURCE_EXHAUSTED
    client_for(task_id="b").push("after", 1)


def test_huge_metadata_is_refused_and_the_server_stays_up(
    stub: pb_grpc.XComServiceStub, client_for: ClientFor
) -> None:
    code = call(stub.FetchXCom, pb.FetchXComRequest(task_id="a", key="k"), "x" * 100_000)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED  # refused by the HTTP/2 layer
    client_for(task_id="b").push("after", 1)


def test_batch_limits(client_for: ClientFor) -> None:
    from leoflow_xcom.client import InvalidRequestError

    client = client_for(task_id="fanin")
    with pytest.raises(InvalidRequestError, match="at most 1000"):
        client.pull_many("mapped", "out", range(1001))
    assert client.pull_many("mapped", "out", range(1000)) == {}


@pytest.mark.parametrize(
    "value", [b'"\\ud800"', b'{"a": ["ok", "x\\udfffy"]}', b'{"\\udc00": 1}', b'"\\uDBFF"']
)
def test_lone_surrogates_are_invalid_json(
    stub: pb_grpc.XComServiceStub, mint: Mint, value: bytes
) -> None:
    """Valid JSON syntax, but not Unicode text: nothing downstream could read it back."""
    from grpc_status import rpc_status

    from leoflow_xcom.client._errors import from_rpc_error

    with pytest.raises(grpc.RpcError) as info:
        stub.PushXCom(
            pb.PushXComRequest(key="s", value=value),
            metadata=(("authorization", f"Bearer {mint(task_id='a')}"),),
            timeout=10,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_status.from_call(info.value) is not None  # type: ignore[arg-type]
    error = from_rpc_error(info.value)
    assert error.reason == "XCOM_INVALID_JSON" and "lone UTF-16 surrogate" in error.message
    # A proper pair is one character, and fine.
    stub.PushXCom(
        pb.PushXComRequest(key="s", value=b'"\\ud83d\\ude00"'),
        metadata=(("authorization", f"Bearer {mint(task_id='a')}"),),
        timeout=10,
    )
