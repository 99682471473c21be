"""One SDK client process for the multi-process tests: pushes distinct keys until told to stop.

`python -m tests.server.push_client TARGET N STOP_FILE SECONDS` (token in LEOFLOW_XCOM_TOKEN)
pushes `{"w": N, "i": i}` as key `w<N>-<i>` with the SDK's default retry, opening a new client
(a new connection, which the kernel may hand to another worker process) every RECONNECT_EVERY
pushes. It stops when STOP_FILE exists or after SECONDS, whichever comes first, and prints one
JSON line: the acknowledged keys and the calls that failed after the SDK's retries.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time
from pathlib import Path

from leoflow_xcom.client import XComClient, XComError

RECONNECT_EVERY = 10
MAX_PUSHES = 5_000  # a hard cap, whatever the clock does


def main(target: str, n: int, stop_file: Path, seconds: float) -> None:
    token = os.environ["LEOFLOW_XCOM_TOKEN"]
    acknowledged: dict[str, int] = {}
    errors: collections.Counter[str] = collections.Counter()
    deadline = time.monotonic() + seconds
    i = 0
    while i < MAX_PUSHES and time.monotonic() < deadline and not stop_file.exists():
        with XComClient(target, token, timeout=10.0) as client:
            for _ in range(RECONNECT_EVERY):
                key = f"w{n}-{i}"
                try:
                    client.push(key, {"w": n, "i": i})
                except XComError as exc:
                    errors[f"{exc.code.name}/{exc.reason}"] += 1
                else:
                    acknowledged[key] = i
                i += 1
    print(json.dumps({"acknowledged": acknowledged, "errors": errors}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]))
