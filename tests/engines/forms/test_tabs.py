"""The form-level ``layout`` setting (docs/forms.md, Tabs): each top-level section is a tab.

Only the display changes: the compiled schema and what ``prepare`` stores are the same for a
form shown as sections and as tabs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from formloom.engines.forms import FormSpec, compile_schema, definition_errors

from .factory import codes, field, form_dict, make_form, ok, options

FIELDS = (
    field("name", "text", required=True),
    field("contact", "section", label="Contact"),
    field("phone", "phone"),
    field("details", "section", label="Details"),
    field("kind", "select", options=options("billing", "care")),
    field("invoice", "text", required=True, visible_if={"==": [{"var": "kind"}, "billing"]}),
)


def problems(*fields: dict[str, Any], **attrs: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        FormSpec.model_validate(form_dict(*fields, **attrs))
    return [(item["pointer"], item["code"]) for item in definition_errors(caught.value)]


def test_sections_are_the_default_layout() -> None:
    assert make_form(*FIELDS).layout == "sections"


def test_tabs_layout_is_accepted_with_sections() -> None:
    form = make_form(*FIELDS, layout="tabs")
    assert form.layout == "tabs"
    assert [f.key for f in form.fields if f.field_type == "section"] == ["contact", "details"]


def test_tabs_need_a_section() -> None:
    assert problems(field("name"), layout="tabs") == [("/layout", "tabs_without_sections")]


def test_unknown_layout_is_an_error() -> None:
    found = problems(*FIELDS, layout="columns")
    assert [pointer for pointer, _ in found] == ["/layout"]


def test_layout_changes_neither_schema_nor_stored_data() -> None:
    plain, tabbed = make_form(*FIELDS), make_form(*FIELDS, layout="tabs")
    assert compile_schema(plain) == compile_schema(tabbed)
    data = {"name": "Ann", "phone": "+44 20 7946 0000", "kind": "care", "invoice": "kept?"}
    assert ok(plain, data) == ok(tabbed, data)
    # the hidden invoice number is dropped the same way in both; shown, it is required in both
    assert "invoice" not in ok(tabbed, data)
    billing = {"name": "Ann", "kind": "billing"}
    assert codes(plain, billing) == codes(tabbed, billing) == [("/data/invoice", "required")]


def test_layout_round_trips_through_the_definition() -> None:
    form = make_form(*FIELDS, layout="tabs")
    again = FormSpec.model_validate(form.model_dump(mode="json", exclude_none=True))
    assert again == form
