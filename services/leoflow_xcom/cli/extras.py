"""Commands that need the [server] extra say so in one line when it is not installed.

`pip install leoflow-xcom` carries the SDK and the client commands only; serve, ui, init,
token and dags import the server stack lazily, so a missing module surfaces as the
ModuleNotFoundError of one of these top-level names.
"""

from __future__ import annotations

from typing import Final

# Import names of the [server] extra's distributions (tests/test_layers.py keeps them in step
# with pyproject.toml).
SERVER_MODULES: Final = frozenset(
    {
        "cryptography",
        "grpc_reflection",
        "gunicorn",
        "hiredis",
        "jinja2",
        "jsonschema",
        "jwt",
        "prometheus_client",
        "pydantic",
        "pydantic_settings",
        "re2",
        "redis",
        "starlette",
        "uvicorn",
        "uvicorn_worker",
    }
)
INSTALL_HINT: Final = "pip install 'leoflow-xcom[server]'"


def missing_server_module(exc: ModuleNotFoundError) -> str | None:
    """The missing module's name when it belongs to the [server] extra, else None."""
    name = (exc.name or "").split(".")[0]
    return name if name in SERVER_MODULES else None
