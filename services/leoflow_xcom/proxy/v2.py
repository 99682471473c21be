"""Airflow 3 (`/api/v2`, FastAPI) XCom endpoints: its parameters, defaults, caps and bodies.

    GET /dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries
        map_index (>= -1), xcom_key, limit (>= 0, default 50, over 100 gives 100), offset (>= 0)
    GET /dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}
        map_index (>= -1, default -1), deserialize (default false), stringify (default false)
Bad parameters: 422 with one pydantic-style item per parameter.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from leoflow_xcom.core.errors import XComError
from leoflow_xcom.proxy import render
from leoflow_xcom.proxy.browse import Browser, Query, Row
from leoflow_xcom.proxy.params import ParamProblem, Params
from leoflow_xcom.proxy.problems import store_status, v2_detail
from leoflow_xcom.proxy.responses import ValueResponse

DEFAULT_LIMIT = 50  # Airflow 3's fallback_page_limit
MAX_LIMIT = 100  # Airflow 3's maximum_page_limit
BASE = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries"


def item(row: Row) -> dict[str, Any]:
    e = row.entry
    return {
        "key": e.key,
        "timestamp": render.iso_v2(render.from_ms(e.pushed_at_ms)),
        "logical_date": render.iso_v2(render.run_fact(row.run_info.logical_date)),
        "map_index": e.map_index,
        "task_id": e.task_id,
        "dag_id": e.dag_id,
        "run_id": e.run_id,
        "dag_display_name": row.dag_display_name,
        "task_display_name": row.task_display_name,
        "run_after": render.iso_v2(render.run_after(row.run_info, e)),
    }


def _error(problem: ParamProblem) -> dict[str, Any]:
    loc = ["query", problem.name]
    if problem.kind == "integer":
        return {
            "type": "int_parsing",
            "loc": loc,
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": problem.raw,
        }
    if problem.kind == "boolean":
        return {
            "type": "bool_parsing",
            "loc": loc,
            "msg": "Input should be a valid boolean, unable to interpret input",
            "input": problem.raw,
        }
    return {
        "type": "greater_than_equal",
        "loc": loc,
        "msg": f"Input should be greater than or equal to {problem.minimum}",
        "input": problem.raw,
        "ctx": {"ge": problem.minimum},
    }


def _invalid(problems: list[ParamProblem]) -> JSONResponse:
    return v2_detail(422, [_error(p) for p in problems])


def create(browser: Browser) -> Starlette:
    def list_entries(request: Request) -> Response:
        p = Params(request.query_params, lax_booleans=True)
        limit = p.integer("limit", DEFAULT_LIMIT, minimum=0)
        offset = p.integer("offset", 0, minimum=0)
        map_index = p.integer("map_index", None, minimum=-1)
        if p.problems:
            return _invalid(p.problems)
        assert limit is not None and offset is not None
        path = request.path_params
        rows, total = browser.page(
            Query(
                dag_id=path["dag_id"],
                run_id=path["dag_run_id"],
                task_id=path["task_id"],
                map_index=map_index,
                key=p.string("xcom_key"),
                limit=min(limit, MAX_LIMIT),
                offset=offset,
            )
        )
        return JSONResponse({"xcom_entries": [item(r) for r in rows], "total_entries": total})

    def get_entry(request: Request) -> Response:
        p = Params(request.query_params, lax_booleans=True)
        map_index = p.integer("map_index", -1, minimum=-1)
        p.boolean("deserialize", False)  # values are plain JSON: stored form == deserialized
        stringify = p.boolean("stringify", False)
        if p.problems:
            return _invalid(p.problems)
        assert map_index is not None
        path = request.path_params
        key = path["xcom_key"]
        found = browser.entry(path["dag_id"], path["dag_run_id"], path["task_id"], map_index, key)
        if found is None:
            return v2_detail(404, f"XCom entry with key: `{key}` not found")
        row, raw = found
        value = render.decode(raw)
        return ValueResponse(
            {**item(row), "value": render.stringified(value) if stringify else value}
        )

    async def store_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, XComError)
        return v2_detail(store_status(exc), exc.message)

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return v2_detail(exc.status_code, "Not Found", dict(exc.headers or {}))

    return Starlette(
        routes=[
            Route(BASE, list_entries, methods=["GET"]),
            Route(BASE + "/{xcom_key:path}", get_entry, methods=["GET"]),
        ],
        exception_handlers={XComError: store_error, 404: not_found},
    )
