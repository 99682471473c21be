"""Airflow 3's login, `POST /auth/token`, on the real proxy: the simple auth manager's
statuses and bodies, tokens accepted as Bearer until they expire, and no Redis write."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
import redis

from leoflow_xcom.proxy import access_tokens
from tests.deployment import Deployment
from tests.fixture_types import Mint
from tests.proxy.conftest import Proxy, start_proxy, stop_proxy

LOGIN = "/auth/token"
V1 = "/api/v1/dags/~/dagRuns/~/taskInstances/~/xcomEntries"
V2 = "/api/v2/dags/~/dagRuns/~/taskInstances/~/xcomEntries"


@pytest.fixture
def anon(proxy: Proxy, r: redis.Redis) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_issues_a_token_that_reads_both_generations(
    proxy: Proxy, anon: httpx.Client, r: redis.Redis
) -> None:
    before = sorted(r.keys("*"))
    resp = anon.post(LOGIN, json={"username": proxy.user, "password": proxy.password})
    assert resp.status_code == 201, resp.text
    assert set(resp.json()) == {"access_token"}
    assert resp.headers["content-type"] == "application/json"
    token = resp.json()["access_token"]
    for path in (V1, V2, "/metrics"):
        assert anon.get(path, headers=bearer(token)).status_code == 200, path
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 86_400  # the default lifetime: a day, as Airflow
    assert (claims["sub"], claims["scope"]) == (proxy.user, "read")
    # The form body Airflow also accepts.
    form = anon.post(LOGIN, data={"username": proxy.user, "password": proxy.password})
    assert form.status_code == 201
    assert sorted(r.keys("*")) == before  # nothing written


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"username": "admin", "password": "wrong"}, 401, "Invalid credentials"),
        ({"username": "someone", "password": "x"}, 401, "Invalid credentials"),
        ({"username": "", "password": "x"}, 400, "Username and password must be provided"),
        ({"username": "admin", "password": ""}, 400, "Username and password must be provided"),
        ('{"username": "admin", "password": "\\ud800"}', 401, "Invalid credentials"),
    ],
)
def test_refusals_in_airflows_words(
    anon: httpx.Client, body: dict[str, str] | str, status: int, detail: str
) -> None:
    # A str is sent as it is: a lone surrogate escape that httpx could not encode itself.
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    resp = anon.post(LOGIN, content=content, headers={"Content-Type": "application/json"})
    assert (resp.status_code, resp.json()) == (status, {"detail": detail})
    assert "www-authenticate" not in resp.headers


@pytest.mark.parametrize(
    ("content", "problems"),
    [
        (b"{", [("json_invalid", ["body", 1])]),
        (b"[]", [("model_attributes_type", ["body"])]),
        (b'{"username": "admin"}', [("missing", ["body", "password"])]),
        (
            b'{"username": 1, "password": "x", "role": "admin"}',
            [("extra_forbidden", ["body", "role"]), ("string_type", ["body", "username"])],
        ),
    ],
)
def test_malformed_bodies_are_422_without_echoing_them(
    anon: httpx.Client, content: bytes, problems: list[tuple[str, list[str | int]]]
) -> None:
    resp = anon.post(LOGIN, content=content, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert [(p["type"], p["loc"]) for p in detail] == problems
    assert all("input" not in p for p in detail)


def test_other_media_methods_and_sizes(anon: httpx.Client) -> None:
    text = anon.post(LOGIN, content=b"admin:x", headers={"Content-Type": "text/plain"})
    assert (text.status_code, text.json()) == (415, {"detail": "Unsupported Media Type"})
    huge = anon.post(LOGIN, json={"username": "a", "password": "x" * 20_000})
    assert huge.status_code == 413
    assert anon.get(LOGIN).status_code == 403  # Airflow's "all admins" GET: never here
    put = anon.put(LOGIN, json={})
    assert (put.status_code, put.headers["allow"]) == (405, "GET, POST")
    # Everything else stays read-only, with or without a login token.
    assert anon.post(V2, json={}).status_code == 405


def unsigned(token: str) -> str:
    """The same claims with `alg: none` and no signature."""
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return f"{header}.{token.split('.')[1]}."


def test_only_live_tokens_of_this_proxy_for_this_user_are_accepted(
    proxy: Proxy, anon: httpx.Client, mint: Mint
) -> None:
    key = proxy.jwt_key.encode()
    now = int(time.time())
    good = access_tokens.mint(key, proxy.user, now=now, expires_in=60)
    assert anon.get(V2, headers=bearer(good)).status_code == 200
    refused = {
        "expired": access_tokens.mint(key, proxy.user, now=now - 120, expires_in=60),
        "other user": access_tokens.mint(key, "mallory", now=now, expires_in=60),
        "other key": access_tokens.mint(b"k" * 48, proxy.user, now=now, expires_in=60),
        "task token": mint(),  # the service's key and audience
        "alg none": unsigned(good),
        "garbage": "not.a.jwt",
    }
    for name, token in refused.items():
        resp = anon.get(V2, headers=bearer(token))
        assert resp.status_code == 401, name
        assert resp.json() == {
            "detail": "Authentication required: send HTTP Basic credentials or a Bearer token."
        }


@pytest.mark.timeout(120)
def test_token_lifetime_is_configurable(redis_deployment: Deployment, tmp_path: Path) -> None:
    started = start_proxy(redis_deployment, tmp_path, LEOFLOW_UI_JWT_EXPIRATION="60")
    try:
        with httpx.Client(base_url=started.url, timeout=10) as client:
            body = {"username": started.user, "password": started.password}
            token = client.post(LOGIN, json=body).json()["access_token"]
    finally:
        stop_proxy(started)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60
