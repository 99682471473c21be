"""Error bodies, in the shape of the Airflow generation that owns the path.

Airflow 2 (`/api/v1`) answers RFC 7807 problem JSON whose `type` links to its REST reference;
Airflow 3 (`/api/v2`, and our own paths) answers FastAPI's `{"detail": ...}`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

from leoflow_xcom.core.errors import (
    LayoutMismatchError,
    StoreFullError,
    StoreUnavailableError,
    XComError,
)

V1_PREFIX = "/api/v1"
V2_PREFIX = "/api/v2"
# The last Airflow 2 release's reference: where `type` points, as Airflow 2 itself does.
V1_DOCS = "https://airflow.apache.org/docs/apache-airflow/2.10.5/stable-rest-api-ref.html"
_V1_SECTIONS = {
    400: "BadRequest",
    401: "Unauthenticated",
    403: "PermissionDenied",
    404: "NotFound",
    405: "MethodNotAllowed",
    500: "Unknown",
}
ALLOWED_METHODS = "GET, HEAD"


def v1_problem(
    status: int,
    detail: str | None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    section = _V1_SECTIONS.get(status)
    body = {
        "detail": detail,
        "status": status,
        "title": title or HTTPStatus(status).phrase,
        "type": f"{V1_DOCS}#section/Errors/{section}" if section else "about:blank",
    }
    return JSONResponse(body, status, headers=headers, media_type="application/problem+json")


def v2_detail(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status, headers=headers)


def for_path(
    path: str, status: int, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error for a path outside any route's own handling (auth, method, not found)."""
    if path == V1_PREFIX or path.startswith(V1_PREFIX + "/"):
        return v1_problem(status, detail, headers=headers)
    return v2_detail(status, detail, headers)


V1_NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please "
    "check your spelling and try again."
)


def not_found(path: str) -> JSONResponse:
    """No route: Flask's sentence under /api/v1, FastAPI's "Not Found" elsewhere."""
    if path == V1_PREFIX or path.startswith(V1_PREFIX + "/"):
        return v1_problem(404, V1_NOT_FOUND)
    return v2_detail(404, "Not Found")


def store_status(exc: XComError) -> int:
    """Reads fail only when the store cannot answer (down, loading, other layout): 503."""
    if isinstance(exc, StoreUnavailableError | StoreFullError | LayoutMismatchError):
        return 503
    return 500
