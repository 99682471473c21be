"""The data-layout version key: a service refuses a layout it does not know, and upgrades the
older layouts it does (store/migrate.py)."""

from __future__ import annotations

from typing import cast

from leoflow_xcom.core import keys
from leoflow_xcom.core.errors import LayoutMismatchError
from leoflow_xcom.store.connection import StoreClient, translated
from leoflow_xcom.store.migrate import migrate


def ensure_layout(client: StoreClient) -> None:
    """Stamp an empty store with our layout version, or check the one it has; migrate an
    older one in place."""
    with translated():
        found = cast(bytes | None, client.get(keys.LAYOUT_KEY))
        if found is None:
            # Layouts 1 and 2 kept their version under the old, untagged name.
            old = cast(bytes | None, client.get(keys.V2_LAYOUT_KEY))
            if old in (b"1", b"2"):
                migrate(client, old)  # upgraded in place, once
            elif old is not None and old != str(keys.LAYOUT_VERSION).encode():
                check_layout(old)  # a layout we do not know: refused
            else:  # read first: a full Redis refuses the SET, and needs no stamp
                client.set(keys.LAYOUT_KEY, keys.LAYOUT_VERSION, nx=True)
                # The old name too: a layout-2 service refuses this store, never writes to it.
                client.set(keys.V2_LAYOUT_KEY, keys.LAYOUT_VERSION, nx=True)
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
        if found is None:
            found = cast(bytes | None, client.get(keys.V2_LAYOUT_KEY))
    if found is not None:
        check_layout(found)
