"""jsonsafe.problems checks list items in place (no pointer built per clean item) and lists of
text at C speed; it must still find exactly what a plain walk of every value finds."""

from __future__ import annotations

import math
from typing import Any

import pytest

from formloom.platform import jsonsafe


def reference(value: Any, base: str = "", bounded_ints: bool = False) -> list[tuple[str, str]]:
    """Every problem, by visiting each value with its pointer (the obvious, slow way)."""
    found: list[tuple[str, str]] = []

    def visit(node: Any, pointer: str, depth: int) -> None:
        if depth > jsonsafe.MAX_DEPTH:
            found.append((pointer, f"is nested more than {jsonsafe.MAX_DEPTH} levels deep"))
            return
        if isinstance(node, dict):
            for key, child in node.items():
                child_pointer = f"{pointer}/{jsonsafe._escape(key)}"
                key_problem = jsonsafe._text_problem(str(key))
                if key_problem:
                    found.append((child_pointer, f"has a key that {key_problem}"))
                visit(child, child_pointer, depth + 1)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                visit(child, f"{pointer}/{index}", depth + 1)
        elif isinstance(node, str):
            problem = jsonsafe._text_problem(node)
            if problem:
                found.append((pointer, problem))
        elif isinstance(node, bool):
            pass
        elif isinstance(node, int):
            if bounded_ints and abs(node) > jsonsafe.MAX_INT:
                found.append((pointer, "is too large a number to compare"))
        elif isinstance(node, float) and not math.isfinite(node):
            found.append((pointer, f"is {node}, which is not a JSON number"))

    visit(value, base, 0)
    return found


def nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


CASES: list[Any] = [
    {"name": "ok", "tags": ["a", "b"], "n": 1, "x": None, "b": True},
    ["a", "b\x00", "c", "\ud800", "d"],
    ["\ud83d", "\ude00"],  # two halves of a pair in two strings: both unpaired
    {"rows": [{}, [], {"a": "\x00"}, ["x", float("nan")], 2**70]},
    {"k\x00": 1, "ok": [1.5, float("inf"), -float("inf")]},
    [1, "a", {"b": ["c", "\x00"]}, [[["\ud800"]]]],
    nested(jsonsafe.MAX_DEPTH, "fine"),
    nested(jsonsafe.MAX_DEPTH + 1, "too deep"),
    nested(jsonsafe.MAX_DEPTH, ["too", "deep"]),
    nested(jsonsafe.MAX_DEPTH + 3, []),
    {"a": nested(jsonsafe.MAX_DEPTH - 1, {"b": "\x00"})},
    [str(n) for n in range(10_000)] + ["\x00"],
]


@pytest.mark.parametrize("value", CASES)
@pytest.mark.parametrize("bounded_ints", [False, True])
def test_problems_are_those_a_plain_walk_finds(value: Any, bounded_ints: bool) -> None:
    found = jsonsafe.problems(value, "/data", limit=1000, bounded_ints=bounded_ints)
    assert sorted(found) == sorted(reference(value, "/data", bounded_ints))


def test_at_most_limit_problems_are_reported() -> None:
    value = ["\x00"] * 50 + [{"a": float("nan")}] * 50
    assert len(jsonsafe.problems(value, limit=20)) == 20
    assert len(jsonsafe.problems(value, limit=1000)) == 100


def test_a_single_problem_is_reported_at_its_pointer() -> None:
    value = {"filter": {"in": [{"var": "name"}, [str(n) for n in range(100_000)] + ["\x00"]]}}
    assert jsonsafe.problems(value) == [
        ("/filter/in/1/100000", "contains a NUL character (\\u0000), which is not allowed")
    ]
