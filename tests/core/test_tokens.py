from __future__ import annotations

import base64
import json

import jwt
import pytest

from leoflow_xcom.core import tokens
from leoflow_xcom.core.errors import TokenInvalidError

KEY = b"k" * 32
NOW = 1_800_000_000


def task_token(**kw: object) -> str:
    args: dict[str, object] = dict(now=NOW, expires_in=60, dag_id="d", run_id="r", task_id="t")
    args.update(kw)
    return tokens.mint(KEY, **args)  # type: ignore[arg-type]


def test_round_trip_carries_identity() -> None:
    claims = tokens.verify(
        task_token(map_index=3, logical_date="2026-11-26T00:00:00Z"), KEY, now=NOW
    )
    assert (claims.dag_id, claims.run_id, claims.task_id, claims.map_index) == ("d", "r", "t", 3)
    assert claims.logical_date == "2026-11-26T00:00:00Z"
    assert not claims.is_control_plane


def test_control_plane_token_has_no_task_identity() -> None:
    claims = tokens.verify(
        tokens.mint(KEY, now=NOW, expires_in=60, control_plane=True), KEY, now=NOW
    )
    assert claims.is_control_plane and claims.task_id == ""


def test_expired_tokens_are_refused() -> None:
    token = task_token(expires_in=60)
    tokens.verify(token, KEY, now=NOW + 60)  # within the clock-skew allowance
    with pytest.raises(TokenInvalidError, match="expired"):
        tokens.verify(token, KEY, now=NOW + 60 + tokens.CLOCK_SKEW_SECONDS)


def test_tampered_claims_break_the_signature() -> None:
    header, payload, sig = task_token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["run_id"] = "someone-elses-run"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenInvalidError, match="bad signature"):
        tokens.verify(f"{header}.{forged}.{sig}", KEY, now=NOW)


def test_wrong_key_is_refused() -> None:
    with pytest.raises(TokenInvalidError, match="bad signature"):
        tokens.verify(task_token(), b"x" * 32, now=NOW)


def test_alg_none_and_other_algorithms_are_refused() -> None:
    payload = {
        "iss": tokens.ISSUER,
        "aud": tokens.AUDIENCE,
        "iat": NOW,
        "exp": NOW + 60,
        "role": "task",
        "dag_id": "d",
        "run_id": "r",
        "task_id": "t",
        "map_index": -1,
    }
    unsigned = jwt.encode(payload, "", algorithm="none")
    with pytest.raises(TokenInvalidError, match="algorithm not allowed"):
        tokens.verify(unsigned, KEY, now=NOW)
    hs512 = jwt.encode(payload, KEY * 2, algorithm="HS512")
    with pytest.raises(TokenInvalidError, match="algorithm not allowed"):
        tokens.verify(hs512, KEY, now=NOW)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x"])
def test_garbage_is_refused_without_echoing_it(garbage: str) -> None:
    with pytest.raises(TokenInvalidError) as info:
        tokens.verify(garbage, KEY, now=NOW)
    assert garbage not in info.value.message or garbage == ""


def test_missing_identity_claims_are_refused() -> None:
    token = jwt.encode(
        {
            "iss": tokens.ISSUER,
            "aud": tokens.AUDIENCE,
            "iat": NOW,
            "exp": NOW + 60,
            "role": "task",
            "dag_id": "d",
        },
        KEY,
        algorithm="HS256",
    )
    with pytest.raises(TokenInvalidError, match="'run_id' is missing"):
        tokens.verify(token, KEY, now=NOW)


def test_verifier_caches_but_still_enforces_expiry() -> None:
    verifier = tokens.TokenVerifier(KEY)
    token = task_token(expires_in=10)
    assert verifier.verify(token, now=NOW).task_id == "t"
    assert verifier.verify(token, now=NOW + 1).task_id == "t"
    with pytest.raises(TokenInvalidError, match="expired"):
        verifier.verify(token, now=NOW + 10 + tokens.CLOCK_SKEW_SECONDS)


def test_short_signing_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        tokens.TokenVerifier(b"short")
