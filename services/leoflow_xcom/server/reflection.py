"""Server reflection (grpcurl, Postman) whose streams count against the untrusted pool.

A reflection stream needs no token, so, unguarded, idle reflection streams alone could hold
every server thread. Each one takes a place in the stream guard's untrusted pool (refused with
RESOURCE_EXHAUSTED when it is full) and is closed after LEOFLOW_XCOM_STREAM_AUTH_SECONDS
without a request. Built on grpc_reflection's public servicer class.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from leoflow_xcom.server.streams import Kind, Stream, StreamGuard

FULL_MESSAGE = (
    "too many open server-reflection or unauthenticated streams on this replica; "
    "close idle ones and retry"
)


class GuardedReflection(reflection.ReflectionServicer):  # type: ignore[misc]
    def __init__(self, service_names: Iterable[str], guard: StreamGuard) -> None:
        super().__init__(tuple(service_names))
        self._guard = guard

    def ServerReflectionInfo(  # noqa: N802  (the gRPC method name)
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[Any]:
        stream = self._guard.open_untrusted(context, Kind.REFLECTION)
        if stream is None:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, FULL_MESSAGE)
        try:
            for answer in super().ServerReflectionInfo(_marked(request_iterator, stream), context):
                yield answer
                self._guard.end(stream)
        except grpc.RpcError:
            pass  # cancelled while idle, or the client went away
        finally:
            self._guard.close(stream)


def _marked(requests: Iterator[Any], stream: Stream) -> Iterator[Any]:
    for request in requests:
        stream.busy = True  # answering: the watchdog leaves it alone until `end`
        yield request


def enable(service_names: Iterable[str], server: grpc.Server, guard: StreamGuard) -> None:
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        GuardedReflection((*service_names, reflection.SERVICE_NAME), guard), server
    )
