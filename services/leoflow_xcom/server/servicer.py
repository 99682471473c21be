"""The unary XComService: convert, call the handlers, convert back. Nothing else."""

from __future__ import annotations

import grpc

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.core import limits
from leoflow_xcom.core.model import Claims
from leoflow_xcom.server import convert
from leoflow_xcom.server.handlers import XComHandlers
from leoflow_xcom.server.observe import CallObserver
from leoflow_xcom.server.status import mapped_errors


def bearer_token(context: grpc.ServicerContext) -> str | None:
    for name, value in context.invocation_metadata():
        if name == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


class XComServicer(pb_grpc.XComServiceServicer):
    def __init__(self, handlers: XComHandlers, observer: CallObserver | None = None) -> None:
        self._handlers = handlers
        self.observer = observer or CallObserver()

    def _claims(self, context: grpc.ServicerContext) -> Claims:
        return self._handlers.authenticate(bearer_token(context))

    @mapped_errors
    def PushXCom(
        self, request: pb.PushXComRequest, context: grpc.ServicerContext
    ) -> pb.PushXComResponse:
        return push(self._handlers, self._claims(context), request)

    @mapped_errors
    def FetchXCom(
        self, request: pb.FetchXComRequest, context: grpc.ServicerContext
    ) -> pb.FetchXComResponse:
        return fetch(self._handlers, self._claims(context), request)

    @mapped_errors
    def FetchXComs(
        self, request: pb.FetchXComsRequest, context: grpc.ServicerContext
    ) -> pb.FetchXComsResponse:
        return fetch_many(self._handlers, self._claims(context), request)

    @mapped_errors
    def ListXComs(
        self, request: pb.ListXComsRequest, context: grpc.ServicerContext
    ) -> pb.ListXComsResponse:
        page = self._handlers.list(
            self._claims(context),
            convert.optional(request, "dag_id"),
            convert.optional(request, "run_id"),
            convert.filter_from_list(request),
        )
        return pb.ListXComsResponse(
            entries=[convert.entry_to_proto(e) for e in page.entries], total_entries=page.total
        )

    @mapped_errors
    def ClearXComs(
        self, request: pb.ClearXComsRequest, context: grpc.ServicerContext
    ) -> pb.ClearXComsResponse:
        if request.all_map_indexes:
            map_index = None
        elif request.HasField("map_index"):
            map_index = request.map_index
        else:
            map_index = limits.UNMAPPED
        deleted = self._handlers.clear(
            self._claims(context),
            request.dag_id,
            request.run_id,
            convert.optional(request, "task_id"),
            map_index if request.HasField("task_id") else None,
        )
        return pb.ClearXComsResponse(deleted=deleted)


# The three hot-path operations, shared by the unary methods above and the session stream.


def push(
    handlers: XComHandlers, claims: Claims, request: pb.PushXComRequest
) -> pb.PushXComResponse:
    size, expires = handlers.push(
        claims,
        request.key,
        request.value,
        dag_id=convert.optional(request, "dag_id"),
        run_id=convert.optional(request, "run_id"),
        task_id=convert.optional(request, "task_id"),
        map_index=request.map_index if request.HasField("map_index") else None,
    )
    return pb.PushXComResponse(size_bytes=size, expires_at_ms=expires)


def fetch(
    handlers: XComHandlers, claims: Claims, request: pb.FetchXComRequest
) -> pb.FetchXComResponse:
    value = handlers.fetch(
        claims,
        convert.ref_from_fetch(request),
        dag_id=convert.optional(request, "dag_id"),
        run_id=convert.optional(request, "run_id"),
    )
    return pb.FetchXComResponse(value=value)


def fetch_many(
    handlers: XComHandlers, claims: Claims, request: pb.FetchXComsRequest
) -> pb.FetchXComsResponse:
    results = handlers.fetch_many(
        claims, [convert.selector_from_proto(s) for s in request.selectors]
    )
    return pb.FetchXComsResponse(
        results=[
            pb.FetchXComsResult(
                ref=convert.ref_to_proto(ref), found=value is not None, value=value or b""
            )
            for ref, value in results
        ]
    )
