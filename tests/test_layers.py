"""Dependencies point one way: the core has no I/O and the SDK carries no server stack."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from leoflow_xcom.cli.extras import SERVER_MODULES
from leoflow_xcom.testing.paths import ROOT

# Third-party stacks that do I/O; the stdlib's socket is loaded by the interpreter itself.
IO_STACK = {"grpc", "redis", "starlette", "uvicorn", "gunicorn", "prometheus_client"}
# Our packages above the core: the core must never reach them.
OUTER_LAYERS = {"store", "server", "proxy", "client", "cli", "init", "telemetry"}


def loaded_after_import(module: str) -> set[str]:
    """Every module name, and every top-level package, loaded by importing `module` alone."""
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    names = set(json.loads(out.stdout))
    return names | {name.split(".")[0] for name in names}


@pytest.mark.parametrize(
    "module",
    [
        "leoflow_xcom.core.limits",
        "leoflow_xcom.core.keys",
        "leoflow_xcom.core.errors",
        "leoflow_xcom.core.codec",
        "leoflow_xcom.core.policies",
        "leoflow_xcom.core.tokens",
        "leoflow_xcom.core.authz",
        "leoflow_xcom.core.schema",
    ],
)
def test_core_modules_load_no_io_stack(module: str) -> None:
    loaded = loaded_after_import(module)
    assert not loaded & IO_STACK
    assert not {
        m for m in loaded if m.startswith("leoflow_xcom.") and m.split(".")[1] in OUTER_LAYERS
    }


def test_client_sdk_loads_no_server_or_storage_stack() -> None:
    loaded = loaded_after_import("leoflow_xcom.client")
    assert not loaded & {"redis", "starlette", "jsonschema", "pydantic", "uvicorn", "gunicorn"}
    assert not {
        m
        for m in loaded
        if m.startswith(("leoflow_xcom.store", "leoflow_xcom.server", "leoflow_xcom.proxy"))
    }


def test_sdk_and_cli_entry_point_load_nothing_from_the_server_extra() -> None:
    # `pip install leoflow-xcom` has no [server] extra: the SDK and the CLI's start (and so its
    # client commands) must not import any of it.
    # grpc's own __init__ imports grpc_reflection when it is installed (to alias it as
    # grpc.reflection): that is grpc's doing, not ours, and it is absent from an SDK install.
    ours = SERVER_MODULES - {"grpc_reflection"}
    for module in ("leoflow_xcom.client", "leoflow_xcom.cli.main"):
        assert not loaded_after_import(module) & ours, module


def _extra_modules(extra: str) -> set[str]:
    """Top-level import names of the distributions an extra of pyproject.toml installs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower().replace("_", "-")
        for r in project["optional-dependencies"][extra]
    }
    provides: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            provides.setdefault(dist.lower().replace("_", "-"), set()).add(module)
    return set().union(*(provides.get(d, set()) for d in wanted))


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_nothing_outside_tests_imports_the_test_suite() -> None:
    # Tools share the development harness (leoflow_xcom.testing), never the test suite's code.
    sources = [
        p
        for top in ("services", "scripts", "bench", "loadtest")
        for p in (ROOT / top).rglob("*.py")
    ]
    assert len(sources) > 50  # the scan saw the repository
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _imported_modules(path) if m.split(".")[0] == "tests"
        )
        for path in sources
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


@pytest.mark.parametrize(
    "module",
    [
        f"leoflow_xcom.testing.{p.stem}"
        for p in sorted((ROOT / "services/leoflow_xcom/testing").glob("*.py"))
        if p.stem != "__init__"
    ],
)
def test_the_development_harness_needs_only_the_server_extra(module: str) -> None:
    # Users' own integration tests import it with `pip install 'leoflow-xcom[server]'`: no
    # pytest or other [dev]-only package may be needed to import it.
    dev_only = _extra_modules("dev") - SERVER_MODULES - {"grpc", "google"}
    assert not loaded_after_import(module) & dev_only


def test_sdk_does_not_load_the_development_harness() -> None:
    for module in ("leoflow_xcom.client", "leoflow_xcom.cli.main"):
        assert not {m for m in loaded_after_import(module) if m.startswith("leoflow_xcom.testing")}


def test_server_module_list_matches_the_server_extra() -> None:
    # The CLI names the extra to install from this list; it must cover what [server] brings.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower().replace("_", "-")
        for r in project["optional-dependencies"]["server"]
    }
    provides: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            provides.setdefault(dist.lower().replace("_", "-"), set()).add(module)
    # redis[hiredis]: the extra's parser comes along with redis.
    expected = set().union(*(provides[d] for d in wanted | {"hiredis"}))
    assert {m for m in expected if not m.startswith("_")} == SERVER_MODULES
