"""Reads: fetch (one GET), batch fetch (one round trip per shape), listing (one script call).

Safe for a read-only Redis ACL user: nothing here writes (the listing script is `no-writes`).
The UI proxy and the gRPC service share this class.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Sequence
from typing import Any, cast

import redis
import redis.exceptions

from leoflow_xcom.core import keys, limits
from leoflow_xcom.core.errors import InvalidRequestError, XComNotFoundError
from leoflow_xcom.core.model import ListFilter, Page, RunInfo, Selector, XComEntry, XComRef
from leoflow_xcom.store import scripts
from leoflow_xcom.store.connection import translated


class XComReader:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._list = ReadOnlyScript(client, scripts.LIST)

    def fetch(self, dag_id: str, run_id: str, ref: XComRef) -> bytes:
        run = keys.run_keys(dag_id, run_id)
        with translated():
            value = cast(
                bytes | None,
                self._client.get(run.value(keys.member(ref.task_id, ref.map_index, ref.key))),
            )
        if value is None:
            raise XComNotFoundError.for_ref(dag_id, run_id, ref.task_id, ref.map_index, ref.key)
        return value

    def fetch_head(self, dag_id: str, run_id: str, ref: XComRef, limit: int) -> tuple[bytes, int]:
        """At most the first `limit` bytes of a value and its full size, in one transaction:
        a page showing a large value never loads more of it than it displays."""
        name = keys.run_keys(dag_id, run_id).value(keys.member(ref.task_id, ref.map_index, ref.key))
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
        indexed map index of its task and key. Missing values come back as None."""
        run = keys.run_keys(dag_id, run_id)
        refs = self._expand(run, selectors)
        if not refs:
            return []
        with translated():
            values = cast(
                list[bytes | None],
                self._client.mget(
                    [run.value(keys.member(r.task_id, r.map_index, r.key)) for r in refs]
                ),
            )
        total = sum(len(v) for v in values if v is not None)
        if total > limits.MAX_BATCH_RESPONSE_BYTES:
            raise InvalidRequestError(
                f"the batch would return {total:,} bytes; at most "
                f"{limits.MAX_BATCH_RESPONSE_BYTES:,} fit in one call. Fetch in smaller batches.",
                {
                    "field": "selectors",
                    "size": str(total),
                    "limit": str(limits.MAX_BATCH_RESPONSE_BYTES),
                },
            )
        return list(zip(refs, values, strict=True))

    def _expand(self, run: keys.RunKeys, selectors: list[Selector]) -> list[XComRef]:
        mapped = [s for s in selectors if s.all_map_indexes]
        expansions: list[list[bytes]] = []
        if mapped:
            # One extra round trip for all mapped selectors together.
            with translated(), self._client.pipeline(transaction=False) as pipe:
                for sel in mapped:
                    pipe.zrangebylex(run.index, *keys.lex_range(keys.task_prefix(sel.task_id)))
                expansions = pipe.execute()
        found = iter(expansions)
        refs: list[XComRef] = []
        for sel in selectors:
            if not sel.all_map_indexes:
                refs.append(XComRef(sel.task_id, sel.key, sel.map_index))
                continue
            for raw in next(found):
                task_id, map_index, key = keys.parse_member(raw.decode())
                if key == sel.key:
                    refs.append(XComRef(task_id, key, map_index))
        if len(refs) > limits.MAX_BATCH_SELECTORS:
            raise InvalidRequestError(
                f"the batch expands to {len(refs):,} XComs; at most "
                f"{limits.MAX_BATCH_SELECTORS:,} per call. Fetch in smaller batches.",
                {"field": "selectors"},
            )
        return refs

    def list(self, dag_id: str, run_id: str, flt: ListFilter) -> Page:
        [page] = self.list_many([(dag_id, run_id, flt)])
        return page

    def list_many(self, queries: Sequence[tuple[str, str, ListFilter]]) -> builtins.list[Page]:
        """One listing per (dag_id, run_id, filter), all in one round trip (pipelined)."""
        calls = [_list_call(dag_id, run_id, flt) for dag_id, run_id, flt in queries]
        with translated():
            replies = self._list.many(calls)
        return [
            _page(dag_id, run_id, reply)
            for (dag_id, run_id, _), reply in zip(queries, replies, strict=True)
        ]


def _list_call(dag_id: str, run_id: str, flt: ListFilter) -> tuple[list[str], list[str | int]]:
    run = keys.run_keys(dag_id, run_id)
    if flt.task_id is None:
        prefix = ""
    elif flt.map_index is None:
        prefix = keys.task_prefix(flt.task_id)
    else:
        prefix = keys.task_instance_prefix(flt.task_id, flt.map_index)
    low, high = keys.lex_range(prefix)
    suffix = keys.key_suffix(flt.key) if flt.key is not None else ""
    # A map index without a task (the UI's `~` task) filters inside the script.
    infix = ""
    if flt.task_id is None and flt.map_index is not None:
        infix = keys.map_index_infix(flt.map_index)
    return (
        [run.index, run.expiry, run.meta],
        [low, high, suffix, flt.offset, flt.limit, infix],
    )


def _page(dag_id: str, run_id: str, reply: Any) -> Page:
    total, flat, run_info, first_push = reply
    entries = []
    for i in range(0, len(flat), 2):
        task_id, map_index, key = keys.parse_member(flat[i].decode())
        meta = flat[i + 1].decode()
        if not meta:
            continue  # an index entry without meta would be a bug; never show half an entry
        size, pushed, expires = keys.parse_meta(meta)
        entries.append(XComEntry(dag_id, run_id, task_id, map_index, key, size, pushed, expires))
    return Page(entries=entries, total=int(total), run_info=run_info_from(run_info, first_push))


class ReadOnlyScript:
    """A `no-writes` script run with EVALSHA_RO. Plain EVALSHA declares its keys as written, so
    Redis would refuse it to a read-only ACL user (`%R~xcom:*`, the UI proxy)."""

    def __init__(self, client: redis.Redis, source: str) -> None:
        self._client = client
        self._source = source
        self._sha = hashlib.sha1(source.encode("utf-8")).hexdigest()

    def __call__(self, keys: list[str], args: list[str | int]) -> Any:
        [reply] = self.many([(keys, args)])
        return reply

    def many(self, calls: Sequence[tuple[list[str], list[str | int]]]) -> list[Any]:
        """Each (keys, args) call, pipelined: one round trip for all of them."""
        try:
            return self._run(calls)
        except redis.exceptions.NoScriptError:
            # Redis restarted or flushed its script cache: load once, run again.
            self._client.script_load(self._source)
            return self._run(calls)

    def _run(self, calls: Sequence[tuple[list[str], list[str | int]]]) -> list[Any]:
        if len(calls) == 1:  # no pipeline object for the common single call
            keys, args = calls[0]
            return [self._client.evalsha_ro(self._sha, len(keys), *keys, *args)]
        with self._client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha_ro(self._sha, len(keys), *keys, *args)
            return list(pipe.execute())


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
