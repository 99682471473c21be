"""The users' agent processes (loadtest/native.py), seen from Locust's side.

Each hot-path user owns one: started by the user, or before the run begins when Locust knows
how many users this process will run (a local headless or web run: Locust's init blocks its
start, so the processes' imports do not eat into a short run's time on a loaded machine).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtest import native
from loadtest.hotpath import DEADLINE_SECONDS

MAX_PRESTART = 32


def target_of(host: str | None) -> str:
    if not host:
        raise SystemExit("loadtest: give the XCom address as LEOFLOW_XCOM_ADDR or --host")
    return host.removeprefix("grpc://")


class AgentProcess:
    """A user's agent process (loadtest/native.py) and its end of the socket pair."""

    def __init__(self, target: str) -> None:
        self.target = target
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "loadtest.native", str(theirs.fileno()), target],
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        self.socket = ours
        self.stream = ours.makefile("rwb")
        self.ready = False

    def wait_ready(self) -> None:
        """Until it has started (imports, DAG policies, channel): a few seconds when loaded."""
        if not self.ready and self.stream.readline() != native.READY:
            code = self.process.wait()
            raise RuntimeError(f"an agent process did not start (exit code {code})")
        self.ready = True

    def close(self) -> None:
        self.stream.close()
        self.socket.close()  # end of input: the agent process exits after its round
        try:
            self.process.wait(DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# Started before the run (see _prestart), taken by the users as they start.
SPARE: list[AgentProcess] = []


@events.init.add_listener  # type: ignore[untyped-decorator]
def _prestart(environment: Environment, **_: object) -> None:
    """Start the agent processes before the run begins (Locust's init blocks its start), so
    their start-up is not taken out of a short run's time on a loaded machine. Only where the
    users will run and their number is known; other users start their own."""
    options = environment.parsed_options
    host = environment.host or os.environ.get("LEOFLOW_XCOM_ADDR")
    if options is None or not host or isinstance(environment.runner, MasterRunner | WorkerRunner):
        return
    count = getattr(options, "xcom_users", None) or options.num_users or 0
    if not os.environ.get("LEOFLOW_XCOM_SIGNING_KEY_FILE"):
        return  # the users say what is missing
    SPARE.extend(AgentProcess(target_of(host)) for _ in range(min(int(count), MAX_PRESTART)))
    for agent in SPARE:
        agent.wait_ready()


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _close_spares(environment: Environment, **_: object) -> None:
    while SPARE:
        SPARE.pop().close()
