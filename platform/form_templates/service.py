"""Form templates: the shipped ones (``builtin_apps/form_templates/*.json``) and those
designers saved (the ``form_templates`` table), and how a new form starts from one.

Invariants: a template holds a form definition without its key and never records; every
template's form validates as a :class:`FormSpec` (the shipped ones are checked by a test, a
saved one when it is saved). A shipped template's id is its file's key (``complaint``), a
saved one's a record-style id, so the two never clash. Starting from a template gives the
designer the definition with a key derived from its name, unique among the app's forms; the
designer saves it through the ordinary plan-and-apply path, so nothing here writes a form.
Saving needs the design right on the form's app; deleting a saved template needs it on the
app it was saved from, or platform admin (shipped ones cannot be deleted).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.forms import FormSpec, definition_errors, label_text
from formloom.engines.logic.dates import format_datetime
from formloom.platform.errors import Conflict, NotFound, Unprocessable
from formloom.platform.form_templates import repository
from formloom.platform.models.form_template import FormTemplate
from formloom.platform.records.ids import new_id

#: Where the shipped templates live: one JSON file each, ``{key, label, description, form}``.
BUILTIN = Path(__file__).resolve().parents[2] / "builtin_apps" / "form_templates"
#: What a template leaves out of the form it was saved from: its identity and its FHIR map
#: (both belong to the one form, not to copies of it).
NOT_COPIED = ("key", "fhir")


@dataclass(frozen=True)
class Template:
    id: str
    label: Any
    description: Any
    form: dict[str, Any]
    builtin: bool
    app: str | None = None
    source_form: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None

    def summary(self, lang: str | None = None) -> dict[str, Any]:
        """The template as lists show it (without its fields)."""
        fields = self.form.get("fields", [])
        out: dict[str, Any] = {
            "id": self.id,
            "label": self.label,
            "description": self.description,
            "builtin": self.builtin,
            "fields": sum(1 for f in fields if f.get("type") != "section"),
            "app": self.app,
            "source_form": self.source_form,
            "created_by": self.created_by,
            "created_at": format_datetime(self.created_at) if self.created_at else None,
        }
        if lang is not None:
            out["name"] = label_text(self.label, lang)
        return out

    def public(self) -> dict[str, Any]:
        return {**self.summary(), "form": self.form}


@cache
def builtin_templates() -> tuple[Template, ...]:
    """The shipped templates, in file-name order (read once per process)."""
    found = []
    for path in sorted(BUILTIN.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        found.append(
            Template(
                id=document["key"],
                label=document["label"],
                description=document.get("description"),
                form=document["form"],
                builtin=True,
            )
        )
    return tuple(found)


def _saved(row: FormTemplate) -> Template:
    return Template(
        id=row.id,
        label=row.label,
        description=row.description,
        form=row.form,
        builtin=False,
        app=row.app,
        source_form=row.source_form,
        created_by=row.created_by,
        created_at=row.created_at,
    )


async def all_templates(session: AsyncSession) -> list[Template]:
    """The shipped templates first, then the saved ones, oldest first."""
    return [*builtin_templates(), *(_saved(row) for row in await repository.saved(session))]


async def get_template(session: AsyncSession, template_id: str) -> Template:
    for template in builtin_templates():
        if template.id == template_id:
            return template
    row = await repository.one(session, template_id)
    if row is None:
        raise NotFound(f"There is no form template '{template_id}'.")
    return _saved(row)


def check_form(form: dict[str, Any], pointer: str = "/form") -> None:
    """Refuse (422, pointers into the template) a definition that is not a valid form."""
    try:
        FormSpec.model_validate({"key": "template", **form})
    except ValidationError as exc:
        raise Unprocessable(
            "The template is not a valid form.",
            errors=[
                {
                    "path": pointer + item["pointer"],
                    "code": item["code"],
                    "message": item["message"],
                }
                for item in definition_errors(exc)
            ],
        ) from None


def _label_problem(label: Any) -> str | None:
    if isinstance(label, str):
        return None if label.strip() and len(label) <= 200 else "must be 1 to 200 characters"
    if isinstance(label, dict) and label:
        texts = list(label.values())
        if all(isinstance(t, str) and t.strip() and len(t) <= 200 for t in texts):
            return None
    return "must be a text, or {locale: text}, of 1 to 200 characters"


async def save_template(
    session: AsyncSession,
    *,
    document: dict[str, Any],
    app: str,
    form: str,
    label: Any,
    description: Any,
    actor: str,
    now: datetime,
) -> Template:
    """Store the form ``document`` (as the app holds it) as a template named ``label``."""
    name = document.get("label") if label is None else label
    problem = _label_problem(name)
    if problem is not None:
        raise Unprocessable(
            "The template needs a name.",
            errors=[{"path": "/label", "code": "invalid_value", "message": problem}],
        )
    copied = {k: v for k, v in document.items() if k not in NOT_COPIED}
    check_form(copied)
    row = FormTemplate(
        id=new_id(),
        label=name,
        description=description,
        form=copied,
        app=app,
        source_form=form,
        created_by=actor,
        created_at=now,
    )
    repository.add(session, row)
    await session.flush()
    return _saved(row)


async def delete_template(session: AsyncSession, template_id: str) -> FormTemplate:
    """Remove a saved template (the caller checked who may); shipped ones stay."""
    if any(t.id == template_id for t in builtin_templates()):
        raise Conflict(f"'{template_id}' is shipped with Formloom and cannot be deleted.")
    row = await repository.one(session, template_id)
    if row is None:
        raise NotFound(f"There is no form template '{template_id}'.")
    await repository.delete(session, row)
    return row


def slug(text: str) -> str:
    """Lower-case letters, digits and ``_`` of ``text`` (the designer's rule: designer-model.js)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    if stem and not stem[0].isalpha():
        stem = f"f_{stem}"
    return stem[:60].rstrip("_")


def new_form_key(label: Any, taken: set[str]) -> str:
    """A form key from the template's name (English first), unique among ``taken``."""
    text = label if isinstance(label, str) else label.get("en") or next(iter(label.values()), "")
    stem = slug(text) or "form"
    if stem not in taken:
        return stem
    number = 2
    while f"{stem}_{number}" in taken:
        number += 1
    return f"{stem}_{number}"


def start_form(template: Template, taken: set[str]) -> dict[str, Any]:
    """The new form's definition: the template's, with a key unique in the app."""
    return {"key": new_form_key(template.label, taken), **template.form}
