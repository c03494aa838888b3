"""Compile a form to the JSON Schema (2020-12) of its records' ``data`` object.

The schema describes *stored* data: datetimes in UTC ``Z`` form, no ``null`` values (a
cleared field is absent), no unknown keys (``additionalProperties: false``), tables as arrays
of row objects with the same rules. Formats are written both as ``format`` (an annotation for
tools) and as ``pattern`` (which validators check), so a client that validates against the
published schema agrees with the engine. Limits JSON Schema cannot express for strings
(earliest date, latest time) are published as ``formatMinimum``/``formatMaximum`` annotations
and checked by the engine.

``required`` lists only required fields that are always shown: a field with ``visible_if``
(or inside a section with one) is required only while visible, which the engine checks itself.
"""

from __future__ import annotations

from typing import Any

from formloom.engines.forms.fields import SectionField, object_schema
from formloom.engines.forms.labels import label_text
from formloom.engines.forms.spec import FormSpec

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def always_shown(form: FormSpec) -> set[str]:
    """Keys of the top-level fields that no ``visible_if`` (own or section's) can hide."""
    shown: set[str] = set()
    section_hidable = False
    for field in form.fields:
        if isinstance(field, SectionField):
            section_hidable = field.visible_if is not None and field.visible_if is not True
            continue
        if not section_hidable and (field.visible_if is None or field.visible_if is True):
            shown.add(field.key)
    return shown


def compile_schema(form: FormSpec) -> dict[str, Any]:
    """The JSON Schema (2020-12) of the ``data`` object of ``form``'s records."""
    shown = always_shown(form)
    schema: dict[str, Any] = {"$schema": SCHEMA_DIALECT, "title": form.title}
    if form.description is not None:
        schema["description"] = label_text(form.description)
    schema.update(object_schema(form.value_fields(), lambda field: field.key in shown))
    return schema
