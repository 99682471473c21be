"""Who may push and fetch what: token identity, same run, declared dependencies."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from leoflow_xcom._proto import xcom_pb2 as pb
from leoflow_xcom.client import (
    NO_RETRY,
    DagNotRegisteredError,
    TaskNotDeclaredError,
    TokenInvalidError,
    XComClient,
    XComForbiddenError,
)
from leoflow_xcom.core import tokens
from tests.fixture_types import ClientFor, Mint


@pytest.fixture
def seeded(client_for: ClientFor) -> None:
    client_for(task_id="a").push("typed", {"rows": 1})
    client_for(task_id="other").push("k", "secret")
    client_for(run_id="run_2", task_id="a").push("typed", {"rows": 2})


def test_a_dependency_in_the_same_run_can_be_read(seeded: None, client_for: ClientFor) -> None:
    assert client_for(task_id="b").pull("a", "typed") == {"rows": 1}
    assert client_for(run_id="run_2", task_id="b").pull("a", "typed") == {"rows": 2}
    assert client_for(task_id="other").pull("other", "k") == "secret"  # its own output


def test_an_undeclared_task_cannot_be_read(seeded: None, client_for: ClientFor) -> None:
    with pytest.raises(XComForbiddenError, match="depends_on") as info:
        client_for(task_id="b").pull("other", "k")
    assert info.value.metadata == {"task_id": "other"}


def test_another_run_cannot_be_read(
    seeded: None, client_for: ClientFor, target: str, mint: Mint
) -> None:
    client = client_for(task_id="b")
    with pytest.raises(XComForbiddenError, match="own DAG run"):
        client._call(
            client._stub.FetchXCom,
            pb.FetchXComRequest(task_id="a", key="typed", run_id="run_2"),
            None,
        )


def test_another_dag_cannot_be_read(seeded: None, client_for: ClientFor) -> None:
    client = client_for("etl_daily", "run_1", "load")
    with pytest.raises(XComForbiddenError):
        client._call(
            client._stub.FetchXCom,
            pb.FetchXComRequest(task_id="a", key="typed", dag_id="test_dag"),
            None,
        )
    # Without body ids, the token's own DAG is used: test_dag's data is simply not there.
    with pytest.raises(XComForbiddenError):
        client.pull("a", "typed")


def test_a_task_can_push_only_as_itself(client_for: ClientFor) -> None:
    client = client_for(task_id="b")
    for field, value in (
        ("task_id", "a"),
        ("run_id", "run_2"),
        ("dag_id", "etl_daily"),
        ("map_index", 4),
    ):
        request = pb.PushXComRequest(key="k", value=b"1")
        setattr(request, field, value)
        with pytest.raises(XComForbiddenError, match="only as itself"):
            client._call(client._stub.PushXCom, request, None)
    matching = pb.PushXComRequest(key="k", value=b"1", task_id="b", run_id="run_1")
    client._call(client._stub.PushXCom, matching, None)


def test_unregistered_dag_and_undeclared_task(client_for: ClientFor) -> None:
    with pytest.raises(DagNotRegisteredError, match="dags apply"):
        client_for("no_such_dag", "r", "t").push("k", 1)
    with pytest.raises(TaskNotDeclaredError, match="not declared"):
        client_for("test_dag", "r", "ghost").push("k", 1)
    with pytest.raises(TaskNotDeclaredError):
        client_for("test_dag", "r", "ghost").pull("a", "k")


def _client(target: str, token: str) -> XComClient:
    return XComClient(target, token, retry=NO_RETRY)


def test_missing_expired_tampered_and_alg_none_tokens_are_unauthenticated(
    target: str, mint: Mint, signing_key: bytes
) -> None:
    now = int(time.time())
    header, payload, sig = mint(task_id="b").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["task_id"] = "a"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    unsigned = jwt.encode(claims, "", algorithm="none")
    expired = tokens.mint(
        signing_key, now=now - 3600, expires_in=60, dag_id="test_dag", run_id="run_1", task_id="b"
    )
    wrong_key = tokens.mint(
        b"w" * 32, now=now, expires_in=60, dag_id="test_dag", run_id="run_1", task_id="b"
    )
    for token, why in (
        (f"{header}.{forged}.{sig}", "bad signature"),
        (unsigned, "algorithm not allowed"),
        (expired, "expired"),
        (wrong_key, "bad signature"),
        ("garbage", "malformed"),
    ):
        with _client(target, token) as client, pytest.raises(TokenInvalidError, match=why):
            client.push("k", 1)
    with _client(target, "") as client, pytest.raises(TokenInvalidError, match="no bearer"):
        client.pull("a", "k")


def test_control_plane_tokens_cannot_push_or_fetch(client_for: ClientFor) -> None:
    cp = client_for(control_plane=True)
    with pytest.raises(XComForbiddenError, match="control-plane"):
        cp.push("k", 1)
    with pytest.raises(XComForbiddenError, match="control-plane"):
        cp.pull("a", "k")


def test_only_the_control_plane_clears(client_for: ClientFor) -> None:
    with pytest.raises(XComForbiddenError, match="only the control plane"):
        client_for(task_id="b").clear("test_dag", "run_1")


def test_listing_is_scoped_to_the_token_run(seeded: None, client_for: ClientFor) -> None:
    b = client_for(task_id="b")
    assert {e.task_id for e in b.list().entries} == {"a", "other"}
    with pytest.raises(XComForbiddenError):
        b.list(run_id="run_2")
    cp = client_for(control_plane=True)
    assert [e.run_id for e in cp.list(dag_id="test_dag", run_id="run_2").entries] == ["run_2"]
