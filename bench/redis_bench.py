"""Redis's own throughput on this machine, with redis-benchmark (Debian's redis-tools), against
the bench's Redis (the product's redis.conf): the per-shard ceiling in the capacity model.

It runs the GET a fetch makes and the push script call a push makes (the writer's own KEYS and
ARGV, 1 KB value, random keys), without and with pipelining: many clients and no pipelining is
what the service's connection pools send; pipelining shows Redis's CPU-bound ceiling.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess

import redis

from leoflow_xcom.core import keys
from leoflow_xcom.store import scripts
from leoflow_xcom.store.push_plan import push_call

CLIENTS = 32
KEYSPACE = 100_000
# Pushes overwrite among this many keys of one task instance: below the default quotas (a push
# over a quota is refused after a long prune, which would measure the wrong path).
PUSH_KEYSPACE = 1_000
RAND = "__rand_int__"  # redis-benchmark puts a random number in its place


def available() -> bool:
    return shutil.which("redis-benchmark") is not None


def _rps(port: int, requests: int, pipeline: int, command: list[str], keyspace: int) -> float:
    out = subprocess.run(
        [
            "redis-benchmark",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-c",
            str(CLIENTS),
            "-n",
            str(requests),
            "-r",
            str(keyspace),
            "-P",
            str(pipeline),
            "--csv",
            *command,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    rows = [r for r in csv.reader(io.StringIO(out)) if len(r) > 1 and r[0] != "test"]
    return float(rows[-1][1])


def measure(port: int, payload: int, quick: bool) -> dict[str, float]:
    """Requests per second ("get", "push", "get-pipelined", "push-pipelined") and Redis's own
    CPU per command from its commandstats ("get-usec", "push-usec": µs inside Redis)."""
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        sha = client.script_load(scripts.PUSH)
        value = b'"' + b"x" * max(payload - 2, 0) + b'"'
        get_key = keys.run_keys("rb_dag", "rb_run").value(keys.member("t", -1, f"k{RAND}"))
        for i in range(0, KEYSPACE, 1000):  # every GET finds a value, as a fetch does
            with client.pipeline(transaction=False) as pipe:
                for n in range(i, i + 1000):
                    # redis-benchmark pads __rand_int__ to 12 digits.
                    pipe.set(get_key.replace(RAND, f"{n:012d}"), value, ex=3600)
                pipe.execute()
        # The writer's call for one run; member and value key each get their own number.
        script_keys, args = push_call(
            "rb_push", "rb_run", keys.member("t", -1, f"k{RAND}"), value, 3_600_000
        )
        push = ["evalsha", sha, str(len(script_keys)), *script_keys]
        push += [a.decode() if isinstance(a, bytes) else str(a) for a in args]
        get = ["get", get_key]
        scale = 1 if quick else 4
        client.config_resetstat()
        found = {
            "get": _rps(port, 25_000 * scale, 1, get, KEYSPACE),
            "push": _rps(port, 10_000 * scale, 1, push, PUSH_KEYSPACE),
            "get-pipelined": _rps(port, 100_000 * scale, 16, get, KEYSPACE),
            "push-pipelined": _rps(port, 25_000 * scale, 16, push, PUSH_KEYSPACE),
        }
        stats = client.info("commandstats")
        found["get-usec"] = float(stats["cmdstat_get"]["usec_per_call"])
        found["push-usec"] = float(stats["cmdstat_evalsha"]["usec_per_call"])
        return found
    finally:
        client.close()
