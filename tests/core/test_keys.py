from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from leoflow_xcom.core import keys

NASTY = ["a", "a:b", "a{b}", "{", "}", "a/b", "a b", "é", "✓:{}", "%3A", "a%", ":", "x" * 512]


def hash_tag(key: str) -> str:
    """Redis Cluster's rule: the part between the first '{' and the next '}'."""
    start = key.index("{")
    return key[start + 1 : key.index("}", start + 1)]


def test_every_key_of_a_run_shares_one_hash_tag() -> None:
    for dag, run in itertools.product(NASTY, NASTY):
        run_keys = keys.run_keys(dag, run)
        tags = {
            hash_tag(k)
            for k in (
                run_keys.index,
                run_keys.expiry,
                run_keys.meta,
                run_keys.value(keys.member("t{", 3, "k}")),
            )
        }
        assert len(tags) == 1


def test_distinct_ids_never_collide() -> None:
    seen: dict[str, tuple[str, str, str, int, str]] = {}
    for dag, run, task, key in itertools.product(NASTY[:8], NASTY[:8], NASTY[:6], NASTY[:6]):
        for map_index in (-1, 0, 10):
            k = keys.run_keys(dag, run).value(keys.member(task, map_index, key))
            ident = (dag, run, task, map_index, key)
            assert seen.setdefault(k, ident) == ident


@given(st.text(min_size=1), st.integers(-1, 2**31 - 2), st.text(min_size=1))
def test_members_round_trip(task: str, map_index: int, key: str) -> None:
    assert keys.parse_member(keys.member(task, map_index, key)) == (task, map_index, key)


@given(st.text(min_size=1), st.text(min_size=1))
def test_run_members_round_trip(dag: str, run: str) -> None:
    assert keys.parse_run_member(keys.run_member(dag, run)) == (dag, run)


def test_lexical_order_of_members_is_task_then_numeric_map_index_then_key() -> None:
    members = [keys.member("t", i, "k") for i in (10, -1, 2, 0, 100)]
    assert [keys.parse_member(m)[1] for m in sorted(members)] == [-1, 0, 2, 10, 100]


def test_task_prefix_does_not_match_a_task_whose_id_extends_it() -> None:
    assert not keys.member("ab", -1, "k").startswith(keys.task_prefix("a"))
    assert keys.member("a", 5, "k").startswith(keys.task_instance_prefix("a", 5))
    assert not keys.member("a", 50, "k").startswith(keys.task_instance_prefix("a", 5))


def test_a_task_sorts_before_tasks_whose_ids_extend_it() -> None:
    tasks = ["a1", "a", "a-b", "a.b", "a_b", "a~", "a%", "A", "b"]
    ordered = [keys.parse_member(m)[0] for m in sorted(keys.member(t, -1, "k") for t in tasks)]
    assert ordered.index("a") < min(ordered.index(t) for t in ("a1", "a-b", "a.b", "a_b", "a~"))
    runs = sorted(keys.run_member("d", r) for r in ("r1", "r"))
    assert [keys.parse_run_member(m)[1] for m in runs] == ["r", "r1"]
