"""README's walk-through as a new user meets it: `make run`, the commands in a second shell, Ctrl-C.

    walkthrough.py run        start `make run`, run the walk-through, press Ctrl-C; exit 0 when
                              every step did what README says
    walkthrough.py steps      print README's walk-through steps and what each must do
    walkthrough.py packages   print the Debian packages of README's prerequisites line

The commands are read from README.md's walk-through code block, so this cannot drift from what
users are told. What each step must do comes from README's own trailing comments: a comment
starting with an error reason (`# XCOM_FORBIDDEN: not a dependency (4)`) means a failure naming
that reason on stderr, with the exit code in parentheses at the comment's end (1 when none);
a JSON comment (`# {"rows": 42}`) is the output the step must print; every other step must
succeed. `curl` gets `--fail-with-body -sS`: an HTTP error fails its step, and
no progress meter (as on a terminal).

Standard library only: `make fresh-test` runs it in a container that has only README's
prerequisites.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
WALKTHROUGH_HEADING = "## Walk-through"
APT_INSTALL = re.compile(r"^(?:sudo\s+)?apt-get\s+install\s+(?P<args>[^#]+)")
REASON = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
EXIT_CODE = re.compile(r"\((\d+)\)\s*$")
READY_MARK = "Ctrl-C"  # `make run` prints "Press Ctrl-C ..." once everything is up
READY_SECONDS = 300.0  # the first `make run` may still install packages
STEPS_SECONDS = 180.0
STOP_SECONDS = 60.0


@dataclass(frozen=True)
class Step:
    command: str
    reason: str | None = None  # must fail naming this reason on stderr
    output: str | None = None  # must print this JSON
    exit_code: int = 1  # the exit code a refusal must have (README's "(N)", else 1)


@dataclass(frozen=True)
class Outcome:
    step: Step
    code: int
    stdout: str
    stderr: str
    started: bool = True  # False: the shell stopped (timeout) before this step began

    def problem(self) -> str | None:
        if not self.started:
            return "not reached: an earlier step did not finish"
        if self.code < 0:
            return f"did not finish within {STEPS_SECONDS:.0f} s"
        if self.step.reason is not None:
            if self.code != self.step.exit_code:
                return (
                    f"expected exit code {self.step.exit_code} with {self.step.reason}, "
                    f"got {self.code}"
                )
            if self.step.reason not in self.stderr:
                return f"expected {self.step.reason} on stderr"
            return None
        if self.code != 0:
            return f"exit code {self.code}"
        if self.step.output is not None and not _same_json(self.stdout, self.step.output):
            return f"expected output {self.step.output}"
        return None


def _same_json(printed: str, expected: str) -> bool:
    try:
        return bool(json.loads(printed) == json.loads(expected))
    except ValueError:
        return False


def code_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the opening fence, body) of every fenced code block."""
    blocks: list[tuple[int, str]] = []
    lines = text.splitlines()
    start: int | None = None
    for number, line in enumerate(lines):
        if line.startswith("```"):
            if start is None:
                start = number
            else:
                blocks.append((start, "\n".join(lines[start + 1 : number])))
                start = None
    return blocks


def walkthrough_block(text: str) -> str:
    lines = text.splitlines()
    heading = next((i for i, text in enumerate(lines) if text.startswith(WALKTHROUGH_HEADING)), -1)
    if heading < 0:
        raise SystemExit(f"walkthrough: README has no '{WALKTHROUGH_HEADING}' section")
    end = next(
        (i for i, line in enumerate(lines) if i > heading and line.startswith("## ")), len(lines)
    )
    for start, body in code_blocks(text):
        if heading < start < end:
            return body
    raise SystemExit(f"walkthrough: README's '{WALKTHROUGH_HEADING}' section has no code block")


def split_comment(line: str) -> tuple[str, str]:
    """A shell line's command and its trailing comment (a `#` outside quotes after a space)."""
    quote = ""
    i = 0
    while i < len(line):
        char = line[i]
        if quote == "'":
            if char == "'":
                quote = ""
        elif char == "\\":
            i += 1
        elif char == '"':
            quote = "" if quote else '"'
        elif quote:
            pass
        elif char == "'":
            quote = "'"
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
        i += 1
    return line.rstrip(), ""


def steps(block: str) -> list[Step]:
    found: list[Step] = []
    pending: list[str] = []
    for line in block.splitlines():
        if line.rstrip().endswith("\\"):
            pending.append(line.rstrip())
            continue
        command, comment = split_comment(line)
        command = "\n".join([*pending, command]).strip()
        pending = []
        if not command:
            continue
        reason = REASON.match(comment)
        output = comment if comment.startswith(("{", "[")) and _is_json(comment) else None
        code = EXIT_CODE.search(comment) if reason else None
        found.append(
            Step(
                command,
                reason.group(0) if reason else None,
                output,
                int(code.group(1)) if code else 1,
            )
        )
    if pending:
        raise SystemExit("walkthrough: README's walk-through ends inside a continued line")
    return found


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def apt_packages(text: str) -> list[str]:
    """The packages of the first `apt-get install` line in README's code blocks."""
    for _, body in code_blocks(text):
        for line in body.splitlines():
            match = APT_INSTALL.match(line.strip())
            if match:
                return [a for a in match.group("args").split() if not a.startswith("-")]
    raise SystemExit("walkthrough: README shows no `apt-get install` line for its prerequisites")


def as_run(command: str) -> str:
    # An HTTP error status must fail the step, as it would catch a reader's eye.
    return re.sub(r"^curl\s", "curl --fail-with-body -sS ", command)


def script(found: list[Step], out_dir: str) -> str:
    """One shell, so `source` and `export` carry over as in the reader's second shell."""
    lines = []
    for number, step in enumerate(found):
        base = shlex.quote(f"{out_dir}/{number}")
        lines += ["{", as_run(step.command), f"}} >{base}.out 2>{base}.err", f"echo $? >{base}.rc"]
    return "\n".join(lines) + "\n"


def run_steps(found: list[Step], env: dict[str, str]) -> list[Outcome]:
    with tempfile.TemporaryDirectory(prefix="walkthrough-") as out_dir:
        try:
            subprocess.run(
                ["bash", "-c", script(found, out_dir)], cwd=ROOT, env=env, timeout=STEPS_SECONDS
            )
        except subprocess.TimeoutExpired:
            pass  # the steps left without an exit code fail below
        outcomes = []
        for number, step in enumerate(found):
            base = Path(out_dir) / str(number)
            rc = _read(base.with_suffix(".rc")).strip()
            code = int(rc) if rc else -1  # the shell stopped (timeout) during or before it
            out, err = _read(base.with_suffix(".out")), _read(base.with_suffix(".err"))
            started = base.with_suffix(".out").exists()  # its redirection opened the file
            outcomes.append(Outcome(step, code, out, err, started))
    return outcomes


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def second_shell_env() -> dict[str, str]:
    """The reader's second shell: their own PATH and nothing of ours (no venv, no LEOFLOW_*)."""
    venv = str(ROOT / ".venv")
    path = [p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) if venv not in p]
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("LEOFLOW_") and k != "VIRTUAL_ENV"
    }
    env["PATH"] = os.pathsep.join(path)
    return env


def session_processes(session: int) -> list[str]:
    """Live processes of a session (Linux /proc): what Ctrl-C left behind."""
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        # fields: state, ppid, pgrp, session, ...; a zombie has already exited
        if fields[0] != "Z" and int(fields[3]) == session:
            left.append(cmdline.strip() or stat.parent.name)
    return left


def say(text: str) -> None:
    print(f"walkthrough: {text}", flush=True)


def run(found: list[Step]) -> int:
    if not Path("/proc/self/stat").exists():
        raise SystemExit("walkthrough: `run` checks for leftover processes in /proc (Linux only)")
    started = time.monotonic()
    with tempfile.NamedTemporaryFile("w+", prefix="make-run-", suffix=".log") as log:
        # Its own session, as a terminal's foreground job: Ctrl-C goes to the whole group.
        make = subprocess.Popen(
            ["make", "run"],
            cwd=ROOT,
            env=second_shell_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        printed = ""
        try:
            deadline = time.monotonic() + READY_SECONDS
            while READY_MARK not in printed:
                if make.poll() is not None or time.monotonic() > deadline:
                    print(printed, end="")
                    state = "exited" if make.poll() is not None else "never got ready"
                    say(f"`make run` {state}")
                    return 1
                time.sleep(0.2)
                printed = Path(log.name).read_text()
            say(f"`make run` ready in {time.monotonic() - started:.1f} s")
            begun = time.monotonic()
            outcomes = run_steps(found, second_shell_env())
            failed = report(outcomes)
            say(f"{len(outcomes)} walk-through steps in {time.monotonic() - begun:.1f} s")
        finally:
            stopping = time.monotonic()
            if make.poll() is None:
                os.killpg(make.pid, signal.SIGINT)  # Ctrl-C
            try:
                make.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.5)  # let children that outlived make be seen, not raced
            left = session_processes(make.pid)
            if left:
                os.killpg(make.pid, signal.SIGKILL)
        printed = Path(log.name).read_text()
    say(f"Ctrl-C stopped it in {time.monotonic() - stopping:.1f} s")
    problems = []
    if make.returncode is None:
        problems.append(f"`make run` still running {STOP_SECONDS:.0f} s after Ctrl-C")
    if left:
        problems.append("processes left after Ctrl-C: " + "; ".join(left))
    if "run: stopped" not in printed or "Traceback" in printed:
        problems.append("`make run` did not stop cleanly:\n" + printed)
    for problem in problems:
        say(problem)
    return 1 if failed or problems else 0


def report(outcomes: list[Outcome]) -> bool:
    """Print every step as a reader would see it; True when one did not do what README says.
    The first failure is repeated last, so a log's tail names it."""
    first: str | None = None
    for number, outcome in enumerate(outcomes, 1):
        print(f"$ {outcome.step.command}", flush=True)
        for text in (outcome.stdout, outcome.stderr):
            if text:
                print(text, end="" if text.endswith("\n") else "\n", flush=True)
        problem = outcome.problem()
        if problem:
            say(f"FAILED: {problem}")
            first = first or f"step {number} failed first: `{outcome.step.command}`: {problem}"
    if first:
        say(first)
    return first is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("action", choices=["run", "steps", "packages"])
    args = parser.parse_args(argv)
    text = README.read_text()
    if args.action == "packages":
        print(" ".join(apt_packages(text)))
        return 0
    found = steps(walkthrough_block(text))
    if args.action == "steps":
        for step in found:
            must = (
                f"fails with {step.reason} (exit {step.exit_code})" if step.reason else "succeeds"
            )
            must += f", prints {step.output}" if step.output else ""
            print(f"$ {as_run(step.command)}\n    {must}")
        return 0
    return run(found)


if __name__ == "__main__":
    sys.exit(main())
