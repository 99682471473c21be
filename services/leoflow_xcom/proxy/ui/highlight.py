"""JSON pretty-printing and syntax highlighting on the server, so the page needs no script.

Works on text, not on a parsed value: a value cut at the display cap is not valid JSON, yet it
is shown indented and coloured up to the cut. Every token is HTML-escaped first and only then
wrapped in a span; every input character ends up in exactly one token, so nothing is dropped
and nothing reaches the page unescaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from markupsafe import Markup, escape

# Tolerant at the end of the text: an unterminated string, number or literal is still a token.
_TOKEN = re.compile(
    r"""(?P<string>"(?:[^"\\]|\\.)*(?:"|\\?\Z))
      |(?P<number>-?\d+(?:\.\d*)?(?:[eE][+-]?\d*)?|-\Z)
      |(?P<literal>true|false|null|[a-z]+)
      |(?P<open>[{\[])
      |(?P<close>[}\]])
      |(?P<comma>,)
      |(?P<colon>:)
      |(?P<space>\s+)
      |(?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)
_CLASS = {"string": "s", "number": "n", "literal": "l", "key": "k", "other": "x"}
INDENT = "  "


def _tokens(text: str) -> list[tuple[str, str]]:
    found = [(m.lastgroup or "other", m.group()) for m in _TOKEN.finditer(text)]
    return [(kind, value) for kind, value in found if kind != "space"]


def _span(kind: str, value: str) -> str:
    css = _CLASS.get(kind)
    text = str(escape(value))
    return f'<span class="{css}">{text}</span>' if css else text


def _pretty(tokens: list[tuple[str, str]]) -> Iterator[str]:
    depth = 0
    for i, (kind, value) in enumerate(tokens):
        following = tokens[i + 1][0] if i + 1 < len(tokens) else None
        if kind == "string" and following == "colon":
            kind = "key"
        if kind == "open":
            yield _span(kind, value)
            if following != "close":  # `{}` and `[]` stay on one line
                depth += 1
                yield "\n" + INDENT * depth
        elif kind == "close":
            previous = tokens[i - 1][0] if i else None
            if previous != "open":
                depth = max(0, depth - 1)
                yield "\n" + INDENT * depth
            yield _span(kind, value)
        elif kind == "comma":
            yield _span(kind, value) + "\n" + INDENT * depth
        elif kind == "colon":
            yield _span(kind, value) + " "
        else:
            yield _span(kind, value)


def highlight(text: str) -> Markup:
    """`text` (JSON, possibly cut short) indented, escaped and wrapped in classed spans."""
    # Safe to mark: _span escaped every token; only our own tags and whitespace are added.
    return Markup("".join(_pretty(_tokens(text))))
