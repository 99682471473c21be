"""The Redis key layout, in one place.

Every key of one DAG run carries the same hash tag, so a push (value plus index updates) is one
atomic script in one hash slot and the layout works unchanged on Redis Cluster:

    xcom:{<dag>:<run>}:v:<member>   string   the value: UTF-8 JSON exactly as pushed, with TTL
    xcom:{<dag>:<run>}:i            zset     index, all scores 0: members in lexical order
    xcom:{<dag>:<run>}:e            zset     index, score = expiry (Unix ms): prunes expired
    xcom:{<dag>:<run>}:m            hash     member -> "size:pushed_ms:expires_ms";
                                             "@run" -> run facts (JSON)
                                             "@first" -> the run's first push (Unix ms)
    xcom:{<dag>:<run>}:k            zset     the same members by key, all scores 0:
                                             <key>!<task>!<map> (key filters, mapped fan-in)
    xcom:{<dag>:<run>}:q            hash     quota usage: "b"/"n" bytes and count of the run,
                                             "b:<task>!<map>!"/"n:<task>!<map>!" per task
                                             instance; kept in step by push, prune and clear

    member = <task>!<map_index + 1, 10 digits>!<key>

Ids are percent-encoded with no safe characters, so `:`, `!`, `{`, `}`, `/`, `%`, spaces and
any unicode are escaped, the hash tag is always the intended one, and distinct ids never map to
the same key. The member separator `!` sorts below every character an escaped id can hold, so
a task sorts before the tasks whose ids extend it (`a` < `a1`), and the fixed-width map index
keeps lexical order equal to numeric order.

Global keys (not per run) share one hash tag, `{global}`, so they sit in one hash slot and a
transaction over several of them (the policy registry and its revision) works on Redis Cluster:

    xcom:{global}:layout            string   the layout version
    xcom:{global}:policies          hash     dag_id -> policy JSON
    xcom:{global}:policies:rev      string   publication counter
    xcom:{global}:policies:retired  hash     removed policies, kept while their values live
    xcom:{global}:runs:all          zset     every run, score = expiry of its newest value
    xcom:{global}:runs:dag:<dag>    zset     the same, for one DAG

The run indexes are written by every push (so a retried push is always listed) and pruned by
score, so listing runs newest-first or oldest-first is O(page) whatever the number of runs. A
run tag always holds an escaped `:` between DAG and run, so no run shares the global slot.
Outside a cluster the push script writes them in the same call; on a cluster they live in
another slot than the run, so the service writes them with a second idempotent call on every
push and acknowledges the push only when both succeeded (store/writer.py).

Layout 2 added the key index, the quota counters and the time-ordered run indexes; layout 3
moved the global keys under the `{global}` tag. Older stores are migrated in place by
`leoflow-xcom init` (store/migrate.py).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Final
from urllib.parse import quote, unquote

LAYOUT_VERSION: Final = 3
# The hash tag of every global key: one slot on Redis Cluster.
GLOBAL_TAG: Final = "xcom:{global}"
LAYOUT_KEY: Final = f"{GLOBAL_TAG}:layout"
POLICIES_KEY: Final = f"{GLOBAL_TAG}:policies"
POLICIES_REV_KEY: Final = f"{GLOBAL_TAG}:policies:rev"
# hash dag_id -> {"until_ms", "policy"}: policies removed by `dags rm`/`apply --prune`, kept
# for reads until the DAG's last values can have expired.
RETIRED_POLICIES_KEY: Final = f"{GLOBAL_TAG}:policies:retired"
RUNS_ALL_KEY: Final = f"{GLOBAL_TAG}:runs:all"
# Every key this service touches starts with this (ACL key patterns use it).
KEY_PATTERN: Final = "xcom:*"
# Layouts 1 and 2 kept the global keys untagged. Layout 3 still stamps the old layout key, so
# a layout-2 service started against a layout-3 store refuses it instead of writing beside it.
V2_LAYOUT_KEY: Final = "xcom:layout"
V2_GLOBAL_KEYS: Final = {
    "xcom:policies": POLICIES_KEY,
    "xcom:policies:rev": POLICIES_REV_KEY,
    "xcom:policies:retired": RETIRED_POLICIES_KEY,
    "xcom:runs:all": RUNS_ALL_KEY,
}
V2_DAG_RUNS_PREFIX: Final = "xcom:runs:dag:"
# Layout 1's run registry (zset, all scores 0); layout 2 replaced it with the run indexes.
LEGACY_RUNS_KEY: Final = "xcom:runs"
RUN_INFO_FIELD: Final = "@run"  # cannot clash: members start with a percent-encoded task id
# Set by the first push of a run (HSETNX on every push): the fallback time the UI proxy shows
# for a run whose tokens carried no dates.
RUN_FIRST_PUSH_FIELD: Final = "@first"

_MAP_WIDTH = 10
# Below every unreserved character quote() leaves as is ("-", ".", "0-9", "A-Z", "_", "a-z",
# "~") and below "%": separated ids sort exactly as their escaped forms do.
SEP: Final = "!"


@functools.lru_cache(maxsize=8192)
def escape(text: str) -> str:
    return quote(text, safe="")


def unescape(text: str) -> str:
    return unquote(text)


@dataclasses.dataclass(frozen=True, slots=True)
class RunKeys:
    tag: str
    index: str
    expiry: str
    meta: str
    by_key: str
    quota: str

    def value(self, member: str) -> str:
        return f"{self.tag}:v:{member}"


@functools.lru_cache(maxsize=4096)
def run_keys(dag_id: str, run_id: str) -> RunKeys:
    tag = f"xcom:{{{escape(dag_id)}:{escape(run_id)}}}"
    return RunKeys(
        tag=tag,
        index=f"{tag}:i",
        expiry=f"{tag}:e",
        meta=f"{tag}:m",
        by_key=f"{tag}:k",
        quota=f"{tag}:q",
    )


def dag_runs_key(dag_id: str) -> str:
    """The time-ordered run index of one DAG."""
    return f"{GLOBAL_TAG}:runs:dag:{escape(dag_id)}"


def run_bookkeeping(dag_id: str, run_id: str) -> list[str]:
    """A run's index, expiry, meta, by-key and quota keys, then the run indexes (all runs, this
    DAG's): the keys the push, clear and migration scripts share, in that order."""
    run = run_keys(dag_id, run_id)
    return [
        run.index,
        run.expiry,
        run.meta,
        run.by_key,
        run.quota,
        RUNS_ALL_KEY,
        dag_runs_key(dag_id),
    ]


def run_member(dag_id: str, run_id: str) -> str:
    return f"{escape(dag_id)}{SEP}{escape(run_id)}"


def parse_run_member(text: str) -> tuple[str, str]:
    dag, run = text.split(SEP)
    return unescape(dag), unescape(run)


def dag_runs_prefix(dag_id: str) -> str:
    """Prefix of every run member of one DAG in the run registry."""
    return f"{escape(dag_id)}{SEP}"


def encode_map_index(map_index: int) -> str:
    return f"{map_index + 1:0{_MAP_WIDTH}d}"


def member(task_id: str, map_index: int, key: str) -> str:
    return f"{escape(task_id)}{SEP}{encode_map_index(map_index)}{SEP}{escape(key)}"


def parse_member(text: str) -> tuple[str, int, str]:
    task, mapped, key = text.split(SEP)
    return unescape(task), int(mapped) - 1, unescape(key)


def key_member(task_id: str, map_index: int, key: str) -> str:
    """The member of the by-key index: <key>!<task>!<map>."""
    return f"{escape(key)}{SEP}{escape(task_id)}{SEP}{encode_map_index(map_index)}"


def parse_key_member(text: str) -> tuple[str, int, str]:
    """(task_id, map_index, key) of a by-key index member."""
    key, task, mapped = text.split(SEP)
    return unescape(task), int(mapped) - 1, unescape(key)


def key_prefix(key: str, task_id: str | None = None) -> str:
    """By-key index prefix of one key (of any task, or of one task: all its map indexes)."""
    if task_id is None:
        return f"{escape(key)}{SEP}"
    return f"{escape(key)}{SEP}{escape(task_id)}{SEP}"


def task_prefix(task_id: str) -> str:
    """Prefix of every member of one task (all map indexes)."""
    return f"{escape(task_id)}{SEP}"


def task_instance_prefix(task_id: str, map_index: int) -> str:
    """Prefix of every member of one task instance."""
    return f"{escape(task_id)}{SEP}{encode_map_index(map_index)}{SEP}"


def map_index_infix(map_index: int) -> str:
    """What every member of that map index contains, whatever its task (ids hold no SEP)."""
    return f"{SEP}{encode_map_index(map_index)}{SEP}"


def lex_range(prefix: str) -> tuple[str, str]:
    """ZRANGEBYLEX bounds covering exactly the members that start with `prefix`."""
    if not prefix:
        return "-", "+"
    # Escaped members are ASCII, so no member can contain \x7f: it closes the range.
    return f"[{prefix}", f"[{prefix}\x7f"


def parse_meta(text: str) -> tuple[int, int, int]:
    """Decode a meta hash entry into (size_bytes, pushed_at_ms, expires_at_ms)."""
    size, pushed, expires = text.split(":")
    return int(size), int(pushed), int(expires)
