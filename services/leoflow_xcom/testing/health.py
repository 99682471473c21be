"""Waiting for a gRPC service to report SERVING on the standard health service."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def serving(target: str, timeout: float = 1) -> bool:
    """True when `target` answers the health check with SERVING; False when it cannot."""
    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


class NotServingError(RuntimeError):
    """The service exited, or did not report SERVING in time."""


def wait_serving(target: str, proc: subprocess.Popen[Any], seconds: float = 30) -> None:
    """Poll the health check until SERVING; NotServingError if `proc` exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NotServingError(f"the service exited with code {proc.returncode}")
        if serving(target):
            return
        time.sleep(0.1)
    raise NotServingError(f"the service did not report SERVING in {seconds:.0f} s")
