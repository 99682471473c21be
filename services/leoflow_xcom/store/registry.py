"""DAG policies in Redis: published by `dags apply`, followed live by every server.

`xcom:policies` is a hash dag_id -> policy JSON; `xcom:policies:rev` counts publications.
Servers poll the revision (one GET) and reload only when it moved, so a change reaches every
replica within about one poll interval, with no restart.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import cast

from leoflow_xcom.core import keys
from leoflow_xcom.core.errors import DagNotRegisteredError, XComError
from leoflow_xcom.core.policies import (
    CompiledDag,
    DagPolicy,
    PolicyError,
    parse_policy,
    policy_from_document,
    policy_to_json,
)
from leoflow_xcom.core.quotas import Quota
from leoflow_xcom.store.connection import StoreClient, translated

log = logging.getLogger(__name__)


class PolicyStore:
    def __init__(self, client: StoreClient) -> None:
        self._client = client

    def publish(self, policies: Iterable[DagPolicy], remove: Iterable[str] = ()) -> int:
        """Upsert policies and remove others, atomically; returns the new revision.

        A removed policy is retired, not forgotten: pushes of its DAG are refused at once, but
        its values stay readable (by its declared dependencies) until its TTL has passed."""
        mapping: dict[str | bytes, str | bytes] = {p.dag_id: policy_to_json(p) for p in policies}
        gone = [d for d in dict.fromkeys(remove) if d not in mapping]
        now_ms = int(time.time() * 1000)
        with translated():
            current = cast(
                list[bytes | None],
                self._client.hmget(keys.POLICIES_KEY, gone) if gone else [],
            )
            retired = cast(dict[bytes, bytes], self._client.hgetall(keys.RETIRED_POLICIES_KEY))
        expired = [d for d, text in retired.items() if _retired_until(text) <= now_ms]
        retiring: dict[str | bytes, str | bytes] = {}
        for dag_id, text in zip(gone, current, strict=True):
            if text is not None:
                ttl = parse_policy(text, f"redis:{keys.POLICIES_KEY}").xcom_ttl
                retiring[dag_id] = json.dumps(
                    {"until_ms": now_ms + ttl * 1000, "policy": json.loads(text)}
                )
        with translated(), self._client.pipeline(transaction=True) as pipe:
            if expired or mapping:
                pipe.hdel(keys.RETIRED_POLICIES_KEY, *expired, *mapping)
            if retiring:
                pipe.hset(keys.RETIRED_POLICIES_KEY, mapping=retiring)  # type: ignore[arg-type]
            if gone:
                pipe.hdel(keys.POLICIES_KEY, *gone)
            if mapping:
                pipe.hset(keys.POLICIES_KEY, mapping=mapping)  # type: ignore[arg-type]
            pipe.incr(keys.POLICIES_REV_KEY)
            return int(pipe.execute()[-1])

    def remove(self, dag_ids: Iterable[str]) -> int:
        return self.publish([], dag_ids)

    def load_retired(self) -> dict[str, tuple[DagPolicy, int]]:
        """Retired policies still within their TTL: dag_id -> (policy, until Unix ms)."""
        with translated():
            raw = cast(dict[bytes, bytes], self._client.hgetall(keys.RETIRED_POLICIES_KEY))
        found: dict[str, tuple[DagPolicy, int]] = {}
        for dag_id, text in raw.items():
            try:
                entry = json.loads(text)
                policy = policy_from_document(entry["policy"], keys.RETIRED_POLICIES_KEY)
                found[dag_id.decode()] = (policy, int(entry["until_ms"]))
            except (ValueError, KeyError, TypeError):
                log.error("skipping retired policy of DAG %r: unreadable", dag_id.decode())
        return found

    def get(self, dag_id: str) -> DagPolicy | None:
        """One published policy (a single read: works when Redis is full)."""
        with translated():
            text = self._client.hget(keys.POLICIES_KEY, dag_id)
        if text is None:
            return None
        return parse_policy(cast(bytes, text), f"redis:{keys.POLICIES_KEY}")

    def load_ids(self) -> tuple[int, set[str]]:
        """The revision and the DAG ids published, without parsing the policies."""
        with translated(), self._client.pipeline(transaction=True) as pipe:
            pipe.get(keys.POLICIES_REV_KEY)
            pipe.hkeys(keys.POLICIES_KEY)
            raw_rev, names = pipe.execute()
        return (int(raw_rev) if raw_rev is not None else 0), {n.decode() for n in names}

    def revision(self) -> int:
        with translated():
            raw = self._client.get(keys.POLICIES_REV_KEY)
        return int(raw) if raw is not None else 0

    def load(self) -> tuple[int, dict[str, DagPolicy]]:
        with translated(), self._client.pipeline(transaction=True) as pipe:
            pipe.get(keys.POLICIES_REV_KEY)
            pipe.hgetall(keys.POLICIES_KEY)
            raw_rev, raw = pipe.execute()
        policies = {}
        for dag_id, text in raw.items():
            try:
                policies[dag_id.decode()] = parse_policy(text, f"redis:{keys.POLICIES_KEY}")
            except PolicyError as exc:
                # Published policies were validated; an unreadable one is logged, not fatal.
                log.error("skipping stored policy of DAG %r: %s", dag_id.decode(), exc)
        return (int(raw_rev) if raw_rev is not None else 0), policies


class LivePolicies:
    """The compiled policies a server uses, refreshed in the background."""

    def __init__(
        self,
        store: PolicyStore,
        interval: float,
        on_store_state: Callable[[bool], None] | None = None,
        quota_defaults: Quota | None = None,
    ) -> None:
        self._store = store
        self._quota_defaults = quota_defaults or Quota()
        self._interval = interval
        self._on_store_state = on_store_state
        self._revision = -1
        self._dags: dict[str, CompiledDag] = {}
        self._retired: dict[str, tuple[CompiledDag, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, dag_id: str) -> CompiledDag:
        """The DAG's live policy: what pushes need."""
        dag = self._dags.get(dag_id)
        if dag is None:
            raise DagNotRegisteredError.for_dag(dag_id)
        return dag

    def get_for_read(self, dag_id: str) -> CompiledDag:
        """The live policy, or a removed one whose values may not all have expired yet: reads
        of values stored before a removal keep working until their TTL."""
        dag = self._dags.get(dag_id)
        if dag is not None:
            return dag
        retired = self._retired.get(dag_id)
        if retired is not None and retired[1] > time.time() * 1000:
            return retired[0]
        raise DagNotRegisteredError.for_dag(dag_id)

    def refresh(self) -> bool:
        """Reload if the revision moved. Returns whether anything changed."""
        revision = self._store.revision()
        if revision == self._revision:
            return False
        revision, policies = self._store.load()
        retired = self._store.load_retired()
        # Swap whole dicts: readers on other threads see the old or the new set, never half.
        self._retired = {
            dag_id: (CompiledDag(p, self._quota_defaults), until)
            for dag_id, (p, until) in retired.items()
        }
        self._dags = {
            dag_id: CompiledDag(p, self._quota_defaults) for dag_id, p in policies.items()
        }
        self._revision = revision
        log.info("loaded %d DAG policies (revision %d)", len(policies), revision)
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="policy-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.refresh()
            except XComError as exc:
                self._report(False)
                log.warning("policy refresh failed: %s", exc.message)
            except Exception:  # the thread must outlive anything; the next poll tries again
                self._report(False)
                log.exception("policy refresh failed unexpectedly")
            else:
                self._report(True)

    def _report(self, healthy: bool) -> None:
        if self._on_store_state is not None:
            self._on_store_state(healthy)


def _retired_until(text: bytes) -> int:
    try:
        return int(json.loads(text)["until_ms"])
    except (ValueError, KeyError, TypeError):
        return 0  # unreadable: treat as expired, so the next publish drops it
