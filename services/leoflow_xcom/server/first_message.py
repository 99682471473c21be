"""Unary-request methods wait for their message under the stream guard.

For a method whose request is a single message (every unary method, health Check and Watch),
grpc.aio reads that message before the handler runs, with no bound of its own: a client that
sends a call's headers and never its message (no token needed) keeps a place among
`maximum_concurrent_rpcs` until it hangs up, and enough of them refuse every other call. So this
interceptor serves those methods as request-streaming ones, which grpc starts at once, and reads
the one message here, under the stream guard: the wait ends after
LEOFLOW_XCOM_STREAM_AUTH_SECONDS and, while more calls than the untrusted pool holds are waiting,
the longest-waiting are closed. An honest client's message arrives with its headers, so it never
waits long enough to be chosen.

Only public grpc API: `aio.ServerInterceptor`, `RpcMethodHandler` and the
`*_rpc_method_handler` constructors. The behaviour this relies on (a request-streaming handler
starts before any message arrives) is held by tests/security/test_stream_flood.py, which fails
if grpc changes it.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from leoflow_xcom.server.context import Context
from leoflow_xcom.server.streams import StreamClosedError, StreamGuard

MISSING_MESSAGE = "a unary method requires exactly one request message"


class FirstMessageGuard(grpc.aio.ServerInterceptor):
    def __init__(self, guard: StreamGuard) -> None:
        self._guard = guard
        # method -> (its handler, the converted one); keeping the handler pins its identity.
        self._converted: dict[
            str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]
        ] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
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
                self._wrap_streaming(handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        assert handler.unary_unary is not None
        return grpc.stream_unary_rpc_method_handler(
            self._wrap(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _first(self, context: Context) -> Any:
        try:
            request = await self._guard.first_message(context.read)
        except StreamClosedError as closed:
            await context.abort(grpc.StatusCode.CANCELLED, str(closed))
        if request is grpc.aio.EOF:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, MISSING_MESSAGE)
        return request

    def _wrap(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def first_then_behave(_requests: Any, context: Context) -> Any:
            return await behavior(await self._first(context), context)

        return first_then_behave

    def _wrap_streaming(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.isasyncgenfunction(behavior):
            return self._wrap(behavior)  # it writes through the context (health Watch does)

        async def first_then_stream(_requests: Any, context: Context) -> AsyncIterator[Any]:
            async for answer in behavior(await self._first(context), context):
                yield answer

        return first_then_stream
