"""Server reflection (grpcurl, Postman) whose streams count against the untrusted pool.

A reflection stream needs no token, so, unguarded, idle reflection streams could pile up
without bound. Each one takes a place in the stream guard's untrusted pool (refused with
RESOURCE_EXHAUSTED when it is full) and is closed after LEOFLOW_XCOM_STREAM_AUTH_SECONDS
without a request. Built on grpc_reflection's public asyncio servicer class.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
import grpc.aio
from grpc_reflection.v1alpha import _async as reflection_async
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from leoflow_xcom.server.context import Context
from leoflow_xcom.server.streams import Kind, Stream, StreamClosedError, StreamGuard

FULL_MESSAGE = (
    "too many open server-reflection or unauthenticated streams on this replica; "
    "close idle ones and retry"
)


class GuardedReflection(reflection_async.ReflectionServicer):  # type: ignore[misc]
    def __init__(self, service_names: Iterable[str], guard: StreamGuard) -> None:
        super().__init__(tuple(service_names))
        self._guard = guard

    async def ServerReflectionInfo(  # noqa: N802  (the gRPC method name)
        self, request_iterator: Any, context: Context
    ) -> AsyncIterator[Any]:
        stream = self._guard.open_untrusted(Kind.REFLECTION)
        if stream is None:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, FULL_MESSAGE)
        assert stream is not None
        try:
            async for answer in super().ServerReflectionInfo(
                self._requests(stream, context), context
            ):
                yield answer
                self._guard.end(stream)
        except StreamClosedError as closed:
            await context.abort(grpc.StatusCode.CANCELLED, str(closed))
        finally:
            self._guard.close(stream)

    async def _requests(self, stream: Stream, context: Context) -> AsyncIterator[Any]:
        while True:
            request = await self._guard.read(stream, context.read)
            if request is grpc.aio.EOF:
                return
            yield request


def enable(service_names: Iterable[str], server: grpc.aio.Server, guard: StreamGuard) -> None:
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        GuardedReflection((*service_names, reflection.SERVICE_NAME), guard), server
    )
