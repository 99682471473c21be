"""Proto <-> core conversion. Proto types stop here; handlers see plain values."""

from __future__ import annotations

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.core import limits
from leoflow_xcom.core.model import ListFilter, Selector, XComEntry, XComRef


def map_index_of(message: pb.XComRef | pb.FetchXComRequest | pb.XComSelector) -> int:
    # An omitted map_index means an unmapped task instance (-1), never 0.
    return message.map_index if message.HasField("map_index") else limits.UNMAPPED


def optional(message: object, field: str) -> str | None:
    return getattr(message, field) if message.HasField(field) else None  # type: ignore[attr-defined]


def ref_from_fetch(request: pb.FetchXComRequest) -> XComRef:
    return XComRef(request.task_id, request.key, map_index_of(request))


def selector_from_proto(message: pb.XComSelector) -> Selector:
    return Selector(
        task_id=message.task_id,
        key=message.key,
        map_index=map_index_of(message),
        all_map_indexes=message.all_map_indexes,
    )


def ref_to_proto(ref: XComRef) -> pb.XComRef:
    return pb.XComRef(task_id=ref.task_id, key=ref.key, map_index=ref.map_index)


def filter_from_list(request: pb.ListXComsRequest) -> ListFilter:
    return ListFilter(
        task_id=request.task_id if request.HasField("task_id") else None,
        map_index=request.map_index if request.HasField("map_index") else None,
        key=request.key if request.HasField("key") else None,
        limit=request.limit or limits.LIST_DEFAULT_LIMIT,
        offset=request.offset,
    )


def entry_to_proto(entry: XComEntry) -> pb.XComEntry:
    return pb.XComEntry(
        dag_id=entry.dag_id,
        run_id=entry.run_id,
        task_id=entry.task_id,
        map_index=entry.map_index,
        key=entry.key,
        size_bytes=entry.size_bytes,
        pushed_at_ms=entry.pushed_at_ms,
        expires_at_ms=entry.expires_at_ms,
    )
