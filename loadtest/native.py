"""One Locust user's gRPC calls in a plain Python process of its own, as an agent's task runs.

Why not in the Locust process: Locust runs every user on one gevent loop, and grpc's gevent
integration hands every call's completion from a native poller thread back to that loop.
On a 2-core VM that added 1-2 ms to each call (an echo with nothing behind it took p50
2.5-3 ms from Locust, 0.2-0.6 ms from a plain client), so the sub-millisecond verdict measured
the load generator, not the service. Here the calls run on an ordinary OS thread, with grpc's
own threads and no gevent, and each is timed around the call exactly as the caller's code sees
it (loadtest/hotpath.py). Locust still decides who runs, when and at what rate, and counts,
reports and judges every call: the user sends one command per round over a socket pair and
turns each answer line into a request event.

One process per user, like one task per process in a real worker: the users do not share a
GIL. The protocol is JSON lines on the socket pair:
  <- {"ready": true}                                     once, when the process has started
  -> {"kind": "session" | "unary" | "echo", "rate": calls/s (0: unpaced)}
  <- {"outcome": [kind, name, seconds, length, error]}   one per call
  <- {"finished": [dag_id, run_id, task_id]}             one per task instance
  <- {"skip": why}                                      echo on a target without it
  <- {"done": true}                                     end of the round
End of input (the user stopped, or Locust died) ends the process.

    python -m loadtest.native FD TARGET      # started by loadtest/users.py, not by hand
"""

from __future__ import annotations

import io
import json
import os
import socket
import sys
from typing import Any

from loadtest import hotpath
from loadtest.pacing import Pacer, Rate

READY = b'{"ready": true}\n'


def encode(item: hotpath.Outcome | hotpath.Finished) -> bytes:
    if isinstance(item, hotpath.Outcome):
        doc: dict[str, Any] = {
            "outcome": [item.kind, item.name, item.seconds, item.length, item.error]
        }
    else:
        doc = {"finished": [item.dag_id, item.run_id, item.task_id]}
    return json.dumps(doc).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(line)
    if "outcome" in doc:
        kind, name, seconds, length, error = doc["outcome"]
        doc["outcome"] = hotpath.Outcome(kind, name, float(seconds), int(length), error)
    elif "finished" in doc:
        doc["finished"] = hotpath.Finished(*doc["finished"])
    return doc


def serve(stream: io.BufferedIOBase, target: str, key: bytes) -> None:
    rate = Rate()
    pending: list[bytes] = []

    def send() -> None:
        stream.write(b"".join(pending))
        stream.flush()
        pending.clear()

    def emit(item: hotpath.Outcome | hotpath.Finished) -> None:
        # Answers go out when a task instance ends (and when the round ends): never between a
        # call and its timing, and not after every call, so reporting wakes Locust a few times
        # per round instead of once per call; a round cut short still reports what it did.
        pending.append(encode(item))
        if isinstance(item, hotpath.Finished):
            send()

    agent = hotpath.Agent(target, key, Pacer(rate), emit)
    stream.write(READY)  # started (imports, DAG policies, channel): the user may begin
    stream.flush()
    try:
        for line in stream:
            command = json.loads(line)
            rate.per_user = float(command["rate"])
            try:
                agent.run(str(command["kind"]))
            except hotpath.EchoUnavailableError as exc:
                pending.append(json.dumps({"skip": str(exc)}).encode() + b"\n")
            pending.append(b'{"done": true}\n')
            send()
    finally:
        agent.close()


def main(argv: list[str]) -> int:
    fd, target = int(argv[0]), argv[1]
    key = hotpath.signing_key(os.environ.get("LEOFLOW_XCOM_SIGNING_KEY_FILE"))
    with socket.socket(fileno=fd) as sock:
        sock.setblocking(True)  # it comes from gevent's side, which made it non-blocking
        stream = sock.makefile("rwb")
        try:
            serve(stream, target, key)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the user is gone
        finally:
            try:
                stream.close()
            except OSError:
                pass  # answers the gone user will never read
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
