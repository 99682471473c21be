"""`POST /auth/token`: Airflow 3's login, as its simple auth manager answers it.

    JSON {"username", "password"} (or as a form)  201 {"access_token": "<JWT>"}
    an empty username or password                 400 Username and password must be provided
    wrong credentials                             401 Invalid credentials
    another Content-Type                          415 Unsupported Media Type
    not JSON, not an object, fields wrong         422, one item per problem

The credentials are the proxy's Basic user and password; the token (access_tokens.py) is then
accepted as Bearer and expires after LEOFLOW_UI_JWT_EXPIRATION seconds. The only route that is
not a GET: it reads nothing from Redis and writes nothing anywhere. Error bodies never echo the
request (it holds a password).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from leoflow_xcom.proxy import access_tokens
from leoflow_xcom.proxy.auth import Credentials
from leoflow_xcom.proxy.problems import v2_detail

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
FIELDS = ("username", "password")
MAX_BODY_BYTES = 16 * 1024  # a login body is a few dozen bytes


class _TooLargeError(Exception):
    pass


async def _body(request: Request) -> bytes:
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY_BYTES:
            raise _TooLargeError
    return data


def _problem(kind: str, loc: list[str | int], msg: str, **ctx: str) -> dict[str, Any]:
    item: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg}
    if ctx:
        item["ctx"] = ctx
    return item


def _parse_json(raw: bytes) -> tuple[Any, list[dict[str, Any]]]:
    try:
        return json.loads(raw), []
    except (ValueError, RecursionError) as exc:
        pos = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid"
        return None, [_problem("json_invalid", ["body", pos], "JSON decode error", error=reason)]


def _parse_form(raw: bytes) -> dict[str, str]:
    form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: form[name][0] for name in FIELDS if name in form}


def _fields(body: Any) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """pydantic's checks of Airflow's LoginBody (two required strings, nothing else)."""
    if not isinstance(body, dict):
        return {}, [_problem("model_attributes_type", ["body"], "Input should be an object")]
    problems = [
        _problem("extra_forbidden", ["body", name], "Extra inputs are not permitted")
        for name in body
        if name not in FIELDS
    ]
    for name in FIELDS:
        if name not in body:
            problems.append(_problem("missing", ["body", name], "Field required"))
        elif not isinstance(body[name], str):
            problems.append(
                _problem("string_type", ["body", name], "Input should be a valid string")
            )
    return body, problems


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def token_endpoint(
    credentials: Credentials, expires_in: int
) -> Callable[[Request], Awaitable[Response]]:
    assert credentials.access_key is not None
    key = credentials.access_key

    async def create_token(request: Request) -> Response:
        media = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
        if media not in (JSON, FORM):
            return v2_detail(415, "Unsupported Media Type")
        try:
            raw = await _body(request)
        except _TooLargeError:
            return v2_detail(413, f"A login body is at most {MAX_BODY_BYTES} bytes")
        problems: list[dict[str, Any]] = []
        body: Any = _parse_form(raw) if media == FORM else None
        if media == JSON:
            body, problems = _parse_json(raw)
        if not problems:
            body, problems = _fields(body)
        if problems:
            return v2_detail(422, problems)
        user, password = body["username"], body["password"]
        if not user or not password:
            return v2_detail(400, "Username and password must be provided")
        # surrogatepass: a lone surrogate (valid in a JSON string) never matches, never fails.
        if not credentials.login(_utf8(user), _utf8(password)):
            return v2_detail(401, "Invalid credentials")
        token = access_tokens.mint(key, user, now=int(time.time()), expires_in=expires_in)
        return JSONResponse({"access_token": token}, 201)

    return create_token


async def token_without_credentials(request: Request) -> Response:
    """Airflow's `GET /auth/token` issues a token without credentials only when every user is
    an admin; here never."""
    return v2_detail(403, "A token needs credentials: POST /auth/token with username and password")
