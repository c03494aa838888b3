"""FHIR use cases shared by the API and the command line (docs/fhir.md).

A Questionnaire joins an app through the designer's save (``apps.service.save_form``): the
same plan, the same dry run, the same audit. Records travel through the record service, so
a QuestionnaireResponse is validated, permitted and audited as any write, and a record is
exported with the caller's hidden fields already gone.

Invariant: the form's definition used for export is the installed one minus the fields the
caller may not see, so a hidden field appears neither in the Questionnaire nor in a response.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.fhir import (
    QuestionnaireInvalid,
    Unmapped,
    export_questionnaire,
    import_questionnaire,
    item_path,
    record_to_response,
    response_to_data,
)
from formloom.engines.fhir.questionnaire import fit_labels
from formloom.engines.forms import FormSpec, RecordInvalid
from formloom.engines.forms.record import hidden_keys
from formloom.platform.apps import service as apps
from formloom.platform.errors import Unprocessable


@dataclass
class QuestionnaireImport:
    """The form made from a questionnaire, what was not mapped, and the save's result."""

    definition: dict[str, Any]
    unmapped: list[Unmapped]
    result: apps.ImportResult


def form_from_questionnaire(
    questionnaire: Any, form: str | None
) -> tuple[dict[str, Any], list[Unmapped]]:
    """The form definition for ``questionnaire`` (its key ``form`` if given); 422 if it is
    no Questionnaire."""
    try:
        imported = import_questionnaire(questionnaire)
    except QuestionnaireInvalid as exc:
        raise Unprocessable(
            f"This is not a FHIR Questionnaire: {exc.message} (at {exc.pointer or '/'}).",
            errors=[{"path": exc.pointer, "code": "invalid", "message": exc.message}],
        ) from None
    definition = imported.form
    if form is not None:
        definition = {**definition, "key": form}
    return definition, imported.unmapped


async def import_into_app(
    session: AsyncSession,
    catalog: apps.AppCatalog,
    app: str,
    questionnaire: Any,
    *,
    form: str | None,
    actor: str,
    now: datetime,
    allow_destructive: bool,
    dry_run: bool,
) -> QuestionnaireImport:
    """Add (or replace) the questionnaire's form in ``app`` through the import plan."""
    definition, unmapped = form_from_questionnaire(questionnaire, form)
    locales = (await catalog.get(session, app)).spec.locales
    definition, fitted = fit_labels(definition, locales)
    unmapped = [*unmapped, *fitted]
    result = await apps.save_form(
        session,
        catalog,
        app,
        definition,
        migration=None,
        if_match=None,
        actor=actor,
        now=now,
        allow_destructive=allow_destructive,
        dry_run=dry_run,
    )
    return QuestionnaireImport(definition, unmapped, result)


def visible_definition(
    installed: apps.InstalledApp, form: str, hidden: Iterable[str]
) -> dict[str, Any]:
    """The installed definition of ``form`` without the ``hidden`` fields."""
    installed.form(form)  # 404 for an unknown form
    document = next(f for f in installed.document["forms"] if f.get("key") == form)
    gone = set(hidden)
    if not gone:
        return dict(document)
    return {
        **document,
        "fields": [f for f in document.get("fields", []) if f.get("key") not in gone],
    }


def canonical_url(definition: Mapping[str, Any], base: str, app: str) -> str:
    """The Questionnaire's canonical URL: its own (imported) one, else where we serve it."""
    url = (definition.get("fhir") or {}).get("url")
    if isinstance(url, str) and url:
        return url
    return f"{base.rstrip('/')}/api/apps/{app}/fhir/Questionnaire/{definition['key']}"


def questionnaire_of(
    definition: Mapping[str, Any], base: str, app: str
) -> tuple[dict[str, Any], list[Unmapped]]:
    questionnaire, unmapped = export_questionnaire(definition)
    questionnaire = {
        "resourceType": "Questionnaire",
        "id": f"{app}-{definition['key']}".replace("_", "-")[:64],
        "url": canonical_url(definition, base, app),
        **{k: v for k, v in questionnaire.items() if k not in ("resourceType", "url")},
    }
    return questionnaire, unmapped


def response_of(
    definition: Mapping[str, Any],
    base: str,
    app: str,
    record: Mapping[str, Any],
    *,
    form: FormSpec,
    now: datetime,
) -> dict[str, Any]:
    """A record (as the caller sees it) as a completed QuestionnaireResponse. Answers to
    questions the record's own answers disable (a value kept in a field its condition now
    hides) are left out, as FHIR asks of a response."""
    questionnaire, _ = questionnaire_of(definition, base, app)
    data = dict(record["data"])
    for key in hidden_keys(form, data, now=now):
        data.pop(key, None)
    return record_to_response(
        questionnaire,
        definition,
        data,
        canonical=questionnaire["url"],
        record_id=record["id"],
        authored=record.get("updated_at") or record.get("created_at"),
    )


def data_of_response(
    definition: Mapping[str, Any], response: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """Record data from a QuestionnaireResponse; 422 naming each bad item's linkId."""
    read = response_to_data(response, definition)
    if read.problems:
        raise Unprocessable(
            f"{len(read.problems)} item(s) of the QuestionnaireResponse cannot be read.",
            errors=[
                {"path": p.path, "link_id": p.link_id, "code": "fhir", "message": p.message}
                for p in read.problems
            ],
        )
    return read.data, read.sources


def located(
    exc: RecordInvalid, definition: Mapping[str, Any], sources: Mapping[str, str]
) -> Unprocessable:
    """The record's field errors, each at the QuestionnaireResponse item it came from."""
    links = {
        f["key"]: str((f.get("fhir") or {}).get("link_id") or f["key"])
        for f in definition.get("fields", [])
    }
    errors = []
    for error in exc.errors:
        link = links.get(error.field, error.field)
        where = sources.get(error.field) or item_path(link)
        rest = error.path.split("/", 3)[3] if error.path.count("/") >= 3 else ""
        errors.append(
            {
                "field": error.field,
                "link_id": link,
                "path": where + (f"/{rest}" if rest else ""),
                "code": error.code,
                "message": error.message,
            }
        )
    noun = "answer is" if len(errors) == 1 else "answers are"
    return Unprocessable(f"{len(errors)} {noun} not valid.", errors=errors)
