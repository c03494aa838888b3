"""The app definition format, ``formloom.app/v1``: one JSON document per app.

Forms are interpreted by the form engine today; rules, flows, reports, dashboards and
permissions are kept and round-tripped as given until their engines land. ``load`` turns a
document into an ``AppSpec`` or raises ``DefinitionInvalid`` listing *every* problem with a
JSON pointer into the document (``/forms/2/fields/5/type``) and a message a person
understands.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from formloom.engines.forms import FormSpec, RelationField
from formloom.engines.logic import check_expression, variables

FORMAT = "formloom.app/v1"
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"

Label = str | dict[str, str]


class DefinitionProblem(BaseModel):
    path: str
    code: str
    message: str


class DefinitionInvalid(Exception):
    def __init__(self, problems: Sequence[DefinitionProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the app definition")
        self.problems = list(problems)


class RoleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=KEY_PATTERN, description="Identifier of the role, e.g. `doctor`.")
    label: Label | None = Field(default=None, description="Name shown to people.")
    description: Label | None = Field(default=None, description="What the role is for.")


class MigrationSpec(BaseModel):
    """How existing records of one form follow a change that needs migration.

    Applied only to changes in the import's plan: a rename whose old key is a field of the
    installed form and whose new key is a field of the new one, and `set` expressions for
    fields whose change needs migration. Kept with the definition for the record; an entry
    that matches no change of a later import does nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    form: str = Field(pattern=KEY_PATTERN, description="Key of the form whose records migrate.")
    rename: dict[str, str] = Field(
        default_factory=dict,
        description="Old field key -> new field key; values move to the new key.",
    )
    set: dict[str, Any] = Field(
        default_factory=dict,
        description="Field key -> JsonLogic expression computing the new value from the "
        "record as it was before the change (after renames).",
    )


class AppSpec(BaseModel):
    """A whole app: its forms, and the rules, flows and reports that work on them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["formloom.app/v1"] = Field(description="Format marker and version.")
    key: str = Field(pattern=KEY_PATTERN, description="Identifier of the app, used in URLs.")
    version: str = Field(
        pattern=r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$",
        description="The app author's semantic version of this definition.",
    )
    label: Label = Field(description="Name shown to people; a string or locale -> string.")
    description: Label | None = Field(default=None, description="What the app is for.")
    locales: list[str] = Field(
        default_factory=lambda: ["en"], description="Locales labels are given in."
    )
    roles: list[RoleSpec] = Field(default_factory=list, description="Roles users can hold.")
    forms: list[FormSpec] = Field(default_factory=list, description="The forms of the app.")
    rules: list[dict[str, Any]] = Field(default_factory=list, description="If-then rules.")
    flows: list[dict[str, Any]] = Field(default_factory=list, description="Task flows.")
    reports: list[dict[str, Any]] = Field(default_factory=list, description="Pivot reports.")
    dashboards: list[dict[str, Any]] = Field(default_factory=list, description="Dashboards.")
    permissions: list[dict[str, Any]] = Field(
        default_factory=list, description="Who may do what on which form."
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


def canonical_text(document: dict[str, Any]) -> str:
    """The one serialisation of a definition: what export writes and what is stored."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_text(document).encode()).hexdigest()


def _escape(part: Any) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _pointer(document: Any, loc: Sequence[Any]) -> str:
    """A JSON pointer for a pydantic error location.

    Discriminated unions add the tag (``"text"``) and validators add names to ``loc`` that
    are not in the document; walking the document alongside drops them. A last part that is
    not in the document is the name of a missing property, and is kept.
    """
    parts: list[str] = []
    node = document
    for index, part in enumerate(loc):
        in_object = isinstance(node, dict) and isinstance(part, str) and part in node
        in_array = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_object or in_array:
            node = node[part]
        elif not (index == len(loc) - 1 and isinstance(part, str) and isinstance(node, dict)):
            continue
        parts.append(_escape(part))
    return "/" + "/".join(parts) if parts else ""


_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known property here (check the spelling)",
    "literal_error": "must be {expected}",
    "string_pattern_mismatch": "does not have the expected form ({pattern})",
    "union_tag_invalid": "is not a known type; expected one of {expected_tags}",
}


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


def _problems_from(error: ValidationError, document: Any) -> list[DefinitionProblem]:
    problems = []
    for err in error.errors(include_url=False):
        path = _pointer(document, err["loc"])
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            # the tag's value is what is wrong: point at the discriminator property
            tag = str((err.get("ctx") or {}).get("discriminator", "'type'")).strip("'\"")
            path = f"{path}/{tag}"
        problems.append(DefinitionProblem(path=path, code=err["type"], message=_message(dict(err))))
    return problems


def _semantic_problems(app: AppSpec) -> list[DefinitionProblem]:
    problems: list[DefinitionProblem] = []
    seen: dict[str, int] = {}
    form_keys = {form.key for form in app.forms}
    for i, form in enumerate(app.forms):
        if form.key in seen:
            problems.append(
                DefinitionProblem(
                    path=f"/forms/{i}/key",
                    code="duplicate_key",
                    message=f"form key '{form.key}' is already used by /forms/{seen[form.key]}",
                )
            )
        seen.setdefault(form.key, i)
        field_keys = {field.key for field in form.fields}
        for j, field in enumerate(form.fields):
            if isinstance(field, RelationField) and field.target not in form_keys:
                problems.append(
                    DefinitionProblem(
                        path=f"/forms/{i}/fields/{j}/target",
                        code="unknown_form",
                        message=f"relation points at form '{field.target}', which this app "
                        f"does not define (forms: {', '.join(sorted(form_keys))})",
                    )
                )
            for attr in ("visible_if", "formula", "default_expr"):
                expression = getattr(field, attr, None)
                if expression is None:
                    continue
                base = f"/forms/{i}/fields/{j}/{attr}"
                for where, message in check_expression(expression):
                    problems.append(
                        DefinitionProblem(path=base + where, code="bad_expression", message=message)
                    )
                for name in sorted(variables(expression)):
                    head = name.split(".", 1)[0]
                    if name != "*" and head not in field_keys and not head.startswith("$"):
                        problems.append(
                            DefinitionProblem(
                                path=base,
                                code="unknown_variable",
                                message=f"refers to '{name}', which is not a field of form "
                                f"'{form.key}'",
                            )
                        )
    role_keys = [role.key for role in app.roles]
    for i, key in enumerate(role_keys):
        if key in role_keys[:i]:
            problems.append(
                DefinitionProblem(
                    path=f"/roles/{i}/key",
                    code="duplicate_key",
                    message=f"role key '{key}' is used twice",
                )
            )
    return problems


def load(document: Any) -> AppSpec:
    """Validate a definition document; raise ``DefinitionInvalid`` with every problem."""
    if not isinstance(document, dict):
        raise DefinitionInvalid(
            [DefinitionProblem(path="", code="type", message="an app definition is a JSON object")]
        )
    try:
        app = AppSpec.model_validate(document)
    except ValidationError as exc:
        raise DefinitionInvalid(_problems_from(exc, document)) from None
    problems = _semantic_problems(app)
    if problems:
        raise DefinitionInvalid(problems)
    return app
