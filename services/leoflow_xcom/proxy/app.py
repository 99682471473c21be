"""The read-only UI proxy: one Starlette app, one mounted app per Airflow API generation.

    SecurityHeaders      nosniff and no-store on every response, errors included
    ReadOnlyMiddleware   405 for every method but GET/HEAD, on every path
    AuthMiddleware       Basic or Bearer, constant-time; /health, /openapi.json, /auth/token open
    /api/v1              Airflow 2 shapes (v1.py)
    /api/v2              Airflow 3 shapes (v2.py)
    /auth/token          Airflow 3's login: an expiring read-only access token (login.py)
    /health              liveness, Redis reachability and the memory warning
    /metrics             Prometheus (behind the same auth as the API; telemetry.py)
    /openapi.json        this proxy's own API
    /, /dags/…, /search  the XCom browser: server-rendered, read-only pages (ui/pages.py)

gunicorn builds it once per worker through `from_env()`; tests and tools call `create_app`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from leoflow_xcom.core.errors import XComError
from leoflow_xcom.proxy import login, openapi, problems, v1, v2
from leoflow_xcom.proxy.auth import LOGIN_PATH, AuthMiddleware, Credentials
from leoflow_xcom.proxy.browse import Browser
from leoflow_xcom.proxy.headers import SecurityHeadersMiddleware
from leoflow_xcom.proxy.problems import V1_PREFIX, V2_PREFIX
from leoflow_xcom.proxy.readonly import ReadOnlyMiddleware
from leoflow_xcom.proxy.startup import check_store
from leoflow_xcom.proxy.telemetry import METRICS_PREFIX, TelemetryMiddleware, metrics_endpoint
from leoflow_xcom.proxy.ui import pages
from leoflow_xcom.proxy.ui.catalog import Catalog
from leoflow_xcom.settings import RedisSettings, UiSettings
from leoflow_xcom.store.connection import connect
from leoflow_xcom.store.stats import read_stats
from leoflow_xcom.telemetry import logs
from leoflow_xcom.telemetry.metrics import CallMetrics, StoreCollector


def credentials(settings: UiSettings) -> Credentials:
    password = settings.password()
    token = settings.token()
    return Credentials(
        user=settings.user.encode() if settings.user and password else None,
        password=password.get_secret_value().encode() if password and settings.user else None,
        token=token.get_secret_value().encode() if token else None,
        access_key=settings.jwt_key(),
    )


def create_app(settings: UiSettings, redis_settings: RedisSettings) -> Starlette:
    client = connect(settings.redis(redis_settings))
    browser = Browser(client)
    allowed = credentials(settings)

    registry = CollectorRegistry()
    metrics = CallMetrics(registry, METRICS_PREFIX, ("route", "status"))
    store = StoreCollector(client, settings.memory_warn_ratio)

    def health(request: Request) -> Response:
        try:
            stats = read_stats(client)
        except XComError as exc:
            return JSONResponse(
                {"status": "unhealthy", "redis": "unreachable", "detail": exc.message}, 503
            )
        # Still 200 when warning: the proxy serves reads, and a full Redis does not stop them.
        warning = stats.memory_warning(settings.memory_warn_ratio)
        return JSONResponse(
            {
                "status": "warning" if warning else "healthy",
                "redis": "reachable",
                "memory_ratio": round(stats.memory_ratio, 4),
            }
        )

    def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi.DOCUMENT)

    async def not_found(request: Request, exc: Exception) -> Response:
        # Also reached under /api/v1 when the mount cannot match (e.g. a newline in the path).
        return problems.not_found(request.scope["path"])

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/metrics", metrics_endpoint(registry, store), methods=["GET"]),
            Mount(V1_PREFIX, app=v1.create(browser)),
            Mount(V2_PREFIX, app=v2.create(browser)),
            *login_routes(allowed, settings.jwt_expiration),
            *pages.routes(browser, Catalog(client)),
        ],
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(TelemetryMiddleware, metrics=metrics),
            Middleware(ReadOnlyMiddleware, login_path=LOGIN_PATH if allowed.can_log_in else None),
            Middleware(AuthMiddleware, credentials=allowed),
        ],
        # Unhandled exceptions: a 500 from SecurityHeadersMiddleware (headers.py), then logged.
        exception_handlers={404: not_found},
    )


def login_routes(allowed: Credentials, expires_in: int) -> list[Route]:
    """`/auth/token` only with a token key and a Basic user to log in as."""
    if not allowed.can_log_in:
        return []
    return [
        Route(LOGIN_PATH, login.token_endpoint(allowed, expires_in), methods=["POST"]),
        Route(LOGIN_PATH, login.token_without_credentials, methods=["GET"]),
    ]


def from_env() -> Starlette:
    """gunicorn's app factory (`leoflow_xcom.proxy.app:from_env()`): settings read once here."""
    # gunicorn replaced the CLI process, so logging is set up again here, per worker.
    logs.configure(logs.level_from_env(), logs.wants_json(logs.format_from_env()))
    settings, redis_settings = UiSettings(), RedisSettings()
    check_store(settings, redis_settings)
    return create_app(settings, redis_settings)
