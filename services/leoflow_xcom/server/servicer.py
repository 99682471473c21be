"""The unary XComService on grpc.aio: convert, await the handlers, convert back. Nothing else."""

from __future__ import annotations

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom._proto import xcom_pb2_grpc as pb_grpc
from leoflow_xcom.core import limits
from leoflow_xcom.core.model import Claims
from leoflow_xcom.server import convert
from leoflow_xcom.server.context import Context, bearer_token
from leoflow_xcom.server.handlers import XComHandlers
from leoflow_xcom.server.observe import CallObserver
from leoflow_xcom.server.status import mapped_errors


class XComServicer(pb_grpc.XComServiceServicer):
    def __init__(self, handlers: XComHandlers, observer: CallObserver | None = None) -> None:
        self._handlers = handlers
        self.observer = observer or CallObserver()

    def _claims(self, context: Context) -> Claims:
        return self._handlers.authenticate(bearer_token(context))

    @mapped_errors
    async def PushXCom(self, request: pb.PushXComRequest, context: Context) -> pb.PushXComResponse:
        return await push(self._handlers, self._claims(context), request)

    @mapped_errors
    async def FetchXCom(
        self, request: pb.FetchXComRequest, context: Context
    ) -> pb.FetchXComResponse:
        return await fetch(self._handlers, self._claims(context), request)

    @mapped_errors
    async def FetchXComs(
        self, request: pb.FetchXComsRequest, context: Context
    ) -> pb.FetchXComsResponse:
        return await fetch_many(self._handlers, self._claims(context), request)

    @mapped_errors
    async def ListXComs(
        self, request: pb.ListXComsRequest, context: Context
    ) -> pb.ListXComsResponse:
        page = await self._handlers.list(
            self._claims(context),
            convert.optional(request, "dag_id"),
            convert.optional(request, "run_id"),
            convert.filter_from_list(request),
        )
        return pb.ListXComsResponse(
            entries=[convert.entry_to_proto(e) for e in page.entries], total_entries=page.total
        )

    @mapped_errors
    async def ClearXComs(
        self, request: pb.ClearXComsRequest, context: Context
    ) -> pb.ClearXComsResponse:
        if request.all_map_indexes:
            map_index = None
        elif request.HasField("map_index"):
            map_index = request.map_index
        else:
            map_index = limits.UNMAPPED
        deleted = await self._handlers.clear(
            self._claims(context),
            request.dag_id,
            request.run_id,
            convert.optional(request, "task_id"),
            map_index if request.HasField("task_id") else None,
        )
        return pb.ClearXComsResponse(deleted=deleted)


# The three hot-path operations, shared by the unary methods above and the session stream.


async def push(
    handlers: XComHandlers, claims: Claims, request: pb.PushXComRequest
) -> pb.PushXComResponse:
    size, expires = await handlers.push(
        claims,
        request.key,
        request.value,
        dag_id=convert.optional(request, "dag_id"),
        run_id=convert.optional(request, "run_id"),
        task_id=convert.optional(request, "task_id"),
        map_index=request.map_index if request.HasField("map_index") else None,
    )
    return pb.PushXComResponse(size_bytes=size, expires_at_ms=expires)


async def fetch(
    handlers: XComHandlers, claims: Claims, request: pb.FetchXComRequest
) -> pb.FetchXComResponse:
    value = await handlers.fetch(
        claims,
        convert.ref_from_fetch(request),
        dag_id=convert.optional(request, "dag_id"),
        run_id=convert.optional(request, "run_id"),
    )
    return pb.FetchXComResponse(value=value)


async def fetch_many(
    handlers: XComHandlers, claims: Claims, request: pb.FetchXComsRequest
) -> pb.FetchXComsResponse:
    results = await handlers.fetch_many(
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
