"""Size limit, TTL and schemas, through the real gRPC service."""

from __future__ import annotations

import json
import time

import grpc
import pytest
import redis
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.client import (
    XComInvalidJsonError,
    XComNotFoundError,
    XComSchemaMismatchError,
    XComTooLargeError,
)
from leoflow_xcom.core import keys, limits
from leoflow_xcom.core.model import XComRef
from leoflow_xcom.store.connection import connect
from leoflow_xcom.store.writer import XComWriter
from tests.deployment import Deployment
from tests.fixture_types import ClientFor, Mint


def raw_push(target: str, token: str, key: str, value: bytes) -> grpc.RpcError | None:
    """Push without the SDK (no client-side pre-check), as any other-language client could."""
    with grpc.insecure_channel(target) as channel:
        try:
            pb_grpc.XComServiceStub(channel).PushXCom(
                pb.PushXComRequest(key=key, value=value),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=10,
            )
        except grpc.RpcError as exc:
            return exc
    return None


def error_info(exc: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


def sized(n: int) -> bytes:
    return json.dumps("x" * (n - 2)).encode()


def test_value_at_limit_is_stored_and_one_byte_more_is_refused_by_the_server(
    target: str, mint: Mint, r: redis.Redis, client_for: ClientFor
) -> None:
    token = mint(task_id="b")
    assert raw_push(target, token, "at_limit", sized(262_144)) is None
    err = raw_push(target, token, "over", sized(262_145))
    assert err is not None
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(err)
    assert (info.reason, info.domain) == ("XCOM_TOO_LARGE", "xcom.leoflow")
    assert dict(info.metadata) == {"size": "262145", "limit": "262144", "key": "over"}
    assert "blob store" in (err.details() or "")
    run = keys.run_keys("test_dag", "run_1")
    assert r.exists(run.value(keys.member("b", -1, "over"))) == 0
    assert r.zscore(run.index, keys.member("b", -1, "over")) is None
    assert len(client_for(task_id="b").pull_json("b", "at_limit")) == limits.MAX_VALUE_BYTES


def test_sdk_refuses_oversized_values_before_sending(client_for: ClientFor) -> None:
    client = client_for(task_id="b")
    with pytest.raises(XComTooLargeError) as info:
        client.push("big", "é" * 131_072)  # 262,146 bytes in UTF-8
    assert info.value.metadata["size"] == "262146"
    with pytest.raises(XComNotFoundError):
        client.pull("b", "big")


def test_ttl_defaults_to_seven_days_and_follows_the_dag(
    client_for: ClientFor, r: redis.Redis
) -> None:
    client_for("fanout_files", "run_1", "list_files").push("files", ["a"])
    client_for("test_dag", "run_1", "b").push("k", 1)
    default_ttl = r.ttl(
        keys.run_keys("fanout_files", "run_1").value(keys.member("list_files", -1, "files"))
    )
    assert 604_800 - 5 <= default_ttl <= 604_800
    dag_ttl = r.ttl(keys.run_keys("test_dag", "run_1").value(keys.member("b", -1, "k")))
    assert 3600 - 5 <= dag_ttl <= 3600


@pytest.mark.slow
def test_expired_values_are_not_found_and_gone_from_listing(
    client_for: ClientFor, redis_deployment: Deployment
) -> None:
    reader = client_for(task_id="b")
    reader.push("long", 2)
    # Policies allow 60 s at least; write a 1 s TTL through the store to watch real expiry.
    writer = XComWriter(connect(redis_deployment.settings()))
    writer.push("test_dag", "run_1", XComRef("b", "short"), b"1", ttl_seconds=1)
    assert reader.pull("b", "short") == 1
    time.sleep(1.2)
    with pytest.raises(XComNotFoundError) as info:
        reader.pull("b", "short")
    assert "expired" in info.value.message
    assert [e.key for e in reader.list().entries] == ["long"]
    assert reader.list().total_entries == 1


def test_schema_match_is_stored_and_a_mismatch_names_the_path(client_for: ClientFor) -> None:
    a = client_for(task_id="a")
    a.push("typed", {"rows": 10})
    with pytest.raises(XComSchemaMismatchError) as info:
        a.push("typed", {"rows": "ten"})
    assert info.value.metadata["path"] == "$.rows"
    assert "'ten' is not of type 'integer'" in info.value.message
    with pytest.raises(XComSchemaMismatchError) as missing:
        a.push("typed", {})
    assert missing.value.metadata["path"] == "$"
    assert client_for(task_id="b").pull("a", "typed") == {"rows": 10}  # the good value stays


def test_keys_without_a_schema_take_any_json(client_for: ClientFor) -> None:
    a = client_for(task_id="a")
    for value in (None, 1, 2.5, "s", [1, {"x": None}], {"nested": {"deep": [True]}}):
        a.push("untyped", value)
        assert a.pull("a", "untyped") == value


@pytest.mark.parametrize("raw", [b"not json", b"{'a':1}", b"NaN", b"\xc3\x28", b"[" * 300])
def test_non_json_is_refused(client_for: ClientFor, raw: bytes) -> None:
    with pytest.raises(XComInvalidJsonError) as info:
        client_for(task_id="b").push_json("k", raw)
    assert "not valid JSON" in info.value.message


def test_empty_and_oversized_keys_are_invalid(client_for: ClientFor) -> None:
    from leoflow_xcom.client import InvalidRequestError

    client = client_for(task_id="b")
    with pytest.raises(InvalidRequestError, match="key"):
        client.push_json("", b"1")
    with pytest.raises(InvalidRequestError, match="at most 512"):
        client.push_json("k" * 513, b"1")
    client.push("k" * 512, 1)
    assert client.pull("b", "k" * 512) == 1
