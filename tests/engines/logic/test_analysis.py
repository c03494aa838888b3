"""Static analysis: variables(rule) and check_expression(rule), and the operator registry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from formloom.engines.logic import OPERATORS, check_expression, evaluate, variables
from formloom.engines.logic.analysis import ARITY, LIST_ONLY
from tests.conformance.jsonlogic_suites import load_classic, load_compat


def test_every_operator_has_a_known_arity() -> None:
    assert set(ARITY) == set(OPERATORS)
    assert LIST_ONLY <= OPERATORS


def test_operator_names() -> None:
    classic = {
        "var",
        "missing",
        "missing_some",
        "if",
        "?:",
        "==",
        "===",
        "!=",
        "!==",
        "!",
        "!!",
        "or",
        "and",
        ">",
        ">=",
        "<",
        "<=",
        "max",
        "min",
        "+",
        "-",
        "*",
        "/",
        "%",
        "map",
        "filter",
        "reduce",
        "all",
        "some",
        "none",
        "merge",
        "in",
        "cat",
        "substr",
        "log",
    }
    newer = {"val", "exists", "??", "try", "throw", "preserve"}
    extensions = {
        "now",
        "today",
        "date_add",
        "days_between",
        "years_between",
        "hour_of",
        "weekday_of",
        "bin_of",
        "contains",
        "is_empty",
    }
    assert classic | newer | extensions == OPERATORS


# -- variables ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"==": [{"var": "status"}, "open"]}, {"status"}),
        ({"and": [{"var": "a.b"}, {"var": ["c", {"var": "d"}]}]}, {"a.b", "c", "d"}),
        ({"var": 1}, {"1"}),
        ({"var": ""}, {"*"}),  # the whole record
        ({"var": {"cat": ["field_", {"var": "n"}]}}, {"*", "n"}),
        ({"val": ["a", "b"]}, {"a.b"}),
        ({"exists": "x"}, {"x"}),
        ({"missing": ["a", "b"]}, {"a", "b"}),
        ({"missing": "a"}, {"a"}),
        ({"missing_some": [1, ["x", "y"]]}, {"x", "y"}),
        (
            {"missing": {"merge": ["vin", {"if": [{"var": "financing"}, ["apr"], []]}]}},
            {"*", "financing"},
        ),
        # Inside an iterator, paths are relative to the element: only the array is a field.
        ({"map": [{"var": "items"}, {"*": [{"var": "qty"}, 2]}]}, {"items"}),
        (
            {
                "reduce": [
                    {"var": "rows"},
                    {"+": [{"var": "accumulator"}, {"var": "current.x"}]},
                    {"var": "start"},
                ]
            },
            {"rows", "start"},
        ),
        # ...unless a val climbs back to the record.
        (
            {"filter": [{"var": "people"}, {"==": [{"var": "dept"}, {"val": [[2], "dept"]}]}]},
            {"people", "dept"},
        ),
        ({"some": [{"var": "a"}, {"all": [{"var": "b"}, {"val": [[4], "top"]}]}]}, {"a", "top"}),
        ({"try": [{"var": "x"}, {"var": "type"}]}, {"x"}),  # a fallback reads the error
        ({"preserve": {"var": "x"}}, set()),
        ({"if": [True, 1, 2]}, set()),
    ],
)
def test_variables(rule: Any, expected: set[str]) -> None:
    assert variables(rule) == expected


def test_variables_of_the_classic_suite_never_fail() -> None:
    for case in load_classic():
        assert isinstance(variables(case.rule), set)
        assert isinstance(variables(case.rule, now=NOW), set)


NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
ID_NUMBER = {"cat": ["id_", "number"]}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"var": ID_NUMBER}, {"id_number"}),
        ({"var": [ID_NUMBER, "x"]}, {"id_number"}),
        ({"var": {"if": [True, "id_number", "x"]}}, {"id_number"}),
        ({"var": {"substr": ["id_number_zz", 0, 9]}}, {"id_number"}),
        ({"var": {"cat": [{"cat": ["i"]}, "d_number"]}}, {"id_number"}),
        ({"!": {"missing": ID_NUMBER}}, {"id_number"}),
        ({"missing": [ID_NUMBER, "name"]}, {"id_number", "name"}),
        ({"missing_some": [1, [ID_NUMBER, "name"]]}, {"id_number", "name"}),
        ({"val": ID_NUMBER}, {"id_number"}),
        ({"==": [{"var": {"cat": ["a", {"today": []}]}}, 1]}, {"a2026-12-03"}),
        # a name computed from data cannot be known beforehand
        ({"var": {"var": "which"}}, {"which", "*"}),
        ({"var": {"cat": ["id_", {"var": "x"}]}}, {"x", "*"}),
        # an expression that fails is not a name
        ({"var": {"throw": "no"}}, {"*"}),
    ],
)
def test_variables_work_out_names_written_as_expressions(rule: Any, expected: set[str]) -> None:
    assert variables(rule, now=NOW) == expected
    # without a clock a computed name stays unknown
    assert "*" in variables(rule) or not any(
        isinstance(v, dict) for v in (rule.get("var"), rule.get("val"))
    )


def test_a_worked_out_name_is_the_one_the_evaluator_reads() -> None:
    data = {"id_number": "110101199001011234", "name": "Li"}
    for rule in (
        {"var": ID_NUMBER},
        {"var": {"if": [True, "id_number", "name"]}},
        {"var": {"substr": ["id_number_zz", 0, 9]}},
    ):
        [name] = variables(rule, now=NOW)
        assert evaluate(rule, data, now=NOW) == data[name]


# -- check_expression --------------------------------------------------------------------------


def test_a_well_formed_rule_has_no_problems() -> None:
    rule = {
        "if": [
            {"and": [{">=": [{"var": "age"}, 18]}, {"in": ["vip", {"var": "tags"}]}]},
            {"date_add": [{"today": []}, 1, "month"]},
            None,
        ]
    }
    assert check_expression(rule) == []


def test_rules_the_public_suites_evaluate_are_well_formed() -> None:
    # No false alarms: nothing that the classic suite or the compat tables evaluate to a
    # result is reported as a problem.
    cases = load_classic() + [case for case in load_compat() if not case.expects_error]
    flagged = [case.rule for case in cases if check_expression(case.rule)]
    assert flagged == []


@pytest.mark.parametrize(
    ("rule", "problems"),
    [
        (
            {"and": [{"foo": 1}, {"substr": ["a"]}]},
            [
                ("/and/0", "unknown operator 'foo'"),
                ("/and/1", "'substr' takes 2 to 3 arguments, got 1"),
            ],
        ),
        ({"if": "x"}, [("", "'if' needs a list of arguments")]),
        ({"/": [1, {"!": [1, 2]}]}, [("/~1/1", "'!' takes at most 1 argument, got 2")]),
        (
            {"map": [None, None]},
            [("", "'map': the array is null"), ("", "'map': the expression is null")],
        ),
        ({"var": [1, 2, 3]}, [("", "'var' takes at most 2 arguments, got 3")]),
        ({"in": "x"}, [("", "'in' takes 2 arguments, got 1")]),
        ({"%": [1]}, [("", "'%' takes at least 2 arguments, got 1")]),
        ({"today": ["x"]}, [("", "'today' takes 0 arguments, got 1")]),
        ({"a~b/c": 1}, [("", "unknown operator 'a~b/c'")]),
        ([1, {"x": {"y": []}}], [("/1", "unknown operator 'x'"), ("/1/x", "unknown operator 'y'")]),
    ],
)
def test_check_expression(rule: Any, problems: list[tuple[str, str]]) -> None:
    assert check_expression(rule) == problems


def test_date_unit_is_checked() -> None:
    [(pointer, message)] = check_expression({"date_add": ["2024-01-01", 1, "fortnight"]})
    assert pointer == "" and "fortnight" in message
    assert check_expression({"date_add": ["2024-01-01", 1, "days"]}) == []


def test_dynamic_argument_lists_are_not_counted() -> None:
    # {"+": {"var": "xs"}} spreads whatever list xs holds: no count to check.
    assert check_expression({"+": {"var": "xs"}}) == []
    assert check_expression({"is_empty": {"var": "x"}}) == []


@pytest.mark.parametrize(
    "rule",
    [{"if": "x"}, {"frob": 1}, {"map": [None, None]}, {"%": [1]}],
)
def test_reported_problems_are_real(rule: Any) -> None:
    # Whatever check_expression flags as unrunnable also fails at run time.
    with pytest.raises(Exception):  # noqa: B017 - any LogicError subclass
        evaluate(rule)
