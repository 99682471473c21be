"""TEMPORARY stand-in (lead's scaffolding, replaced by the helper's module before commit)."""

from __future__ import annotations

import asyncio
from typing import Any

from leoflow_xcom.core.model import Selector, XComRef
from leoflow_xcom.core.quotas import Quota
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store.connection import StoreClient
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.registrations import RecentRegistrations
from leoflow_xcom.store.writer import XComWriter


class AsyncXComStore:
    def __init__(
        self,
        settings: RedisSettings,
        client: StoreClient,
        min_replica_acks: int = 0,
        wait_timeout_ms: int = 400,
        recent: RecentRegistrations | None = None,
    ) -> None:
        self._w = XComWriter(client, min_replica_acks, wait_timeout_ms, recent)
        self._r = XComReader(client)

    async def push(
        self,
        dag_id: str,
        run_id: str,
        ref: XComRef,
        value: bytes,
        ttl_seconds: int,
        run_info: bytes = b"",
        quota: Quota | None = None,
    ) -> int:
        return await asyncio.to_thread(
            self._w.push, dag_id, run_id, ref, value, ttl_seconds, run_info, quota
        )

    async def fetch(self, dag_id: str, run_id: str, ref: XComRef) -> bytes:
        return await asyncio.to_thread(self._r.fetch, dag_id, run_id, ref)

    async def fetch_many(self, dag_id: str, run_id: str, selectors: list[Selector]) -> Any:
        return await asyncio.to_thread(self._r.fetch_many, dag_id, run_id, selectors)

    async def close(self) -> None:
        pass
