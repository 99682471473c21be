"""Token attacks over the real gRPC service: a token signed with an attacker's RSA key
(`alg` confusion), and a valid token replayed into another run through the request body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.client import NO_RETRY, TokenInvalidError, XComClient, XComForbiddenError
from leoflow_xcom.core import keys, tokens
from tests.fixture_types import ClientFor


def _claims() -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": tokens.ISSUER,
        "aud": tokens.AUDIENCE,
        "iat": now,
        "exp": now + 60,
        "role": "task",
        "dag_id": "test_dag",
        "run_id": "run_1",
        "task_id": "b",
        "map_index": -1,
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_by_hand(claims: dict[str, object], key: bytes) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def test_rs256_and_public_key_as_hmac_secret_are_refused(target: str) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    rs256 = jwt.encode(_claims(), private, algorithm="RS256")
    # The classic confusion: HS256 keyed with a public key the attacker knows. Our key is a
    # random secret, not a public key, so the signature cannot match.
    # (PyJWT refuses to sign that, so it is forged by hand.)
    confused = _hs256_by_hand(_claims(), public_pem)
    for token, why in ((rs256, "algorithm not allowed"), (confused, "bad signature")):
        with XComClient(target, token, retry=NO_RETRY) as client:
            with pytest.raises(TokenInvalidError, match=why):
                client.push("k", 1)


def test_a_run_a_token_cannot_push_into_run_b_through_the_body(
    client_for: ClientFor, r: redis.Redis
) -> None:
    client = client_for(task_id="b", run_id="run_1")
    for body in (
        pb.PushXComRequest(key="k", value=b"1", run_id="run_2"),
        pb.PushXComRequest(key="k", value=b"1", dag_id="other_dag"),
        pb.PushXComRequest(key="k", value=b"1", task_id="a"),
        pb.PushXComRequest(key="k", value=b"1", map_index=3),
    ):
        with pytest.raises(XComForbiddenError):
            client._call(client._stub.PushXCom, body, None)
    assert not r.keys(keys.run_keys("test_dag", "run_2").tag.replace("{", "\\{") + "*")
    assert not r.exists(keys.run_keys("test_dag", "run_1").value(keys.member("b", -1, "k")))


def test_a_run_a_token_cannot_fetch_or_list_run_b(
    client_for: ClientFor,
) -> None:
    client_for(task_id="a", run_id="run_2").push("typed", {"rows": 1})
    reader = client_for(task_id="b", run_id="run_1")
    with pytest.raises(XComForbiddenError):
        reader._call(
            reader._stub.FetchXCom,
            pb.FetchXComRequest(task_id="a", key="typed", run_id="run_2", dag_id="test_dag"),
            None,
        )
    with pytest.raises(XComForbiddenError):
        reader._call(reader._stub.ListXComs, pb.ListXComsRequest(run_id="run_2"), None)
