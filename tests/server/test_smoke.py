from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.fixture_types import ClientFor


def test_push_then_fetch_from_a_declared_dependency(client_for: ClientFor) -> None:
    client_for(task_id="a").push("typed", {"rows": 3})
    assert client_for(task_id="b").pull("a", "typed") == {"rows": 3}


def test_health_reports_serving_for_the_server_and_the_service(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", "leoflow.xcom.v1.XComService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        reply = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=5)))
        names = {s.name for s in reply.list_services_response.service}
    assert {"leoflow.xcom.v1.XComService", "grpc.health.v1.Health"} <= names
