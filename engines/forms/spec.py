"""The form spec: an immutable, validated definition of one form of an app.

``FormSpec`` is built from the app definition JSON (``FormSpec.model_validate(...)``) and is
never changed afterwards; a designer's save produces a new ``FormSpec`` (a new form
version). Everything derived from it — the JSON Schema, the compiled validator, the order in
which computed fields are evaluated — is computed once per spec and cached (see
:mod:`.compiled`).

Whole-form invariants checked here (each error carries pydantic's ``loc``; use
:func:`definition_errors` for JSON pointers): field keys are unique and not reserved for
record columns, ``title_field`` names a top-level field with a value, no computed field
depends on itself (directly or through other computed fields, in the form or within a
table), no ``visible_if`` reads its own field, and every JsonLogic expression passes the
logic engine's static check.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from formloom.engines.forms.fields import (
    FIELD_TYPES,
    BaseField,
    ColumnSpec,
    ComputedField,
    DefinitionIssue,
    FieldSpec,
    IndexableField,
    Loc,
    SectionField,
    TableField,
    raise_issues,
)
from formloom.engines.forms.labels import Label, label_text
from formloom.engines.logic import check_expression, variables

#: Names of record columns; a field with one of these keys would be ambiguous in filters.
RESERVED_KEYS = frozenset(
    {
        "id",
        "app",
        "form",
        "form_version",
        "version",
        "data",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
        "deleted_at",
    }
)


class FormSpec(BaseModel):
    """One form: its key, labels and ordered fields (sections included, in display order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description="Identifier of the form within its app (lower-case, digits, underscores).",
    )
    label: Label = Field(description='Name of the form, e.g. {"en": "Patient"}.')
    description: Label | None = Field(default=None, description="What the form is for.")
    title_field: str | None = Field(
        default=None,
        description="Key of the field whose value names a record (in lists, links, titles).",
    )
    sensitive: bool = Field(
        default=False,
        description="Records hold sensitive (e.g. medical) data: access is audited.",
    )
    fields: tuple[FieldSpec, ...] = Field(
        description="The fields in display order; a section groups the fields after it."
    )

    @model_validator(mode="after")
    def _check_form(self) -> Self:
        issues: list[DefinitionIssue] = []
        issues.extend(_key_issues(self.fields))
        issues.extend(_expression_issues(self.fields, ("fields",)))
        issues.extend(_cycle_issues(self.fields, ("fields",)))
        for index, field in enumerate(self.fields):
            if isinstance(field, TableField):
                issues.extend(_expression_issues(field.fields, ("fields", index, "fields")))
                issues.extend(_cycle_issues(field.fields, ("fields", index, "fields")))
        if self.title_field is not None:
            target = self.field(self.title_field)
            if target is None:
                issues.append(
                    DefinitionIssue(
                        ("title_field",),
                        "unknown_title_field",
                        f"{self.title_field!r} is not a field of the form",
                        self.title_field,
                    )
                )
            elif not isinstance(target, IndexableField | ComputedField):
                issues.append(
                    DefinitionIssue(
                        ("title_field",),
                        "invalid_title_field",
                        f"{self.title_field!r} is a {target.field_type} field; the title "
                        "field must hold a single value (text, number, date, select, ...)",
                        self.title_field,
                    )
                )
        raise_issues("FormSpec", issues)
        return self

    @property
    def title(self) -> str:
        return label_text(self.label) or self.key

    def field(self, key: str) -> BaseField | None:
        """The top-level field (or section) with ``key``."""
        for field in self.fields:
            if field.key == key:
                return field
        return None

    def value_fields(self) -> Iterator[BaseField]:
        """The top-level fields that hold a value (sections left out), in order."""
        return (field for field in self.fields if not isinstance(field, SectionField))


def _key_issues(fields: Sequence[FieldSpec]) -> list[DefinitionIssue]:
    issues: list[DefinitionIssue] = []
    seen: set[str] = set()
    for index, field in enumerate(fields):
        if field.key in seen:
            issues.append(
                DefinitionIssue(
                    ("fields", index, "key"),
                    "duplicate_key",
                    f"field key {field.key!r} appears more than once",
                    field.key,
                )
            )
        elif field.key in RESERVED_KEYS:
            issues.append(
                DefinitionIssue(
                    ("fields", index, "key"),
                    "reserved_key",
                    f"{field.key!r} is reserved for a record column; choose another key",
                    field.key,
                )
            )
        seen.add(field.key)
    return issues


def _expressions(field: BaseField) -> Iterator[tuple[str, Any]]:
    if field.visible_if is not None and not isinstance(field.visible_if, bool):
        yield "visible_if", field.visible_if
    if isinstance(field, ComputedField):
        yield "formula", field.formula
    default_expr = getattr(field, "default_expr", None)
    if default_expr is not None:
        yield "default_expr", default_expr


def _pointer_loc(pointer: str) -> Loc:
    parts: list[str | int] = []
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        parts.append(int(part) if part.isdigit() else part)
    return tuple(parts)


def _expression_issues(
    fields: Iterable[BaseField | ColumnSpec], base: Loc
) -> list[DefinitionIssue]:
    issues: list[DefinitionIssue] = []
    for index, field in enumerate(fields):
        for attribute, rule in _expressions(field):
            loc: Loc = (*base, index, attribute)
            for pointer, message in check_expression(rule):
                issues.append(
                    DefinitionIssue(
                        (*loc, *_pointer_loc(pointer)), "invalid_expression", message, rule
                    )
                )
            if attribute == "visible_if" and field.key in _read_keys(rule):
                issues.append(
                    DefinitionIssue(
                        loc,
                        "self_reference",
                        f"visible_if of {field.key!r} reads the field itself",
                        rule,
                    )
                )
    return issues


def _read_keys(rule: Any) -> set[str]:
    """First segments of the ``var`` paths a rule reads (``items.0.qty`` -> ``items``)."""
    return {path.split(".", 1)[0] for path in variables(rule) if path and path != "*"}


def computed_order(fields: Sequence[BaseField | ColumnSpec]) -> list[ComputedField]:
    """Computed fields in an order where each comes after the computed fields it reads.

    Ties keep the form's order. Assumes no cycles (the spec rejects them).
    """
    computed = {field.key: field for field in fields if isinstance(field, ComputedField)}
    needs = {key: _read_keys(field.formula) & computed.keys() for key, field in computed.items()}
    ordered: list[ComputedField] = []
    done: set[str] = set()

    def visit(key: str, trail: tuple[str, ...]) -> None:
        if key in done or key in trail:
            return
        for dependency in sorted(needs[key], key=list(computed).index):
            visit(dependency, (*trail, key))
        done.add(key)
        ordered.append(computed[key])

    for key in computed:
        visit(key, ())
    return ordered


def _cycle_issues(fields: Sequence[BaseField | ColumnSpec], base: Loc) -> list[DefinitionIssue]:
    computed = {
        field.key: index for index, field in enumerate(fields) if isinstance(field, ComputedField)
    }
    needs: dict[str, list[str]] = {}
    for key, index in computed.items():
        field = fields[index]
        assert isinstance(field, ComputedField)
        needs[key] = [name for name in computed if name in _read_keys(field.formula)]
    issues: list[DefinitionIssue] = []
    for key, index in computed.items():
        cycle = _find_cycle(key, needs)
        if cycle is not None:
            route = " -> ".join(cycle)
            field = fields[index]
            assert isinstance(field, ComputedField)
            issues.append(
                DefinitionIssue(
                    (*base, index, "formula"),
                    "computed_cycle",
                    f"computed field {key!r} depends on itself ({route})",
                    field.formula,
                )
            )
    return issues


def _find_cycle(start: str, needs: dict[str, list[str]]) -> list[str] | None:
    """A path start -> ... -> start through ``needs``, if there is one (depth first)."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        key, path = stack.pop()
        for dependency in needs.get(key, []):
            if dependency == start:
                return [*path, start]
            if dependency not in seen:
                seen.add(dependency)
                stack.append((dependency, [*path, dependency]))
    return None


def definition_errors(error: ValidationError) -> list[dict[str, str]]:
    """A pydantic error about a form (or app) definition as ``{pointer, code, message}`` dicts.

    ``pointer`` is a JSON pointer into the definition document: pydantic's ``loc`` without
    the union tags it inserts for discriminated fields (``fields/1/text/default`` becomes
    ``/fields/1/default``).
    """
    found: list[dict[str, str]] = []
    for item in error.errors():
        parts: list[str] = []
        loc = list(item["loc"])
        for position, part in enumerate(loc):
            tag_position = (
                position >= 2
                and loc[position - 2] == "fields"
                and isinstance(loc[position - 1], int)
            )
            if tag_position and isinstance(part, str) and part in FIELD_TYPES:
                continue  # the discriminator tag pydantic adds for tagged unions
            parts.append(str(part).replace("~", "~0").replace("/", "~1"))
        found.append(
            {
                "pointer": "/" + "/".join(parts) if parts else "",
                "code": item["type"],
                "message": item["msg"],
            }
        )
    return found


def unique_fields(form: FormSpec) -> list[str]:
    """Keys of the top-level fields whose value must be unique across the form's records."""
    return [
        field.key
        for field in form.fields
        if isinstance(field, IndexableField | ComputedField) and field.unique
    ]


def indexed_fields(form: FormSpec) -> list[str]:
    """Keys of the top-level fields to index (``indexed`` or ``unique``)."""
    return [
        field.key
        for field in form.fields
        if isinstance(field, IndexableField | ComputedField) and (field.indexed or field.unique)
    ]


def field_types(form: FormSpec) -> dict[str, str]:
    """Top-level field key -> type (a computed field gives its ``result_type``).

    Sections carry no value and are left out. This is the mapping the SQL filter compiler
    (``formloom.engines.logic.sql.FilterTarget.fields``) expects.
    """
    types: dict[str, str] = {}
    for field in form.fields:
        if isinstance(field, SectionField):
            continue
        types[field.key] = field.result_type if isinstance(field, ComputedField) else field.type
    return types
