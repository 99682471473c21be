"""How the pages write sizes, moments and remaining lifetimes (pure; Jinja filters)."""

from __future__ import annotations

from leoflow_xcom.proxy import render

_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def size(n: int) -> str:
    """Bytes in binary units: `812 B`, `1.5 KiB`, `256.0 KiB`, `3.2 MiB`."""
    if n < 1024:
        return f"{n:,} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def moment(ms: int | None) -> str:
    """A Unix-ms time in UTC to the second: `2026-11-30 19:40:12 UTC`."""
    if ms is None:
        return "-"
    return render.from_ms(ms).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    """The two largest units, rounded at the smaller one: `2 d`, `1 d 6 h`, `5 m 3 s`."""
    whole = max(0, round(seconds))
    for i, (name, unit) in enumerate(_UNITS[:-1]):
        if whole >= unit:
            smaller_name, smaller = _UNITS[i + 1]
            rounded = round(whole / smaller) * smaller
            if i and rounded >= _UNITS[i - 1][1]:
                return duration(rounded)  # 23 h 59.6 m is 1 d, not 24 h
            big, rest = divmod(rounded, unit)
            return f"{big} {name}" + (f" {rest // smaller} {smaller_name}" if rest else "")
    return f"{whole} s"


def remaining(expires_ms: int, now_ms: int) -> str:
    left = expires_ms - now_ms
    return f"in {duration(left / 1000)}" if left > 0 else "expired"
