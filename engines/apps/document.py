"""From a definition document to an :class:`~.spec.AppSpec`, or every problem it has.

:func:`load` is the one gate every definition passes (import, dry run, ``formloom check``,
the catalog reading a stored version). It raises :class:`DefinitionInvalid` listing *every*
problem, each with a JSON pointer into the document (``/forms/2/fields/5/type``), an error
code and a message a person understands, in document order:

1. the shape, by the models in strict JSON mode — what the JSON Schema says, no coercion of
   ``"5"`` to 5 or ``"yes"`` to true;
2. the semantic checks of :mod:`.checks` (duplicate keys, unknown names, locales, ...), run
   on the raw document so that a shape error in one place does not hide them elsewhere;
3. once the document has parsed, what needs the built parts: row filters must compile to
   SQL, rules and reports are checked by their engines against the forms.

Values no database can store (NUL characters, NaN, absurd nesting) are refused by the
platform before a document gets here (docs/app-format.md, "How a definition is checked").

:func:`canonical_text` is the one serialisation of a definition (what is stored and
exported); :func:`digest` identifies a document by it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from formloom.engines.apps.checks import (
    DefinitionProblem,
    document_problems,
    escape,
    in_document_order,
    merge,
)
from formloom.engines.apps.permissions import row_filter_problems
from formloom.engines.apps.spec import AppSpec
from formloom.engines.apps.zones import zone_problems
from formloom.engines.flows.check import check as check_flows
from formloom.engines.forms import field_types
from formloom.engines.reports.definition import report_problems
from formloom.engines.rules import check as check_rules

__all__ = ["DefinitionInvalid", "DefinitionProblem", "canonical_text", "digest", "load"]


class DefinitionInvalid(Exception):
    """An app definition with problems; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[DefinitionProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the app definition")
        self.problems = list(problems)


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
    """Validate a definition document; raise ``DefinitionInvalid`` with every problem.

    ``document`` is JSON data as parsed (plain dicts, lists, strings, finite numbers, with
    bounded nesting); values no database could store are the caller's to refuse first.
    """
    if not isinstance(document, dict):
        raise DefinitionInvalid(
            [DefinitionProblem(path="", code="type", message="an app definition is a JSON object")]
        )
    try:
        text = json.dumps(document, allow_nan=False)
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
                {flow.key: flow.form for flow in app.flows},
            )
        ]
        + [
            DefinitionProblem(path=f"/flows{pointer}", code=code, message=message)
            for pointer, code, message in check_flows(
                app.flows,
                {form.key: form for form in app.forms},
                [role.key for role in app.roles],
            )
        ]
        + zone_problems(app.zone, app.forms)
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
