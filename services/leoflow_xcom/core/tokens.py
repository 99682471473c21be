"""Task tokens: HS256 JWTs minted by the control plane, verified by the service.

Claims: dag_id, run_id, task_id, map_index, role ("task" or "control-plane"), iat, exp, plus
the optional run facts logical_date and run_after. Only HS256 is accepted, so `alg: none` and
algorithm-confusion tokens fail. The clock is passed in; nothing here reads time or files.
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Final

import jwt

from leoflow_xcom.core import ids, limits
from leoflow_xcom.core.errors import InvalidRequestError, TokenInvalidError
from leoflow_xcom.core.model import ROLE_CONTROL_PLANE, ROLE_TASK, Claims

ALGORITHM: Final = "HS256"
ISSUER: Final = "leoflow-control-plane"
AUDIENCE: Final = "leoflow-xcom"
MIN_KEY_BYTES: Final = 32  # RFC 7518 3.2: an HS256 key must be at least 256 bits
CLOCK_SKEW_SECONDS: Final = 5


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the signing key must be at least {MIN_KEY_BYTES} bytes")


def mint(
    key: bytes,
    *,
    now: int,
    expires_in: int,
    dag_id: str = "",
    run_id: str = "",
    task_id: str = "",
    map_index: int = limits.UNMAPPED,
    control_plane: bool = False,
    logical_date: str | None = None,
    run_after: str | None = None,
) -> str:
    _check_key(key)
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + expires_in,
        "role": ROLE_CONTROL_PLANE if control_plane else ROLE_TASK,
    }
    if not control_plane:
        payload.update(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index)
    if logical_date is not None:
        payload["logical_date"] = logical_date
    if run_after is not None:
        payload["run_after"] = run_after
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def _claims_from(payload: dict[str, Any]) -> Claims:
    role = payload.get("role")
    if role == ROLE_CONTROL_PLANE:
        return Claims(role=role, expires_at=int(payload["exp"]))
    if role != ROLE_TASK:
        raise TokenInvalidError.because("unknown role")
    fields = {"dag_id": str, "run_id": str, "task_id": str, "map_index": int}
    for name, kind in fields.items():
        value = payload.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or value == "":
            raise TokenInvalidError.because(f"claim {name!r} is missing or malformed")
    # The same rules as a request's ids (and `leoflow-xcom token`): a signed token is no
    # licence to store ids that the key layout, the index or the proxy cannot represent.
    try:
        for name in ("dag_id", "run_id", "task_id"):
            ids.check_id(name, payload[name])
        ids.check_map_index(payload["map_index"])
    except InvalidRequestError as exc:
        raise TokenInvalidError.because(f"claim {exc.message.removeprefix('invalid ')}") from None
    for optional in ("logical_date", "run_after"):
        if optional in payload and not isinstance(payload[optional], str):
            raise TokenInvalidError.because(f"claim {optional!r} is malformed")
        if len(payload.get(optional) or "") > limits.MAX_ID_CHARS:
            raise TokenInvalidError.because(
                f"claim {optional!r} is longer than {limits.MAX_ID_CHARS} characters"
            )
    return Claims(
        role=ROLE_TASK,
        expires_at=int(payload["exp"]),
        dag_id=payload["dag_id"],
        run_id=payload["run_id"],
        task_id=payload["task_id"],
        map_index=payload["map_index"],
        logical_date=payload.get("logical_date"),
        run_after=payload.get("run_after"),
    )


def check_lifetime(seconds: int, max_lifetime: int) -> None:
    if seconds > max_lifetime:
        raise TokenInvalidError.because(
            f"lifetime {seconds} s (exp - iat) exceeds the {max_lifetime} s this service "
            f"accepts (LEOFLOW_XCOM_MAX_TOKEN_LIFETIME); mint a shorter-lived token"
        )


def verify(
    token: str,
    key: bytes,
    *,
    now: int,
    max_lifetime: int = limits.DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
) -> Claims:
    """Check signature, algorithm, issuer, audience, expiry, lifetime and the claims' ids."""
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            # Times are checked below against the injected clock, not PyJWT's own.
            options={
                "require": ["exp", "iat", "iss", "aud"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidAlgorithmError:
        raise TokenInvalidError.because("algorithm not allowed (HS256 only)") from None
    except jwt.InvalidSignatureError:
        raise TokenInvalidError.because("bad signature") from None
    except jwt.PyJWTError as exc:
        raise TokenInvalidError.because(f"malformed ({type(exc).__name__})") from None
    exp, iat = payload["exp"], payload["iat"]
    for name, value in (("exp", exp), ("iat", iat)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TokenInvalidError.because(f"claim {name!r} is malformed")
    if exp + CLOCK_SKEW_SECONDS <= now:
        raise TokenInvalidError.because("expired")
    if iat > now + CLOCK_SKEW_SECONDS:
        raise TokenInvalidError.because("issued in the future (check clocks)")
    check_lifetime(exp - iat, max_lifetime)
    return _claims_from(payload)


class TokenVerifier:
    """Verifies tokens, caching each verified token's claims until it expires.

    The hot path sees the same token on every call of a task; the cache turns the HMAC check
    and JSON parsing into one dict lookup. Only successfully verified tokens are cached, keyed
    by the full token string, and a cached entry is re-checked against the clock on each hit.
    """

    def __init__(
        self,
        key: bytes,
        *,
        max_entries: int = 65_536,
        max_lifetime: int = limits.DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
    ) -> None:
        _check_key(key)
        self._key = key
        self._max_lifetime = max_lifetime
        self._max = max_entries
        self._cache: collections.OrderedDict[str, Claims] = collections.OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str, *, now: int) -> Claims:
        claims = self._cache.get(token)
        if claims is not None:
            if claims.expires_at + CLOCK_SKEW_SECONDS > now:
                return claims
            raise TokenInvalidError.because("expired")
        claims = verify(token, self._key, now=now, max_lifetime=self._max_lifetime)
        with self._lock:
            self._cache[token] = claims
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return claims
