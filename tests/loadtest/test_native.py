"""The agent process the hot-path Locust users run their calls in (loadtest/native.py), driven
over its socket pair as a Locust user drives it, against a real Redis and a real service."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from bench import stack
from leoflow_xcom.testing.paths import ROOT
from loadtest import hotpath, native


def test_outcomes_and_finished_instances_survive_the_wire() -> None:
    items: list[hotpath.Outcome | hotpath.Finished] = [
        hotpath.Outcome("sdk", "session: push", 0.000451, 1000),
        hotpath.Outcome("grpc", "unary: fetch", 0.0021, 0, "NOT_FOUND: no such XCom"),
        hotpath.Finished("etl_daily", "loadtest__abc", "extract"),
    ]
    decoded = [native.decode(native.encode(item)) for item in items]
    assert decoded[0]["outcome"] == items[0]  # the duration is kept to the nanosecond
    assert decoded[1]["outcome"] == items[1]
    assert decoded[2]["finished"] == items[2]


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[str, str]]:
    with stack.start() as running:  # the bench server: the product plus the echo
        yield running.target, str(running.workdir / "signing-key")


class Agent:
    def __init__(self, target: str, key_file: str) -> None:
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "loadtest.native", str(theirs.fileno()), target],
            pass_fds=(theirs.fileno(),),
            cwd=ROOT,
            env={**os.environ, "LEOFLOW_XCOM_SIGNING_KEY_FILE": key_file},
        )
        theirs.close()
        self.socket = ours
        self.stream = ours.makefile("rwb")
        assert self.stream.readline() == native.READY

    def round(self, kind: str, rate: float) -> list[dict[str, Any]]:
        self.stream.write(json.dumps({"kind": kind, "rate": rate}).encode() + b"\n")
        self.stream.flush()
        answers = []
        for line in self.stream:
            answers.append(native.decode(line))
            if answers[-1].get("done"):
                return answers
        raise AssertionError(f"the agent process ended: {self.process.wait(5)}")

    def close(self) -> int:
        self.stream.close()
        self.socket.close()
        return self.process.wait(10)


@pytest.mark.timeout(60)
def test_a_session_dag_run_and_an_echo_round_are_timed_and_reported(
    target: tuple[str, str],
) -> None:
    agent = Agent(*target)
    try:
        run = agent.round("session", 200.0)
        echo = agent.round("echo", 0.0)
    finally:
        assert agent.close() == 0  # end of input ends the process
    outcomes = [a["outcome"] for a in run if "outcome" in a]
    names = {o.name for o in outcomes}
    assert "session: first call (connects)" in names and "session: push" in names
    assert all(o.error is None and 0 < o.seconds < hotpath.DEADLINE_SECONDS for o in outcomes)
    assert any("finished" in a for a in run)
    echoed = sorted(a["outcome"].name for a in echo if "outcome" in a)
    assert echoed == [
        "echo: session fetch",
        "echo: session push",
        "echo: unary fetch",
        "echo: unary push",
    ]


@pytest.mark.timeout(60)
def test_unary_runs_clear_old_runs_and_an_unknown_kind_ends_the_process(
    target: tuple[str, str],
) -> None:
    agent = Agent(*target)
    try:
        outcomes = []
        for _ in range(hotpath.DONE_KEPT + 2):
            outcomes += [a["outcome"] for a in agent.round("unary", 0.0) if "outcome" in a]
        assert "unary: clear run" in {o.name for o in outcomes}
        assert all(o.error is None for o in outcomes), [o for o in outcomes if o.error][:3]
        agent.stream.write(b'{"kind": "nonsense", "rate": 0}\n')
        agent.stream.flush()
        assert agent.stream.readline() == b""  # it stopped with an error instead of guessing
    finally:
        assert agent.close() != 0
