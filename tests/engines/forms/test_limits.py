"""prepare() stays cheap whatever it is sent: lists longer than a field can hold are one
problem, a record stops being checked after MAX_ERRORS problems, uniqueness is linear.

No timings here: each test pins the behaviour that keeps the work bounded (issue 19: a create
with 50,000 empty table rows took 24 s and answered 50,004 errors)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from formloom.engines.forms import RecordInvalid, prepare
from formloom.engines.forms.compiled import DEFAULT_MAX_ROWS, Validator
from formloom.engines.forms.record import MAX_ERRORS

from .factory import NOW, codes, errors_of, field, make_form, ok, options

LINES = field(
    "lines",
    "table",
    fields=[
        field("item", required=True),
        field("qty", "integer", min=1, default=1),
        field("tags", "multiselect", options=options("a", "b")),
    ],
)


def refused(form: Any, incoming: dict[str, Any]) -> RecordInvalid:
    with pytest.raises(RecordInvalid) as caught:
        prepare(form, incoming, now=NOW)
    return caught.value


# -- rows per table ----------------------------------------------------------------------


def test_a_table_takes_at_most_the_default_number_of_rows() -> None:
    form = make_form(field("name"), LINES)
    rows = [{"item": f"i{n}"} for n in range(DEFAULT_MAX_ROWS)]
    assert len(ok(form, {"lines": rows})["lines"]) == DEFAULT_MAX_ROWS
    (error,) = errors_of(form, {"lines": [*rows, {"item": "one more"}]})
    assert (error.path, error.code, error.field) == ("/data/lines", "max_rows", "lines")
    assert error.message == f"Lines allows at most {DEFAULT_MAX_ROWS} rows (1001 were sent)"


def test_fifty_thousand_empty_rows_are_one_problem_not_fifty_thousand() -> None:
    form = make_form(field("name", required=True), LINES)
    assert codes(form, {"lines": [{} for _ in range(50_000)]}) == [
        ("/data/name", "required"),
        ("/data/lines", "max_rows"),
    ]


def test_max_rows_overrides_the_default_both_ways() -> None:
    many = field("lines", "table", max_rows=2500, fields=[field("item")])
    few = field("lines", "table", max_rows=2, fields=[field("item")])
    rows = [{"item": "x"}] * 1500
    assert len(ok(make_form(many), {"lines": rows})["lines"]) == 1500
    (error,) = errors_of(make_form(few), {"lines": rows})
    assert error.code == "max_rows"
    assert error.message == "Lines allows at most 2 rows (1500 were sent)"


def test_an_oversized_table_on_update_keeps_the_stored_rows_out_of_the_answer() -> None:
    form = make_form(LINES)
    stored = ok(form, {"lines": [{"item": "kept"}]})
    error = refused(form, {"lines": [{}] * (DEFAULT_MAX_ROWS + 1)}).errors
    assert [(e.path, e.code) for e in error] == [("/data/lines", "max_rows")]
    # the same write as an update: refused the same way, nothing else reported
    assert codes(form, {"lines": [{}] * (DEFAULT_MAX_ROWS + 1)}, existing=stored) == [
        ("/data/lines", "max_rows")
    ]


# -- multiselect lists -------------------------------------------------------------------


def test_a_multiselect_cannot_list_more_values_than_it_has_options() -> None:
    form = make_form(field("tags", "multiselect", options=options("a", "b", "c")))
    assert ok(form, {"tags": ["c", "a", "b"]}) == {"tags": ["c", "a", "b"]}
    (error,) = errors_of(form, {"tags": ["a"] * 50_000})
    assert (error.path, error.code) == ("/data/tags", "max_items")
    assert error.message == "Tags has 3 options, each allowed once (50000 were sent)"
    # a short list still says exactly what is wrong with it
    assert codes(form, {"tags": ["a", "a"]}) == [("/data/tags", "duplicate")]


def test_a_multiselect_max_items_below_its_options_is_the_bound() -> None:
    form = make_form(field("tags", "multiselect", options=options("a", "b", "c"), max_items=2))
    (error,) = errors_of(form, {"tags": [{"x": n} for n in range(10_000)]})
    assert (error.code, error.message) == (
        "max_items",
        "Tags allows at most 2 choices (10000 were sent)",
    )


def test_a_multiselect_cell_in_a_row_is_bounded_too() -> None:
    form = make_form(LINES)
    assert codes(form, {"lines": [{"item": "x", "tags": ["a"] * 1000}]}) == [
        ("/data/lines/0/tags", "max_items")
    ]


# -- how many problems are reported ------------------------------------------------------


def test_problems_below_the_cap_are_all_reported() -> None:
    form = make_form(field("name"))
    caught = refused(form, {f"k{n:03d}": 1 for n in range(MAX_ERRORS)})
    assert len(caught.errors) == MAX_ERRORS
    assert caught.truncated is False


def test_thousands_of_unknown_fields_stop_at_the_cap() -> None:
    form = make_form(field("name"))
    caught = refused(form, {f"k{n:05d}": 1 for n in range(20_000)})
    assert len(caught.errors) == MAX_ERRORS
    assert caught.truncated is True
    assert {error.code for error in caught.errors} == {"unknown_field"}


def test_bad_rows_stop_at_the_cap_in_row_order() -> None:
    form = make_form(LINES)
    rows = [{"item": 5, "qty": "many"} for _ in range(DEFAULT_MAX_ROWS)]
    caught = refused(form, {"lines": rows})
    assert caught.truncated is True
    assert len(caught.errors) == MAX_ERRORS
    row_numbers = [int(error.path.split("/")[3]) for error in caught.errors]
    assert row_numbers == sorted(row_numbers) and row_numbers[0] == 0
    assert {error.code for error in caught.errors} == {"type"}


def test_rows_missing_a_required_column_stop_at_the_cap() -> None:
    form = make_form(LINES)
    caught = refused(form, {"lines": [{}] * DEFAULT_MAX_ROWS})
    assert caught.truncated is True
    assert [error.path for error in caught.errors[:2]] == [
        "/data/lines/0/item",
        "/data/lines/1/item",
    ]


# -- uniqueness ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "items",
    [
        [1, 1.0],
        [1, True],
        [0, False],
        [True, False],
        ["1", 1],
        [{"a": 1}, {"a": 1.0}],
        [{"a": 1}, {"a": True}],
        [{"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}],
        [[1, "a"], ["a", 1]],
        [[], {}],
        [None, None],
        [{"a": 1, "b": 2}, {"b": 2, "a": 1}],
        [1, "a", {"x": 1}, [2], None, 3.5],
    ],
)
def test_uniqueness_means_what_jsonschema_means(items: list[Any]) -> None:
    schema = {"type": "array", "uniqueItems": True}
    assert Validator(schema).is_valid(items) == Draft202012Validator(schema).is_valid(items)


def test_uniqueness_never_compares_items_pair_by_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    """jsonschema's own check falls back to comparing every pair when items cannot be
    sorted (5,000 objects took 36 s); ours hashes each item once."""

    def pairwise(*_: Any) -> bool:
        raise AssertionError("uniqueItems compared items pair by pair")

    monkeypatch.setattr(jsonschema._keywords, "uniq", pairwise)
    schema = {"type": "array", "uniqueItems": True}
    assert Validator(schema).is_valid([{"n": n} for n in range(2000)])
    assert not Validator(schema).is_valid([{"n": 1}, "x", {"n": 1}])
