"""The published JSON Schema of ``formloom.app/v1``: complete, described, and in agreement
with what ``load`` accepts and refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from formloom.engines.apps import (
    SCHEMA_DIALECT,
    SCHEMA_ID,
    AppSpec,
    DefinitionInvalid,
    app_format_schema,
)
from formloom.platform.apps.definition import load
from tests import factories as f

ROOT = Path(__file__).resolve().parents[3]
FILES = sorted(ROOT.glob("builtin_apps/*/app.json")) + sorted(ROOT.glob("examples/apps/*.json"))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return app_format_schema()


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema)


def test_the_schema_is_a_2020_12_schema_with_an_id_and_a_title(schema: dict[str, Any]) -> None:
    assert list(schema)[:3] == ["$schema", "$id", "title"]
    assert schema["$schema"] == SCHEMA_DIALECT == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID
    assert "formloom.app/v1" in schema["title"]
    Draft202012Validator.check_schema(schema)


def _objects(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object that has ``properties``, wherever it is nested."""
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict):
            yield where, node
        for key, child in node.items():
            yield from _objects(child, f"{where}/{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _objects(child, f"{where}/{index}")


def test_every_property_has_a_description(schema: dict[str, Any]) -> None:
    objects = list(_objects(schema, "#"))
    assert len(objects) >= 20  # the app, roles, migrations, forms, every field type, options
    undescribed = [
        f"{where}/properties/{name}"
        for where, node in objects
        for name, prop in node["properties"].items()
        if not (isinstance(prop.get("description"), str) and prop["description"].strip())
    ]
    assert undescribed == []


def test_every_definition_has_a_description(schema: dict[str, Any]) -> None:
    assert schema["description"]
    assert [name for name, node in schema["$defs"].items() if not node.get("description")] == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_bundled_and_example_apps_validate(path: Path, validator: Draft202012Validator) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert [error.message for error in validator.iter_errors(document)] == []
    load(document)


def test_there_are_files_to_check() -> None:
    assert len(FILES) >= 2


def test_documents_using_every_field_type_validate(validator: Draft202012Validator) -> None:
    document = f.crm_app()
    document["forms"][0]["fields"].extend(
        [
            f.field("notes", "textarea", pattern="[a-z ]*", pattern_message={"en": "lower"}),
            f.field("at", "datetime", min="2020-01-01T00:00:00Z", default_expr={"now": []}),
            f.field("opens", "time", min="08:00"),
            f.field("mail", "email"),
            f.field("site", "url"),
            f.field("scan", "file", accept=["application/pdf"], max_size=1000),
            f.field("photo", "image", multiple=True),
            f.field("more", "section", visible_if=True),
        ]
    )
    document["$schema"] = "./formloom-app.schema.json"
    document["locales"] = ["en"]
    document["roles"] = [{"key": "doctor", "label": "Doctor", "description": "Sees patients"}]
    document["migrations"] = [{"form": "deal", "rename": {"name": "title"}, "set": {"amount": 1}}]
    assert [error.message for error in validator.iter_errors(document)] == []
    load(document)


BROKEN: list[tuple[str, dict[str, Any]]] = [
    ("wrong format", f.app(format="formloom.app/v2")),
    ("unknown top-level property", f.app(colour="red")),
    ("unknown field type", f.app("a", f.form("a", f.field("x", "nosuchtype")))),
    ("unknown field property", f.app("a", f.form("a", f.field("x", max_lenght=3)))),
    ("field key a number", f.app("a", f.form("a", {"key": 5, "type": "text"}))),
    ("label a number", f.app("a", f.form("a", f.field("x", label=5)))),
    ("required a string", f.app("a", f.form("a", f.field("x", required="yes")))),
    ("integer limit a string", f.app("a", f.form("a", f.field("x", "integer", min="5")))),
    ("bad key pattern", f.app("Bad Key")),
    ("bad version", f.app(version="one")),
    ("bad locale", f.app(locales=["english"])),
    ("no locales", f.app(locales=[])),
    ("empty label map", f.app(label={})),
    ("select without options", f.app("a", f.form("a", f.field("x", "select", options=[])))),
    ("fields not a list", f.app("a", {"key": "a", "label": "A", "fields": {"x": 1}})),
    ("rename to a bad key", f.app(migrations=[{"form": "contact", "rename": {"a": "B"}}])),
    ("rename from a bad key", f.app(migrations=[{"form": "contact", "rename": {"A": "b"}}])),
    ("label with a bad locale", f.app(label={"EN": "Demo"})),
    (
        "option label with a bad locale",
        f.app(
            "a",
            f.form(
                "a", f.field("x", "select", options=[{"value": "v", "label": {"english": "V"}}])
            ),
        ),
    ),
    ("set of a bad key", f.app(migrations=[{"form": "contact", "set": {"Name": 1}}])),
]


@pytest.mark.parametrize(("name", "document"), BROKEN, ids=[name for name, _ in BROKEN])
def test_the_schema_refuses_what_load_refuses(
    name: str, document: dict[str, Any], validator: Draft202012Validator
) -> None:
    assert not validator.is_valid(document)
    with pytest.raises(DefinitionInvalid):
        load(document)


def test_the_api_serves_the_same_schema(schema: dict[str, Any]) -> None:
    assert AppSpec.model_json_schema() == schema  # key order aside


async def test_get_api_schema_app(client: httpx.AsyncClient, schema: dict[str, Any]) -> None:
    response = await client.get("/api/schema/app")
    assert response.status_code == 200
    assert response.json() == schema


#: Codes of checks the schema cannot express (whole-form and whole-app rules).
SEMANTIC = {
    "duplicate_key", "reserved_key", "duplicate_option", "duplicate_locale", "unknown_form",
    "unknown_variable", "invalid_expression", "self_reference", "computed_cycle",
    "unknown_title_field", "invalid_title_field", "missing_locale", "unknown_field",
    "invalid_default", "default_conflict", "min_above_max", "invalid_limit", "invalid_pattern",
    "not_supported", "invalid_value",
}  # fmt: skip
JUNK: list[Any] = [None, 7, -1.5, True, "Bad Key", ["en"], {}, {"en": "x"}]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, (*path, index))


def _kinds(document: Any) -> list[tuple[Any, ...]]:
    """One path per kind of place: list items of the same field type count once (validating
    against the whole schema takes ~10 ms a document)."""
    seen: set[tuple[Any, ...]] = set()
    chosen = []
    for path in list(_paths(document))[1:]:
        node, kind = document, []
        for part in path:
            node = node[part]
            if isinstance(part, int):
                kind.append(node.get("type", "*") if isinstance(node, dict) else "*")
            else:
                kind.append(part)
        if tuple(kind) not in seen:
            seen.add(tuple(kind))
            chosen.append(path)
    return chosen


def test_schema_and_load_agree_on_junk_anywhere(validator: Draft202012Validator) -> None:
    """Every value of a definition replaced by junk, one at a time: whatever ``load`` accepts
    the schema accepts, and whatever the schema accepts ``load`` refuses only for reasons the
    schema cannot express (duplicate keys, unknown names, ...)."""
    base = f.crm_app()
    base["locales"] = ["en"]
    base["roles"] = [{"key": "admin", "label": {"en": "Admin"}}]
    base["migrations"] = [{"form": "deal", "rename": {"name": "title"}, "set": {"amount": 0}}]
    text = json.dumps(base)
    disagreements = []
    for path in _kinds(base):
        for junk in JUNK:
            document = json.loads(text)
            node = document
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = junk
            schema_ok = validator.is_valid(document)
            try:
                load(document)
            except DefinitionInvalid as exc:
                shape = [p for p in exc.problems if p.code not in SEMANTIC]
                if schema_ok and shape:
                    disagreements.append(f"schema accepts, load refuses {path}={junk!r}: {shape}")
                continue
            if not schema_ok:
                disagreements.append(f"load accepts, schema refuses {path}={junk!r}")
    assert disagreements == []
