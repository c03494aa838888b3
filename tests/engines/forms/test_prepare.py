"""prepare(): keys, merge, defaults, visibility, computed fields, tables, collected errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from formloom.engines.forms import (
    RecordInvalid,
    changed_fields,
    prepare,
    relation_values,
    title_of,
)

from .factory import NOW, codes, errors_of, field, make_form, ok, options

# -- keys ----------------------------------------------------------------------------------


def test_unknown_keys_are_refused() -> None:
    form = make_form(field("name"))
    assert codes(form, {"name": "x", "nmae": "y"}) == [("/data/nmae", "unknown_field")]
    (error,) = errors_of(form, {"nmae": "y"})
    assert error.message == "'nmae' is not a field of Test"
    assert error.field == "nmae"


def test_data_must_be_an_object() -> None:
    form = make_form(field("name"))
    with pytest.raises(RecordInvalid) as caught:
        prepare(form, ["x"], now=NOW)  # type: ignore[arg-type]
    assert [(e.path, e.code) for e in caught.value.errors] == [("/data", "type")]


def test_computed_fields_are_never_written() -> None:
    form = make_form(field("a", "number"), field("b", "computed", formula={"var": "a"}))
    assert codes(form, {"a": 1, "b": "1"}) == [("/data/b", "read_only")]
    assert codes(form, {"b": None}, existing={"a": 1, "b": "1"}) == [("/data/b", "read_only")]


# -- read_only -----------------------------------------------------------------------------


def test_read_only_takes_its_default_and_refuses_other_values() -> None:
    form = make_form(
        field("name"),
        field("status", "select", options=options("new", "done"), read_only=True, default="new"),
    )
    assert ok(form, {"name": "x"}) == {"name": "x", "status": "new"}
    assert ok(form, {"name": "x", "status": "new"}) == {"name": "x", "status": "new"}
    assert codes(form, {"status": "done"}) == [("/data/status", "read_only")]
    (error,) = errors_of(form, {"status": "done"})
    assert error.message == "Status is read-only"


def test_read_only_on_update_tolerates_the_stored_value_only() -> None:
    form = make_form(field("name"), field("status", read_only=True))
    stored = {"name": "x", "status": "closed"}
    assert ok(form, {"status": "closed", "name": "y"}, existing=stored) == {
        "name": "y",
        "status": "closed",
    }
    assert codes(form, {"status": "open"}, existing=stored) == [("/data/status", "read_only")]
    assert codes(form, {"status": None}, existing=stored) == [("/data/status", "read_only")]


def test_server_rules_may_write_read_only_fields() -> None:
    form = make_form(field("status", read_only=True))
    assert ok(form, {"status": "open"}, allow_read_only=True) == {"status": "open"}


# -- PATCH merge ---------------------------------------------------------------------------


def test_update_merges_onto_existing_and_null_clears() -> None:
    form = make_form(field("a"), field("b"), field("c", "integer"))
    stored = {"a": "1", "b": "2", "c": 3}
    assert ok(form, {"b": "two", "c": None}, existing=stored) == {"a": "1", "b": "two"}
    assert stored == {"a": "1", "b": "2", "c": 3}  # not mutated


def test_update_validates_the_merged_record() -> None:
    form = make_form(field("a", required=True), field("b"))
    assert codes(form, {"a": None}, existing={"a": "x"}) == [("/data/a", "required")]


def test_keys_of_removed_fields_are_dropped_from_existing_data() -> None:
    form = make_form(field("a"))
    assert ok(form, {"a": "y"}, existing={"a": "x", "gone": 1}) == {"a": "y"}


# -- defaults ------------------------------------------------------------------------------


def test_defaults_apply_on_create_only_and_only_for_absent_keys() -> None:
    form = make_form(
        field("visit_date", "date", default_expr={"today": []}),
        field("seen_at", "datetime", default_expr={"now": []}),
        field("follow_up", "date", default_expr={"date_add": [{"today": []}, 7, "day"]}),
        field("priority", "select", options=options("low", "high"), default="low"),
        field("tags", "multiselect", options=options("a", "b"), default=["a"]),
        field("note"),
    )
    assert ok(form, {}) == {
        "visit_date": "2024-05-01",
        "seen_at": "2024-05-01T09:30:00Z",
        "follow_up": "2024-05-08",
        "priority": "low",
        "tags": ["a"],
    }
    # An explicit null means "no value", not "use the default".
    assert ok(form, {"priority": None, "tags": ["b"]})["tags"] == ["b"]
    assert "priority" not in ok(form, {"priority": None})
    # No defaults on update.
    assert ok(form, {"note": "x"}, existing={}) == {"note": "x"}


def test_default_expr_sees_now_in_its_time_zone() -> None:
    form = make_form(field("day", "date", default_expr={"today": []}))
    shanghai = timezone(timedelta(hours=8))
    late = datetime(2024, 5, 1, 20, 0, tzinfo=UTC).astimezone(shanghai)
    assert ok(form, {}, now=late) == {"day": "2024-05-02"}


def test_default_expr_can_read_the_input() -> None:
    form = make_form(
        field("start", "date"),
        field("end", "date", default_expr={"date_add": [{"var": "start"}, 1, "month"]}),
    )
    assert ok(form, {"start": "2024-01-31"}) == {"start": "2024-01-31", "end": "2024-02-29"}


def test_default_list_is_copied_not_shared() -> None:
    form = make_form(field("tags", "multiselect", options=options("a", "b"), default=["a"]))
    first = ok(form, {})
    first["tags"].append("b")
    assert ok(form, {}) == {"tags": ["a"]}


# -- visibility ----------------------------------------------------------------------------


def test_hidden_required_field_is_not_required_and_not_stored() -> None:
    form = make_form(
        field("kind", "select", options=options("person", "company")),
        field("company", required=True, visible_if={"==": [{"var": "kind"}, "company"]}),
    )
    assert ok(form, {"kind": "person", "company": "ACME"}) == {"kind": "person"}
    assert codes(form, {"kind": "company"}) == [("/data/company", "required")]


def test_visibility_chain_reaches_a_fixpoint() -> None:
    # c depends on b, b on a; fields listed in reverse so one pass is not enough.
    form = make_form(
        field("c", required=True, visible_if={"==": [{"var": "b"}, "yes"]}),
        field("b", visible_if={"var": "a"}),
        field("a", "boolean"),
    )
    assert ok(form, {"a": False, "b": "yes", "c": "kept?"}) == {"a": False}
    assert ok(form, {"a": True, "b": "yes", "c": "kept"}) == {"a": True, "b": "yes", "c": "kept"}
    assert codes(form, {"a": True, "b": "yes"}) == [("/data/c", "required")]
    assert ok(form, {"a": True, "b": "no"}) == {"a": True, "b": "no"}


def test_visibility_chain_in_form_order() -> None:
    form = make_form(
        field("a", "boolean"),
        field("b", visible_if={"var": "a"}),
        field("c", "integer", visible_if={"==": [{"var": "b"}, "yes"]}),
    )
    assert ok(form, {"a": False, "b": "yes", "c": 1}) == {"a": False}


def test_a_field_shown_only_while_another_is_hidden() -> None:
    form = make_form(
        field("a", "boolean"),
        field("b", visible_if={"var": "a"}),
        field("c", visible_if={"!": [{"var": "b"}]}),
    )
    assert ok(form, {"a": False, "b": "x", "c": "y"}) == {"a": False, "c": "y"}
    assert ok(form, {"a": True, "b": "x", "c": "y"}) == {"a": True, "b": "x"}


def test_hidden_section_hides_its_fields_until_the_next_section() -> None:
    form = make_form(
        field("pregnant", "boolean"),
        field("pregnancy", "section", visible_if={"var": "pregnant"}),
        field("due_date", "date", required=True),
        field("weeks", "integer"),
        field("other", "section"),
        field("notes"),
    )
    data = {"pregnant": False, "weeks": 12, "notes": "x"}
    assert ok(form, data) == {"pregnant": False, "notes": "x"}
    assert codes(form, {"pregnant": True}) == [("/data/due_date", "required")]


def test_visibility_can_read_computed_fields() -> None:
    form = make_form(
        field("dob", "date"),
        field(
            "age",
            "computed",
            formula={"years_between": [{"var": "dob"}, {"today": []}]},
            result_type="integer",
        ),
        field("guardian", required=True, visible_if={"<": [{"var": "age"}, 18]}),
    )
    assert codes(form, {"dob": "2010-06-01"}) == [("/data/guardian", "required")]
    assert ok(form, {"dob": "1980-06-01", "guardian": "x"}) == {"dob": "1980-06-01", "age": 43}


def test_rules_over_multiselect() -> None:
    form = make_form(
        field("tags", "multiselect", options=options("pregnant", "smoker")),
        field("due_date", "date", visible_if={"in": ["pregnant", {"var": "tags"}]}),
    )
    assert ok(form, {"tags": ["smoker"], "due_date": "2024-09-01"}) == {"tags": ["smoker"]}
    assert ok(form, {"tags": ["pregnant"], "due_date": "2024-09-01"})["due_date"] == "2024-09-01"


def test_visibility_on_update_keeps_values_that_became_hidden_until_cleared() -> None:
    form = make_form(
        field("smoker", "boolean"), field("per_day", "integer", visible_if={"var": "smoker"})
    )
    stored = {"smoker": True, "per_day": 10}
    assert ok(form, {"smoker": False}, existing=stored) == {"smoker": False, "per_day": 10}
    cleared = ok(form, {"smoker": False, "per_day": None}, existing=stored)
    assert cleared == {"smoker": False}
    # a new value sent for the hidden field replaces the kept one
    assert ok(form, {"smoker": False, "per_day": 3}, existing=stored)["per_day"] == 3
    # shown again, the kept value is back
    assert ok(form, {"smoker": True}, existing={"smoker": False, "per_day": 10})["per_day"] == 10


def test_kept_hidden_values_are_not_seen_by_later_rules_or_formulas() -> None:
    form = make_form(
        field("a", "boolean"),
        field("b", visible_if={"var": "a"}),
        field("c", required=True, visible_if={"var": "b"}),
        field("echo", "computed", formula={"cat": ["<", {"var": "b"}, ">"]}),
    )
    stored = {"a": True, "b": "yes", "c": "x"}
    data = ok(form, {"a": False}, existing=stored)
    # b and c are kept though hidden; c is hidden because its rule does not see b, and the
    # formula does not see b either
    assert data == {"a": False, "b": "yes", "c": "x", "echo": "<>"}
    assert ok(form, {"a": False, "c": None}, existing=stored) == {
        "a": False,
        "b": "yes",
        "echo": "<>",
    }


def test_a_kept_hidden_value_is_still_validated() -> None:
    form = make_form(field("a", "boolean"), field("n", "integer", visible_if={"var": "a"}))
    stored = {"a": True, "n": 1}
    assert codes(form, {"a": False, "n": "many"}, existing=stored)[0][0] == "/data/n"


# -- computed ------------------------------------------------------------------------------


def test_computed_chain_in_dependency_order() -> None:
    form = make_form(
        field(
            "total",
            "computed",
            formula={"+": [{"var": "subtotal"}, {"var": "tax"}]},
            result_type="number",
        ),
        field("tax", "computed", formula={"*": [{"var": "subtotal"}, 0.1]}, result_type="number"),
        field(
            "subtotal",
            "computed",
            formula={"*": [{"var": "qty"}, {"var": "price"}]},
            result_type="number",
        ),
        field("qty", "integer"),
        field("price", "number"),
        field("label", "computed", formula={"cat": ["x", {"var": "qty"}]}),
    )
    data = ok(form, {"qty": 2, "price": 50})
    assert data == {
        "qty": 2,
        "price": 50,
        "subtotal": 100,
        "tax": 10.0,
        "total": 110.0,
        "label": "x2",
    }


def test_computed_result_types() -> None:
    form = make_form(
        field("x", "number"),
        field("i", "computed", formula={"var": "x"}, result_type="integer"),
        field("b", "computed", formula={">": [{"var": "x"}, 1]}, result_type="boolean"),
        field(
            "d",
            "computed",
            formula={"date_add": ["2024-01-01T10:00:00Z", 1, "day"]},
            result_type="date",
        ),
        field("t", "computed", formula={"var": "x"}, result_type="text"),
    )
    assert ok(form, {"x": 2.6}) == {"x": 2.6, "i": 3, "b": True, "d": "2024-01-02", "t": "2.6"}
    assert ok(form, {}) == {"b": False, "d": "2024-01-02"}


def test_computed_value_of_the_wrong_type_is_reported() -> None:
    form = make_form(field("x"), field("n", "computed", formula={"var": "x"}, result_type="number"))
    (error,) = errors_of(form, {"x": "abc"})
    assert (error.path, error.code) == ("/data/n", "computed")
    assert error.message == "N did not compute to a number (got 'abc')"


def test_recomputed_on_update() -> None:
    form = make_form(
        field("a", "integer"),
        field("double", "computed", formula={"*": [{"var": "a"}, 2]}, result_type="integer"),
    )
    assert ok(form, {"a": 5}, existing={"a": 1, "double": 2}) == {"a": 5, "double": 10}


# -- tables --------------------------------------------------------------------------------

ITEMS = field(
    "items",
    "table",
    min_rows=1,
    max_rows=3,
    fields=[
        field("product", "relation", target="product", required=True),
        field("qty", "integer", min=1, default=1),
        field("price", "number", min=0),
        field(
            "line",
            "computed",
            formula={"*": [{"var": "qty"}, {"var": "price"}]},
            result_type="number",
        ),
        field("reason", required=True, visible_if={">": [{"var": "qty"}, {"var": "max_qty"}]}),
        field("when", "date", max="2024-12-31"),
    ],
)


def test_table_rows_are_normalised_defaulted_and_computed() -> None:
    form = make_form(field("max_qty", "integer", default=10), ITEMS)
    data = ok(
        form,
        {
            "items": [
                {"product": "p1", "price": 2.5, "line": 999},
                {"product": "p2", "qty": 3, "price": 1},
            ]
        },
    )
    assert data["items"] == [
        {"product": "p1", "price": 2.5, "qty": 1, "line": 2.5},
        {"product": "p2", "qty": 3, "price": 1, "line": 3},
    ]


def test_table_row_errors_carry_the_row_index() -> None:
    form = make_form(field("max_qty", "integer", default=10), ITEMS)
    rows = [
        {"product": "p1", "qty": 0, "price": 1},
        {"qty": 2, "price": -1, "colour": "red"},
        {"product": "p3", "qty": 20, "when": "2025-01-01"},
    ]
    assert codes(form, {"items": rows}) == [
        ("/data/items/0/qty", "min"),
        ("/data/items/1/product", "required"),
        ("/data/items/1/price", "min"),
        ("/data/items/1/colour", "unknown_field"),
        ("/data/items/2/reason", "required"),
        ("/data/items/2/when", "max"),
    ]
    messages = [error.message for error in errors_of(form, {"items": rows})]
    assert messages[0] == "Items, row 1: Qty must be at least 1"
    assert messages[3] == "Items, row 2: 'colour' is not a column"
    assert messages[5] == "Items, row 3: When must be on or before 2024-12-31"
    assert {error.field for error in errors_of(form, {"items": rows})} == {"items"}


def test_table_row_counts() -> None:
    form = make_form(field("max_qty", "integer", default=10), ITEMS)
    assert codes(form, {"items": []}) == [("/data/items", "min_rows")]
    row = {"product": "p"}
    assert codes(form, {"items": [row] * 4}) == [("/data/items", "max_rows")]
    assert codes(form, {"items": "x"}) == [("/data/items", "type")]
    assert codes(form, {"items": [row, "x"]}) == [("/data/items/1", "type")]


def test_read_only_columns_keep_their_row_values() -> None:
    form = make_form(
        field("rows", "table", fields=[field("a"), field("stamp", read_only=True, default="s")])
    )
    stored = ok(form, {"rows": [{"a": "x"}]})
    assert stored == {"rows": [{"a": "x", "stamp": "s"}]}
    assert ok(form, {"rows": [{"a": "y", "stamp": "s"}]}, existing=stored) == {
        "rows": [{"a": "y", "stamp": "s"}]
    }
    assert codes(form, {"rows": [{"a": "y", "stamp": "t"}]}, existing=stored) == [
        ("/data/rows/0/stamp", "read_only")
    ]


# -- all errors at once --------------------------------------------------------------------


def test_all_errors_are_collected_in_form_order() -> None:
    form = make_form(
        field("name", required=True),
        field("phone", "phone", required=True),
        field("age", "integer", max=150),
        field("email", "email"),
        field("visit", "datetime"),
        field("kind", "select", options=options("a")),
        field("total", "computed", formula={"var": "age"}),
        ITEMS,
        field("max_qty", "integer"),
    )
    found = codes(
        form,
        {
            "zzz": 1,
            "age": 151,
            "email": "nope",
            "visit": "2024-05-01T10:00",
            "kind": "b",
            "total": "1",
            "items": [{"qty": 2}],
            "max_qty": 5.5,
        },
    )
    assert found == [
        ("/data/zzz", "unknown_field"),
        ("/data/name", "required"),
        ("/data/phone", "required"),
        ("/data/age", "max"),
        ("/data/email", "format"),
        ("/data/visit", "format"),
        ("/data/kind", "option"),
        ("/data/total", "read_only"),
        ("/data/items/0/product", "required"),
        ("/data/max_qty", "type"),
    ]


# -- helpers -------------------------------------------------------------------------------


def test_relation_values_lists_top_level_and_row_relations() -> None:
    form = make_form(
        field("doctor", "relation", target="staff"), ITEMS, field("max_qty", "integer")
    )
    data = {"doctor": "u1", "items": [{"product": "p1"}, {"qty": 1}, {"product": "p3"}]}
    assert relation_values(form, data) == [
        ("doctor", "staff", "u1"),
        ("items/0/product", "product", "p1"),
        ("items/2/product", "product", "p3"),
    ]


def test_changed_fields() -> None:
    assert changed_fields({"a": 1, "b": 2, "c": [1]}, {"a": 1, "b": 3, "c": [1], "d": None}) == [
        "b",
        "d",
    ]
    assert changed_fields({"a": 1}, {}) == ["a"]


def test_title_of() -> None:
    form = make_form(
        field(
            "kind", "select", options=[{"value": "vip", "label": {"en": "VIP", "zh-CN": "贵宾"}}]
        ),
        field("name"),
        title_field="kind",
    )
    assert title_of(form, {"kind": "vip"}) == "VIP"
    assert title_of(form, {"kind": "vip"}, "zh-CN") == "贵宾"
    assert title_of(form, {}) is None
    untitled = make_form(field("n", "integer"), field("name"), field("other"))
    assert title_of(untitled, {"name": "Ann", "other": "x"}) == "Ann"
    assert title_of(make_form(field("n", "integer")), {"n": 1}) is None


def test_read_only_table_tolerates_its_own_rows_back() -> None:
    form = make_form(
        field(
            "rows",
            "table",
            read_only=True,
            fields=[
                field("a", "integer"),
                field("twice", "computed", formula={"*": [{"var": "a"}, 2]}, result_type="integer"),
            ],
        )
    )
    stored = ok(form, {"rows": [{"a": 1}]}, allow_read_only=True)
    assert stored == {"rows": [{"a": 1, "twice": 2}]}
    assert ok(form, {"rows": stored["rows"]}, existing=stored) == stored
    assert codes(form, {"rows": [{"a": 2}]}, existing=stored) == [("/data/rows", "read_only")]
