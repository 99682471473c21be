"""Reads: fetch (one GET), batch fetch (one round trip per shape), listing (one script call).

Safe for a read-only Redis ACL user: nothing here writes (the listing script is `no-writes`).
The UI proxy and the gRPC service share this class.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, cast

import redis
import redis.exceptions

from leoflow_xcom.core import keys, limits
from leoflow_xcom.core.errors import InvalidRequestError, XComNotFoundError
from leoflow_xcom.core.model import ListFilter, Page, RunInfo, Selector, XComEntry, XComRef
from leoflow_xcom.store import scripts
from leoflow_xcom.store.connection import translated

log = logging.getLogger(__name__)


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

    def fetch_many(
        self, dag_id: str, run_id: str, selectors: list[Selector]
    ) -> list[tuple[XComRef, bytes | None]]:
        """Values for each selector in order; a selector with all_map_indexes expands to every
        indexed map index of its task and key. Missing values come back as None.

        Every bound is checked before the values are read: the number of references (counted
        in the by-key index before expanding anything) and the bytes the answer would carry
        (the sizes are in the index's meta hash), so an oversized batch costs Redis a few small
        replies, never the values themselves."""
        run = keys.run_keys(dag_id, run_id)
        refs = self._expand(run, selectors)
        if not refs:
            return []
        members = [keys.member(r.task_id, r.map_index, r.key) for r in refs]
        unique = list(dict.fromkeys(members))
        with translated():
            metas = cast(list[bytes | None], self._client.hmget(run.meta, unique))
        sizes = {m: _size(meta) for m, meta in zip(unique, metas, strict=True)}
        total = sum(sizes[m] for m in members)
        if total > limits.MAX_BATCH_RESPONSE_BYTES:
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
        with translated():
            values = cast(list[bytes | None], self._client.mget([run.value(m) for m in members]))
        return list(zip(refs, values, strict=True))

    def _expand(self, run: keys.RunKeys, selectors: list[Selector]) -> list[XComRef]:
        mapped = [s for s in selectors if s.all_map_indexes]
        ranges = [keys.lex_range(keys.key_prefix(s.key, s.task_id)) for s in mapped]
        expansions: list[list[bytes]] = []
        if mapped:
            # Count first (ZLEXCOUNT: O(log N) each), refuse, and only then read the members.
            with translated(), self._client.pipeline(transaction=False) as pipe:
                for low, high in ranges:
                    pipe.zlexcount(run.by_key, low, high)
                counts = [int(c) for c in pipe.execute()]
            _check_batch_size(len(selectors) - len(mapped) + sum(counts))
            with translated(), self._client.pipeline(transaction=False) as pipe:
                for (low, high), count in zip(ranges, counts, strict=True):
                    pipe.zrangebylex(run.by_key, low, high, start=0, num=count)
                expansions = pipe.execute()
        found = iter(expansions)
        refs: list[XComRef] = []
        for sel in selectors:
            if not sel.all_map_indexes:
                refs.append(XComRef(sel.task_id, sel.key, sel.map_index))
                continue
            for raw in next(found):
                task_id, map_index, key = keys.parse_key_member(raw.decode())
                refs.append(XComRef(task_id, key, map_index))
        _check_batch_size(len(refs))
        return refs

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
            total, flat, run_info = self._list(
                [run.index, run.expiry, run.meta, run.by_key],
                [low, high, flt.offset, flt.limit, infix, "1" if by_key else "0"],
            )
        entries = []
        for i in range(0, len(flat), 2):
            entry = _entry(dag_id, run_id, flat[i], flat[i + 1])
            if entry is not None:
                entries.append(entry)
        return Page(entries=entries, total=int(total), run_info=_run_info(run_info))


def _check_batch_size(count: int) -> None:
    if count > limits.MAX_BATCH_SELECTORS:
        raise InvalidRequestError(
            f"the batch expands to {count:,} XComs; at most "
            f"{limits.MAX_BATCH_SELECTORS:,} per call. Nothing was read. Fetch in smaller "
            f"batches.",
            {"field": "selectors", "size": str(count), "limit": str(limits.MAX_BATCH_SELECTORS)},
        )


def _size(meta: bytes | None) -> int:
    if meta is None:
        return 0
    try:
        return keys.parse_meta(meta.decode())[0]
    except (ValueError, UnicodeDecodeError):
        return limits.MAX_VALUE_BYTES  # unreadable: assume the largest a value can be


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


class ReadOnlyScript:
    """A `no-writes` script run with EVALSHA_RO. Plain EVALSHA declares its keys as written, so
    Redis would refuse it to a read-only ACL user (`%R~xcom:*`, the UI proxy)."""

    def __init__(self, client: redis.Redis, source: str) -> None:
        self._client = client
        self._source = source
        self._sha = hashlib.sha1(source.encode("utf-8")).hexdigest()

    def __call__(self, keys: list[str], args: list[str | int]) -> Any:
        try:
            return self._client.evalsha_ro(self._sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            # Redis restarted or flushed its script cache: load once, run again.
            self._client.script_load(self._source)
            return self._client.evalsha_ro(self._sha, len(keys), *keys, *args)


def _run_info(raw: bytes | None) -> RunInfo:
    if not raw:
        return RunInfo()
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return RunInfo()  # unreadable run facts show as unknown, never as an error
    logical, after = data.get("logical_date"), data.get("run_after")
    return RunInfo(
        logical_date=logical if isinstance(logical, str) else None,
        run_after=after if isinstance(after, str) else None,
    )
