"""What each XCom call does, independent of the transport.

The unary servicer and the session stream both call these methods with verified claims and
plain values, and get plain values or an XComError back. Checks run cheapest first, and nothing
touches Redis until the request is known to be allowed and valid.

They run on the server's event loop. The hot path (push, fetch, batch fetch) awaits the
asyncio store; listing and clearing, rare and made of several bounded round trips, run the
sync store's code on a worker thread, so there is one implementation of each.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import Callable

from leoflow_xcom.core import authz, codec, ids, limits
from leoflow_xcom.core.codec import JsonValue
from leoflow_xcom.core.errors import InvalidRequestError, TokenInvalidError
from leoflow_xcom.core.model import Claims, ListFilter, Page, Selector, XComRef
from leoflow_xcom.core.schema import CompiledSchema
from leoflow_xcom.core.tokens import TokenVerifier
from leoflow_xcom.store.aio_store import AsyncXComStore
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.registry import LivePolicies
from leoflow_xcom.store.writer import XComWriter

# A schema whose check took longer than this (CPU) is checked on a worker thread from then on.
SLOW_SCHEMA_SECONDS = 0.005


class XComHandlers:
    def __init__(
        self,
        verifier: TokenVerifier,
        policies: LivePolicies,
        store: AsyncXComStore,
        reader: XComReader,
        writer: XComWriter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._verifier = verifier
        self._policies = policies
        self._store = store
        self._reader = reader
        self._writer = writer
        self._clock = clock
        # Compiled schemas found slow; they go with the policy that holds them.
        self._slow_schemas: weakref.WeakSet[CompiledSchema] = weakref.WeakSet()

    def authenticate(self, token: str | None) -> Claims:
        if not token:
            raise TokenInvalidError.because("no bearer token in the `authorization` metadata")
        return self._verifier.verify(token, now=int(self._clock()))

    async def push(
        self,
        claims: Claims,
        key: str,
        value: bytes,
        *,
        dag_id: str | None = None,
        run_id: str | None = None,
        task_id: str | None = None,
        map_index: int | None = None,
    ) -> tuple[int, int]:
        """Validate and store; returns (size_bytes, expires_at_ms)."""
        authz.check_push_identity(claims, dag_id, run_id, task_id, map_index)
        ids.check_key(key)
        dag = self._policies.get(claims.dag_id)
        authz.task_of(claims, dag)
        parsed = codec.decode(value, key)
        schema = dag.schemas.get((claims.task_id, key))
        if schema is not None:
            await self._validate(schema, parsed, claims.task_id, key)
        expires = await self._store.push(
            claims.dag_id,
            claims.run_id,
            XComRef(claims.task_id, key, claims.map_index),
            value,
            dag.ttl_seconds,
            _run_info(claims),
            dag.quota,
        )
        return len(value), expires

    async def _validate(
        self, schema: CompiledSchema, value: JsonValue, task_id: str, key: str
    ) -> None:
        """On the loop while the schema is cheap; on a worker thread once a check of it took
        more than SLOW_SCHEMA_SECONDS, so one tenant's costly schema (up to
        MAX_SCHEMA_VALIDATION_SECONDS per value) shares the core with the other calls instead
        of stopping them."""
        if schema in self._slow_schemas:
            await asyncio.to_thread(schema.check, value, task_id, key)
            return
        started = time.thread_time()
        try:
            schema.check(value, task_id, key)
        finally:
            if time.thread_time() - started > SLOW_SCHEMA_SECONDS:
                self._slow_schemas.add(schema)

    async def fetch(
        self,
        claims: Claims,
        ref: XComRef,
        *,
        dag_id: str | None = None,
        run_id: str | None = None,
    ) -> bytes:
        authz.require_task(claims, "fetch")
        authz.check_same_run(claims, dag_id, run_id, "read")
        _check_ref(ref)
        authz.check_fetch(claims, self._policies.get_for_read(claims.dag_id), ref.task_id)
        return await self._store.fetch(claims.dag_id, claims.run_id, ref)

    async def fetch_many(
        self, claims: Claims, selectors: list[Selector]
    ) -> list[tuple[XComRef, bytes | None]]:
        if len(selectors) > limits.MAX_BATCH_SELECTORS:
            raise InvalidRequestError.field(
                "selectors",
                f"{len(selectors)} given; at most {limits.MAX_BATCH_SELECTORS} per call",
            )
        authz.require_task(claims, "fetch")
        dag = self._policies.get_for_read(claims.dag_id)
        for sel in selectors:
            _check_ref(XComRef(sel.task_id, sel.key, sel.map_index))
            authz.check_fetch(claims, dag, sel.task_id)
        return await self._store.fetch_many(claims.dag_id, claims.run_id, selectors)

    async def list(
        self, claims: Claims, dag_id: str | None, run_id: str | None, flt: ListFilter
    ) -> Page:
        authz.check_same_run(claims, dag_id, run_id, "list")
        dag_id = dag_id if dag_id is not None else claims.dag_id
        run_id = run_id if run_id is not None else claims.run_id
        ids.check_id("dag_id", dag_id)
        ids.check_id("run_id", run_id)
        if flt.task_id is not None:
            ids.check_id("task_id", flt.task_id)
        if flt.key is not None:
            ids.check_key(flt.key)
        if flt.map_index is not None:
            ids.check_map_index(flt.map_index)
        if not 1 <= flt.limit <= limits.LIST_MAX_LIMIT:
            raise InvalidRequestError.field("limit", f"must be 1..{limits.LIST_MAX_LIMIT}")
        if flt.offset < 0:
            raise InvalidRequestError.field("offset", "must not be negative")
        return await asyncio.to_thread(self._reader.list, dag_id, run_id, flt)

    async def clear(
        self,
        claims: Claims,
        dag_id: str,
        run_id: str,
        task_id: str | None,
        map_index: int | None,
    ) -> int:
        """map_index None with a task_id clears every map index of the task."""
        authz.check_clear(claims)
        ids.check_id("dag_id", dag_id)
        ids.check_id("run_id", run_id)
        if task_id is not None:
            ids.check_id("task_id", task_id)
        if map_index is not None:
            ids.check_map_index(map_index)
        return await asyncio.to_thread(self._writer.clear, dag_id, run_id, task_id, map_index)


def _check_ref(ref: XComRef) -> None:
    ids.check_id("task_id", ref.task_id)
    ids.check_key(ref.key)
    ids.check_map_index(ref.map_index)


def _run_info(claims: Claims) -> bytes:
    if claims.logical_date is None and claims.run_after is None:
        return b""
    info = {"logical_date": claims.logical_date, "run_after": claims.run_after}
    return json.dumps(info, separators=(",", ":")).encode()
