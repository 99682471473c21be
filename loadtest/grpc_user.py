"""Locust's documented gRPC pattern: a client interceptor fires `events.request` per call.

grpc must be switched to gevent (grpc.experimental.gevent.init_gevent()) before any channel
exists: the locustfile does that first, before importing this module.

A call may declare that a status is its expected outcome (the size sweep's one-byte-over push
must be refused): metadata `x-loadtest-expect: INVALID_ARGUMENT` turns that status into a
success for Locust, and any other outcome, including OK, into a failure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import grpc
from locust import User
from locust.env import Environment

from leoflow_xcom.client._channel import open_channel

EXPECT = "x-loadtest-expect"
DEADLINE_SECONDS = 5.0  # every call has one


class UnexpectedOutcomeError(Exception):
    pass


class EventInterceptor(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, environment: Environment) -> None:
        self._env = environment

    def intercept_unary_unary(
        self,
        continuation: Callable[[Any, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        metadata = dict(client_call_details.metadata or ())
        raw_expected = metadata.get(EXPECT)
        expected = raw_expected.decode() if isinstance(raw_expected, bytes) else raw_expected
        label = metadata.get("x-loadtest-name") or client_call_details.method
        name = label.decode() if isinstance(label, bytes) else str(label)
        started = time.perf_counter()
        response = continuation(client_call_details, request)
        exception: BaseException | None = None
        length = 0
        try:
            result = response.result()
            length = result.ByteSize()
            if expected is not None:
                exception = UnexpectedOutcomeError(f"expected {expected}, got OK")
        except grpc.RpcError as exc:
            code = exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"
            if code != expected:
                exception = exc
        self._env.events.request.fire(  # type: ignore[no-untyped-call]
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=exception,
            context=None,
        )
        return response


class GrpcUser(User):
    abstract = True
    # The target without a flag: the SDK's own variable (the Compose service sets it); --host
    # or Locust's web form win when given.
    host = os.environ.get("LEOFLOW_XCOM_ADDR")

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        if not self.host:
            raise SystemExit("loadtest: give the XCom address as LEOFLOW_XCOM_ADDR or --host")
        self.target = self.host.removeprefix("grpc://")
        self._channel = grpc.intercept_channel(
            open_channel(self.target), EventInterceptor(environment)
        )

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    def on_stop(self) -> None:
        self._channel.close()
