"""HTTP Basic and Bearer authentication, checked in constant time, before any route runs.

Bearer takes the static token (LEOFLOW_UI_TOKEN_FILE) or an access token from `POST
/auth/token` (access_tokens.py). `/health`, `/openapi.json` and the login itself stay open.
A refusal is a 401 with one WWW-Authenticate challenge per accepted scheme, in the
generation's error shape.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from leoflow_xcom.proxy import access_tokens, problems
from leoflow_xcom.settings import SettingsError

REALM = "leoflow-xcom"
LOGIN_PATH = "/auth/token"
OPEN_PATHS = frozenset({"/health", "/openapi.json", LOGIN_PATH})


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """What a caller must present. repr=False: secrets never reach a log line."""

    user: bytes | None = None
    password: bytes | None = None
    token: bytes | None = None
    # Signs and checks the access tokens of `POST /auth/token`; None: no login route.
    access_key: bytes | None = None

    def __post_init__(self) -> None:
        basic = self.user is not None and self.password is not None
        if not basic and self.token is None:
            raise SettingsError(
                "the UI proxy needs credentials: LEOFLOW_UI_USER with LEOFLOW_UI_PASSWORD_FILE "
                "(Basic), or LEOFLOW_UI_TOKEN_FILE (Bearer)"
            )

    def accepts(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            return self._basic(value)
        if scheme.lower() == "bearer":
            return self._bearer(value)
        return False

    @property
    def can_log_in(self) -> bool:
        return self.access_key is not None and self.user is not None and self.password is not None

    def login(self, user: bytes, password: bytes) -> bool:
        """The Basic user and password, as `POST /auth/token` receives them."""
        if self.user is None or self.password is None:
            return False
        # Both comparisons always run: the time taken says nothing about which part was wrong.
        user_ok = hmac.compare_digest(user, self.user)
        password_ok = hmac.compare_digest(password, self.password)
        return user_ok and password_ok

    def _basic(self, value: str) -> bool:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        return self.login(user, password) and bool(sep)

    def _bearer(self, value: str) -> bool:
        if self.token is not None and hmac.compare_digest(value.encode(), self.token):
            return True
        if not self.can_log_in:
            return False
        assert self.access_key is not None and self.user is not None
        return access_tokens.verify(
            self.access_key, value, self.user.decode(), now=int(time.time())
        )


class AuthMiddleware:
    def __init__(self, app: ASGIApp, credentials: Credentials) -> None:
        self._app = app
        self._credentials = credentials
        challenges = []
        if credentials.user is not None:
            challenges.append(f'Basic realm="{REALM}", charset="UTF-8"')
        if credentials.token is not None or credentials.can_log_in:
            challenges.append(f'Bearer realm="{REALM}"')
        self._challenges = [(b"www-authenticate", c.encode()) for c in challenges]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self._app(scope, receive, send)
            return
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
        if self._credentials.accepts(header):
            await self._app(scope, receive, send)
            return
        detail = "Authentication required: send HTTP Basic credentials or a Bearer token."
        response = problems.for_path(scope["path"], 401, detail)
        response.raw_headers.extend(self._challenges)
        await response(scope, receive, send)
