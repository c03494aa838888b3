"""The browser evaluator (ui/static/logic.js) computes exactly what the server computes.

Two checks, run by ``make test`` on any machine with Node.js. Node is required: without it
these tests fail with a message saying so, they do not skip.

* The Node suite ``tests/ui/logic.test.mjs`` (``node --test tests/ui/``): the classic
  jsonlogic.com suite case by case (277/277), the compat tables, the extensions, the errors.
* A differential test: rules generated from fixed seeds (typed by operator, plus "chaos"
  rules of any operator over any value, plus mutated ISO date strings), a fixed list of tricky
  cases, and every public conformance case are evaluated by
  :func:`formloom.engines.logic.evaluate` and by logic.js (one Node process for the batch).
  Results must be equal as JSON (``compat.json_equal``: ``1 == 1.0``, booleans are not
  numbers); errors must be of the same class with the same error value; ``variables`` must
  return the same paths.

The one documented difference is left out: Python's integers are exact beyond 2**53, where
JavaScript rounds (docs/jsonlogic.md, "In the browser"). A case is skipped only when the
server's arithmetic produced such an integer; the test counts them and keeps them rare.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from formloom.engines.logic import OPERATORS, LogicError, evaluate, variables
from formloom.engines.logic import evaluator as python_evaluator
from tests.conformance.jsonlogic_suites import (
    conformance_dir,
    json_equal,
    load_classic,
    load_compat,
)

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CONFORMANCE = conformance_dir()  # tests/conformance, or $FORMLOOM_CONFORMANCE_DIR
CLASSIC_CASES = 277
SAFE_INTEGER = 2**53
NOWS = ("2024-01-15T12:00:00Z", "2024-03-01T00:30:00+08:00", "2023-12-31T23:59:59.5-05:00")
# Zone names for hour_of / weekday_of: DST both ways, +05:45, +14, aliases, and bad names.
_ZONES = (
    "UTC", "Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Sydney",
    "Asia/Kathmandu", "Pacific/Kiritimati", "America/St_Johns", "Asia/Calcutta", "Etc/GMT+8",
    "asia/shanghai", "Mars/Olympus", "+08:00", "", 8, None,
)  # fmt: skip


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js is required to test the browser evaluator (ui/static/logic.js): "
            "install node (v18 or later) and make sure `node` is on PATH"
        )
    return node


# -- 1. the Node test suite ----------------------------------------------------------------------


def test_node_suite_passes_with_the_whole_classic_suite() -> None:
    run = subprocess.run(
        [_node(), "--test", "--test-reporter=tap", "tests/ui/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = run.stdout + run.stderr
    failures = [line.strip() for line in report.splitlines() if line.lstrip().startswith("not ok")]
    assert run.returncode == 0, f"node --test failed: {failures}\n{report[-4000:]}"
    passed = re.findall(r"^\s*ok \d+ - conformance case \d{3}:", run.stdout, re.MULTILINE)
    assert len(passed) == CLASSIC_CASES, f"{len(passed)} classic conformance passes in node"
    assert re.search(r"^# fail 0$", run.stdout, re.MULTILINE)


# -- 2. the differential test ------------------------------------------------------------------

_RECORD: dict[str, Any] = {
    "n": 5,
    "x": 2.5,
    "s": "abc",
    "num": "12",
    "z": 0,
    "neg": -3,
    "b": True,
    "f": False,
    "nil": None,
    "e": "",
    "list": [3, 1, 2],
    "strs": ["a", "b", "c"],
    "rows": [
        {"qty": 2, "price": 1.5, "tag": "a"},
        {"qty": 0, "price": 10, "tag": "b"},
        {"qty": -1, "price": "3", "tag": None},
    ],
    "obj": {"a": {"b": [10, {"c": "deep"}]}},
    "date": "2024-01-31",
    "dt": "2024-02-29T23:30:00-05:00",
    "dob": "2000-02-29",
    "unit": "month",
    "a.b": "dotted",
}
_DATA: list[Any] = [_RECORD, _RECORD, _RECORD, {}, None, [1, 2, 3], "s", 7]
_PATHS: list[Any] = [
    *[key for key in _RECORD if key != "a.b"],
    "a.b",
    "obj.a.b.1.c",
    "obj.a.b.0",
    "obj.a",
    "list.1",
    "rows.0.qty",
    "rows.5",
    "missing",
    "missing.deep",
    "",
    0,
    1,
    "1",
]
_NUMBERS: list[Any] = [0, 1, 2, 3, -1, -7, 10, 0.5, -1.5, 2.25, 0.1, 1e-7, 3.14, 1e21, 12345.678]
_STRINGS: list[Any] = [
    "",
    "0",
    "1",
    "2.5",
    " 12 ",
    "1e2",
    "0x1F",
    "0b11",
    "abc",
    "ABC",
    "a.b",
    "é",
    "😀x",
    "-0",
    "+3",
    ".5",
    "Infinity",
    "nan",
    "1_000",
    "\u001f7",
    "\ufeff7",
    "٣",
    "2024-01-31",
    "2024-02-29T10:00:00Z",
    "day",
]
_LITERALS: list[Any] = [*_NUMBERS, *_STRINGS, None, True, False]
_STRUCTURES: list[Any] = [[], {}, [1, 2], ["a", None], {"a": 1}, [[1]], [1, "2", None, True]]
_DATES: list[Any] = [
    "2024-01-31",
    "2024-02-29",
    "2023-02-28",
    "2000-02-29",
    "0001-01-01",
    "9999-12-31",
    "2024-01-31T10:15:00Z",
    "2024-02-29T23:30:00-05:00",
    "2024-03-10T01:30:00.250+05:30",
    "2024-12-31T23:59:59.999999Z",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:30:00-01:00",
    "0999-06-01T00:00Z",
    "2024-01-01 10:30",
    "2024-01-01t10",
    "2024-01-01T1030Z",
    "2024-13-01",
    "2024-02-30",
    "2024-01-01T24:00",
    "yesterday",
    "",
    20240101,
    None,
]
_AMOUNTS: list[Any] = [
    *(0, 1, -1, 2, 13, -400, 1.5, -0.25, "3", " 2 ", "0.5", "x", None, True),
    *(1e6, 5e-7, 2.4999995, 0.0000015, 3652058, 1e300, -0.5e-6),
]
_UNITS: list[Any] = [
    *("day", "days", "DAY", " week ", "month", "months", "year", "Years", "hour"),
    *("minute", "minutes", "second", "s", "", "fortnight", None, 1),
]


@dataclass
class _Generator:
    """Random rules over the operators both evaluators share, shaped like real rules."""

    rng: random.Random

    def expression(self, depth: int) -> Any:
        if depth <= 0 or self.rng.random() < 0.25:
            return self.leaf()
        make: Callable[[int], Any] = self.rng.choice(self._makers())
        return make(depth - 1)

    def leaf(self) -> Any:
        roll = self.rng.random()
        if roll < 0.5:
            return {"var": self.rng.choice(_PATHS)}
        if roll < 0.55:
            return {"var": [self.rng.choice(_PATHS), self.rng.choice(_LITERALS)]}
        if roll < 0.6:
            return {"preserve": self.rng.choice(_STRUCTURES)}
        return self.rng.choice(_LITERALS)

    def some(self, depth: int, low: int, high: int) -> list[Any]:
        return [self.expression(depth) for _ in range(self.rng.randint(low, high))]

    def _makers(self) -> list[Callable[[int], Any]]:
        return [
            self.arithmetic,
            self.arithmetic,
            self.comparison,
            self.comparison,
            self.logic,
            self.text,
            self.array,
            self.access,
            self.errors,
            self.dates,
            self.extension,
        ]

    def arithmetic(self, depth: int) -> Any:
        op = self.rng.choice(["+", "-", "*", "/", "%", "max", "min"])
        if self.rng.random() < 0.1:
            return {op: {"var": self.rng.choice(["list", "strs", "rows", "missing", "n"])}}
        # Two factors at most keeps integer products within 2**53 (see the module docstring).
        high = 2 if op == "*" else 3
        return {op: self.some(depth, 0 if op in ("+", "max", "min") else 1, high)}

    def comparison(self, depth: int) -> Any:
        op = self.rng.choice(["==", "!=", "===", "!==", "<", "<=", ">", ">="])
        count = self.rng.choice([2, 2, 2, 2, 3, 1])
        return {op: self.some(depth, count, count)}

    def logic(self, depth: int) -> Any:
        op = self.rng.choice(["and", "or", "if", "?:", "!", "!!", "??"])
        if op in ("!", "!!"):
            return {
                op: self.expression(depth) if self.rng.random() < 0.5 else self.some(depth, 0, 2)
            }
        return {op: self.some(depth, 0, 5 if op == "if" else 3)}

    def text(self, depth: int) -> Any:
        op = self.rng.choice(["cat", "substr", "in", "in", "merge"])
        if op == "substr":
            bounds = [self.rng.choice([0, 1, 2, -1, -3, 10, -10, "2", 1.7, None]) for _ in range(2)]
            return {"substr": [self.expression(depth), *bounds[: self.rng.randint(0, 2)]]}
        if op == "in":
            haystack = self.rng.choice([{"var": "s"}, {"var": "strs"}, "a1.5 true", self.leaf()])
            return {"in": [self.expression(depth), haystack]}
        return {op: self.some(depth, 0, 3)}

    def array(self, depth: int) -> Any:
        op = self.rng.choice(["map", "filter", "reduce", "all", "some", "none"])
        items = self.rng.choice(
            [
                {"var": "list"},
                {"var": "rows"},
                {"var": "strs"},
                {"var": "missing"},
                {"var": ["missing", []]},
                [1, "2", None, 0],
                [],
                {"var": "s"},
            ]
        )
        bodies = [
            {"var": ""},
            {"var": "qty"},
            {">": [{"var": "qty"}, 0]},
            {"*": [{"var": "price"}, {"val": [[2], "n"]}]},
            {"val": [[1], "index"]},
            {"+": [{"var": "accumulator"}, {"var": "current"}]},
            {"cat": [{"var": "accumulator"}, {"var": "current.tag"}]},
            self.expression(depth),
        ]
        args = [items, self.rng.choice(bodies)]
        if op == "reduce" and self.rng.random() < 0.7:
            args.append(self.rng.choice([0, "", None, {"var": "n"}]))
        return {op: args}

    def access(self, depth: int) -> Any:
        op = self.rng.choice(["var", "val", "exists", "missing", "missing_some"])
        if op == "var":
            return {"var": [self.rng.choice(_PATHS), self.expression(depth)]}
        if op in ("val", "exists"):
            keys = [self.rng.choice(["obj", "a", "b", 1, 0, "a.b", "rows", "qty"]) for _ in "ab"]
            climb = [[self.rng.choice([0, 1, 2, 3, -2])]] if self.rng.random() < 0.3 else []
            return {op: [*climb, *keys[: self.rng.randint(0, 2)]]}
        keys = self.rng.sample(["n", "nil", "e", "z", "missing", "obj.a", "f"], 3)
        if op == "missing":
            return {"missing": keys}
        return {"missing_some": [self.rng.choice([0, 1, 2, "2", None]), keys]}

    def errors(self, depth: int) -> Any:
        if self.rng.random() < 0.4:
            return {"throw": self.rng.choice(["Overdue", {"preserve": {"type": "X", "n": 1}}, 7])}
        fallbacks = [{"var": "type"}, {"val": [[2], "n"]}, self.expression(depth)]
        return {"try": [self.expression(depth), *self.rng.sample(fallbacks, 2)]}

    def dates(self, depth: int) -> Any:
        op = self.rng.choice(["date_add", "date_add", "days_between", "years_between", "now"])
        date = self.rng.choice([*_DATES, {"var": "date"}, {"var": "dt"}, {"today": []}])
        if op == "date_add":
            return {op: [date, self.rng.choice(_AMOUNTS), self.rng.choice(_UNITS)]}
        if op == "now":
            return {self.rng.choice(["now", "today"]): self.rng.choice([[], None, [None]])}
        return {op: [date, self.rng.choice([*_DATES, {"var": "dob"}, {"today": []}])]}

    def extension(self, depth: int) -> Any:
        op = self.rng.choice(["contains", "is_empty", "log", "preserve"])
        if op == "contains":
            return {
                op: [
                    self.rng.choice([{"var": "strs"}, "hypertension", {"var": "list"}]),
                    self.leaf(),
                ]
            }
        return {op: self.expression(depth)}


def _chaos_rule(rng: random.Random, level: int = 0) -> Any:
    """Any operator over any value: mostly errors, which must be the same errors."""

    def value(depth: int) -> Any:
        roll = rng.random()
        if depth > 3 or roll < 0.4:
            return rng.choice([*_LITERALS, *_STRUCTURES, *_DATES[:6]])
        if roll < 0.55:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return _chaos_rule(rng, depth + 1)

    # unbounded products leave the safe range; bin_of has cases of its own (_bin_cases), and
    # drawing it here would change every later draw of these seeded rules
    op = rng.choice(sorted(OPERATORS - {"*", "bin_of"}))
    if rng.random() < 0.7:
        return {op: [value(level) for _ in range(rng.randint(0, 4))]}
    return {op: value(level)}


def _mutated_dates(rng: random.Random, count: int) -> Iterator[str]:
    """ISO strings near the accepted forms, to hold logic.js's parser to Python's."""
    bases = [
        "2024-02-29T23:30:00-05:00",
        "2024-01-01T10:30:00.123456Z",
        "2024-01-01 10:30",
        "2024-01-01T1030+0530",
        "2024-01-01T10:30:00,5+05:30:15.25",
        "2024-12-31",
    ]
    alphabet = "0123456789-:T tZz+.,Wé\x00"
    for _ in range(count):
        text = list(rng.choice(bases))
        for _ in range(rng.choice([1, 1, 2, 3])):
            where = rng.randrange(len(text) + 1)
            roll = rng.random()
            if roll < 0.4 and where < len(text):
                text[where] = rng.choice(alphabet)
            elif roll < 0.7:
                text.insert(where, rng.choice(alphabet))
            elif where < len(text):
                del text[where]
        yield "".join(text)


_TRICKY: list[Any] = [
    # strings against numbers
    {"==": [1, "1"]},
    {"==": ["1", 1.0]},
    {"==": [0, ""]},
    {"==": [0, " "]},
    {"==": ["0x10", 16]},
    {"==": ["1e2", 100]},
    {"==": [1, "A"]},
    {"==": [True, "1"]},
    {"==": [False, "0.0"]},
    {"==": ["abc", True]},
    {"!=": [1, "1"]},
    {"===": [1, 1.0]},
    {"===": [1, "1"]},
    {"<": ["10", 9]},
    {"<": ["10", "9"]},
    {"<": [1, "one"]},
    {"<": [None, "x"]},
    {"<": ["x", None]},
    {"<": [True, "2"]},
    {">": ["b", "a", "A"]},
    {"<=": ["", 0]},
    {"<": ["\uffff", "😀"]},
    {"<": ["😀", "\uffff"]},
    {"<": [{"preserve": [1]}, 2]},
    {"<": [1, 2, "3", 4]},
    {"<": [1, 3, "x"]},
    {"<": [3, 1, "x"]},
    # null
    {"==": [None, 0]},
    {"==": [None, False]},
    {"==": [None, ""]},
    {"==": [None, "0"]},
    {"==": [None, None]},
    {"!": None},
    {"!!": [None]},
    {"!": []},
    {"+": [None, 1]},
    {"cat": [None, "a", None]},
    {"var": ["nil", "d"]},
    {"var": ["z", "d"]},
    {"var": ["f", "d"]},
    {"??": [None, {"var": "nil"}, False]},
    {"in": [None, "abc"]},
    {"in": ["a", None]},
    {"in": [None, [None]]},
    {"max": [None, -1]},
    {"substr": [None, 1]},
    {"missing": ["nil", "e", "z", "f"]},
    {"missing": [["nil", "n"]]},
    {"if": [None, 1, 2]},
    {"if": []},
    {"reduce": [None, 1, 5]},
    {"reduce": [{"var": "nil"}, 1, 5]},
    {"map": [{"var": "nil"}, 1]},
    {"all": [{"var": "nil"}, 1]},
    # in on strings
    {"in": ["", "abc"]},
    {"in": ["bc", "abc"]},
    {"in": [1, "a1b"]},
    {"in": [1.0, "a1b"]},
    {"in": [1.5, "a1.5"]},
    {"in": [True, "true story"]},
    {"in": [{"preserve": [1, 2]}, "x1,2"]},
    {"in": [{"preserve": {}}, "[object Object]"]},
    {"in": ["a", 5]},
    {"in": ["a", {"preserve": {}}]},
    {"in": ["é", "café"]},
    {"in": ["Spring", {"var": "strs"}]},
    {"in": [1, [1.0, 2]]},
    {"in": [1, [True]]},
    # substr
    {"substr": ["jsonlogic", -5]},
    {"substr": ["jsonlogic", -5, -2]},
    {"substr": ["jsonlogic", 1, -100]},
    {"substr": ["jsonlogic", -100, 3]},
    {"substr": ["jsonlogic", 100]},
    {"substr": ["jsonlogic", 2.9, "3.7"]},
    {"substr": ["jsonlogic", -2.5]},
    {"substr": ["😀a😀b", 1, 2]},
    {"substr": ["😀a😀b", -1]},
    {"substr": [12345, 1, 2]},
    {"substr": [1.5, 1]},
    {"substr": ["abc", "x"]},
    {"substr": ["abc"]},
    {"substr": []},
    {"substr": ["abc", 1, None]},
    # min / max
    {"max": []},
    {"min": []},
    {"max": {"var": "list"}},
    {"min": ["3", 2.5, True]},
    {"max": ["a"]},
    {"max": [{"preserve": []}]},
    {"min": {"var": "missing"}},
    {"max": [1.0, 1]},
    # division and numbers
    {"/": [1, 0]},
    {"/": [0, 1]},
    {"/": 0},
    {"/": [1, 3]},
    {"/": [6, 4]},
    {"/": [-6, 3]},
    {"/": ["1", "0"]},
    {"/": [1, None]},
    {"/": [1, ""]},
    {"/": [1, "x", 0]},
    {"%": [1, 0]},
    {"%": [-8, 3]},
    {"%": [8, -3]},
    {"%": [7.5, 2]},
    {"%": [-4, 2]},
    {"%": [5]},
    {"/": [1e308, 1e-308]},
    {"*": [1e308, 10]},
    {"-": [0]},
    {"-": []},
    {"-": ["-0"]},
    {"+": [0.1, 0.2]},
    {"cat": [{"/": [1, 3]}, " ", {"/": [10, 4]}, " ", {"*": [0.1, 3]}, " ", {"/": [6, 3]}]},
    {"cat": [1e21, " ", 1e-7, " ", 123e18, " ", 0.000001, " ", -0.0, " ", 2**53]},
    {"+": ["0x1F", "0b11", "0o17", " 1e2 ", "+3", ".5", "1."]},
    {"+": ["1_000"]},
    {"+": ["\u001f1"]},
    {"+": ["\ufeff1"]},
    {"+": ["\u00851"]},
    {"+": ["Infinity"]},
    {"+": ["1e400"]},
    {"+": [True, False]},
    # dates
    {"date_add": ["2024-01-31", 1, "month"]},
    {"date_add": ["2024-02-29", 1, "year"]},
    {"date_add": ["2024-01-01T12:00:00", 1.5, "day"]},
    {"date_add": ["2024-12-31T23:59:59.9999995Z", 5e-7, "second"]},
    {"date_add": ["2024-12-31T23:59:59.999999Z", 5e-7, "second"]},
    {"date_add": ["2024-12-31T23:59:59.999998Z", 1.5e-6, "second"]},
    {"date_add": ["2024-12-31T23:59:59Z", 0.9999995, "second"]},
    {"date_add": ["2024-12-31T23:59:59Z", 0.9999985, "second"]},
    {"date_add": ["2024-01-01T00:00:00Z", -0.0000005, "second"]},
    {"date_add": ["2024-01-01T00:00:00+00:00:00.5", 0, "second"]},
    {"date_add": ["2024-01-01T00:00:00+23:59:59.999999", 0, "second"]},
    {"date_add": ["2024-01-01T00:00:00+24:00", 0, "second"]},
    {"date_add": ["2024-01-01T00:00:00-05:99", 0, "second"]},
    {"date_add": ["2024-01-01T10:30:00:5", 0, "second"]},
    {"date_add": ["2024-01-01T1030001", 0, "second"]},
    {"date_add": ["2024-01-01T10:30\u0000", 1, "day"]},
    {"date_add": ["2024-01-01T10:30:00Z\u0000x", 1, "day"]},
    {"date_add": ["2024-01-01T", 1, "day"]},
    {"date_add": ["2024-W01-1T10:00", 1, "day"]},
    {"date_add": ["9999-12-31T23:59:59Z", 1, "second"]},
    {"date_add": ["9999-12-31T23:00:00-05:00", 0, "second"]},
    {"date_add": ["0001-01-01", -1, "day"]},
    {"date_add": ["0001-01-01T00:00:00Z", 1, "month"]},
    {"date_add": ["2024-01-31", 1e300, "day"]},
    {"date_add": ["2024-01-31T00:00:00Z", 1e300, "day"]},
    {"date_add": ["2024-01-31", "1e2", "days"]},
    {"date_add": ["2024-01-31", 2.0, "week"]},
    {"date_add": ["2024-01-31", " 2 ", "\u2003Weeks\u2003"]},
    {"date_add": ["2024-01-31", 1, "WEE\u212a"]},
    {"date_add": [None, "x", "y"]},
    {"days_between": ["2024-02-28", "2024-03-01"]},
    {"days_between": ["2024-01-01T23:59:00Z", "2024-01-02T00:01:00Z"]},
    {"days_between": ["0001-01-01", "9999-12-31"]},
    {"years_between": ["2000-02-29", "2023-02-28"]},
    {"years_between": ["2024-05-20", "2000-05-21"]},
    {"years_between": [{"var": "dob"}, {"today": []}]},
    {"today": []},
    {"now": []},
    {"now": [None]},
    {"now": None},
    {"today": {}},
    {"today": [1]},
    # scopes, errors, coalesce
    {"map": [{"var": "rows"}, {"val": [[1], "index"]}]},
    {"map": [{"var": "rows"}, {"map": [[1, 2], {"val": [[4], "n"]}]}]},
    {"map": [[1], {"val": [[9], "x"]}]},
    {"map": [[1], {"val": [[False], "x"]}]},
    {"map": [[1], {"val": [[0.0]]}]},
    {"map": [[1], {"val": [["1"], "x"]}]},
    {"map": [[1], {"val": [[1.5], "x"]}]},
    {"try": [{"throw": "a"}, {"val": [[2], "n"]}]},
    {"try": [{"throw": "a"}, {"val": [[1]]}]},
    {"try": [{"throw": {"type": "X"}}, {"var": "type"}]},
    {"try": [{"throw": {"preserve": {"type": "X", "code": 7}}}, {"var": "code"}]},
    {"try": [{"throw": None}, {"var": "type"}]},
    {"throw": {"preserve": {"type": 5}}},
    {"throw": [1, 2]},
    {"??": {"var": "list"}},
    {"??": {"preserve": [None, None]}},
    {"val": []},
    {"val": None},
    {"val": "a.b"},
    {"exists": []},
    {"var": True},
    {"var": 1.5},
    {"var": ["obj.a.b.1.c", 1]},
    {"frobnicate": [1]},
    {"method": ["a", "toUpperCase"]},
    {"a": 1, "b": 2},
    {},
]


@dataclass
class _Case:
    rule: Any
    data: Any
    now: str

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "data": self.data, "now": self.now}


def _cases() -> list[_Case]:
    rng = random.Random(20240115)
    cases = [_Case(rule, _RECORD, rng.choice(NOWS)) for rule in _TRICKY]
    generator = _Generator(rng)
    for _ in range(1500):
        cases.append(_Case(generator.expression(4), rng.choice(_DATA), rng.choice(NOWS)))
    for _ in range(800):
        cases.append(_Case(_chaos_rule(rng), rng.choice(_DATA), rng.choice(NOWS)))
    for _ in range(400):
        # Mostly well-formed date arithmetic, where the results (not the errors) must agree.
        value = rng.choice([*_DATES[:13], {"var": "dt"}, {"now": []}])
        amount = rng.choice([*_AMOUNTS[:9], *_AMOUNTS[14:]])
        rule = {"date_add": [value, amount, rng.choice(_UNITS[:12])]}
        if rng.random() < 0.3:
            rule = {rng.choice(["days_between", "years_between"]): [value, rng.choice(_DATES[:13])]}
        cases.append(_Case(rule, _RECORD, rng.choice(NOWS)))
    for text in _mutated_dates(rng, 600):
        rule = {rng.choice(["days_between", "years_between"]): ["2024-01-01", text]}
        if rng.random() < 0.6:
            rule = {"date_add": [text, rng.choice([0, 1, -1.5, 0.0000005]), "second"]}
        cases.append(_Case(rule, None, NOWS[0]))
    for _ in range(400):
        # The wall clock in a zone: around DST changes, midnights and odd offsets.
        start = datetime(
            rng.randint(1971, 2037), rng.randint(1, 12), rng.randint(1, 28), tzinfo=UTC
        )
        moment = start + timedelta(seconds=rng.randint(0, 86_400 * 3))
        value = rng.choice(
            [
                moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                moment.strftime("%Y-%m-%dT%H:%M:%S.%f+05:45"),
                moment.strftime("%Y-%m-%dT%H:%M"),
                moment.date().isoformat(),
                {"var": "dt"},
                None,
            ]
        )
        args = [value] if rng.random() < 0.2 else [value, rng.choice(_ZONES)]
        cases.append(_Case({rng.choice(["hour_of", "weekday_of"]): args}, _RECORD, NOWS[0]))
    for text in _mutated_dates(rng, 100):
        cases.append(_Case({"hour_of": [text, "Asia/Shanghai"]}, None, NOWS[0]))
    for value, width in _bin_cases(rng):
        cases.append(_Case({"bin_of": [{"var": "v"}, width]}, {"v": value}, NOWS[0]))
    for case in [*load_classic(CONFORMANCE), *load_compat(CONFORMANCE)]:
        cases.append(_Case(case.rule, case.data, NOWS[0]))
    # What logic.js receives is JSON; evaluate exactly that on the server side too.
    roundtrip: list[_Case] = [
        _Case(**item) for item in json.loads(json.dumps([c.to_json() for c in cases]))
    ]
    return roundtrip


# bin_of: values on and beside the edges k * width (as the double k * width and as the
# decimal), fractional widths, and what is not a number or not a width.
_BIN_VALUES: list[Any] = [
    *(0.3, 0.30000000000000004, -0.1, 1e-9, -1e-9, 1e-10, -1e-10, 0, -0.0, 0.7, -0.5),
    *(0.0999999999999, 0.09999999, 3_000_000_000, 3e9, 2**53, 1e15, 1e21, 5e-324, -5e-324),
    *(1e308, 123.456, 2.675, "3", "", None, True, False, [1], {"a": 1}),
]
_BIN_WIDTHS: list[Any] = [
    *(0.1, 0.25, 0.3, 0.5, 1, 2.5, 7, 1e-6, 0.001, 0.123456789, 1e15, 5.0, 1e-300, 3.14),
    *(0, -1, -0.5, None, "1", True, [1]),
]


def _bin_cases(rng: random.Random) -> Iterator[tuple[Any, Any]]:
    for value in _BIN_VALUES:
        for width in _BIN_WIDTHS:
            yield value, width
    widths = [w for w in _BIN_WIDTHS[:14] if w != 1e-300]
    for _ in range(600):
        width = rng.choice(widths)
        k = rng.randint(-10_000, 10_000)
        yield (
            rng.choice(
                [
                    k * width,  # the double: just above or below the edge
                    float(Decimal(k) * Decimal(repr(width))),  # the decimal edge
                    round(rng.uniform(-1_000, 1_000), rng.randint(0, 12)),
                    rng.uniform(-1e6, 1e6),
                ]
            ),
            width,
        )


@dataclass
class _Outcome:
    result: Any = None
    error: dict[str, Any] | None = None
    unsafe: bool = False


def _python_outcomes(cases: list[_Case], monkeypatch: pytest.MonkeyPatch) -> list[_Outcome]:
    # Watch the server's arithmetic for integers beyond 2**53 (exact in Python only).
    tidy = python_evaluator.tidy_number
    unsafe = False

    def watched(value: Any, operator: str) -> Any:
        nonlocal unsafe
        result = tidy(value, operator)
        if type(result) is int and abs(result) > SAFE_INTEGER:
            unsafe = True
        return result

    monkeypatch.setattr(python_evaluator, "tidy_number", watched)
    outcomes = []
    for case in cases:
        unsafe = False
        outcome = _Outcome()
        try:
            outcome.result = evaluate(case.rule, case.data, now=datetime.fromisoformat(case.now))
        except LogicError as error:
            outcome.error = {"code": type(error).__name__, "value": error.error_value}
        outcome.unsafe = unsafe
        outcomes.append(outcome)
    return outcomes


def _javascript_outcomes(cases: list[_Case], tmp_path: Path) -> dict[str, Any]:
    batch = tmp_path / "cases.json"
    batch.write_text(json.dumps([case.to_json() for case in cases]), encoding="utf-8")
    run = subprocess.run(
        [_node(), str(HERE / "evaluate_cases.mjs"), str(batch)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    # JavaScript numbers are doubles: an integer literal beyond 2**53 in its output is one
    # (7666960129294054000 is the double Python writes as 7.666960129294054e+18).
    answer: dict[str, Any] = json.loads(run.stdout, parse_int=_javascript_integer)
    return answer


def _javascript_integer(text: str) -> int | float:
    number = int(text)
    return number if abs(number) <= SAFE_INTEGER else float(number)


def _has_whole_float(value: Any) -> bool:
    """A number like ``2.0``: JSON's one number type hides it from JavaScript."""
    if type(value) is float:
        return value.is_integer()
    if type(value) is list:
        return any(_has_whole_float(item) for item in value)
    if type(value) is dict:
        return any(_has_whole_float(item) for item in value.values())
    return False


def _describe(outcome: _Outcome | dict[str, Any]) -> str:
    if isinstance(outcome, _Outcome):
        return json.dumps(outcome.error or {"result": outcome.result}, ensure_ascii=False)
    return json.dumps({k: v for k, v in outcome.items() if k != "variables"}, ensure_ascii=False)


def test_javascript_and_python_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = _cases()
    assert len(cases) > 4500
    answer = _javascript_outcomes(cases, tmp_path)
    assert set(answer["operators"]) == set(OPERATORS)

    python = _python_outcomes(cases, monkeypatch)
    mismatches = []
    skipped = errors = 0
    for case, server, browser in zip(cases, python, answer["results"], strict=True):
        # variables() takes a whole float such as 0.0 for a computed path ("*"); logic.js
        # cannot tell it from 0 (docs/jsonlogic.md, "In the browser").
        if set(browser["variables"]) != variables(case.rule) and not _has_whole_float(case.rule):
            mismatches.append(f"variables({json.dumps(case.rule)}): {browser['variables']}")
        if server.unsafe:
            skipped += 1
            continue
        if server.error is not None:
            errors += 1
            agree = browser.get("error") is not None and (
                browser["error"]["code"] == server.error["code"]
                and json_equal(browser["error"]["value"], server.error["value"])
            )
        else:
            agree = "result" in browser and json_equal(browser["result"], server.result)
        if not agree:
            mismatches.append(
                f"{json.dumps(case.rule, ensure_ascii=False)} with {json.dumps(case.data)} "
                f"(now {case.now}): python {_describe(server)}, js {_describe(browser)}"
            )
    assert not mismatches, f"{len(mismatches)} disagreements:\n" + "\n".join(mismatches[:25])
    # The comparison must be about real outcomes: plenty of results and plenty of errors.
    assert skipped <= len(cases) // 100
    assert len(cases) // 5 < errors < len(cases) * 4 // 5
