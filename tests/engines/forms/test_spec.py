"""Form definitions: what is accepted, and every definition error with its location."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from formloom.engines.forms import (
    FormSpec,
    SelectField,
    TableField,
    definition_errors,
    field_types,
    indexed_fields,
    label_text,
    unique_fields,
)

from .factory import field, form_dict, make_form, options


def problems(*fields: dict[str, Any], **attrs: Any) -> list[tuple[str, str]]:
    """``(pointer, code)`` of each definition error."""
    with pytest.raises(ValidationError) as caught:
        FormSpec.model_validate(form_dict(*fields, **attrs))
    return [(item["pointer"], item["code"]) for item in definition_errors(caught.value)]


def test_a_full_form_parses_into_typed_fields() -> None:
    form = make_form(
        field("name", "text", label={"en": "Name", "zh-CN": "姓名"}, required=True),
        field("kind", "select", options=[{"value": "a", "label": "Alpha"}]),
        field("items", "table", fields=[field("qty", "integer")]),
        title_field="name",
        sensitive=True,
    )
    assert isinstance(form.fields[1], SelectField)
    assert isinstance(form.fields[2], TableField)
    assert form.fields[1].options[0].title == "Alpha"
    assert form.field("name") is form.fields[0]
    assert form.sensitive


def test_specs_are_immutable() -> None:
    form = make_form(field("name"))
    with pytest.raises(ValidationError):
        form.key = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        form.fields[0].key = "other"  # type: ignore[misc]


def test_unknown_attributes_are_errors() -> None:
    assert problems(field("name", "text", requird=True)) == [
        ("/fields/0/requird", "extra_forbidden")
    ]
    with pytest.raises(ValidationError):
        FormSpec.model_validate({**form_dict(field("a")), "titel": "x"})


def test_unknown_type_is_an_error() -> None:
    assert problems(field("a", "colour")) == [("/fields/0", "union_tag_invalid")]


def test_bad_key() -> None:
    assert problems(field("Name")) == [("/fields/0/key", "string_pattern_mismatch")]
    assert problems(field("a" * 64)) == [("/fields/0/key", "string_pattern_mismatch")]


def test_duplicate_field_keys() -> None:
    assert problems(field("a"), field("b"), field("a", "number")) == [
        ("/fields/2/key", "duplicate_key")
    ]


def test_reserved_keys() -> None:
    assert problems(field("created_at", "datetime")) == [("/fields/0/key", "reserved_key")]


def test_duplicate_keys_within_a_table_but_not_across() -> None:
    assert problems(
        field("a"), field("t", "table", fields=[field("a"), field("b"), field("b", "number")])
    ) == [("/fields/1/fields/2/key", "duplicate_key")]


def test_select_with_duplicate_option_values() -> None:
    assert problems(field("s", "select", options=options("a", "b", "a"))) == [
        ("/fields/0/options/2/value", "duplicate_option")
    ]
    assert problems(field("m", "multiselect", options=options("x", "x"))) == [
        ("/fields/0/options/1/value", "duplicate_option")
    ]


def test_select_needs_options() -> None:
    assert problems(field("s", "select", options=[])) == [("/fields/0/options", "too_short")]


@pytest.mark.parametrize(
    ("definition", "pointer"),
    [
        (field("n", "number", min=5, max=1), "/fields/0/min"),
        (field("n", "integer", min=5, max=1), "/fields/0/min"),
        (field("t", "text", min_length=5, max_length=2), "/fields/0/min_length"),
        (field("t", "text", min_length=1001), "/fields/0/min_length"),
        (field("d", "date", min="2024-01-02", max="2024-01-01"), "/fields/0/min"),
        (
            field("d", "datetime", min="2024-01-01T08:00:00+08:00", max="2023-12-31T23:00:00Z"),
            "/fields/0/min",
        ),
        (field("t", "time", min="10:00", max="09:59"), "/fields/0/min"),
        (
            field("m", "multiselect", options=options("a"), min_items=3, max_items=2),
            "/fields/0/min_items",
        ),
        (field("t", "table", fields=[field("a")], min_rows=3, max_rows=2), "/fields/0/min_rows"),
    ],
)
def test_min_above_max(definition: dict[str, Any], pointer: str) -> None:
    assert problems(definition) == [(pointer, "min_above_max")]


def test_invalid_limits() -> None:
    assert problems(field("d", "date", min="2023-02-30")) == [("/fields/0/min", "invalid_limit")]
    assert problems(field("d", "datetime", max="2024-01-01T00:00:00")) == [
        ("/fields/0/max", "invalid_limit")
    ]


def test_invalid_regex_pattern() -> None:
    assert problems(field("t", "text", pattern="([a-z")) == [
        ("/fields/0/pattern", "invalid_pattern")
    ]


@pytest.mark.parametrize(
    ("definition", "pointer"),
    [
        (field("n", "integer", default="x"), "/fields/0/default"),
        (field("n", "integer", default=1.5), "/fields/0/default"),
        (field("n", "integer", max=10, default=11), "/fields/0/default"),
        (field("s", "select", options=options("a"), default="b"), "/fields/0/default"),
        (
            field("m", "multiselect", options=options("a"), default=["a", "z"]),
            "/fields/0/default/1",
        ),
        (field("d", "date", default="2024-02-30"), "/fields/0/default"),
        (
            field("t", "table", fields=[field("q", "integer", min=1)], default=[{"q": 0}]),
            "/fields/0/default/0/q",
        ),
    ],
)
def test_default_not_matching_the_field(definition: dict[str, Any], pointer: str) -> None:
    assert problems(definition) == [(pointer, "invalid_default")]


def test_default_and_default_expr_together() -> None:
    assert problems(field("d", "date", default="2024-01-01", default_expr={"today": []})) == [
        ("/fields/0/default_expr", "default_conflict")
    ]


def test_title_field_must_be_a_value_field() -> None:
    assert problems(field("a"), title_field="nope") == [("/title_field", "unknown_title_field")]
    assert problems(field("a"), field("t", "table", fields=[field("x")]), title_field="t") == [
        ("/title_field", "invalid_title_field")
    ]
    assert problems(field("s", "section"), field("a"), title_field="s") == [
        ("/title_field", "invalid_title_field")
    ]


def test_relation_needs_a_target() -> None:
    assert problems(field("r", "relation")) == [("/fields/0/target", "missing")]


def test_computed_depending_on_itself() -> None:
    assert problems(field("a", "computed", formula={"+": [{"var": "a"}, 1]})) == [
        ("/fields/0/formula", "computed_cycle")
    ]


def test_computed_cycle_through_other_computed_fields() -> None:
    found = problems(
        field("x", "number"),
        field("a", "computed", formula={"var": "b"}, result_type="number"),
        field("b", "computed", formula={"+": [{"var": "c"}, {"var": "x"}]}, result_type="number"),
        field("c", "computed", formula={"*": [{"var": "a"}, 2]}, result_type="number"),
        field("d", "computed", formula={"var": "a"}, result_type="number"),
    )
    assert found == [
        ("/fields/1/formula", "computed_cycle"),
        ("/fields/2/formula", "computed_cycle"),
        ("/fields/3/formula", "computed_cycle"),
    ]


def test_computed_cycle_inside_a_table() -> None:
    assert problems(
        field(
            "t",
            "table",
            fields=[
                field("a", "computed", formula={"var": "b"}),
                field("b", "computed", formula={"var": "a"}),
            ],
        )
    ) == [
        ("/fields/0/fields/0/formula", "computed_cycle"),
        ("/fields/0/fields/1/formula", "computed_cycle"),
    ]


def test_visible_if_reading_its_own_field() -> None:
    assert problems(field("a", visible_if={"!!": [{"var": "a"}]})) == [
        ("/fields/0/visible_if", "self_reference")
    ]


def test_unknown_operator_is_located_inside_the_expression() -> None:
    found = problems(field("a", visible_if={"and": [True, {"frobnicate": [1]}]}))
    assert found == [("/fields/0/visible_if/and/1", "invalid_expression")]


def test_unique_and_indexed_not_on_table_columns() -> None:
    assert problems(field("t", "table", fields=[field("a", unique=True)])) == [
        ("/fields/0/fields/0/unique", "not_supported")
    ]


def test_tables_cannot_nest_and_columns_cannot_be_sections() -> None:
    nested = field("t", "table", fields=[field("u", "table", fields=[field("a")])])
    assert ("/fields/0/fields/0", "union_tag_invalid") in problems(nested)
    section = field("t", "table", fields=[field("s", "section")])
    assert ("/fields/0/fields/0", "union_tag_invalid") in problems(section)


def test_every_error_is_reported_at_once() -> None:
    found = problems(
        field("a", "number", min=3, max=1),
        field("a"),
        field("s", "select", options=options("x", "x")),
        title_field="zzz",
    )
    assert found == [
        ("/fields/0/min", "min_above_max"),
        ("/fields/2/options/1/value", "duplicate_option"),
    ]
    # Field-level errors stop the form-level checks (pydantic validates inside out); once
    # fields are valid, the form-level ones are all reported together.
    assert problems(
        field("a"), field("a"), field("c", "computed", formula={"var": "c"}), title_field="zzz"
    ) == [
        ("/fields/1/key", "duplicate_key"),
        ("/fields/2/formula", "computed_cycle"),
        ("/title_field", "unknown_title_field"),
    ]


def test_messages_of_definition_errors_are_readable() -> None:
    with pytest.raises(ValidationError) as caught:
        FormSpec.model_validate(form_dict(field("n", "integer", max=10, default=11)))
    (error,) = definition_errors(caught.value)
    assert error["message"] == "the default is not a valid value: N must be at most 10"


def test_format_json_schema_is_generated_from_the_models() -> None:
    schema = FormSpec.model_json_schema()
    assert schema["$defs"]["TextField"]["additionalProperties"] is False
    for model, definition in [("FormSpec", schema), *schema["$defs"].items()]:
        for name, attribute in definition.get("properties", {}).items():
            assert attribute.get("description"), f"{model}.{name}"


def test_helpers_about_fields() -> None:
    form = make_form(
        field("name", unique=True, indexed=True),
        field("phone", "phone", indexed=True),
        field("head", "section"),
        field("bmi", "computed", formula={"var": "x"}, result_type="number", unique=True),
        field("items", "table", fields=[field("q", "integer")]),
    )
    assert unique_fields(form) == ["name", "bmi"]
    assert indexed_fields(form) == ["name", "phone", "bmi"]
    assert field_types(form) == {
        "name": "text",
        "phone": "phone",
        "bmi": "number",
        "items": "table",
    }


@pytest.mark.parametrize(
    ("label", "locale", "text"),
    [
        ("Patient", "zh-CN", "Patient"),
        ({"en": "Patient", "zh-CN": "患者"}, "zh-CN", "患者"),
        ({"en": "Patient", "zh-CN": "患者"}, "zh", "患者"),
        ({"en": "Patient", "zh": "患者"}, "zh-TW", "患者"),
        ({"en": "Patient", "zh-CN": "患者"}, "fr", "Patient"),
        ({"en-GB": "Patient", "zh-CN": "患者"}, "fr", "Patient"),
        ({"zh-CN": "患者", "ja": "患者さん"}, "fr", "患者"),
        (None, "en", ""),
    ],
)
def test_label_text(label: Any, locale: str, text: str) -> None:
    assert label_text(label, locale) == text
