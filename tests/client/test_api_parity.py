"""XComClient and AsyncXComClient offer the same API: the same public methods, with the same
signatures (the async ones are coroutines) and the same docstrings."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from leoflow_xcom.client import AsyncXComClient, XComClient


def _public(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and callable(member)
    }


def test_both_clients_have_the_same_public_methods() -> None:
    sync, aio = _public(XComClient), _public(AsyncXComClient)
    assert sorted(sync) == sorted(aio)
    assert {"push", "push_json", "pull", "pull_json", "pull_many", "list", "clear"} <= set(sync)


def test_same_signatures_and_docstrings_and_async_where_the_sync_one_blocks() -> None:
    for name, method in _public(XComClient).items():
        twin = getattr(AsyncXComClient, name)
        sync_sig, aio_sig = inspect.signature(method), inspect.signature(twin)
        assert list(sync_sig.parameters.values()) == list(aio_sig.parameters.values()), name
        returns = (sync_sig.return_annotation, aio_sig.return_annotation)
        # from_env returns its own class; everything else returns the same type.
        assert returns[0] == returns[1] or name == "from_env", name
        assert inspect.getdoc(method), f"XComClient.{name} has no docstring"
        assert inspect.getdoc(method) == inspect.getdoc(twin), name
        is_classmethod = isinstance(inspect.getattr_static(XComClient, name), classmethod)
        if not is_classmethod:
            assert inspect.iscoroutinefunction(twin), f"AsyncXComClient.{name} is not async"
            assert not inspect.iscoroutinefunction(method), name


def test_constructors_match_and_are_documented() -> None:
    assert inspect.signature(XComClient) == inspect.signature(AsyncXComClient)
    assert inspect.getdoc(XComClient.__init__) and inspect.getdoc(XComClient)
    assert inspect.getdoc(AsyncXComClient)


def test_context_managers() -> None:
    """Context management differs by protocol, not by API: `with` and `async with`."""
    assert {"__enter__", "__exit__"} <= set(vars(XComClient))
    assert {"__aenter__", "__aexit__"} <= set(vars(AsyncXComClient))
