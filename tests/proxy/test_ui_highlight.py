"""Server-side JSON highlighting and the pages' formatting: pure functions, any input."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from leoflow_xcom.proxy.ui import fmt
from leoflow_xcom.proxy.ui.highlight import highlight

OUR_TAGS = re.compile(r'<span class="[a-z]">|</span>')
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def shown(markup: str) -> str:
    """What a reader sees: our spans removed, entities decoded."""
    rest = OUR_TAGS.sub("", markup)
    assert "<" not in rest and ">" not in rest  # no markup but ours survives
    return html.unescape(rest)


@given(st.text())
def test_any_text_is_escaped_and_nothing_but_whitespace_is_lost(text: str) -> None:
    out = shown(str(highlight(text)))
    assert re.sub(r"\s", "", out) == re.sub(r"\s", "", text)


@given(JSON)
def test_pretty_printed_json_parses_back_to_the_same_value(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert json.loads(shown(str(highlight(text)))) == value


@given(JSON, st.integers(min_value=0, max_value=200))
def test_a_value_cut_anywhere_still_renders_its_prefix(value: Any, cut: int) -> None:
    text = json.dumps(value, ensure_ascii=False)[:cut]
    out = shown(str(highlight(text)))
    assert re.sub(r"\s", "", out) == re.sub(r"\s", "", text)


def test_layout_and_classes() -> None:
    out = str(highlight('{"a":[1,true,null,"<x>"],"b":{}}'))
    assert out == (
        '{\n  <span class="k">&#34;a&#34;</span>: [\n    <span class="n">1</span>,\n'
        '    <span class="l">true</span>,\n    <span class="l">null</span>,\n'
        '    <span class="s">&#34;&lt;x&gt;&#34;</span>\n  ],\n'
        '  <span class="k">&#34;b&#34;</span>: {}\n}'
    )


def test_durations_sizes_and_moments() -> None:
    assert fmt.duration(2 * 86_400 - 0.4) == "2 d"
    assert fmt.duration(2 * 86_400 - 1) == "2 d"  # rounded at the hour: just pushed, TTL 2 d
    assert fmt.duration(86_400 + 6 * 3_600) == "1 d 6 h"
    assert fmt.duration(303) == "5 m 3 s"
    assert fmt.duration(59.6) == "1 m"
    assert fmt.duration(0) == "0 s"
    assert fmt.duration(86_399) == "1 d" and fmt.duration(3_599.7) == "1 h"
    assert fmt.remaining(1_000, 2_000) == "expired"
    assert fmt.remaining(62_000, 2_000) == "in 1 m"
    assert (fmt.size(812), fmt.size(1536), fmt.size(262_144)) == ("812 B", "1.5 KiB", "256.0 KiB")
    assert fmt.size(3 * 1024 * 1024) == "3.0 MiB"
    assert fmt.moment(0) == "1970-01-01 00:00:00 UTC" and fmt.moment(None) == "-"


def test_a_cut_inside_a_character_drops_only_that_character() -> None:
    from leoflow_xcom.proxy.ui.catalog import _utf8_prefix

    text = '"日本語"'.encode()
    assert [_utf8_prefix(text[:n]) for n in (1, 3, 4, 5, 7)] == ['"', '"', '"日', '"日', '"日本']
