"""What the UI proxy checks before it serves, once in `leoflow-xcom ui` and once per worker.

The CLI checks before it execs gunicorn, so a bad setting fails with one clear line; each
gunicorn worker (proxy/app.py's from_env) checks again, since the store may have changed
between the two.
"""

from __future__ import annotations

from leoflow_xcom.settings import RedisSettings, UiSettings
from leoflow_xcom.store import acl
from leoflow_xcom.store.connection import connect
from leoflow_xcom.store.layout import read_layout


def check_store(settings: UiSettings, redis_settings: RedisSettings) -> None:
    """Redis answers with a data layout this version reads, and refuses this user a write."""
    client = connect(settings.redis(redis_settings))
    try:
        read_layout(client)
        acl.refuse_writable(client)
    finally:
        client.close()
