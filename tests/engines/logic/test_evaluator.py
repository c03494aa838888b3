"""Semantics of the evaluator beyond the public suites: coercions, scopes, errors, robustness."""

from __future__ import annotations

import random
from typing import Any

import pytest

from formloom.engines.logic import (
    OPERATORS,
    InvalidArguments,
    LogicError,
    NotANumber,
    ThrownError,
    UnknownOperator,
    evaluate,
)
from formloom.engines.logic.coercion import number_to_string, parse_number, to_string
from tests.conformance.jsonlogic_suites import json_equal


def same(got: Any, want: Any) -> bool:
    return json_equal(got, want)


# -- literals and dispatch ---------------------------------------------------------------------


def test_literals_pass_through_and_lists_are_evaluated() -> None:
    assert evaluate({"a": 1, "b": 2}) == {"a": 1, "b": 2}  # two keys: data, not a call
    assert evaluate({}) == {}
    assert evaluate([1, {"var": "x"}, [{"var": "y"}]], {"x": 2, "y": 3}) == [1, 2, [3]]


def test_unknown_operator_is_a_logic_error() -> None:
    with pytest.raises(UnknownOperator) as caught:
        evaluate({"frobnicate": [1]})
    assert caught.value.operator == "frobnicate"
    assert isinstance(caught.value, LogicError)


def test_preserve_returns_its_argument_unevaluated() -> None:
    assert evaluate({"preserve": {"var": "x"}}, {"x": 1}) == {"var": "x"}


# -- truthiness and logic ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, False),
        (0.0, False),
        ("", False),
        ([], False),
        (None, False),
        (False, False),
        ("0", True),
        ({}, True),
        ([0], True),
        (-1, True),
        (" ", True),
    ],
)
def test_truthiness(value: Any, expected: bool) -> None:
    assert evaluate({"!!": [{"preserve": value}]}) is expected
    assert evaluate({"!": [{"preserve": value}]}) is (not expected)


def test_unary_not_does_not_spread_a_list_value() -> None:
    # {"!": {"var": "tags"}} asks "are there no tags?", whatever the tags are.
    assert evaluate({"!": {"var": "tags"}}, {"tags": [""]}) is False
    assert evaluate({"!": {"var": "tags"}}, {"tags": []}) is True


def test_and_or_are_lazy_and_return_operands() -> None:
    boom = {"throw": "not lazy"}
    assert evaluate({"and": [0, boom]}) == 0
    assert evaluate({"or": ["x", boom]}) == "x"
    assert evaluate({"if": [True, "yes", boom]}) == "yes"
    assert evaluate({"and": []}) is False


@pytest.mark.parametrize("op", ["if", "and", "or", "==", "<", "map", "some"])
def test_control_operators_need_a_literal_list(op: str) -> None:
    with pytest.raises(InvalidArguments):
        evaluate({op: {"preserve": [1, 2]}})


# -- equality and ordering ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (1, "1", True),
        (1, 1.0, True),
        (0, False, True),
        (1, True, True),
        ("1", True, True),
        ("abc", True, False),
        (None, None, True),
        (None, 0, True),
        (None, False, True),
        (None, "", True),
        (None, "x", False),
        (None, 1, False),
        ("", 0, True),
        (" 2 ", 2, True),
        ("a", "a", True),
        ("1", "1.0", False),
    ],
)
def test_loose_equality(a: Any, b: Any, expected: bool) -> None:
    assert evaluate({"==": [a, b]}) is expected
    assert evaluate({"==": [b, a]}) is expected
    assert evaluate({"!=": [a, b]}) is (not expected)


@pytest.mark.parametrize(("a", "b"), [(1, "A"), ([], []), ([1], 1), ({}, {}), ("x", {})])
def test_loose_equality_without_an_answer_raises_nan(a: Any, b: Any) -> None:
    with pytest.raises(NotANumber):
        evaluate({"==": [{"preserve": a}, {"preserve": b}]})


def test_strict_equality_is_deep_and_type_aware() -> None:
    assert evaluate({"===": [1, 1.0]}) is True
    assert evaluate({"===": [1, True]}) is False
    assert evaluate({"===": [{"preserve": [1, {"a": None}]}, {"preserve": [1.0, {"a": None}]}]})
    assert evaluate({"!==": [{"preserve": [1]}, {"preserve": [True]}]}) is True


def test_ordering() -> None:
    assert evaluate({"<": ["2024-01-01", "2024-02-01"]}) is True  # ISO dates order as text
    assert evaluate({"<": ["10", 9]}) is False  # numeric when one side is a number
    assert evaluate({"<": ["10", "9"]}) is True  # two strings compare as strings
    assert evaluate({"<": [None, 1]}) is True
    assert evaluate({"<": [None, "x"]}) is False
    assert evaluate({"<=": [1, 2, 2]}) is True and evaluate({"<": [1, 2, 2]}) is False
    with pytest.raises(NotANumber):
        evaluate({">": [1, "one"]})
    with pytest.raises(NotANumber):
        evaluate({">": [{"preserve": [2]}, 1]})


# -- arithmetic --------------------------------------------------------------------------------


def test_arithmetic_coerces_like_javascript_number() -> None:
    assert evaluate({"+": ["1", 2.5, True, None, "", " 4 ", "1e2", "0x10"]}) == 124.5
    assert evaluate({"*": ["3", "0.5"]}) == 1.5
    assert evaluate({"-": "5"}) == -5
    assert evaluate({"/": 4}) == 0.25


def test_whole_results_are_ints_and_large_ints_stay_exact() -> None:
    result = evaluate({"/": [6, 3]})
    assert result == 2 and type(result) is int
    assert type(evaluate({"*": [1.5, 2]})) is int
    assert evaluate({"+": [2**60, 1]}) == 2**60 + 1
    assert evaluate({"/": [2**60 * 3, 3]}) == 2**60


def test_modulo_takes_the_dividends_sign() -> None:
    assert evaluate({"%": [-8, 3]}) == -2
    assert evaluate({"%": [8, -3]}) == 2
    assert evaluate({"%": [7.5, 2]}) == 1.5


@pytest.mark.parametrize(
    "rule",
    [
        {"/": [1, 0]},
        {"/": 0},
        {"%": [5, 0]},
        {"+": ["apple"]},
        {"*": [{"preserve": [1]}, 2]},
        {"-": [{"preserve": {}}]},
        {"*": [1e308, 10]},
        {"*": [10**200, 10**200]},
    ],
)
def test_no_numeric_answer_raises_nan(rule: Any) -> None:
    with pytest.raises(NotANumber):
        evaluate(rule)


def test_empty_min_max_is_null() -> None:
    assert evaluate({"max": []}) is None
    assert evaluate({"min": {"var": "scores"}}, {"scores": [3, "1", 2]}) == 1


def test_chained_arguments_spread_a_computed_list() -> None:
    assert evaluate({"+": {"var": "xs"}}, {"xs": [1, 2, 3]}) == 6
    assert evaluate({"cat": {"var": "parts"}}, {"parts": ["a", 1, None, True]}) == "a1true"


# -- strings -----------------------------------------------------------------------------------


def test_cat_writes_values_like_javascript() -> None:
    assert evaluate({"cat": [1.0, 0.5, 1e21, 1e-7, None, False, {"preserve": [1, [2]]}]}) == (
        "10.51e+211e-7false1,2"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (123e18, "123000000000000000000"),
        (1.5e300, "1.5e+300"),
        (10**22, "1e+22"),
        (2.5, "2.5"),
    ],
)
def test_number_to_string(value: float, text: str) -> None:
    assert number_to_string(value) == text


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("", 0),
        ("  ", 0),
        ("12", 12),
        ("-3", -3),
        ("+3", 3),
        ("1.50", 1.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("0x1F", 31),
        ("0b11", 3),
        ("abc", None),
        ("1_000", None),
        ("nan", None),
        ("Infinity", None),
        ("٣", None),
        ("1 2", None),
    ],
)
def test_parse_number(text: str, number: float | None) -> None:
    assert parse_number(text) == number


def test_to_string_of_objects() -> None:
    assert to_string({"a": 1}) == "[object Object]"


def test_substr_and_in() -> None:
    assert evaluate({"substr": ["héllo wörld", -5]}) == "wörld"
    assert evaluate({"substr": ["abcdef", 1, -2]}) == "bcd"
    assert evaluate({"substr": ["abcdef", "2", "2.9"]}) == "cd"
    assert evaluate({"in": [1, [1.0, 2]]}) is True
    assert evaluate({"in": [1, [True]]}) is False
    assert evaluate({"in": [None, "abc"]}) is False
    assert evaluate({"in": ["a", None]}) is False
    with pytest.raises(InvalidArguments):
        evaluate({"in": ["a", 5]})


# -- data access and scopes --------------------------------------------------------------------


def test_var_paths_defaults_and_indexes() -> None:
    data = {"a": {"b": [10, {"c": "deep"}]}, "n": None, "zero": 0}
    assert evaluate({"var": "a.b.1.c"}, data) == "deep"
    assert evaluate({"var": "a.b.5"}, data) is None
    assert evaluate({"var": ["a.x", "fallback"]}, data) == "fallback"
    assert evaluate({"var": ["n", "fallback"]}, data) == "fallback"  # null counts as no value
    assert evaluate({"var": ["zero", 9]}, data) == 0
    assert evaluate({"var": "a.b.-1"}, data) is None
    assert evaluate({"var": ""}, data) is data
    with pytest.raises(InvalidArguments):
        evaluate({"var": {"preserve": {"a": 1}}}, data)


def test_val_and_exists_take_literal_keys() -> None:
    data = {"a.b": 1, "a": {"b": 2}, "n": None}
    assert evaluate({"val": "a.b"}, data) == 1
    assert evaluate({"val": ["a", "b"]}, data) == 2
    assert evaluate({"exists": "n"}, data) is True
    assert evaluate({"exists": ["a", "c"]}, data) is False


def test_iterators_see_the_element_and_can_climb_to_the_record() -> None:
    data = {"rate": 2, "rows": [{"qty": 1}, {"qty": 4}]}
    rule = {"map": [{"var": "rows"}, {"*": [{"var": "qty"}, {"val": [[2], "rate"]}]}]}
    assert evaluate(rule, data) == [2, 8]
    indexed = {"map": [{"var": "rows"}, {"val": [[1], "index"]}]}
    assert evaluate(indexed, data) == [0, 1]
    assert evaluate({"map": [[1], {"val": [[9], "x"]}]}) == [None]  # above the top: null


def test_reduce_without_initial_value() -> None:
    assert (
        evaluate({"reduce": [[1, 2, 3], {"*": [{"var": "accumulator"}, {"var": "current"}]}]}) == 6
    )
    assert evaluate({"reduce": [[], {"var": "current"}]}) is None


def test_missing_array_in_quantifiers_raises_but_map_gives_empty() -> None:
    assert evaluate({"map": [{"var": "rows"}, 1]}, {}) == []
    with pytest.raises(InvalidArguments):
        evaluate({"some": [{"var": "rows"}, True]}, {})
    # The documented idiom for optional lists: a default.
    assert evaluate({"some": [{"var": ["rows", []]}, True]}, {}) is False


def test_missing_and_missing_some() -> None:
    data = {"a": 1, "b": "", "c": None}
    assert evaluate({"missing": ["a", "b", "c", "d"]}, data) == ["b", "c", "d"]
    assert evaluate({"missing_some": [1, ["a", "d"]]}, data) == []
    with pytest.raises(InvalidArguments):
        evaluate({"missing_some": [1, "a"]}, data)


# -- errors: throw / try -----------------------------------------------------------------------


def test_throw_and_try() -> None:
    with pytest.raises(ThrownError) as caught:
        evaluate({"throw": "Overdue"})
    assert caught.value.error_value == {"type": "Overdue"}
    assert evaluate({"try": [{"/": [1, 0]}, {"cat": ["caught ", {"var": "type"}]}]}) == "caught NaN"
    assert evaluate({"try": [{"throw": {"type": "X", "code": 7}}, {"var": "code"}]}) == 7
    assert evaluate({"try": [{"frob": []}, {"var": "type"}]}) == "Unknown Operator"
    assert evaluate({"try": []}) is None


def test_coalesce() -> None:
    assert evaluate({"??": [{"var": "a"}, {"var": "b"}, 3]}, {"b": 0}) == 0
    assert evaluate({"??": {"var": "xs"}}, {"xs": [None, "x"]}) == "x"


# -- robustness --------------------------------------------------------------------------------

_ATOMS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2.5,
    1e308,
    10**30,
    "",
    "0",
    "a",
    "1e2",
    " 3 ",
    "2024-01-31",
    "2024-02-29T10:00:00Z",
    "day",
    "x.y",
    [],
    {},
    [1, 2],
    {"a": 1},
    [[1]],
    ".",
    "nan",
    "٣",
]
_DATA: list[Any] = [None, {}, {"a": {"b": [1, 2]}, "x": "2024-01-31", "n": 5}, [1, 2, 3], "s", 7]


def _random_rule(rng: random.Random, depth: int = 0) -> Any:
    operators = sorted(OPERATORS)

    def value(level: int) -> Any:
        roll = rng.random()
        if level > 3 or roll < 0.4:
            return rng.choice(_ATOMS)
        if roll < 0.6:
            return [value(level + 1) for _ in range(rng.randint(0, 3))]
        return _random_rule(rng, level + 1)

    op = rng.choice(operators)
    if rng.random() < 0.7:
        return {op: [value(depth) for _ in range(rng.randint(0, 4))]}
    return {op: value(depth)}


def test_only_logic_errors_escape_for_any_json() -> None:
    rng = random.Random(20240115)
    for _ in range(5000):
        rule = _random_rule(rng)
        data = rng.choice(_DATA)
        try:
            evaluate(rule, data)
        except LogicError as error:
            # The evaluator's safety net must never be what caught it.
            assert "cannot evaluate rule" not in str(error), (rule, data)


def test_deep_nesting_is_a_logic_error() -> None:
    rule: Any = 1
    for _ in range(5000):
        rule = {"!": [rule]}
    with pytest.raises(LogicError):
        evaluate(rule)
