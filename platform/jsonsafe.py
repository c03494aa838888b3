"""A guard for JSON that every part of the platform can store and compare.

Python's JSON parser accepts ``NaN`` and ``Infinity`` (not JSON), PostgreSQL's JSONB cannot
hold a NUL character in a string or key, and absurd nesting exhausts recursion in whatever
walks the value next. Incoming documents (record data, filters, app definitions) are checked
here once, iteratively, and refused with the JSON pointer of the first offending value.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 64
MAX_INT = 2**63 - 1
#: A tuple, not `dict | list`: a union written in a loop is built anew on every test.
_CONTAINERS = (dict, list)


def _escape(part: object) -> str:
    # A pointer is echoed back in error responses: keep it encodable even for a bad key.
    text = str(part).encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\u0000").replace("~", "~0").replace("/", "~1")


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which is not allowed"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired UTF-16 surrogate (e.g. \\ud800), which is not text"
    return None


def _scalar_problem(node: Any, bounded_ints: bool) -> str | None:
    if isinstance(node, str):
        return _text_problem(node)
    if isinstance(node, bool):
        return None
    if isinstance(node, int):
        return "is too large a number to compare" if bounded_ints and abs(node) > MAX_INT else None
    if isinstance(node, float) and not math.isfinite(node):
        return f"is {node}, which is not a JSON number"
    return None


def problems(
    value: Any, base: str = "", *, limit: int = 20, bounded_ints: bool = False
) -> list[tuple[str, str]]:
    """(JSON pointer, message) for each value that cannot be stored as given.

    ``bounded_ints`` also refuses integers outside 64 bits (for values bound as SQL
    parameters, such as filter literals)."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[Any, str, int]] = [(value, base, 0)]
    while stack and len(found) < limit:
        node, pointer, depth = stack.pop()
        if depth > MAX_DEPTH:
            found.append((pointer, f"is nested more than {MAX_DEPTH} levels deep"))
        elif isinstance(node, dict):
            for key, child in node.items():
                child_pointer = f"{pointer}/{_escape(key)}"
                key_problem = _text_problem(str(key))
                if key_problem:
                    found.append((child_pointer, f"has a key that {key_problem}"))
                stack.append((child, child_pointer, depth + 1))
        elif isinstance(node, list):
            if depth >= MAX_DEPTH:
                stack.extend(
                    (child, f"{pointer}/{index}", depth + 1) for index, child in enumerate(node)
                )
                continue
            try:
                text = "".join(node)
            except TypeError:
                pass  # not all text: item by item
            else:
                if _text_problem(text) is None:
                    continue  # a list of clean strings, checked at C speed
            # Items are checked here rather than pushed: a pointer is built only for a
            # container to walk or a problem.
            for index in range(len(node) - 1, -1, -1):
                child = node[index]
                if isinstance(child, _CONTAINERS):
                    if child:
                        stack.append((child, f"{pointer}/{index}", depth + 1))
                else:
                    problem = _scalar_problem(child, bounded_ints)
                    if problem:
                        found.append((f"{pointer}/{index}", problem))
        else:
            problem = _scalar_problem(node, bounded_ints)
            if problem:
                found.append((pointer, problem))
    return found[:limit]


def operator_count(rule: Any) -> int:
    """How many operations a JsonLogic rule has (literal lists and values do not count)."""
    count = 0
    stack = [rule]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            count += len(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend([item for item in node if isinstance(item, _CONTAINERS)])
    return count
