"""Unary-request methods wait for their message under the stream guard, not on a bare thread.

For a method whose request is a single message (every unary method, health Check and Watch),
the sync grpcio server waits for that message on a pool thread *before* the handler runs, with
no bound: a client that sends the call's headers and never its message (no token needed) holds
a thread until it hangs up, and 200 such calls stall every other call. So this interceptor
serves those methods as request-streaming ones, which grpc starts at once with a request
iterator, and reads the one message here: registered with the stream guard, which cancels the
wait after LEOFLOW_XCOM_STREAM_AUTH_SECONDS and, when more calls than the untrusted pool holds
are waiting at once, cancels the longest-waiting. An honest client's message arrives with its
headers, so it never waits long enough to be chosen.

Only public grpc API: `ServerInterceptor`, `RpcMethodHandler` and the `*_rpc_method_handler`
constructors. The behaviour this relies on (a request-streaming handler starts before any
message arrives) is held by tests/security/test_stream_flood.py, which fails if grpc changes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc

from leoflow_xcom.server.streams import StreamGuard

MISSING_MESSAGE = "a unary method requires exactly one request message"


class FirstMessageGuard(grpc.ServerInterceptor):
    def __init__(self, guard: StreamGuard) -> None:
        self._guard = guard
        # method -> (its handler, the converted one); keeping the handler pins its identity.
        self._converted: dict[
            str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]
        ] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler  # streams read their own messages (and are guarded themselves)
        method = handler_call_details.method
        cached = self._converted.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        # Handlers are created once per method at registration: convert each once.
        converted = self._convert(handler)
        self._converted[method] = (handler, converted)
        return converted

    def _convert(self, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.response_streaming:
            assert handler.unary_stream is not None
            return grpc.stream_stream_rpc_method_handler(
                self._wrap(handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        assert handler.unary_unary is not None
        return grpc.stream_unary_rpc_method_handler(
            self._wrap(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        guard = self._guard

        def first_then_behave(
            request_iterator: Iterator[Any], context: grpc.ServicerContext, *more: Any
        ) -> Any:
            waiting = guard.wait_for_request(context)
            try:
                request = next(request_iterator)
            except StopIteration:
                context.abort(grpc.StatusCode.UNIMPLEMENTED, MISSING_MESSAGE)
            finally:
                guard.request_arrived(waiting)
            return behavior(request, context, *more)  # more: Watch's send_response_callback

        # health.Watch answers through a callback and holds no thread while it watches; grpc
        # keeps doing so for the wrapped method when the flags travel with it.
        for flag in ("experimental_non_blocking", "experimental_thread_pool"):
            if hasattr(behavior, flag):
                setattr(first_then_behave, flag, getattr(behavior, flag))
        return first_then_behave
