"""Value and time rendering shared by both API generations (pure)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from leoflow_xcom.core import codec
from leoflow_xcom.core.errors import XComError
from leoflow_xcom.core.model import RunInfo, XComEntry

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def from_ms(ms: int) -> dt.datetime:
    # timedelta, not fromtimestamp(float): exact to the millisecond.
    return _EPOCH + dt.timedelta(milliseconds=ms)


def run_fact(text: str | None) -> dt.datetime | None:
    """A run fact recorded on push (token claim) as a UTC datetime; None when absent or not an
    ISO 8601 time with an offset. A naive time is not guessed into UTC: it is shown as null."""
    if not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(dt.UTC)


def first_push(info: RunInfo, entry: XComEntry) -> dt.datetime:
    """The run's first push time: the fallback for run dates Airflow requires but no token
    carried. Runs stored before the first push was kept fall back to this entry's own push."""
    return from_ms(info.first_push_ms if info.first_push_ms is not None else entry.pushed_at_ms)


def execution_date(info: RunInfo, entry: XComEntry) -> dt.datetime:
    """Airflow 2's execution_date (a required string): the logical date, else the first push."""
    return run_fact(info.logical_date) or first_push(info, entry)


def run_after(info: RunInfo, entry: XComEntry) -> dt.datetime:
    """Airflow 3's run_after (a required datetime): the recorded one, else the first push."""
    return run_fact(info.run_after) or first_push(info, entry)


def iso_v1(moment: dt.datetime) -> str:
    """Airflow 2 (marshmallow): `2026-05-21T10:00:00.123000+00:00`."""
    return moment.isoformat()


def iso_v2(moment: dt.datetime | None) -> str | None:
    """Airflow 3 (pydantic): `2026-05-21T10:00:00.123000Z`."""
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def decode(raw: bytes) -> Any:
    """A stored value as JSON. The service stores only strict JSON, but the proxy reads
    whatever Redis holds: anything else (written around the service, or by an older version)
    is shown as its UTF-8 text, invalid bytes replaced, rather than failing the request."""
    try:
        return codec.decode(raw, "value")
    except XComError:
        return raw.decode("utf-8", "replace")


def stringified(value: Any) -> str | None:
    """Airflow's `stringify`: Python's str() of the decoded value (so a dict shows as
    `{'rows': 42}`), None stays null. Both generations do exactly this."""
    return None if value is None else str(value)
