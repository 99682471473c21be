"""A push's decisions without its I/O: which script calls run together, in which rounds, and
what their outcomes mean. The one copy of these rules for both clients: the sync XComWriter
drives a plan with store/overlap.py `run_together` (redis-py, per-node pools), AsyncXComStore
(store/aio_store.py) with `asyncio.gather` over its pipelined node connections.

A plan is a generator: it yields the calls to run together (a round), is sent back one Outcome
per call, in order, and returns the push's expiry (Unix ms), or raises the error the push ends
with (a call's own error, as the driver gave it; a refusal over a quota; too few replicas).

On a cluster (store/writer.py says why): the push script on the run's shard and REGISTER_RUN
on the shard of the run indexes in one round, unless this process registered the run a moment
ago (store/registrations.py); then one more round of REGISTER_RUN when the push's reply shows
the registration was undone or too short, and one when the push ran later than the grace
covers. Outside a cluster the push script keeps the run indexes itself: one round, one call.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from leoflow_xcom.core import keys
from leoflow_xcom.core.errors import StoreUnavailableError, XComQuotaExceededError
from leoflow_xcom.core.model import XComRef
from leoflow_xcom.core.quotas import SCOPES, Quota
from leoflow_xcom.store import scripts
from leoflow_xcom.store.registrations import GRACE_MS, RecentRegistrations


@dataclass(frozen=True)
class Step:
    """One script call: the script's source (scripts.PUSH or scripts.REGISTER_RUN), KEYS and
    ARGV. The driver picks the node by the first key."""

    script: str
    keys: list[str]
    args: list[Any]


@dataclass
class Outcome:
    """A call's reply or the error it ended with, and how many replicas WAIT confirmed (None
    without acks, or when the call failed)."""

    reply: Any = None
    error: Exception | None = None
    acked: int | None = None


# Yields a round of calls, is sent their outcomes, returns the expiry.
PushPlan = Generator[list[Step], list[Outcome], int]


@dataclass(frozen=True)
class Acks:
    """LEOFLOW_REDIS_MIN_REPLICA_ACKS and the WAIT timeout: what an outcome must show."""

    replicas: int = 0
    wait_ms: int = 400

    def confirmed(self, outcome: Outcome) -> Any:
        """The outcome's reply, or its error raised; with acks, unconfirmed when WAIT saw too
        few replicas (the write may have landed)."""
        if outcome.error is not None:
            raise outcome.error
        if self.replicas and (outcome.acked or 0) < self.replicas:
            raise StoreUnavailableError.unconfirmed(outcome.acked or 0, self.replicas, self.wait_ms)
        return outcome.reply


@dataclass(frozen=True)
class PushRules:
    """How this process pushes: to a Redis Cluster or not, the replica acks it requires, and
    the runs it registered a moment ago (store/registrations.py)."""

    cluster: bool
    acks: Acks
    recent: RecentRegistrations

    def plan(
        self,
        dag_id: str,
        run_id: str,
        ref: XComRef,
        value: bytes,
        ttl_seconds: int,
        run_info: bytes,
        quota: Quota | None,
    ) -> PushPlan:
        """The plan of one push (XComWriter.push's arguments)."""
        member = keys.member(ref.task_id, ref.map_index, ref.key)
        script_keys, args = push_call(
            dag_id, run_id, member, value, ttl_seconds * 1000, run_info, quota
        )
        return _plan(dag_id, script_keys, args, len(value), self)


def _plan(
    dag_id: str, script_keys: list[str], args: list[Any], size: int, rules: PushRules
) -> PushPlan:
    acks = rules.acks
    if not rules.cluster:
        [pushed] = yield [Step(scripts.PUSH, script_keys, args)]
        return expiry(acks.confirmed(pushed), dag_id, size)
    return (yield from _cluster_plan(dag_id, script_keys, args, size, acks, rules.recent))


def push_call(
    dag_id: str,
    run_id: str,
    member: str,
    value: bytes,
    ttl_ms: int,
    run_info: bytes = b"",
    quota: Quota | None = None,
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of one call of the push script (the bench's raw-Redis floor uses it too).
    Its reply: {expiry ms}, or {-1, which limit, usage, limit} over a quota."""
    run = keys.run_keys(dag_id, run_id)
    args = [value, ttl_ms, member, run_info, keys.run_member(dag_id, run_id)]
    return (
        [run.value(member), *keys.run_bookkeeping(dag_id, run_id)],
        [*args, *(quota or Quota()).as_args()],
    )


def _cluster_plan(
    dag_id: str,
    script_keys: list[str],
    args: list[Any],
    size: int,
    acks: Acks,
    recent: RecentRegistrations,
) -> PushPlan:
    """The push script on the run's shard (its first six keys), REGISTER_RUN on the shard of
    the run indexes (the rest), overlapped, unless this process registered the run a moment
    ago. Registered at the indexes' node's now + ttl + a grace; registered again, before the
    push is acknowledged, when the push's own expiry is later still (clocks far apart, or the
    recent registration is getting old) or when a recent registration was undone (the push
    script found the run new: a clear emptied it meanwhile)."""
    ttl_ms, run_member = args[1], args[4]
    indexes = script_keys[6:]
    push = Step(scripts.PUSH, script_keys[:6], args)
    known = recent.registered_until(run_member)
    registered: Outcome | None = None
    if known is None:
        # Registration first: written first, its node starts first.
        registered, pushed = yield [_registration(indexes, 0, ttl_ms, run_member), push]
    else:
        [pushed] = yield [push]
    reply: list[Any] = acks.confirmed(pushed)
    expires = expiry(reply, dag_id, size)  # a refusal over a quota wins over the rest
    if registered is not None:
        until = int(acks.confirmed(registered))
    else:
        assert known is not None
        if not int(reply[1]) and known >= expires:
            return expires  # covered; the window is not extended by not registering
        # Undone meanwhile (the run is new again: a clear emptied it), or too short.
        [alone] = yield [_registration(indexes, 0, ttl_ms, run_member)]
        until = int(acks.confirmed(alone))
    if until < expires:  # the push ran later than the grace covers (clocks apart)
        [alone] = yield [_registration(indexes, expires, ttl_ms, run_member)]
        until = int(acks.confirmed(alone))
    recent.confirmed(run_member, until)
    return expires


def _registration(indexes: list[str], expires: int, ttl_ms: int, run: str) -> Step:
    """REGISTER_RUN for `expires`, or for its node's now + ttl + the grace when 0."""
    return Step(scripts.REGISTER_RUN, indexes, [expires, ttl_ms, run, GRACE_MS])


def drive(plan: PushPlan, run: Callable[[list[Step]], list[Outcome]]) -> int:
    """Run a plan's rounds with a blocking `run` (the async driver is AsyncXComStore's)."""
    try:
        steps = next(plan)
        while True:
            steps = plan.send(run(steps))
    except StopIteration as done:
        return int(done.value)


def expiry(reply: list[Any], dag_id: str, size: int) -> int:
    """The push script's expiry (Unix ms), or its refusal over a quota raised."""
    if int(reply[0]) < 0:
        scope, measure = SCOPES[int(reply[1]) - 1]
        adding = size if measure == "bytes" else 1
        raise XComQuotaExceededError.over(
            scope, measure, int(reply[2]), int(reply[3]), adding, dag_id
        )
    return int(reply[0])
