"""Claims the service refuses even under a valid signature: ids and map indexes the CLI would
never mint, and lifetimes beyond the operator's bound. Each is refused with TOKEN_INVALID and a
message saying which claim and why, before anything is stored."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from leoflow_xcom.client import TokenInvalidError
from leoflow_xcom.core import keys, limits, tokens
from leoflow_xcom.settings import ServeSettings
from tests.fixture_types import ClientFor, Mint

CLI = str(Path(sys.executable).parent / "leoflow-xcom")

BAD_CLAIMS = [
    ({"map_index": 2**31}, "map_index"),
    ({"map_index": -(10**12)}, "map_index"),
    ({"run_id": "r" * 10_000}, "run_id"),
    ({"run_id": "run\x00one"}, "run_id"),
    ({"task_id": "t" * (limits.MAX_ID_CHARS + 1)}, "task_id"),
]


@pytest.mark.parametrize(("claims", "field"), BAD_CLAIMS, ids=[f for _, f in BAD_CLAIMS])
def test_out_of_range_claims_are_token_invalid(
    client_for: ClientFor, mint: Mint, r: redis.Redis, claims: dict[str, object], field: str
) -> None:
    token = mint(**{"task_id": "a", **claims})
    with pytest.raises(TokenInvalidError) as info:
        client_for(token=token).push("k", 1)
    print(f"\n{field}: {info.value.message[:160]}")
    assert f"claim {field}" in info.value.message
    assert len(info.value.message) < 600  # the 10,000-char id is not echoed back
    # Nothing was stored under the bad claims.
    assert not r.keys(keys.run_keys("test_dag", str(claims.get("run_id", "run_1"))).tag + "*")


def test_lifetime_beyond_the_bound_is_refused(client_for: ClientFor, mint: Mint) -> None:
    week = limits.DEFAULT_MAX_TOKEN_LIFETIME_SECONDS
    assert client_for(token=mint(task_id="a", expires_in=week)).push("k", 1).size_bytes == 1
    with pytest.raises(TokenInvalidError, match="LEOFLOW_XCOM_MAX_TOKEN_LIFETIME"):
        client_for(token=mint(task_id="a", expires_in=week + 1)).push("k", 1)
    with pytest.raises(TokenInvalidError, match="lifetime"):
        client_for(token=mint(task_id="a", expires_in=5000 * 7 * 86400)).push("k", 1)


def test_the_operator_sets_the_bound(signing_key_file: Path) -> None:
    serve = ServeSettings(signing_key_file=signing_key_file, max_token_lifetime="12h")
    assert serve.max_token_lifetime == 12 * 3600
    key = b"k" * 32
    token = tokens.mint(
        key, now=int(time.time()), expires_in=13 * 3600, dag_id="d", run_id="r", task_id="t"
    )
    verifier = tokens.TokenVerifier(key, max_lifetime=serve.max_token_lifetime)
    with pytest.raises(TokenInvalidError, match="46800 s"):
        verifier.verify(token, now=int(time.time()))
    with pytest.raises(ValueError, match="LEOFLOW_XCOM_MAX_TOKEN_LIFETIME"):
        ServeSettings(signing_key_file=signing_key_file, max_token_lifetime="5000w")


def test_the_cli_refuses_to_mint_what_the_service_would_refuse(signing_key_file: Path) -> None:
    env = {"LEOFLOW_XCOM_SIGNING_KEY_FILE": str(signing_key_file), "PATH": "/usr/bin:/bin"}
    base = ["token", "--dag", "d", "--run", "r", "--task", "t"]
    # Exit codes: 1 for a setting the command refuses, 5 for an invalid request (README's CLI).
    for extra, why, code in (
        (["--expires-in", "5000w"], "LEOFLOW_XCOM_MAX_TOKEN_LIFETIME", 1),
        (["--map-index", str(2**31)], "map_index", 5),
        (["--map-index", str(-(10**12))], "map_index", 5),
    ):
        out = subprocess.run(
            [CLI, *base, *extra], env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == code and why in out.stderr, out.stderr
    out = subprocess.run(
        [CLI, *base, "--expires-in", "7d"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
