"""``bin_of``: floor(value / width) in decimal arithmetic, in the evaluator and its analysis.

The same cases are in tests/ui/logic.test.mjs (the browser's evaluator); the SQL compiler's
bin numbers are checked against these in test_sql.py."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any

import pytest

from formloom.engines.logic import InvalidArguments, NotANumber, check_expression, evaluate
from formloom.engines.logic.bins import bin_of, width_scale

CASES: list[tuple[Any, Any, int]] = [
    (0.3, 0.1, 3),  # 0.3 / 0.1 is 2.9999999999999996 in doubles
    (0.30000000000000004, 0.1, 3),
    (0.7, 0.1, 7),
    (-0.1, 0.1, -1),
    (-0.10000000000000001, 0.1, -1),  # the same double as -0.1
    (1e-9, 0.1, 0),
    (-1e-9, 0.1, -1),
    (0.75, 0.25, 3),
    (0.74, 0.25, 2),
    (-0.25, 0.25, -1),
    (0.9, 0.3, 3),
    (0.6, 0.3, 2),
    (-0.6, 0.3, -2),
    (-0.5, 1, -1),
    (-0.0, 1, 0),
    (0, 0.1, 0),
    (3_000_000_000, 1, 3_000_000_000),
    (3e9, 0.5, 6_000_000_000),
    (2**53, 1, 2**53),
    (1e15, 1e15, 1),
    (0.0999999999999, 0.1, 1),  # rounded to 9 decimals of the width's units first
    (0.09999999, 0.1, 0),
    (123.456, 1e-6, 123_456_000),
    (5e-324, 1, 0),
    (-5e-324, 1, 0),  # rounded to 9 decimals: 0, not just below it
    (-1e-10, 1, 0),
    (-1e-9, 1, -1),
]


@pytest.mark.parametrize(("value", "width", "expected"), CASES)
def test_the_bin_of_a_number_in_decimal(value: Any, width: Any, expected: int) -> None:
    assert evaluate({"bin_of": [value, width]}) == expected
    assert evaluate({"bin_of": [{"var": "v"}, width]}, {"v": value}) == expected
    assert type(evaluate({"bin_of": [value, width]})) is int


def test_huge_integers_are_exact() -> None:
    assert evaluate({"bin_of": [12_345_678_901_234_567_891, 1]}) == 12_345_678_901_234_567_891
    assert evaluate({"bin_of": [-(10**20) - 1, 10]}) == -(10**19) - 1
    with pytest.raises(NotANumber, match="too large"):
        evaluate({"bin_of": [1e308, 1e-6]})  # beyond any double, as other arithmetic


@pytest.mark.parametrize("value", [None, "3", "", "0.5", True, False, [1], {"a": 1}])
def test_what_is_not_a_number_has_no_bin(value: Any) -> None:
    assert evaluate({"bin_of": [{"var": "v"}, 0.5]}, {"v": value}) is None
    assert evaluate({"bin_of": [{"var": "missing"}, 0.5]}, {}) is None
    assert bin_of(math.inf, 1) is None and bin_of(math.nan, 1) is None


@pytest.mark.parametrize("width", [0, -1, -0.5, None, "1", True, [1], math.inf, math.nan])
def test_the_width_must_be_a_positive_number(width: Any) -> None:
    for value in (1, None):
        with pytest.raises(InvalidArguments, match="the width must be a positive number"):
            evaluate({"bin_of": [value, width]})


def test_argument_count_and_analysis() -> None:
    for args in ([1], [1, 1, 1], []):
        with pytest.raises(InvalidArguments, match="takes 2 arguments"):
            evaluate({"bin_of": args})
    assert check_expression({"bin_of": [{"var": "w"}, 0.5]}) == []
    assert check_expression({"bin_of": [{"var": "w"}]}) == [
        ("", "'bin_of' takes 2 arguments, got 1")
    ]
    [(pointer, message)] = check_expression({"in": [{"bin_of": [{"var": "w"}, 0]}, [1]]})
    assert pointer == "/in/0" and "the width must be a positive number" in message
    assert check_expression({"bin_of": [{"var": "w"}, {"var": "width"}]}) == []


def test_width_scale() -> None:
    assert width_scale(0.25) == (100, 25)
    assert width_scale(0.1) == (10, 1)
    assert width_scale(5) == (1, 5)
    assert width_scale(1e15) == (1, 10**15)
    assert width_scale(1e-7) == (10**7, 1)
    assert width_scale(2.5e-3) == (10_000, 25)


def test_random_values_agree_with_exact_decimal_division() -> None:
    """Away from the 9-decimal rounding (values of at most 6 decimals), the bin is exactly
    floor(Decimal(value) / Decimal(width)); values on an edge k * width land in bin k,
    however the double k * width is written."""
    rng = random.Random(7)
    for _ in range(5_000):
        width = rng.choice([0.1, 0.25, 0.3, 0.5, 1, 2.5, 7, 0.001, 1e-6, 100])
        value = round(rng.uniform(-1_000, 1_000), rng.randint(0, 6))
        exact = math.floor(Decimal(repr(value)) / Decimal(repr(width)))
        assert evaluate({"bin_of": [value, width]}) == exact, (value, width)
        k = rng.randint(-5_000, 5_000)
        edge = float(Decimal(k) * Decimal(repr(width)))
        assert evaluate({"bin_of": [edge, width]}) == k, (edge, width)
        assert evaluate({"bin_of": [k * width, width]}) in (k - 1, k, k + 1)
