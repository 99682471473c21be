"""The OpenAPI 3 document of this proxy (served at /openapi.json, checked by schemathesis).

It describes what the proxy really answers, per generation: field names and types, parameter
bounds, and every status a client can get (401 without credentials, 404, 400/422 for bad
parameters, 503 when Redis cannot answer).
"""

from __future__ import annotations

from typing import Any, Final

from leoflow_xcom import __version__
from leoflow_xcom.proxy import v1, v2

_STR = {"type": "string"}
_INT = {"type": "integer"}
_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": "string", "format": "date-time", "nullable": True}
_STR_OR_NULL = {"type": "string", "nullable": True}
_PROBLEM = "application/problem+json"
_JSON = "application/json"


def _object(props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _response(description: str, schema: str, media: str = _JSON, **headers: str) -> Any:
    out: dict[str, Any] = {"description": description, "content": {media: {"schema": _ref(schema)}}}
    if headers:
        out["headers"] = {h: {"schema": _STR, "description": d} for h, d in headers.items()}
    return out


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_V1_ITEM = {
    "key": _STR,
    "timestamp": _TIME,
    "execution_date": _TIME,  # the run's first push time when no logical date was recorded
    "map_index": _INT,
    "task_id": _STR,
    "dag_id": _STR,
}
_V2_ITEM = {
    "key": _STR,
    "timestamp": _TIME,
    "logical_date": _TIME_OR_NULL,
    "map_index": _INT,
    "task_id": _STR,
    "dag_id": _STR,
    "run_id": _STR,
    "dag_display_name": _STR,
    "task_display_name": _STR,
    "run_after": _TIME,  # the run's first push time when none was recorded
}
_ANY = {"description": "the XCom value: JSON, or its Python str() when stringify is true"}

_SCHEMAS = {
    "V1XComCollectionItem": _object(_V1_ITEM),
    "V1XCom": _object({**_V1_ITEM, "value": _ANY}),
    "V1XComCollection": _object(
        {
            "xcom_entries": {"type": "array", "items": _ref("V1XComCollectionItem")},
            "total_entries": _INT,
        }
    ),
    "V1Error": _object({"detail": _STR_OR_NULL, "status": _INT, "title": _STR, "type": _STR}),
    "V2XComResponse": _object(_V2_ITEM),
    "V2XComResponseWithValue": _object({**_V2_ITEM, "value": _ANY}),
    "V2XComCollectionResponse": _object(
        {"xcom_entries": {"type": "array", "items": _ref("V2XComResponse")}, "total_entries": _INT}
    ),
    "V2HTTPError": _object({"detail": _STR}),
    "V2ValidationError": _object(
        {
            "detail": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "type": _STR,
                        "loc": {"type": "array", "items": {"oneOf": [_STR, _INT]}},
                        "msg": _STR,
                        "input": {},
                        "ctx": {"type": "object"},
                    },
                    "required": ["type", "loc", "msg", "input"],
                },
            }
        }
    ),
    "LoginBody": {
        "type": "object",
        "properties": {"username": {**_STR, "minLength": 1}, "password": {**_STR, "minLength": 1}},
        "required": ["username", "password"],
        "additionalProperties": False,
    },
    "LoginResponse": _object({"access_token": _STR}),
    "LoginValidationError": _object(
        {
            "detail": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "type": _STR,
                        "loc": {"type": "array", "items": {"oneOf": [_STR, _INT]}},
                        "msg": _STR,
                        "ctx": {"type": "object"},
                    },
                    "required": ["type", "loc", "msg"],
                },
            }
        }
    ),
    "Health": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["healthy", "warning", "unhealthy"]},
            "redis": {"type": "string", "enum": ["reachable", "unreachable"]},
            "memory_ratio": {"type": "number"},
            "detail": _STR,
        },
        "required": ["status", "redis"],
    },
}

_PATH_PARAMS = [
    {"name": n, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    for n in ("dag_id", "dag_run_id", "task_id")
]
_KEY_PARAM = {
    "name": "xcom_key",
    "in": "path",
    "required": True,
    "description": "may contain '/'",
    "schema": {"type": "string", "minLength": 1},
}
_WILDCARD = "`~` as dag_id, dag_run_id or task_id matches all."


def _v1_errors(*statuses: int) -> dict[str, Any]:
    text = {400: "bad parameter", 404: "not found", 503: "Redis cannot answer"}
    out = {str(s): _response(text[s], "V1Error", _PROBLEM) for s in statuses}
    out["401"] = _response(
        "no or bad credentials", "V1Error", _PROBLEM, **{"WWW-Authenticate": "challenges"}
    )
    return out


def _v2_errors(*statuses: int) -> dict[str, Any]:
    text = {404: "not found", 503: "Redis cannot answer"}
    out = {str(s): _response(text[s], "V2HTTPError") for s in statuses}
    out["401"] = _response(
        "no or bad credentials", "V2HTTPError", **{"WWW-Authenticate": "challenges"}
    )
    out["422"] = _response("bad parameter", "V2ValidationError")
    return out


_V1 = {
    f"/api/v1{v1.BASE}": {
        "get": {
            "operationId": "v1_get_xcom_entries",
            "summary": "List XCom entries (Airflow 2 shape; never values). " + _WILDCARD,
            "parameters": [
                *_PATH_PARAMS,
                _query("map_index", _INT, "filter by map index"),
                _query("xcom_key", _STR, "filter by key"),
                _query(
                    "limit",
                    {"type": "integer", "minimum": 0, "default": v1.PAGE_LIMIT},
                    "page size; 0 and values over 100 give 100",
                ),
                _query(
                    "offset", {"type": "integer", "minimum": 0, "default": 0}, "entries to skip"
                ),
            ],
            "responses": {
                "200": _response("a page", "V1XComCollection"),
                **_v1_errors(400, 404, 503),
            },
        }
    },
    f"/api/v1{v1.BASE}/{{xcom_key}}": {
        "get": {
            "operationId": "v1_get_xcom_entry",
            "summary": "One XCom entry with its value (Airflow 2 shape)",
            "parameters": [
                *_PATH_PARAMS,
                _KEY_PARAM,
                _query("map_index", {"type": "integer", "default": -1}, "map index"),
                _query(
                    "deserialize",
                    {"type": "boolean", "default": False},
                    "accepted; values are plain JSON",
                ),
                _query("stringify", {"type": "boolean", "default": True}, "value as Python str()"),
            ],
            "responses": {"200": _response("the entry", "V1XCom"), **_v1_errors(400, 404, 503)},
        }
    },
}

_V2 = {
    f"/api/v2{v2.BASE}": {
        "get": {
            "operationId": "v2_get_xcom_entries",
            "summary": "List XCom entries (Airflow 3 shape; never values). " + _WILDCARD,
            "parameters": [
                *_PATH_PARAMS,
                _query("map_index", {"type": "integer", "minimum": -1}, "filter by map index"),
                _query("xcom_key", _STR, "filter by key"),
                _query(
                    "limit",
                    {"type": "integer", "minimum": 0, "default": v2.DEFAULT_LIMIT},
                    "page size; over 100 gives 100",
                ),
                _query(
                    "offset", {"type": "integer", "minimum": 0, "default": 0}, "entries to skip"
                ),
            ],
            "responses": {
                "200": _response("a page", "V2XComCollectionResponse"),
                **_v2_errors(404, 503),
            },
        }
    },
    f"/api/v2{v2.BASE}/{{xcom_key}}": {
        "get": {
            "operationId": "v2_get_xcom_entry",
            "summary": "One XCom entry with its value (Airflow 3 shape)",
            "parameters": [
                *_PATH_PARAMS,
                _KEY_PARAM,
                _query("map_index", {"type": "integer", "minimum": -1, "default": -1}, "map index"),
                _query(
                    "deserialize",
                    {"type": "boolean", "default": False},
                    "accepted; values are plain JSON",
                ),
                _query("stringify", {"type": "boolean", "default": False}, "value as Python str()"),
            ],
            "responses": {
                "200": _response("the entry", "V2XComResponseWithValue"),
                **_v2_errors(404, 503),
            },
        }
    },
}

DOCUMENT: Final[dict[str, Any]] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Leoflow XCom UI proxy",
        "version": __version__,
        "description": "Read-only, Airflow-compatible XCom REST API over Redis. Every method "
        "but GET/HEAD answers 405.",
    },
    "paths": {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Liveness and Redis reachability (no credentials needed)",
                "security": [],
                "responses": {
                    "200": _response("healthy", "Health"),
                    "503": _response("Redis unreachable", "Health"),
                },
            }
        },
        **_V1,
        **_V2,
        "/auth/token": {
            "post": {
                "operationId": "create_token",
                "summary": "Airflow 3's login: the Basic user and password give an expiring "
                "read-only Bearer token (no credentials needed to call it)",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {
                        _JSON: {"schema": _ref("LoginBody")},
                        "application/x-www-form-urlencoded": {"schema": _ref("LoginBody")},
                    },
                },
                "responses": {
                    "201": _response("the access token", "LoginResponse"),
                    "400": _response("empty username or password", "V2HTTPError"),
                    "401": _response("wrong credentials", "V2HTTPError"),
                    "413": _response("body too large", "V2HTTPError"),
                    "415": _response("not JSON or a form", "V2HTTPError"),
                    "422": _response("malformed body", "LoginValidationError"),
                },
            },
            "get": {
                "operationId": "create_token_without_credentials",
                "summary": "Airflow's token without credentials (all-admins mode): never here",
                "security": [],
                "responses": {"403": _response("credentials needed", "V2HTTPError")},
            },
        },
    },
    "components": {
        "schemas": _SCHEMAS,
        "securitySchemes": {
            "basicAuth": {"type": "http", "scheme": "basic"},
            "bearerAuth": {"type": "http", "scheme": "bearer"},
        },
    },
    "security": [{"basicAuth": []}, {"bearerAuth": []}],
}
