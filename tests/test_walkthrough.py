"""scripts/walkthrough.py reads README's walk-through the way `make fresh-test` relies on.

README is the contract: these tests fail when its walk-through no longer shows the steps a new
user must be able to follow (push, fetch with its output, both refusals, the proxy read), or its
prerequisites line goes missing.
"""

from __future__ import annotations

import os

import pytest

from leoflow_xcom.testing.paths import ROOT
from scripts import walkthrough

README = (ROOT / "README.md").read_text()


def test_readme_walkthrough_has_the_promised_steps() -> None:
    found = walkthrough.steps(walkthrough.walkthrough_block(README))
    commands = [s.command for s in found]
    assert commands[0] == "source .leoflow/run.env"
    assert any(c.startswith("leoflow-xcom push output ") for c in commands)
    fetch = next(s for s in found if s.command == "leoflow-xcom fetch extract output")
    assert fetch.output == '{"rows": 42, "uri": "s3://bucket/etl/part-0.parquet"}'
    refusals = {s.reason for s in found if s.reason}
    assert refusals == {"XCOM_SCHEMA_MISMATCH", "XCOM_FORBIDDEN"}
    reads = [c for c in commands if c.startswith("curl ")]
    assert reads and "/xcomEntries/output" in reads[0] and "\\\n" in reads[0]


def test_readme_prerequisites_line() -> None:
    packages = walkthrough.apt_packages(README)
    assert {"python3", "python3-venv", "make", "git", "docker.io", "curl"} <= set(packages)


def test_comments_outside_quotes_only() -> None:
    assert walkthrough.split_comment("""echo '# no' "# no" a\\#b  # yes # too""") == (
        """echo '# no' "# no" a\\#b""",
        "yes # too",
    )
    assert walkthrough.split_comment("""echo "it's" # x""") == ('echo "it\'s"', "x")


def test_steps_must_do_what_the_comments_say() -> None:
    block = """
# a comment line
export A=1
echo "$A" '{"a": 1}'   # {"a": 1}
false                  # SOME_REASON: refused
(exit 5)               # OTHER_REASON: refused with its class's code (5)
curl -u "u:p" \\
  "http://x/y"
"""
    found = walkthrough.steps(block)
    assert [(s.reason, s.output) for s in found] == [
        (None, None),
        (None, '{"a": 1}'),
        ("SOME_REASON", None),
        ("OTHER_REASON", None),
        (None, None),
    ]
    assert [s.exit_code for s in found[2:4]] == [1, 5]
    assert walkthrough.as_run(found[4].command).startswith("curl --fail-with-body -sS -u")

    refusal = found[2]
    ok = walkthrough.Outcome(refusal, 1, "", "tool: SOME_REASON: no\n")
    assert ok.problem() is None
    assert walkthrough.Outcome(refusal, 0, "", "").problem()
    assert walkthrough.Outcome(refusal, 1, "", "OTHER_REASON").problem()
    coded = found[3]
    assert walkthrough.Outcome(coded, 5, "", "OTHER_REASON").problem() is None
    assert walkthrough.Outcome(coded, 1, "", "OTHER_REASON").problem()
    printing = found[1]
    assert walkthrough.Outcome(printing, 0, '{"a":1}\n', "").problem() is None
    assert walkthrough.Outcome(printing, 0, '{"a": 2}\n', "").problem()
    assert walkthrough.Outcome(printing, 2, '{"a": 1}\n', "").problem()


def test_steps_share_one_shell() -> None:
    block = """
export GREETING=hello
echo "$GREETING" >&2; echo '{"x": 1}'   # {"x": 1}
(exit 1)                                 # NOPE_REASON
"""
    outcomes = walkthrough.run_steps(walkthrough.steps(block), dict(os.environ))
    assert [o.code for o in outcomes] == [0, 0, 1]
    assert outcomes[1].stderr == "hello\n"
    assert [o.problem() for o in outcomes] == [None, None, "expected NOPE_REASON on stderr"]


def test_a_step_that_hangs_is_named_and_the_rest_are_not_reached(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(walkthrough, "STEPS_SECONDS", 1.0)
    outcomes = walkthrough.run_steps(walkthrough.steps("true\nsleep 3\ntrue\n"), dict(os.environ))
    assert [o.problem() for o in outcomes] == [
        None,
        "did not finish within 1 s",
        "not reached: an earlier step did not finish",
    ]
    assert walkthrough.report(outcomes)
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == "walkthrough: step 2 failed first: `sleep 3`: did not finish within 1 s"
