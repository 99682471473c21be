"""`pip install leoflow-xcom` as a task image does it: a clean virtualenv, the wheel built from
this tree, no extras, with the LOWEST grpcio/grpcio-status/protobuf that pyproject.toml declares
and with the newest the dev environment has. Each makes real pushes and pulls against the real
service, and the install holds nothing of the server stack.

The venvs are cached under .cache/ keyed by the pinned versions, so reruns only reinstall our
own wheel.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from leoflow_xcom.testing.paths import ROOT
from tests.fixture_types import Mint

# The SDK's runtime: what pins a task image's protobuf/grpc, so both ends of the range matter.
PINNED = ("grpcio", "grpcio-status", "grpcio-health-checking", "protobuf")
# All that may be installed besides pip itself: ours, the pins and what they pull in.
ALLOWED = {"leoflow-xcom", *PINNED, "googleapis-common-protos", "typing-extensions"}
SERVER_DISTS = {"redis", "pydantic", "starlette", "uvicorn", "gunicorn", "jsonschema", "pyjwt"}


def _dependencies() -> list[str]:
    return list(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])


def declared_floors() -> dict[str, str]:
    floors = {}
    for requirement in _dependencies():
        name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()
        floor = re.search(r">=\s*([\w.]+)", requirement)
        assert floor is not None, f"{requirement}: every SDK dependency needs a floor"
        floors[name] = floor.group(1)
    assert set(floors) == set(PINNED), "a new SDK dependency: pin it here too"
    return floors


def dev_versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in PINNED}


ENDS = {"lowest": declared_floors, "dev": dev_versions}


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy of what the sdist holds: an in-tree build would leave build/ and
    # egg-info behind, and a stale build/lib could carry deleted modules into the wheel.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "services", src / "services", ignore=junk)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("leoflow_xcom-*.whl")
    with zipfile.ZipFile(built) as archive:  # the declared license travels with the package
        assert any(name.endswith("/LICENSE") for name in archive.namelist())
    return built


def sdk_venv(pins: dict[str, str], wheel: Path) -> Path:
    """A venv with exactly these versions and our wheel, installed the way users do."""
    constraints = "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))
    key = hashlib.sha256(f"{sys.version_info[:2]}\n{constraints}".encode()).hexdigest()[:12]
    home = ROOT / ".cache" / f"sdk-venv-{key}"
    python = home / "bin" / "python"
    if not (home / ".ready").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True)
        (home / "constraints.txt").write_text(constraints)
        (home / ".ready").touch()
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    # A fresh install of this tree's wheel every run; its dependencies resolve under the pins.
    subprocess.run([*pip, "uninstall", "--yes", "leoflow-xcom"], check=True, capture_output=True)
    subprocess.run(
        [*pip, "install", "-c", str(home / "constraints.txt"), str(wheel)],
        check=True,
        capture_output=True,
    )
    subprocess.run([*pip, "check"], check=True, capture_output=True)
    return python


@pytest.fixture(scope="session")
def sdk_python(wheel: Path) -> dict[str, Path]:
    """Per end of the range, the SDK venv's python: installed once per test session."""
    return {end: sdk_venv(pins(), wheel) for end, pins in ENDS.items()}


def installed(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json;"
        "print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): d.version"
        " for d in m.distributions()}))"
    )
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout))


# Run inside the SDK venv: the SDK as a task uses it, sync and asyncio, both transports.
TASK_SCRIPT = """
import asyncio, json, os, sys
import leoflow_xcom
from leoflow_xcom.client import AsyncXComClient, XComClient, XComNotFoundError

assert leoflow_xcom.__file__.startswith(sys.prefix), leoflow_xcom.__file__
producer, consumer = os.environ["PRODUCER_TOKEN"], os.environ["CONSUMER_TOKEN"]
results = {}
for transport in ("session", "unary"):
    os.environ["LEOFLOW_XCOM_TOKEN"] = producer
    with XComClient.from_env(transport=transport) as xcom:
        xcom.push("out_" + transport, {"rows": 42, "via": transport})
    os.environ["LEOFLOW_XCOM_TOKEN"] = consumer
    with XComClient.from_env(transport=transport) as xcom:
        results[transport] = xcom.pull("a", "out_" + transport)
        assert xcom.pull("a", "never", default="fallback") == "fallback"
        try:
            xcom.pull("a", "never")
        except XComNotFoundError:
            pass
        else:
            raise AssertionError("no XComNotFoundError")

async def aio():
    async with AsyncXComClient.from_env() as xcom:
        return await xcom.pull("a", "out_unary")

results["aio"] = asyncio.run(aio())
import google.protobuf, grpc
results["versions"] = [grpc.__version__, google.protobuf.__version__]
print(json.dumps(results))
"""


@pytest.mark.slow
@pytest.mark.parametrize("end", sorted(ENDS))
def test_sdk_only_install_pushes_and_pulls(
    end: str, sdk_python: dict[str, Path], target: str, mint: Mint, tmp_path: Path
) -> None:
    pins = ENDS[end]()
    python = sdk_python[end]
    have = installed(python)
    for name, version in pins.items():
        assert have[name] == version, f"{name}: {have[name]} installed, {version} wanted"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LEOFLOW_", "PYTHON"))},
        "LEOFLOW_XCOM_ADDR": target,
        "PRODUCER_TOKEN": mint(task_id="a"),
        "CONSUMER_TOKEN": mint(task_id="b"),
    }
    out = subprocess.run(
        [python, "-c", TASK_SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert results["session"] == {"rows": 42, "via": "session"}
    assert results["unary"] == results["aio"] == {"rows": 42, "via": "unary"}
    assert results["versions"] == [pins["grpcio"], pins["protobuf"]]

    # The client commands from the same install; the server ones say what to install.
    cli = str(python.parent / "leoflow-xcom")
    token_env = {**env, "LEOFLOW_XCOM_TOKEN": mint(task_id="b")}
    fetched = subprocess.run(
        [cli, "fetch", "a", "out_session"], env=token_env, capture_output=True, text=True
    )
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout) == {"rows": 42, "via": "session"}
    assert subprocess.run([cli, "health"], env=env, capture_output=True).returncode == 0
    for command in (["serve"], ["token", "--control-plane"], ["ui"], ["dags", "ls"], ["init"]):
        refused = subprocess.run([cli, *command], env=env, capture_output=True, text=True)
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1, refused.stderr
        assert "pip install 'leoflow-xcom[server]'" in refused.stderr


@pytest.mark.slow
@pytest.mark.parametrize("end", sorted(ENDS))
def test_sdk_only_install_holds_no_server_dependency(end: str, sdk_python: dict[str, Path]) -> None:
    have = set(installed(sdk_python[end])) - {"pip", "setuptools"}
    assert not have & SERVER_DISTS
    assert have <= ALLOWED, f"more than the SDK needs: {sorted(have - ALLOWED)}"
