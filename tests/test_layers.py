"""Dependencies point one way: the core has no I/O and the SDK carries no server stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def loaded_after_import(module: str) -> set[str]:
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return {name.split(".")[0] for name in json.loads(out.stdout)} | set(json.loads(out.stdout))


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
    assert not loaded & {"grpc", "redis", "starlette", "uvicorn", "gunicorn", "socket"} - {"socket"}
    assert not {
        m
        for m in loaded
        if m.startswith("leoflow_xcom.")
        and m.split(".")[1] in {"store", "server", "proxy", "client", "cli"}
    }


def test_client_sdk_loads_no_server_or_storage_stack() -> None:
    loaded = loaded_after_import("leoflow_xcom.client")
    assert not loaded & {"redis", "starlette", "jsonschema", "pydantic", "uvicorn", "gunicorn"}
    assert not {
        m
        for m in loaded
        if m.startswith(("leoflow_xcom.store", "leoflow_xcom.server", "leoflow_xcom.proxy"))
    }
