"""The XCom browser: read-only, server-rendered pages beside the API.

    /                                     DAGs with XComs, their newest runs, counts, bytes
    /dags/{dag}/dagRuns                   one DAG's runs, newest first, paged
    /dags/{dag}/dagRuns/{run}             a run: task instances (map indexes grouped), XComs
    /dags/{dag}/dagRuns/{run}/taskInstances/{task}/xcomEntries[/{key}]
                                          the API's own paths and `~` wildcards, as pages
    /search?q=...&by=run|task             a run id or task id across every DAG
    /static/ui.css, /static/favicon.svg, /favicon.ico

Every handler is a GET behind the proxy's auth; it reads through the read-only Redis user.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from leoflow_xcom.core import limits
from leoflow_xcom.core.errors import XComError
from leoflow_xcom.proxy.browse import Browser, Query
from leoflow_xcom.proxy.params import Params
from leoflow_xcom.proxy.ui import links
from leoflow_xcom.proxy.ui.catalog import Catalog
from leoflow_xcom.proxy.ui.highlight import highlight
from leoflow_xcom.proxy.ui.respond import SECURITY_HEADERS, page

NEWEST_ON_INDEX = 10  # runs per DAG on `/`
RUNS_PAGE = 25
RUN_PAGE = 200  # XComs per run page
ENTRIES_PAGE = 100  # as the API's cap

Handler = Callable[[Request], Response]


def _problem(started: float, status: int, title: str, detail: str) -> Response:
    return page("problem.html", started, status, title=title, detail=detail)


def _guarded(handler: Callable[[Request, float], Response]) -> Handler:
    """Times the request and turns a store failure into a page that says so."""

    @functools.wraps(handler)
    def run(request: Request) -> Response:
        started = time.perf_counter()
        try:
            return handler(request, started)
        except XComError as exc:
            return _problem(started, 503, "Storage unavailable", exc.message)

    return run


def _offset(p: Params) -> int:
    return p.integer("offset", 0, minimum=0) or 0


def _bad_params(p: Params, started: float) -> Response | None:
    if not p.problems:
        return None
    bad = p.problems[0]
    rule = f"at least {bad.minimum}" if bad.kind == "minimum" else f"an {bad.kind}"
    return _problem(started, 400, "Bad parameter", f"{bad.name}={bad.raw!r}: must be {rule}.")


def _static(name: str, media_type: str) -> Handler:
    body = resources.files("leoflow_xcom.proxy.ui").joinpath("static", name).read_bytes()

    def serve(request: Request) -> Response:
        headers = {**SECURITY_HEADERS, "Cache-Control": "private, max-age=3600"}
        return Response(body, media_type=media_type, headers=headers)

    return serve


def routes(browser: Browser, catalog: Catalog) -> list[BaseRoute]:
    @_guarded
    def index(request: Request, started: float) -> Response:
        return page("index.html", started, dags=catalog.dags(NEWEST_ON_INDEX))

    @_guarded
    def dag_runs(request: Request, started: float) -> Response:
        p = Params(request.query_params, lax_booleans=False)
        offset = _offset(p)
        if (bad := _bad_params(p, started)) is not None:
            return bad
        dag_id = request.path_params["dag_id"]
        dag = catalog.runs(dag_id, offset, RUNS_PAGE)
        if not dag.runs:
            return _problem(started, 404, "No such DAG", f"DAG {dag_id!r} has no live XComs.")
        return page(
            "runs.html",
            started,
            dag=dag,
            offset=offset,
            limit=RUNS_PAGE,
            page_url=functools.partial(links.runs, dag_id),
        )

    @_guarded
    def run(request: Request, started: float) -> Response:
        p = Params(request.query_params, lax_booleans=False)
        offset = _offset(p)
        if (bad := _bad_params(p, started)) is not None:
            return bad
        dag_id, run_id = request.path_params["dag_id"], request.path_params["dag_run_id"]
        view = catalog.run(dag_id, run_id, offset, RUN_PAGE)
        if view is None:
            detail = f"Run {run_id!r} of DAG {dag_id!r} has no live XComs (expired or cleared)."
            return _problem(started, 404, "No such run", detail)
        return page(
            "run.html",
            started,
            view=view,
            offset=offset,
            limit=RUN_PAGE,
            page_url=functools.partial(links.run, dag_id, run_id),
        )

    @_guarded
    def entries(request: Request, started: float) -> Response:
        p = Params(request.query_params, lax_booleans=False)
        offset = _offset(p)
        map_index = p.integer("map_index", None, minimum=-1)
        if (bad := _bad_params(p, started)) is not None:
            return bad
        path = request.path_params
        q = Query(
            dag_id=path["dag_id"],
            run_id=path["dag_run_id"],
            task_id=path["task_id"],
            map_index=map_index,
            key=p.string("xcom_key"),
            limit=ENTRIES_PAGE,
            offset=offset,
        )
        rows, total = browser.page(q)
        filters = {"map_index": q.map_index, "xcom_key": q.key}
        url = links.entries(q.dag_id, q.run_id, q.task_id, **filters)
        return page(
            "entries.html",
            started,
            q=q,
            rows=rows,
            total=total,
            offset=offset,
            limit=ENTRIES_PAGE,
            api_url=links.API_V2 + url,
            page_url=lambda off: links.entries(
                q.dag_id, q.run_id, q.task_id, **filters, offset=off or None
            ),
        )

    @_guarded
    def value(request: Request, started: float) -> Response:
        p = Params(request.query_params, lax_booleans=False)
        map_index = p.integer("map_index", -1, minimum=-1)
        if (bad := _bad_params(p, started)) is not None:
            return bad
        assert map_index is not None
        path = request.path_params
        view = catalog.value(
            path["dag_id"], path["dag_run_id"], path["task_id"], map_index, path["xcom_key"]
        )
        if view is None:
            detail = "No such XCom: it was never pushed, has expired, or was cleared."
            return _problem(started, 404, "XCom not found", detail)
        schema = json.dumps(view.schema, ensure_ascii=False) if view.schema is not None else ""
        return page(
            "value.html",
            started,
            view=view,
            cap=limits.UI_VALUE_DISPLAY_BYTES,
            highlight=highlight,
            schema_text=schema,
        )

    def search(request: Request) -> Response:
        text = (request.query_params.get("q") or "").strip()
        if not text:
            return RedirectResponse("/", 303)
        if request.query_params.get("by") == "task":
            target = links.entries(links.WILDCARD, links.WILDCARD, text)
        else:
            target = links.entries(links.WILDCARD, text, links.WILDCARD)
        return RedirectResponse(target, 303)

    base = "/dags/{dag_id}/dagRuns"
    listing = base + "/{dag_run_id}/taskInstances/{task_id}/xcomEntries"
    return [
        Route("/", index, methods=["GET"]),
        Route("/search", search, methods=["GET"]),
        Route(base, dag_runs, methods=["GET"]),
        Route(base + "/{dag_run_id}", run, methods=["GET"]),
        Route(listing, entries, methods=["GET"]),
        Route(listing + "/{xcom_key:path}", value, methods=["GET"]),
        Route("/static/ui.css", _static("ui.css", "text/css"), methods=["GET"]),
        Route("/static/favicon.svg", _static("favicon.svg", "image/svg+xml"), methods=["GET"]),
        # Browsers ask for it on pages without a <link rel="icon"> (the API's JSON answers).
        Route("/favicon.ico", _static("favicon.svg", "image/svg+xml"), methods=["GET"]),
    ]
