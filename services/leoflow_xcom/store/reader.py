"""Reads: fetch (one GET), batch fetch (one round trip per shape), listing (one script call).

Safe for a read-only Redis ACL user: nothing here writes (the listing script is `no-writes`).
The UI proxy and the gRPC service share this class.
"""

from __future__ import annotations

import json
import logging
from typing import Any, cast

from leoflow_xcom.core import keys, limits
from leoflow_xcom.core.errors import InvalidRequestError, XComNotFoundError
from leoflow_xcom.core.model import ListFilter, Page, RunInfo, Selector, XComEntry, XComRef
from leoflow_xcom.store import scripts
from leoflow_xcom.store.connection import StoreClient, translated
from leoflow_xcom.store.node_scripts import NodeScript
from leoflow_xcom.store.routing import NodeRouter

log = logging.getLogger(__name__)


class XComReader:
    def __init__(self, client: StoreClient) -> None:
        self._client = client
        self._router = NodeRouter(client)
        self._list = ReadOnlyScript(client, scripts.LIST)
        self._fetch_many = ReadOnlyScript(client, scripts.FETCH_MANY)

    def fetch(self, dag_id: str, run_id: str, ref: XComRef) -> bytes:
        with translated():
            value = self._router.get(value_key(dag_id, run_id, ref))
        return fetched(value, dag_id, run_id, ref)

    def fetch_head(self, dag_id: str, run_id: str, ref: XComRef, limit: int) -> tuple[bytes, int]:
        """At most the first `limit` bytes of a value and its full size, in one transaction:
        a page showing a large value never loads more of it than it displays."""
        name = value_key(dag_id, run_id, ref)
        with translated(), self._client.pipeline(transaction=True) as pipe:
            pipe.strlen(name)
            pipe.getrange(name, 0, max(limit, 1) - 1)
            size, head = pipe.execute()
        if not int(size):  # values are JSON, never empty: 0 means no such key
            raise XComNotFoundError.for_ref(dag_id, run_id, ref.task_id, ref.map_index, ref.key)
        return cast(bytes, head)[:limit], int(size)

    def fetch_many(
        self, dag_id: str, run_id: str, selectors: list[Selector]
    ) -> list[tuple[XComRef, bytes | None]]:
        """Values for each selector in order; a selector with all_map_indexes expands to every
        indexed map index of its task and key. Missing values come back as None.

        One script call, and every bound is checked before a value is read: the number of
        references (counted in the by-key index before anything is expanded) and the bytes
        the answer would carry (the sizes are in the meta hash), so an oversized batch costs
        Redis a few counts and small replies, never the values themselves."""
        script_keys, args = fetch_many_call(dag_id, run_id, selectors)
        with translated():
            reply = self._fetch_many(script_keys, args)
        return fetch_many_result(reply)

    def list(self, dag_id: str, run_id: str, flt: ListFilter) -> Page:
        run = keys.run_keys(dag_id, run_id)
        by_key = flt.key is not None
        if flt.key is not None:
            # A key filter ranges over the by-key index: O(page), not a scan of the run.
            if flt.task_id is None:
                prefix = keys.key_prefix(flt.key)
            elif flt.map_index is None:
                prefix = keys.key_prefix(flt.key, flt.task_id)
            else:
                prefix = keys.key_member(flt.task_id, flt.map_index, flt.key)
        elif flt.task_id is None:
            prefix = ""
        elif flt.map_index is None:
            prefix = keys.task_prefix(flt.task_id)
        else:
            prefix = keys.task_instance_prefix(flt.task_id, flt.map_index)
        low, high = keys.lex_range(prefix)
        # A map index without a task (the UI's `~` task) filters inside the script.
        infix = ""
        if flt.task_id is None and flt.map_index is not None:
            infix = keys.map_index_infix(flt.map_index)
        with translated():
            total, flat, run_info, first_push = self._list(
                [run.index, run.expiry, run.meta, run.by_key],
                [low, high, flt.offset, flt.limit, infix, "1" if by_key else "0"],
            )
        entries = []
        for i in range(0, len(flat), 2):
            entry = _entry(dag_id, run_id, flat[i], flat[i + 1])
            if entry is not None:
                entries.append(entry)
        return Page(entries=entries, total=int(total), run_info=run_info_from(run_info, first_push))


def value_key(dag_id: str, run_id: str, ref: XComRef) -> str:
    """The key of one XCom's value (what fetch GETs)."""
    return keys.run_keys(dag_id, run_id).value(keys.member(ref.task_id, ref.map_index, ref.key))


def fetched(value: bytes | None, dag_id: str, run_id: str, ref: XComRef) -> bytes:
    """fetch's answer for a GET's reply: the value, or XComNotFoundError."""
    if value is None:
        raise XComNotFoundError.for_ref(dag_id, run_id, ref.task_id, ref.map_index, ref.key)
    return value


def fetch_many_call(
    dag_id: str, run_id: str, selectors: list[Selector]
) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV of the FETCH_MANY call for these selectors (AsyncXComStore sends the
    same call)."""
    run = keys.run_keys(dag_id, run_id)
    args: list[str | int] = [
        limits.MAX_BATCH_SELECTORS,
        limits.MAX_BATCH_RESPONSE_BYTES,
        run.tag,
    ]
    for sel in selectors:
        if sel.all_map_indexes:
            args += ["m", keys.key_prefix(sel.key, sel.task_id)]
        else:
            args += ["r", keys.member(sel.task_id, sel.map_index, sel.key)]
    return [run.by_key, run.meta], args


def fetch_many_result(reply: list[Any]) -> list[tuple[XComRef, bytes | None]]:
    """FETCH_MANY's reply as fetch_many's answer, or its refusal of a batch too large (in
    references or in bytes) raised."""
    if int(reply[0]) == -1:
        _check_batch_size(int(reply[1]))
    if int(reply[0]) == -2:
        total = int(reply[1])
        raise InvalidRequestError(
            f"the batch would return {total:,} bytes; at most "
            f"{limits.MAX_BATCH_RESPONSE_BYTES:,} fit in one call. Nothing was read. Fetch "
            f"in smaller batches.",
            {
                "field": "selectors",
                "size": str(total),
                "limit": str(limits.MAX_BATCH_RESPONSE_BYTES),
            },
        )
    members, values = reply[1], reply[2]
    found: list[tuple[XComRef, bytes | None]] = []
    for raw, value in zip(members, values, strict=True):
        task_id, map_index, key = keys.parse_member(raw.decode())
        found.append((XComRef(task_id, key, map_index), value if value else None))
    return found


def _check_batch_size(count: int) -> None:
    if count > limits.MAX_BATCH_SELECTORS:
        raise InvalidRequestError(
            f"the batch expands to {count:,} XComs; at most "
            f"{limits.MAX_BATCH_SELECTORS:,} per call. Nothing was read. Fetch in smaller "
            f"batches.",
            {"field": "selectors", "size": str(count), "limit": str(limits.MAX_BATCH_SELECTORS)},
        )


def _entry(dag_id: str, run_id: str, raw_member: bytes, raw_meta: bytes) -> XComEntry | None:
    """One listed entry, or None for data no current rule allows (written directly, or by an
    older, laxer version): it is left out and logged, and never fails the whole listing."""
    try:
        task_id, map_index, key = keys.parse_member(raw_member.decode())
        if not raw_meta:
            return None  # an index entry without meta would be a bug; never show half an entry
        size, pushed, expires = keys.parse_meta(raw_meta.decode())
    except (ValueError, UnicodeDecodeError):
        log.warning("skipping an unreadable index entry in run %r of DAG %r", run_id, dag_id)
        return None
    if not (limits.UNMAPPED <= map_index <= limits.MAX_MAP_INDEX) or not all(
        0 <= n < 2**63 for n in (size, pushed, expires)
    ):
        log.warning("skipping an out-of-range index entry in run %r of DAG %r", run_id, dag_id)
        return None
    return XComEntry(dag_id, run_id, task_id, map_index, key, size, pushed, expires)


class ReadOnlyScript(NodeScript):
    """A `no-writes` script run with EVALSHA_RO. Plain EVALSHA declares its keys as written, so
    Redis would refuse it to a read-only ACL user (`%R~xcom:*`, the UI proxy)."""

    def __init__(self, client: StoreClient, source: str) -> None:
        super().__init__(client, source, read_only=True)


def run_info_from(raw: bytes | None, first_push: bytes | None = None) -> RunInfo:
    """Defensive: a run-facts field that is not what the push script writes is shown as
    unknown facts, never as an error for every reader of the run."""
    first = int(first_push) if first_push and first_push.isdigit() else None
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    logical_date, run_after = data.get("logical_date"), data.get("run_after")
    return RunInfo(
        logical_date=logical_date if isinstance(logical_date, str) else None,
        run_after=run_after if isinstance(run_after, str) else None,
        first_push_ms=first,
    )
