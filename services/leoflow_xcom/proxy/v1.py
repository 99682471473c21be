"""Airflow 2 (`/api/v1`, connexion) XCom endpoints: its parameters, defaults, caps and bodies.

GET /dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries
    map_index, xcom_key, limit (default 100; over 100 gives 100; 0 gives 100), offset
GET /dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}
    map_index (default -1), deserialize (default false), stringify (default true)
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
from leoflow_xcom.proxy.problems import V1_NOT_FOUND, store_status, v1_problem
from leoflow_xcom.proxy.responses import ValueResponse

PAGE_LIMIT = 100  # Airflow 2's maximum_page_limit and fallback_page_limit defaults
BASE = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries"


def item(row: Row) -> dict[str, Any]:
    e = row.entry
    return {
        "key": e.key,
        "timestamp": render.iso_v1(render.from_ms(e.pushed_at_ms)),
        "execution_date": render.iso_v1(render.execution_date(row.run_info, e)),
        "map_index": e.map_index,
        "task_id": e.task_id,
        "dag_id": e.dag_id,
    }


def _bad_param(problem: ParamProblem) -> JSONResponse:
    if problem.kind == "minimum":
        detail = f"{problem.raw} is less than the minimum of {problem.minimum} - '{problem.name}'"
    else:
        detail = f"Wrong type, expected '{problem.kind}' for query parameter '{problem.name}'"
    return v1_problem(400, detail)


def create(browser: Browser) -> Starlette:
    def list_entries(request: Request) -> Response:
        p = Params(request.query_params, lax_booleans=False)
        map_index = p.integer("map_index", None)
        limit = p.integer("limit", PAGE_LIMIT)
        offset = p.integer("offset", 0, minimum=0)
        if p.problems:
            return _bad_param(p.problems[0])
        assert limit is not None and offset is not None
        if limit < 0:
            # Airflow 2's check_limit puts this sentence in the title.
            text = "Page limit must be a positive integer"
            return v1_problem(400, text, title=text)
        path = request.path_params
        rows, total = browser.page(
            Query(
                dag_id=path["dag_id"],
                run_id=path["dag_run_id"],
                task_id=path["task_id"],
                map_index=map_index,
                key=p.string("xcom_key"),
                limit=min(limit, PAGE_LIMIT) if limit else PAGE_LIMIT,
                offset=offset,
            )
        )
        return JSONResponse({"xcom_entries": [item(r) for r in rows], "total_entries": total})

    def get_entry(request: Request) -> Response:
        p = Params(request.query_params, lax_booleans=False)
        map_index = p.integer("map_index", -1)
        p.boolean("deserialize", False)  # values are plain JSON: stored form == deserialized
        stringify = p.boolean("stringify", True)
        if p.problems:
            return _bad_param(p.problems[0])
        assert map_index is not None
        path = request.path_params
        found = browser.entry(
            path["dag_id"], path["dag_run_id"], path["task_id"], map_index, path["xcom_key"]
        )
        if found is None:
            return v1_problem(404, "XCom entry not found")
        row, raw = found
        value = render.decode(raw)
        return ValueResponse(
            {**item(row), "value": render.stringified(value) if stringify else value}
        )

    async def store_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, XComError)
        return v1_problem(store_status(exc), exc.message)

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return v1_problem(exc.status_code, V1_NOT_FOUND, headers=dict(exc.headers or {}))

    return Starlette(
        routes=[
            Route(BASE, list_entries, methods=["GET"]),
            Route(BASE + "/{xcom_key:path}", get_entry, methods=["GET"]),
        ],
        exception_handlers={XComError: store_error, 404: not_found},
    )
