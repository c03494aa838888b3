"""The app definition format, ``formloom.app/v1``: one JSON document per app.

The pydantic models here (``AppSpec`` and what it holds, the forms coming from the form
engine) *are* the format: the published JSON Schema (``formloom schema app``,
``GET /api/schema/app``) is generated from them, so it cannot drift from what is accepted.
Forms are interpreted by the form engine; rules, flows, reports, dashboards and permissions
are kept and round-tripped as given until their engines land.

``load`` is the one gate every definition passes (import, dry run, ``formloom check``, the
catalog reading a stored version). It raises ``DefinitionInvalid`` listing *every* problem,
each with a JSON pointer into the document (``/forms/2/fields/5/type``), an error code and a
message a person understands, in document order:

1. values no database can store (NUL characters, NaN, absurd nesting) stop everything else;
2. the shape, by the models in strict JSON mode — what the JSON Schema says, no coercion of
   ``"5"`` to 5 or ``"yes"`` to true;
3. the semantic checks of :mod:`.checks` (duplicate keys, unknown names, locales, ...), run
   on the raw document so that a shape error in one place does not hide them elsewhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from formloom.engines.forms import FormSpec, Label
from formloom.engines.forms.labels import LOCALE_PATTERN
from formloom.engines.reports.definition import DashboardSpec, ReportSpec, report_problems
from formloom.engines.rules import RuleSpec
from formloom.engines.rules import check as check_rules
from formloom.platform import jsonsafe
from formloom.platform.apps.checks import (
    DefinitionProblem,
    document_problems,
    escape,
    in_document_order,
    merge,
)
from formloom.platform.permissions.policy import PermissionSpec, row_filter_problems

__all__ = [
    "FORMAT",
    "KEY_PATTERN",
    "SCHEMA_DIALECT",
    "SCHEMA_ID",
    "AppSpec",
    "DefinitionInvalid",
    "DefinitionProblem",
    "MigrationSpec",
    "PermissionSpec",
    "RoleSpec",
    "app_format_schema",
    "canonical_text",
    "digest",
    "load",
]

FORMAT = "formloom.app/v1"
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: The identifier of the published schema. A URN, not a URL: nothing is served there, and
#: editors find the schema through the ``$schema`` property of a file (docs/app-format.md).
SCHEMA_ID = "urn:formloom:schema:app:v1"
SCHEMA_TITLE = "Formloom app definition (formloom.app/v1)"

Key = Annotated[str, Field(pattern=KEY_PATTERN)]


class DefinitionInvalid(Exception):
    """An app definition with problems; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[DefinitionProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the app definition")
        self.problems = list(problems)


class RoleSpec(BaseModel):
    """A role users can hold; permissions, task assignment and flows refer to it by key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Key = Field(description="Identifier of the role, unique in the app, e.g. `doctor`.")
    label: Label | None = Field(default=None, description="Name of the role shown to people.")
    description: Label | None = Field(default=None, description="What the role is for.")


class MigrationSpec(BaseModel):
    """How existing records of one form follow a change that needs migration.

    Applied only to changes in the import's plan: a rename whose old key is a field of the
    installed form and whose new key is a field of the new one, and `set` expressions for
    fields whose change needs migration. Kept with the definition for the record; an entry
    that matches no change of a later import does nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    form: Key = Field(description="Key of the form whose records migrate.")
    rename: dict[Key, Key] = Field(
        default_factory=dict,
        json_schema_extra={"additionalProperties": False},  # keys are field keys too
        description="Old field key -> new field key; values move to the new key, which must "
        "be a field of the form.",
    )
    set: dict[Key, Any] = Field(
        default_factory=dict,
        json_schema_extra={"additionalProperties": False},
        description="Field key -> JsonLogic expression computing the new value from the "
        "record as it was before the change (after renames).",
    )


def _schema_header(schema: dict[str, Any]) -> None:
    """Mark the generated schema as a 2020-12 schema with an identifier and a title."""
    schema.update({"$schema": SCHEMA_DIALECT, "$id": SCHEMA_ID, "title": SCHEMA_TITLE})


class AppSpec(BaseModel):
    """A Formloom app: its forms, and the roles, rules, flows and reports that work on them.

    One JSON document per app, imported and exported whole. The reference is
    docs/app-format.md (the app level) and docs/forms.md (forms and fields).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_schema_header)

    schema_uri: str | None = Field(
        default=None,
        alias="$schema",
        title="$schema",
        description="Where an editor finds this JSON Schema, e.g. "
        '"./formloom-app.schema.json"; ignored by Formloom.',
    )
    format: Literal["formloom.app/v1"] = Field(
        description='Format marker and version; always "formloom.app/v1".'
    )
    key: Key = Field(description="Identifier of the app, used in URLs and API paths.")
    version: str = Field(
        pattern=r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$",
        description="The app author's semantic version of this definition, e.g. 1.2.0.",
    )
    label: Label = Field(description="Name of the app shown to people.")
    description: Label | None = Field(default=None, description="What the app is for.")
    locales: list[Annotated[str, Field(pattern=LOCALE_PATTERN)]] = Field(
        default_factory=lambda: ["en"],
        min_length=1,
        description='Locales the app is written in, e.g. ["en", "zh-CN"]; every '
        "{locale: text} label must give a text for each.",
    )
    roles: list[RoleSpec] = Field(default_factory=list, description="Roles users can hold.")
    forms: list[FormSpec] = Field(
        default_factory=list, description="The forms of the app (docs/forms.md)."
    )
    rules: list[RuleSpec] = Field(
        default_factory=list,
        description="If-then rules: a trigger (record event, schedule, date), a JsonLogic "
        "condition and actions (docs/rules.md). Checked at import; `POST "
        "/api/rules/{app}/{rule}/test` evaluates one against a record.",
    )
    flows: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Task flows; each a JSON object with a unique key. Kept as given until "
        "the flow engine interprets them.",
    )
    reports: list[ReportSpec] = Field(
        default_factory=list,
        description="Saved pivot reports: source form, filter, row and column dimensions, "
        "measures, and how to chart them (docs/reports.md).",
    )
    dashboards: list[DashboardSpec] = Field(
        default_factory=list,
        description="Grids of reports with shared filters (docs/reports.md).",
    )
    permissions: list[PermissionSpec] = Field(
        default_factory=list,
        description="Who may do what on which form: grants of actions to roles, each with an "
        "optional row filter and hidden / read-only fields (docs/permissions.md). Grants add "
        "up; a platform admin may do anything.",
    )
    migrations: list[MigrationSpec] = Field(
        default_factory=list,
        description="How existing records follow changes that need migration (renames, new "
        "values computed from old ones).",
    )

    def form(self, key: str) -> FormSpec | None:
        for form in self.forms:
            if form.key == key:
                return form
        return None


def app_format_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of ``formloom.app/v1``, generated from the models.

    The same as ``AppSpec.model_json_schema()`` (what ``GET /api/schema/app`` returns), with
    ``$schema``, ``$id`` and ``title`` moved first for people reading the file.
    """
    schema = AppSpec.model_json_schema()
    first = ("$schema", "$id", "title", "description")
    return {**{key: schema[key] for key in first}, **schema}


def canonical_text(document: dict[str, Any]) -> str:
    """The one serialisation of a definition: what export writes and what is stored."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_text(document).encode()).hexdigest()


def _pointer(document: Any, loc: Sequence[Any]) -> str:
    """A JSON pointer for a pydantic error location.

    Discriminated unions add the tag (``"text"``) and validators add names to ``loc`` that
    are not in the document; walking the document alongside drops them. A last part that is
    not in the document is the name of a missing property, and is kept.
    """
    parts: list[str] = []
    node = document
    for index, part in enumerate(loc):
        in_object = isinstance(node, dict) and isinstance(part, str | int) and str(part) in node
        in_array = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_object:
            node = node[str(part)]
        elif in_array:
            node = node[part]
        elif not (index == len(loc) - 1 and isinstance(part, str) and isinstance(node, dict)):
            continue
        parts.append(escape(part))
    return "/" + "/".join(parts) if parts else ""


_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known property here (check the spelling)",
    "literal_error": "must be {expected}",
    "string_pattern_mismatch": "does not have the expected form ({pattern})",
    "union_tag_invalid": "is not a known type; expected one of {expected_tags}",
    "union_tag_not_found": "is required: every field has a type",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "list_type": "must be an array",
    "tuple_type": "must be an array",
    "string_too_short": "must be at least {min_length} character(s) long",
    "string_too_long": "must be at most {max_length} characters long",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
}
#: Codes of "wrong JSON type" errors; pydantic reports one per member of a union.
_TYPE_CODES = frozenset(code for code in _MESSAGES if code.endswith("_type"))


def _message(error: dict[str, Any]) -> str:
    template = _MESSAGES.get(error["type"])
    ctx = error.get("ctx") or {}
    if template:
        try:
            return template.format(**ctx)
        except (KeyError, IndexError):
            return template
    message: str = error["msg"]
    return message.removeprefix("Value error, ")


def _spurious(error: dict[str, Any], document: Any) -> bool:
    """Pydantic checks a list's ``min_length`` after dropping its invalid items: a table
    whose one column is invalid is also "too short". The items' own errors say enough."""
    if error["type"] != "too_short":
        return False
    node = document
    for part in error["loc"]:
        if isinstance(node, dict) and str(part) in node:
            node = node[str(part)]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
    minimum = (error.get("ctx") or {}).get("min_length", 0)
    return isinstance(node, list) and len(node) >= minimum


def _problems_from(error: ValidationError, document: Any) -> list[DefinitionProblem]:
    problems: list[DefinitionProblem] = []
    for err in error.errors(include_url=False):
        if _spurious(dict(err), document):
            continue
        path = _pointer(document, err["loc"])
        code = err["type"]
        if code in ("union_tag_invalid", "union_tag_not_found"):
            # the tag's value is what is wrong: point at the discriminator property
            tag = str((err.get("ctx") or {}).get("discriminator", "'type'")).strip("'\"")
            path = f"{path}/{tag}"
        message = _message(dict(err))
        last = problems[-1] if problems else None
        if last and last.path == path and {last.code, code} <= _TYPE_CODES:
            # "must be a string" + "must be an object" (a label) -> one problem
            message = f"{last.message} or {message.removeprefix('must be ')}"
            problems[-1] = DefinitionProblem(path=path, code=last.code, message=message)
            continue
        problems.append(DefinitionProblem(path=path, code=code, message=message))
    return problems


def load(document: Any) -> AppSpec:
    """Validate a definition document; raise ``DefinitionInvalid`` with every problem."""
    if not isinstance(document, dict):
        raise DefinitionInvalid(
            [DefinitionProblem(path="", code="type", message="an app definition is a JSON object")]
        )
    unstorable = jsonsafe.problems(document)
    if unstorable:
        raise DefinitionInvalid(
            [DefinitionProblem(path=p, code="invalid_value", message=m) for p, m in unstorable]
        )
    try:
        text = json.dumps(document)
    except (TypeError, ValueError) as exc:  # only a Python caller can pass such a value
        raise DefinitionInvalid(
            [DefinitionProblem(path="", code="type", message=f"is not JSON data: {exc}")]
        ) from None
    semantic = document_problems(document)
    try:
        # Strict JSON mode: exactly what the published JSON Schema accepts.
        app = AppSpec.model_validate_json(text, strict=True)
    except ValidationError as exc:
        problems = merge(semantic, _problems_from(exc, document))
        raise DefinitionInvalid(in_document_order(document, problems)) from None
    if semantic:
        raise DefinitionInvalid(in_document_order(document, semantic))
    compiled = (
        _row_filter_problems(app)
        + [
            DefinitionProblem(path=f"/rules{pointer}", code=code, message=message)
            for pointer, code, message in check_rules(
                app.rules,
                {form.key: form for form in app.forms},
                [role.key for role in app.roles],
            )
        ]
        + [
            DefinitionProblem(path=pointer, code=code, message=message)
            for pointer, code, message in report_problems(
                app.reports, app.dashboards, {form.key: form for form in app.forms}
            )
        ]
    )
    if compiled:
        raise DefinitionInvalid(compiled)
    return app


def _row_filter_problems(app: AppSpec) -> list[DefinitionProblem]:
    """Row filters must compile to SQL, so that lists and counts are filtered in the
    database (and a total never counts rows the caller may not see)."""
    from formloom.engines.forms import field_types

    moment = datetime(2000, 1, 1, tzinfo=UTC)
    problems: list[DefinitionProblem] = []
    for index, grant in enumerate(app.permissions):
        if grant.row_filter is None:
            continue
        forms = app.forms if grant.form == "*" else [f for f in app.forms if f.key == grant.form]
        for form in forms:
            found = row_filter_problems(grant.row_filter, field_types(form), now=moment)
            for pointer, message in found[:1]:
                where = f" (on form {form.key!r})" if grant.form == "*" else ""
                problems.append(
                    DefinitionProblem(
                        path=f"/permissions/{index}/row_filter{pointer}",
                        code="unsupported_filter",
                        message=f"cannot be a row filter{where}: {message}",
                    )
                )
            if found:
                break
    return problems
