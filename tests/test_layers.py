"""Dependencies point one way: the core has no I/O and the SDK carries no server stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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
