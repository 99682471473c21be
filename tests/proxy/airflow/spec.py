"""Airflow's published OpenAPI documents, read out of its own wheels, as body validators.

    v1: apache-airflow 2.10.5, airflow/api_connexion/openapi/v1.yaml (OpenAPI 3.0)
    v2: apache-airflow-core 3.3.2, the generated core API document (OpenAPI 3.1) and the
        simple auth manager's (`/auth/token`)

A body is checked against the schema the operation declares for its status; a status the
operation does not declare (Airflow answers it from a generic handler: 400 in v1, 405, 413)
against the generation's generic error schema. OpenAPI 3.0's `nullable` becomes a JSON Schema
type union, and the date-time formats are checked, so a null or a malformed time fails.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from typing import Any

import httpx
import jsonschema
import yaml

from tests.proxy.airflow.cache import wheel_member

AIRFLOW_2 = ("apache-airflow", "2.10.5")
AIRFLOW_3 = ("apache-airflow-core", "3.3.2")
V1_YAML = "airflow/api_connexion/openapi/v1.yaml"
V2_YAML = "airflow/api_fastapi/core_api/openapi/v2-rest-api-generated.yaml"
LOGIN_YAML = (
    "airflow/api_fastapi/auth/managers/simple/openapi/v2-simple-auth-manager-generated.yaml"
)

_formats = jsonschema.FormatChecker()


@_formats.checks("date-time", raises=ValueError)
@_formats.checks("datetime", raises=ValueError)  # v1.yaml's spelling
def _is_datetime(value: object) -> bool:
    if isinstance(value, str):
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError(f"{value!r} has no UTC offset")
    return True


def _nullable_to_union(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` as JSON Schema: null added to the type."""
    if isinstance(node, list):
        return [_nullable_to_union(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable_to_union(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


# A key may hold slashes; a map index is an integer (Airflow's routers refuse anything else, so
# `.../xcomEntries/dependencies` is an XCom key, never `.../{map_index}/dependencies`).
_PARAMETER_PATTERNS = {"xcom_key": "(.+)", "map_index": r"(-?\d+)"}


@dataclasses.dataclass(frozen=True)
class Spec:
    document: dict[str, Any]
    prefix: str  # prepended to the document's paths (v1.yaml's paths omit /api/v1)
    generic_error: str  # schema name for statuses an operation does not declare
    validation_error: str | None = None  # v2: the 422 schema

    def _operation(self, method: str, path: str) -> dict[str, Any] | None:
        """The operation whose template matches with the most literal text (`.../xcomEntries`
        rather than `.../{map_index}`)."""
        found: list[tuple[int, dict[str, Any]]] = []
        for template, item in self.document["paths"].items():
            pattern = re.sub(
                r"\\\{(\w+)\\\}",
                lambda m: _PARAMETER_PATTERNS.get(m.group(1), "([^/]+)"),
                re.escape(self.prefix + template),
            )
            if re.fullmatch(pattern, path) and method.lower() in item:
                literal = len(re.sub(r"\{\w+\}", "", template))
                found.append((literal, dict(item[method.lower()])))
        return max(found, key=lambda f: f[0])[1] if found else None

    def schema_for(self, method: str, path: str, status: int) -> dict[str, Any]:
        operation = self._operation(method, path)
        responses = operation["responses"] if operation else {}
        response = responses.get(str(status))
        if response is not None and "$ref" in response:
            name = response["$ref"].rsplit("/", 1)[1]
            response = self.document["components"]["responses"][name]
        if response is not None and "content" in response:
            return dict(response["content"]["application/json"]["schema"])
        if operation is None and status < 400:
            raise AssertionError(f"{method} {path}: no such operation in Airflow's document")
        if status == 422 and self.validation_error:
            return {"$ref": f"#/components/schemas/{self.validation_error}"}
        return {"$ref": f"#/components/schemas/{self.generic_error}"}

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        """Raise jsonschema.ValidationError when the body breaks Airflow's contract."""
        schema = self.schema_for(method, path, status)
        root = {**schema, "components": self.document["components"]}
        jsonschema.Draft202012Validator(root, format_checker=_formats).validate(body)


@functools.cache
def _load(project: str, version: str, member: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster
    return dict(yaml.load(wheel_member(project, version, member), Loader=loader))


@functools.cache
def v1() -> Spec:
    document = _nullable_to_union(_load(*AIRFLOW_2, V1_YAML))
    return Spec(document, "/api/v1", "Error")


@functools.cache
def v2() -> Spec:
    return Spec(_load(*AIRFLOW_3, V2_YAML), "", "HTTPExceptionResponse", "HTTPValidationError")


@functools.cache
def login() -> Spec:
    return Spec(_load(*AIRFLOW_3, LOGIN_YAML), "", "HTTPExceptionResponse", "HTTPValidationError")


def for_path(path: str) -> Spec | None:
    if path.startswith("/api/v1/"):
        return v1()
    if path.startswith("/api/v2/"):
        return v2()
    if path.startswith("/auth/"):
        return login()
    return None


def check_response(response: httpx.Response) -> None:
    """An httpx response hook: every 2xx/4xx JSON body of the proxy's Airflow paths must be
    one Airflow's document allows for that operation and status."""
    request = response.request
    spec = for_path(request.url.path)
    if spec is None or request.method == "HEAD" or not (200 <= response.status_code < 500):
        return
    response.read()
    try:
        spec.check(request.method, request.url.path, response.status_code, response.json())
    except jsonschema.ValidationError as exc:
        raise AssertionError(
            f"{request.method} {request.url.path} -> {response.status_code}: the body breaks "
            f"Airflow's OpenAPI: {exc.message} at {list(exc.absolute_path)}\n{response.text[:500]}"
        ) from None
