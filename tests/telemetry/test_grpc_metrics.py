"""The gRPC service's /metrics after real calls, and request ids echoed in trailing metadata."""

from __future__ import annotations

import re

import grpc
import httpx
import pytest
import redis

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.client import NO_RETRY, XComClient, XComSchemaMismatchError
from leoflow_xcom.server import app
from tests.dag_data import publish_test_policies
from tests.fixture_types import Mint, StartService


@pytest.fixture
def monitored(r: redis.Redis, start_service: StartService) -> app.RunningService:
    publish_test_policies(r)
    return start_service(workers=8, metrics_listen="127.0.0.1:0")


def scrape(running: app.RunningService) -> str:
    assert running.monitoring is not None and running.monitoring.metrics_port
    return httpx.get(f"http://127.0.0.1:{running.monitoring.metrics_port}/metrics").text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample, 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0


def test_calls_items_payloads_and_rejections_are_counted(
    monitored: app.RunningService, mint: Mint
) -> None:
    target = f"127.0.0.1:{monitored.port}"
    with XComClient(target, mint(task_id="a"), retry=NO_RETRY, transport="unary") as unary:
        unary.push("typed", {"rows": 1})
        with pytest.raises(XComSchemaMismatchError):
            unary.push("typed", {"rows": "many"})
    with XComClient(target, mint(task_id="b"), retry=NO_RETRY) as session:
        assert session.pull("a", "typed") == {"rows": 1}
    text = scrape(monitored)
    assert sample(text, "leoflow_xcom_grpc_calls_total", method="PushXCom", code="OK") == 1
    assert (
        sample(text, "leoflow_xcom_grpc_calls_total", method="PushXCom", code="INVALID_ARGUMENT")
        == 1
    )
    assert sample(text, "leoflow_xcom_grpc_rejections_total", reason="XCOM_SCHEMA_MISMATCH") == 1
    assert sample(text, "leoflow_xcom_grpc_calls_total", method="XComSession/fetch", code="OK") == 1
    assert (
        sample(text, "leoflow_xcom_grpc_call_seconds_count", method="XComSession/fetch", code="OK")
        == 1
    )
    assert sample(text, "leoflow_xcom_grpc_payload_bytes_sum", method="PushXCom") == len(
        b'{"rows":1}'
    )
    assert sample(text, "leoflow_xcom_grpc_payload_bytes_count", method="XComSession/fetch") == 1
    assert sample(text, "leoflow_xcom_redis_up") == 1
    assert sample(text, "leoflow_xcom_redis_aof_enabled") == 1
    assert sample(text, "leoflow_xcom_redis_aof_last_write_ok") == 1
    assert sample(text, "leoflow_xcom_redis_keys") >= 1
    assert sample(text, "leoflow_xcom_redis_maxmemory_bytes") > 0
    assert sample(text, "leoflow_xcom_redis_memory_warning") == 0
    assert "leoflow_xcom_grpc_open_sessions" in text
    assert sample(text, "leoflow_xcom_grpc_unauthenticated_streams") == 0


def test_request_id_is_echoed_or_generated(monitored: app.RunningService, mint: Mint) -> None:
    auth: tuple[str, str | bytes] = ("authorization", f"Bearer {mint(task_id='a')}")
    with grpc.insecure_channel(f"127.0.0.1:{monitored.port}") as channel:
        stub = pb_grpc.XComServiceStub(channel)
        push = pb.PushXComRequest(key="k", value=b"1")
        _, call = stub.PushXCom.with_call(push, metadata=(auth, ("x-request-id", "job-42.a")))
        assert dict(call.trailing_metadata())["x-request-id"] == "job-42.a"
        _, call = stub.PushXCom.with_call(push, metadata=(auth,))
        generated = dict(call.trailing_metadata())["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16}", str(generated))
        with pytest.raises(grpc.RpcError) as refused:
            stub.FetchXCom(
                pb.FetchXComRequest(task_id="a", key="missing"),
                metadata=(auth, ("x-request-id", "job-42.b")),
            )
        error: grpc.Call = refused.value  # type: ignore[assignment]
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert dict(error.trailing_metadata())["x-request-id"] == "job-42.b"
