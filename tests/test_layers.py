"""Dependencies point one way: the core has no I/O and the SDK carries no server stack."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib

import pytest

from leoflow_xcom.cli.extras import SERVER_MODULES
from tests.redis_proc import ROOT

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
