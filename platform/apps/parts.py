"""Saving one part of an app (a rule, a report, a dashboard, a flow, a form's grants) the way
the form designer saves a form: the part is put into (or taken out of) the app's current
definition and the whole goes through the import's plan-and-apply path
(:func:`formloom.platform.apps.service.import_app`).

So a part saved by an editor is checked exactly as an imported one, makes a new app revision
(rollback restores it as it was), and arms or drops what depends on it (timers, flow
versions) in the same unit of work.

Invariants:

* only platform admins and users holding one of the app's ``design`` roles get past
  :func:`designed_app`; a caller without any role in the app (or a token of another app) is
  refused before the app is read, so it learns nothing about the app;
* ``If-Match`` carries the app revision the editor read: 412 when someone saved meanwhile;
* errors are 422 with JSON pointers **into the part** (``/rows/0/field``), not into the app,
  so an editor can show each at its element; a problem elsewhere in the app keeps its
  pointer into the app and is marked ``"in": "app"``;
* a dry run answers the plan and changes nothing; a save that changes nothing is not
  audited; a save that changes who may do what is audited as such too
  (:func:`formloom.platform.apps.auditing.audit_change`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.apps import AppSpec
from formloom.platform.apps import auditing, service
from formloom.platform.apps.endpoints import _audited
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import Platform
from formloom.platform.errors import InvalidDefinition, NotFound, PreconditionFailed, shown
from formloom.platform.permissions import guard


@dataclass(frozen=True)
class Section:
    """A list of keyed parts in the app definition (``rules``, ``reports``...)."""

    name: str
    noun: str

    @property
    def saved(self) -> str:
        return f"app.{self.noun}_saved"

    @property
    def deleted(self) -> str:
        return f"app.{self.noun}_deleted"


RULES = Section("rules", "rule")
REPORTS = Section("reports", "report")
DASHBOARDS = Section("dashboards", "dashboard")
FLOWS = Section("flows", "flow")


async def designed_app(
    p: Platform, session: AsyncSession, who: Principal, app: str, doing: str
) -> service.InstalledApp:
    """The app, once the caller is known to be one of its designers (or an admin)."""
    guard.require_designer(who, app, doing)
    installed = await p.catalog.get(session, app)
    guard.require_design(who, app, installed.spec.design, doing)
    return installed


def check_revision(installed: service.InstalledApp, if_match: str | None) -> None:
    """412 unless ``If-Match`` (when given) names the app's current revision or ``*``."""
    if if_match is None:
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if wanted not in ("*", str(installed.version)):
        raise PreconditionFailed(
            f"The app is at revision {installed.version}, not {shown(wanted)}; reload and "
            "save again.",
            current_revision=installed.version,
        )


def entries(installed: service.InstalledApp, section: Section) -> list[dict[str, Any]]:
    """The section's parts as written in the app's current definition."""
    return [e for e in installed.document.get(section.name, []) if isinstance(e, dict)]


def find(installed: service.InstalledApp, section: Section, key: str) -> dict[str, Any]:
    found = next((e for e in entries(installed, section) if e.get("key") == key), None)
    if found is None:
        raise NotFound(f"App '{installed.key}' has no {section.noun} '{shown(key)}'.")
    return found


def index_of(parts: list[Any], key: str) -> int | None:
    return next(
        (i for i, e in enumerate(parts) if isinstance(e, dict) and e.get("key") == key), None
    )


def pointed_into(problem: InvalidDefinition, prefix: str | None, noun: str) -> InvalidDefinition:
    """The problems of the app a part was put into, pointed into the part itself: those
    under ``prefix`` (``/rules/3``) lose it; any other keeps its pointer into the app and
    is marked ``"in": "app"``. With no prefix (a part was taken out) all are the app's."""
    errors = []
    for error in problem.errors:
        path = str(error.get("path", ""))
        if prefix is not None and (path == prefix or path.startswith(prefix + "/")):
            errors.append({**error, "path": path[len(prefix) :]})
        else:
            errors.append({**error, "path": path, "in": "app"})
    message = (
        f"The {noun} has {len(errors)} problem(s); nothing was saved."
        if prefix is not None
        else f"Without the {noun} the app would have {len(errors)} problem(s) (something "
        "still names it); nothing was changed."
    )
    return InvalidDefinition(message, errors=errors)


def draft(
    installed: service.InstalledApp, section: Section, key: str, definition: dict[str, Any]
) -> AppSpec:
    """The app as it would be with ``definition`` saved as part ``key`` of ``section``
    (replacing it, or last when new), checked as a save would check it; 422 with pointers
    into the part otherwise. Nothing is written: for trying or simulating a draft."""
    document = json.loads(json.dumps(installed.document))
    items = document.setdefault(section.name, [])
    index = index_of(items, key)
    index = len(items) if index is None else index
    items[index : index + 1] = [{**definition, "key": key}]
    document.pop("migrations", None)
    try:
        return service.validate_document(document)
    except InvalidDefinition as problem:
        raise pointed_into(problem, f"/{section.name}/{index}", section.noun) from None


async def change_document(
    session: AsyncSession,
    catalog: service.AppCatalog,
    installed: service.InstalledApp,
    change: Callable[[dict[str, Any]], str | None],
    *,
    noun: str,
    actor: str,
    now: datetime,
    dry_run: bool,
) -> service.ImportResult:
    """The app's current definition changed by ``change`` (which edits a deep copy in place
    and answers the JSON pointer of the part it put, or None), planned and (unless
    ``dry_run``) applied as an import. Errors under that pointer are pointed into the part."""
    document = json.loads(json.dumps(installed.document))
    prefix = change(document)
    document.pop("migrations", None)  # a part's save migrates no records
    try:
        return await service.import_app(
            session, catalog, document, actor=actor, now=now, dry_run=dry_run
        )
    except InvalidDefinition as problem:
        raise pointed_into(problem, prefix, noun) from None


async def change_section(
    session: AsyncSession,
    catalog: service.AppCatalog,
    installed: service.InstalledApp,
    section: Section,
    change: Callable[[list[Any]], int | None],
    *,
    actor: str,
    now: datetime,
    dry_run: bool,
) -> service.ImportResult:
    """:func:`change_document` for one section: ``change`` edits the section's list in
    place and answers the index of the part it put, or None."""

    def edit(document: dict[str, Any]) -> str | None:
        index = change(document.setdefault(section.name, []))
        if not document[section.name]:
            del document[section.name]
        return None if index is None else f"/{section.name}/{index}"

    return await change_document(
        session,
        catalog,
        installed,
        edit,
        noun=section.noun,
        actor=actor,
        now=now,
        dry_run=dry_run,
    )


def answer(
    result: service.ImportResult, noun: str, key: str, dry_run: bool, **extra: Any
) -> JSONResponse:
    """The save's answer: the plan for a dry run; else the new revision (also the ETag)."""
    if dry_run:
        assert result.plan is not None
        return JSONResponse({"dry_run": True, noun: key, **result.plan.to_dict()})
    return JSONResponse(
        {"app": result.app, "revision": result.version, "status": result.status, noun: key} | extra,
        headers={"ETag": f'"{result.version}"'},
    )


async def audit_saved(
    session: AsyncSession,
    catalog: service.AppCatalog,
    who: Principal,
    action: str,
    result: service.ImportResult,
    now: datetime,
    before: dict[str, Any] | None,
    detail: dict[str, Any],
    dry_run: bool,
) -> None:
    """The save's audit row (with ``detail``), plus ``app.permissions_changed`` when the
    app's grants differ from ``before``; nothing for a dry run or a save that changed
    nothing."""
    if dry_run or result.status == "unchanged":
        return
    await auditing.audit_change(session, catalog, who, action, result, now, before, detail)


async def save_section(
    p: Platform,
    who: Principal,
    app: str,
    section: Section,
    action: str,
    change: Callable[[list[Any]], int | None],
    detail: Callable[[], dict[str, Any]],
    *,
    dry_run: bool,
    if_match: str | None,
    must_exist: str | None = None,
) -> service.ImportResult:
    """``change`` applied to the section in one audited unit of work, by a designer, at
    the revision ``if_match`` names (when given); ``must_exist`` 404s first when that part
    is missing."""
    async with (
        _audited(p, who, action, app, dry_run),
        p.db.transaction(write=not dry_run) as session,
    ):
        installed = await designed_app(p, session, who, app, f"change {section.name}")
        if must_exist is not None:
            find(installed, section, must_exist)
        check_revision(installed, if_match)
        before = await auditing.grants_before(session, p.catalog, app)
        result = await change_section(
            session, p.catalog, installed, section, change, actor=who.username,
            now=p.clock.now(), dry_run=dry_run,
        )  # fmt: skip
        await audit_saved(
            session, p.catalog, who, action, result, p.clock.now(), before, detail(), dry_run
        )
    return result
