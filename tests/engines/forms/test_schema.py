"""The compiled JSON Schema, the cached validator and the fast pre-check's contract."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from formloom.engines.forms import FormSpec, compile_schema, compiled
from formloom.engines.forms.fastcheck import UnsupportedSchema, compile_check

from .factory import field, form_dict, make_form, ok, options
from .test_types import CASES, FILE


def test_schema_of_a_form() -> None:
    form = make_form(
        field("name", "text", label={"en": "Name", "zh-CN": "姓名"}, required=True, help="Full"),
        field("age", "integer", min=0, max=150),
        field("kind", "select", options=options("a", "b"), default="a"),
        field("phone", "phone", required=True, visible_if={"==": [{"var": "kind"}, "a"]}),
        field("more", "section", visible_if={"var": "age"}),
        field("note", "text", required=True),
        field("total", "computed", formula={"+": [{"var": "age"}, 1]}, result_type="integer"),
        description={"en": "People", "fr": "Gens"},
    )
    schema = compile_schema(form)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "Test"
    assert schema["description"] == "People"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    # phone has visible_if and note sits in a conditional section: the engine checks those.
    assert schema["required"] == ["name"]
    assert list(schema["properties"]) == ["name", "age", "kind", "phone", "note", "total"]
    assert schema["properties"]["name"] == {
        "title": "Name",
        "description": "Full",
        "type": "string",
        "maxLength": 1000,
    }
    assert schema["properties"]["age"]["minimum"] == 0
    assert schema["properties"]["kind"]["enum"] == ["a", "b"]
    assert schema["properties"]["kind"]["default"] == "a"
    assert schema["properties"]["total"] == {
        "title": "Total",
        "type": "integer",
        "readOnly": True,
    }


def test_table_schema_is_an_array_of_closed_row_objects() -> None:
    form = make_form(
        field(
            "items",
            "table",
            min_rows=1,
            max_rows=3,
            fields=[field("qty", "integer", required=True), field("note", "text")],
        )
    )
    items = compile_schema(form)["properties"]["items"]
    assert items["type"] == "array"
    assert items["minItems"] == 1 and items["maxItems"] == 3
    assert items["items"]["additionalProperties"] is False
    assert items["items"]["required"] == ["qty"]


def test_schema_describes_stored_formats() -> None:
    form = make_form(
        field("d", "date", min="2020-01-01"),
        field("dt", "datetime"),
        field("t", "time"),
        field("e", "email"),
        field("u", "url"),
        field("f", "image", multiple=True),
    )
    properties = compile_schema(form)["properties"]
    assert properties["d"]["format"] == "date"
    assert properties["d"]["formatMinimum"] == "2020-01-01"
    assert properties["dt"]["format"] == "date-time"
    assert properties["dt"]["pattern"].endswith("Z$")
    assert "format" not in properties["t"]  # JSON Schema `time` needs seconds + offset
    assert properties["e"]["format"] == "email"
    assert properties["u"]["format"] == "uri"
    assert properties["f"]["items"]["properties"]["content_type"]["pattern"] == (
        "^(image/[^/;\\s]+)$"
    )


def test_clean_data_validates_against_the_published_schema() -> None:
    form = make_form(*[{**case[0], "key": f"f{index}"} for index, case in enumerate(CASES)])
    validator = Draft202012Validator(compile_schema(form))
    for index, case in enumerate(CASES):
        for value, _ in case[1]:
            data = ok(form, {f"f{index}": value})
            assert validator.is_valid(data), (index, value)


def test_validator_is_compiled_once_per_form_version() -> None:
    definition = form_dict(field("a"))
    first = FormSpec.model_validate(definition)
    assert compiled(first) is compiled(first)
    # The same definition parsed again reuses the compiled form (content cache).
    assert compiled(FormSpec.model_validate(definition)) is compiled(first)
    changed = FormSpec.model_validate(form_dict(field("a", max_length=3)))
    assert compiled(changed) is not compiled(first)


SAMPLES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2.5,
    1e9,
    "",
    "a",
    "red",
    "2024-05-01",
    "2024-05-01T01:30:00Z",
    "09:30",
    "ann@example.com",
    "+86 138 0013 8000",
    "https://example.com",
    [],
    ["a"],
    ["a", "a"],
    ["a", 1],
    [1, 1.0],
    [True, 1],
    {},
    FILE,
    [FILE],
    {"qty": 1},
    [{"qty": 1}],
    [{"qty": "x"}],
    [{}],
]


def _property_schemas() -> list[dict[str, Any]]:
    definitions = [case[0] for case in CASES] + [
        field("v", "table", fields=[field("qty", "integer", required=True, min=1)]),
        field("v", "computed", formula={"var": "x"}, result_type="date"),
        field("v", "boolean"),
    ]
    schemas = []
    for definition in definitions:
        form = make_form(definition)
        schemas.append(compile_schema(form)["properties"]["v"])
    return schemas


@pytest.mark.parametrize("schema", _property_schemas())
def test_fast_check_never_accepts_what_jsonschema_refuses(schema: dict[str, Any]) -> None:
    quick = compile_check(schema)
    validator = Draft202012Validator(schema)
    values = SAMPLES + [value for case in CASES for value, *_ in itertools.chain(case[1], case[2])]
    for value in values:
        if quick(value):
            assert validator.is_valid(value), value


@pytest.mark.parametrize("schema", _property_schemas())
def test_fast_check_agrees_with_jsonschema_on_the_type_suite(schema: dict[str, Any]) -> None:
    quick = compile_check(schema)
    validator = Draft202012Validator(schema)
    for case in CASES:
        for _, stored in case[1]:
            assert quick(stored) == validator.is_valid(stored), stored


def test_fast_check_refuses_keywords_it_does_not_know() -> None:
    with pytest.raises(UnsupportedSchema):
        compile_check({"type": "string", "oneOf": []})
