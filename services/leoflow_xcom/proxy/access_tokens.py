"""The proxy's access tokens: what `POST /auth/token` issues (Airflow 3's login) and what
Bearer authentication then accepts. HS256 JWTs signed with the proxy's own key, never the
service's task-token key, with their own audience so neither kind is taken for the other.

They grant reading through this proxy and nothing else (the proxy can only read), name the
user they were issued to (a token outlives neither a rename of LEOFLOW_UI_USER nor a new key)
and expire. The clock is passed in; nothing here reads time or files.
"""

from __future__ import annotations

import secrets
from typing import Final

import jwt

from leoflow_xcom.core.tokens import CLOCK_SKEW_SECONDS, MIN_KEY_BYTES

ALGORITHM: Final = "HS256"
AUDIENCE: Final = "leoflow-xcom-ui"
SCOPE: Final = "read"


def check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the proxy's token key must be at least {MIN_KEY_BYTES} bytes")


def mint(key: bytes, user: str, *, now: int, expires_in: int) -> str:
    check_key(key)
    payload = {
        "sub": user,
        "aud": AUDIENCE,
        "scope": SCOPE,
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def verify(key: bytes, token: str, user: str, *, now: int) -> bool:
    """True for an unexpired token this key signed for `user` with the read scope."""
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            # Times are checked below against the injected clock, not PyJWT's own.
            options={
                "require": ["sub", "aud", "iat", "exp"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError:
        return False
    exp, iat = payload.get("exp"), payload.get("iat")
    if not isinstance(exp, int) or not isinstance(iat, int):
        return False
    if not iat - CLOCK_SKEW_SECONDS <= now < exp:  # replicas' clocks may differ a little
        return False
    return payload.get("scope") == SCOPE and payload.get("sub") == user
