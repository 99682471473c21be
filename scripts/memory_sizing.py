"""Measure Redis memory per XCom: how many fit in 1 GB at typical value sizes.

Starts its own redis-server with the product's compose/redis/redis.conf, pushes XComs through
the real store (XComWriter: value key, run, by-key and expiry indexes, meta, quota counters,
run indexes), and reads `used_memory` before and after. Bytes per XCom include every index
entry a push writes.

    .venv/bin/python scripts/memory_sizing.py            # the figures in docs/operations.md
    .venv/bin/python scripts/memory_sizing.py --scale 0.01 --repeats 1   # a quick smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from leoflow_xcom.core.model import XComRef
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.redis_binary import INSTALL_HINT, any_binary
from leoflow_xcom.testing.redis_server import RedisProcess

GIB = 1 << 30
# (value bytes, XComs pushed per measurement): about 60-130 MB of values each, so per-key
# overhead is measured well above allocator noise.
SIZES = ((100, 200_000), (1024, 100_000), (10_240, 12_000), (65_536, 2_000))
TASKS_PER_RUN = 20  # a mid-sized DAG: one run index and meta hash shared by 20 XComs
TTL_SECONDS = 7 * 24 * 3600
# What the service stores per run beside the values (handlers._run_info).
RUN_INFO = b'{"logical_date":"2026-11-26T00:00:00+00:00","run_after":"2026-11-26T00:00:00+00:00"}'


def json_value(size: int) -> bytes:
    """A JSON object of exactly `size` bytes, like a task's result (not compressible)."""
    head = b'{"rows": 1200000, "uri": "s3://bucket/etl/part-0.parquet", "pad": "'
    filler = (b"abcdefghijklmnopqrstuvwxyz0123456789" * (size // 36 + 1))[: size - len(head) - 2]
    value = head + filler + b'"}'
    json.loads(value)  # a real JSON document, as the service would accept
    return value


def used_memory(server: RedisProcess) -> int:
    client = server.client()
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


def measure(server: RedisProcess, size: int, count: int) -> float:
    """Bytes of used_memory per pushed XCom, from an empty Redis."""
    client = server.client()
    client.flushall()
    before = used_memory(server)
    writer = XComWriter(client)
    value = json_value(size)
    for i in range(count):
        run, task = divmod(i, TASKS_PER_RUN)
        writer.push(
            "etl_daily",
            f"scheduled__2026-11-{run % 28 + 1:02d}T{run % 24:02d}:00:00+00:00_{run}",
            XComRef(task_id=f"transform_partition_{task}", key="return_value"),
            value,
            TTL_SECONDS,
            RUN_INFO,
        )
    after = used_memory(server)
    client.close()
    return (after - before) / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the XCom counts")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    binary = any_binary()
    if binary is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="leoflow-sizing-") as tmp:
        server = RedisProcess(binary, Path(tmp), "--maxmemory", "4gb").start()
        try:
            version = server.client().info("server")["redis_version"]
            print(f"{Path(binary).name} {version}; {TASKS_PER_RUN} XComs per run, TTL 7 d")
            print("| value | XComs pushed | bytes per XCom | overhead | XComs in 1 GiB |")
            print("|---:|---:|---:|---:|---:|")
            for size, count in SIZES:
                n = max(TASKS_PER_RUN, int(count * args.scale))
                started = time.monotonic()
                per = statistics.median(measure(server, size, n) for _ in range(args.repeats))
                print(
                    f"| {size:,} B | {n:,} | {per:,.0f} | {per - size:,.0f} | {int(GIB / per):,} |",
                    flush=True,
                )
                print(
                    f"  ({args.repeats} x {n:,} pushes in {time.monotonic() - started:.1f} s)",
                    file=sys.stderr,
                )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
