"""scripts/check-prereqs.sh on machines that lack one prerequisite each: one line, exit 1.

Each machine is this one with a PATH that holds only the tools it should have (symlinks to the
real ones), so the script sees exactly what a user's shell would see.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from leoflow_xcom.testing.paths import ROOT

SCRIPT = ROOT / "scripts" / "check-prereqs.sh"
# What a Debian machine with README's prerequisites has on PATH (and the script may call).
TOOLS = (
    "bash",
    "sh",
    "id",
    "uname",
    "basename",
    "head",
    "sed",
    "python3",
    "make",
    "git",
    "docker",
    "curl",
    "redis-server",
    "apt-get",
)


def machine(tmp_path: Path, without: tuple[str, ...] = (), **scripts: str) -> Path:
    """A bin directory with the real tools minus `without`, plus the given scripts."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for tool in TOOLS:
        # The interpreter itself: a python3 on PATH may be a shim (pyenv) that needs more tools.
        found = os.path.realpath(sys.executable) if tool == "python3" else shutil.which(tool)
        if tool not in without and tool not in scripts:
            assert found, f"this test needs {tool} on the machine running it"
            (bin_dir / tool).symlink_to(found)
    for name, body in scripts.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def check(bin_dir: Path, *targets: str, **env: str) -> subprocess.CompletedProcess[str]:
    plain = {k: v for k, v in os.environ.items() if k not in ("PATH", "PYTHON")}
    plain.pop("LEOFLOW_TEST_SERVERS", None)
    return subprocess.run(
        ["/bin/bash", str(SCRIPT), *targets],
        env={**plain, **env, "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("make: missing prerequisite: ")
    return lines[0]


@pytest.mark.parametrize("target", ["venv", "test", "run", "fresh-test"])
def test_all_there_says_nothing(tmp_path: Path, target: str) -> None:
    done = check(machine(tmp_path), target)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_no_docker_client(tmp_path: Path) -> None:
    line = one_line(check(machine(tmp_path, without=("docker",)), "test"))
    assert "a docker client" in line and "apt-get install docker.io" in line


def test_no_python(tmp_path: Path) -> None:
    line = one_line(check(machine(tmp_path, without=("python3",)), "run"))
    assert "Python 3.11+ (python3 not found)" in line and "apt-get install python3" in line


def test_built_venv_needs_no_system_python(tmp_path: Path) -> None:
    stamp = tmp_path / "installed-stamp"
    stamp.touch()
    assert check(machine(tmp_path, without=("python3",)), "run", STAMP=str(stamp)).returncode == 0


def test_python_too_old(tmp_path: Path) -> None:
    # Ubuntu 22.04's python3: answers the version probe with 3.10.
    old = "#!/bin/sh\necho 3.10\n"
    line = one_line(check(machine(tmp_path, python3=old), "venv"))
    assert "Python 3.11+ (python3 is 3.10)" in line and "PYTHON=python3.11" in line


def test_python_without_venv(tmp_path: Path) -> None:
    # Debian's python3 without python3-venv has no ensurepip module at all.
    shadow = tmp_path / "shadow" / "ensurepip"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError('ensurepip')\n")
    real = os.path.realpath(sys.executable)
    wrapper = f'#!/bin/sh\nPYTHONPATH={shadow.parent} exec {real} "$@"\n'
    line = one_line(check(machine(tmp_path, python3=wrapper), "test"))
    assert "venv module with ensurepip" in line and "apt-get install python3-venv" in line


def test_no_curl(tmp_path: Path) -> None:
    line = one_line(check(machine(tmp_path, without=("curl",)), "test"))
    assert "curl (README's walk-through" in line and "apt-get install curl" in line
    # make run itself does not need curl
    assert check(machine(tmp_path / "run", without=("curl",)), "run").returncode == 0


def test_no_apt_and_no_redis(tmp_path: Path) -> None:
    # A non-Debian host (macOS, Fedora): nothing can install redis-server for the suite.
    bin_dir = machine(tmp_path, without=("redis-server", "apt-get"))
    line = one_line(check(bin_dir, "test"))
    assert "redis-server" in line and "LEOFLOW_TEST_SERVERS=valkey make test" in line
    assert check(bin_dir, "test", LEOFLOW_TEST_SERVERS="valkey").returncode == 0


def test_no_make(tmp_path: Path) -> None:
    line = one_line(check(machine(tmp_path, without=("make",)), "venv"))
    assert "make: install it with apt-get install make" in line


def test_no_git_for_fresh_test(tmp_path: Path) -> None:
    line = one_line(check(machine(tmp_path, without=("git",)), "fresh-test"))
    assert "git (" in line


def test_make_test_stops_before_building_anything(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = subprocess.run(
        ["make", "-C", str(ROOT), "test", f"VENV={venv}"],
        env={
            **{k: v for k, v in os.environ.items() if k not in ("PATH", "MAKEFLAGS", "MAKELEVEL")},
            "PATH": str(machine(tmp_path, without=("docker",))),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "make: missing prerequisite: a docker client" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not venv.exists()
