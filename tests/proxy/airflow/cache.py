"""Airflow's own artefacts for the tests, fetched once into the ignored `.cache/` directory:

- a virtualenv per `apache-airflow-client` release (the 2.x and 3.x clients cannot share one),
  keyed by client version and Python version, so reruns start in a second;
- the `apache-airflow` / `apache-airflow-core` wheels whose OpenAPI documents the proxy's
  bodies are checked against (`pip download --no-deps`; the YAML is read out of the wheel).

A file lock per artefact keeps parallel runs from building the same one twice; a stamp file
written last marks a complete one, so an interrupted install is redone, never half used.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

from leoflow_xcom.testing.paths import ROOT

CACHE = ROOT / ".cache" / "airflow"
# Airflow's generated clients, by API generation: version and what else their README uses.
CLIENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "v1": ("2.10.0", ()),
    "v2": ("3.3.2", ("requests>=2.31,<3",)),  # the 3.x README logs in with requests
}
PYTHON_TAG = f"py{sys.version_info.major}.{sys.version_info.minor}"
INSTALL_TIMEOUT = 600


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")


def client_python(generation: str) -> Path:
    """The python of a virtualenv holding the generation's apache-airflow-client."""
    version, extra = CLIENTS[generation]
    name = f"client-{version}-{PYTHON_TAG}"
    venv = CACHE / name
    python = venv / "bin" / "python"
    stamp = venv / ".complete"
    with _locked(name):
        if not stamp.exists():
            shutil.rmtree(venv, ignore_errors=True)
            _run([sys.executable, "-m", "venv", str(venv)])
            pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            _run([*pip, f"apache-airflow-client=={version}", *extra])
            stamp.write_text(version)
    return python


def wheel_member(project: str, version: str, member: str) -> bytes:
    """One file out of the released wheel of `project==version`."""
    name = f"{project}-{version}"
    directory = CACHE / "wheels" / name
    stamp = directory / ".complete"
    with _locked(name):
        if not stamp.exists():
            shutil.rmtree(directory, ignore_errors=True)
            pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
            options = ["--disable-pip-version-check", "--only-binary=:all:", "-d", str(directory)]
            _run([*pip, *options, f"{project}=={version}"])
            stamp.write_text(version)
    wheels = sorted(directory.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel of {project}=={version} in {directory}")
    with zipfile.ZipFile(wheels[0]) as archive:
        return archive.read(member)
