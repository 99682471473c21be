"""The data-layout version key: a service refuses a layout it does not know, and upgrades the
one older layout it does (store/migrate.py)."""

from __future__ import annotations

from typing import cast

from leoflow_xcom.core import keys
from leoflow_xcom.core.errors import LayoutMismatchError
from leoflow_xcom.store.connection import StoreClient, translated
from leoflow_xcom.store.migrate import migrate_from_v1


def ensure_layout(client: StoreClient) -> None:
    """Stamp an empty store with our layout version, or check the one it has."""
    with translated():
        found = cast(bytes | None, client.get(keys.LAYOUT_KEY))
        if found is None:  # read first: a full Redis refuses the SET, and needs no stamp
            client.set(keys.LAYOUT_KEY, keys.LAYOUT_VERSION, nx=True)
            found = cast(bytes | None, client.get(keys.LAYOUT_KEY))
        if found == b"1":
            migrate_from_v1(client)  # the only older layout: upgraded in place, once
            found = cast(bytes | None, client.get(keys.LAYOUT_KEY))
    check_layout(found)


def check_layout(found: bytes | None) -> None:
    text = found.decode() if found is not None else "none"
    if text != str(keys.LAYOUT_VERSION):
        raise LayoutMismatchError.found(text, keys.LAYOUT_VERSION)


def read_layout(client: StoreClient) -> None:
    """Check without writing (read-only users, e.g. the UI proxy)."""
    with translated():
        found = cast(bytes | None, client.get(keys.LAYOUT_KEY))
    if found is not None:
        check_layout(found)
