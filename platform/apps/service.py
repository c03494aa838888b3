"""Installing, reading and exporting apps.

An import is atomic: the definition is validated as a whole (every problem listed), then the
app row, the new version and the expression indexes of `indexed` fields are written in the
caller's unit of work. Importing a definition identical to the current one changes nothing.

``AppCatalog`` keeps the parsed definitions of this process, keyed by (app, version); each
use checks the app's current version number (one primary-key read), so a change made by
another process is seen on the next request.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.forms import FormSpec, field_types, label_text
from formloom.engines.logic.sql import index_expression_sql
from formloom.platform import jsonsafe
from formloom.platform.apps import repository
from formloom.platform.apps.definition import (
    KEY_PATTERN,
    AppSpec,
    DefinitionInvalid,
    canonical_text,
    digest,
    load,
)
from formloom.platform.errors import InvalidDefinition, NotFound, shown
from formloom.platform.models import App, AppVersion

INDEX_PREFIX = "ix_rec_"
_KEY = re.compile(KEY_PATTERN)
# Types whose values are scalar and so can be indexed and sorted on.
SCALAR_TYPES = {
    "text",
    "textarea",
    "email",
    "phone",
    "url",
    "select",
    "relation",
    "date",
    "datetime",
    "time",
    "number",
    "integer",
    "boolean",
}


@dataclass(frozen=True)
class InstalledApp:
    key: str
    version: int
    spec: AppSpec
    document: dict[str, Any]
    forms: dict[str, FormSpec] = field(default_factory=dict)

    def form(self, key: str) -> FormSpec:
        form = self.forms.get(key)
        if form is None:
            raise NotFound(f"App '{self.key}' has no form '{shown(key)}'.")
        return form


@dataclass(frozen=True)
class ImportResult:
    app: str
    version: int
    status: Literal["created", "updated", "unchanged"]
    forms: list[str]


def _installed(key: str, version: int, document: dict[str, Any]) -> InstalledApp:
    spec = load(document)
    return InstalledApp(key, version, spec, document, {form.key: form for form in spec.forms})


class AppCatalog:
    """Parsed definitions of installed apps, shared by the requests of one process."""

    def __init__(self) -> None:
        self._by_version: dict[tuple[str, int], InstalledApp] = {}
        self._latest: dict[str, InstalledApp] = {}

    async def get(self, session: AsyncSession, key: str) -> InstalledApp:
        if not _KEY.match(key):  # cannot name an app; never sent to the database
            raise NotFound(f"No app '{shown(key)}' is installed.")
        version = await repository.current_version_number(session, key)
        if version is None:
            raise NotFound(f"No app '{key}' is installed.")
        return await self.get_version(session, key, version)

    async def get_version(self, session: AsyncSession, key: str, version: int) -> InstalledApp:
        cached = self._by_version.get((key, version))
        if cached is not None:
            return cached
        row = await repository.get_version(session, key, version)
        if row is None:
            raise NotFound(f"App '{key}' has no version {version}.")
        installed = _installed(key, version, json.loads(row.definition))
        self.remember(installed)
        return installed

    def remember(self, installed: InstalledApp) -> None:
        self._by_version[(installed.key, installed.version)] = installed
        newest = self._latest.get(installed.key)
        if newest is None or newest.version < installed.version:
            self._latest[installed.key] = installed

    async def latest_known(self, session: AsyncSession, key: str) -> InstalledApp:
        """The newest definition this process has seen, without asking the database.

        Only for writes that re-check the version in their own statement (see
        ``records.repository.insert_if_current``); everything else uses ``get``.
        """
        known = self._latest.get(key)
        if known is not None:
            return known
        return await self.get(session, key)


def validate_document(document: Any) -> AppSpec:
    """Parse a definition or raise the 422 problem listing every error by JSON pointer."""
    found = jsonsafe.problems(document)
    if found:
        raise InvalidDefinition(
            f"The app definition has {len(found)} value(s) that cannot be stored; "
            "nothing was imported.",
            errors=[{"path": p, "code": "invalid_value", "message": m} for p, m in found],
        )
    try:
        return load(document)
    except DefinitionInvalid as exc:
        raise InvalidDefinition(
            f"The app definition has {len(exc.problems)} problem(s); nothing was imported.",
            errors=[problem.model_dump() for problem in exc.problems],
        ) from None


async def import_app(
    session: AsyncSession,
    catalog: AppCatalog,
    document: Any,
    *,
    actor: str,
    now: datetime,
) -> ImportResult:
    spec = validate_document(document)
    assert isinstance(document, dict)
    forms = [form.key for form in spec.forms]
    app = await repository.get_app(session, spec.key, lock=True)
    new_digest = digest(document)
    if app is not None:
        current = await repository.get_version(session, spec.key, app.current_version)
        if current is not None and current.digest == new_digest:
            return ImportResult(spec.key, app.current_version, "unchanged", forms)
        number = app.current_version + 1
        app.current_version = number
        app.updated_at = now
        status: Literal["created", "updated"] = "updated"
    else:
        number = 1
        session.add(App(key=spec.key, current_version=1, created_at=now, updated_at=now))
        status = "created"
    await session.flush()
    session.add(
        AppVersion(
            app=spec.key,
            version=number,
            label=label_text(spec.label)[:200],
            semver=spec.version,
            definition=canonical_text(document),
            digest=new_digest,
            created_at=now,
            created_by=actor,
        )
    )
    await sync_indexes(session, spec)
    await session.flush()
    catalog.remember(InstalledApp(spec.key, number, spec, document, {f.key: f for f in spec.forms}))
    return ImportResult(spec.key, number, status, forms)


def index_name(app: str, form: str, key: str) -> str:
    name = f"{INDEX_PREFIX}{app}__{form}__{key}"
    if len(name) <= 63:
        return name
    tag = hashlib.sha1(f"{app}/{form}/{key}".encode()).hexdigest()[:12]
    return f"{INDEX_PREFIX}{tag}_{key}"[:63]


def _index_expression(dialect: str, key: str, field_type: str) -> str:
    return index_expression_sql(
        key, field_type, dialect="postgresql" if dialect == "postgresql" else "sqlite"
    )


async def sync_indexes(session: AsyncSession, spec: AppSpec) -> None:
    """Create an expression index per `indexed` field (partial: this form's live rows), and
    drop the indexes of this app that no field asks for any more. Keys are validated
    identifiers, so they can be written into the DDL."""
    dialect = session.bind.dialect.name
    wanted: dict[str, str] = {}
    for form in spec.forms:
        types = field_types(form)
        for fld in form.fields:
            if getattr(fld, "indexed", False) or getattr(fld, "unique", False):
                field_type = types.get(fld.key)
                if field_type not in SCALAR_TYPES:
                    continue
                name = index_name(spec.key, form.key, fld.key)
                expression = _index_expression(dialect, fld.key, field_type)
                wanted[name] = (
                    f"CREATE INDEX IF NOT EXISTS {name} ON records (({expression}), id) "
                    f"WHERE app = '{spec.key}' AND form = '{form.key}' AND deleted_at IS NULL"
                )
    existing = await repository.existing_index_names(session, f"{INDEX_PREFIX}{spec.key}__")
    for name in sorted(existing - wanted.keys()):
        await session.execute(text(f"DROP INDEX IF EXISTS {name}"))
    for name, ddl in wanted.items():
        if name not in existing:
            await session.execute(text(ddl))


async def export_app(session: AsyncSession, key: str, version: int | None = None) -> str:
    if not _KEY.match(key):
        raise NotFound(f"No app '{shown(key)}' is installed.")
    if version is None:
        number = await repository.current_version_number(session, key)
        if number is None:
            raise NotFound(f"No app '{key}' is installed.")
        version = number
    row = await repository.get_version(session, key, version)
    if row is None:
        raise NotFound(f"App '{key}' has no version {version}.")
    return row.definition


async def describe_apps(session: AsyncSession) -> list[dict[str, Any]]:
    out = []
    for app, version in await repository.list_apps(session):
        out.append(
            {
                "key": app.key,
                "label": version.label,
                "version": version.semver,
                "revision": app.current_version,
                "updated_at": app.updated_at,
            }
        )
    return out


async def describe_app(session: AsyncSession, catalog: AppCatalog, key: str) -> dict[str, Any]:
    installed = await catalog.get(session, key)
    counts = await repository.record_counts(session, key)
    spec = installed.spec
    return {
        "key": spec.key,
        "label": spec.label,
        "version": spec.version,
        "revision": installed.version,
        "locales": spec.locales,
        "roles": [role.model_dump(exclude_none=True) for role in spec.roles],
        "forms": [
            {
                "key": form.key,
                "label": form.label,
                "fields": len(form.fields),
                "records": counts.get(form.key, 0),
            }
            for form in spec.forms
        ],
        "rules": len(spec.rules),
        "flows": len(spec.flows),
        "reports": len(spec.reports),
    }


async def plan_import(
    session: AsyncSession, spec: AppSpec, document: dict[str, Any]
) -> dict[str, Any]:
    """What an import would change, without changing anything: forms and fields added,
    changed and removed, with the number of live records of each touched form."""
    app = await repository.get_app(session, spec.key)
    if app is None:
        return {
            "app": spec.key,
            "status": "create",
            "forms": {"added": [f.key for f in spec.forms], "changed": [], "removed": []},
        }
    current_row = await repository.get_version(session, spec.key, app.current_version)
    assert current_row is not None
    if current_row.digest == digest(document):
        return {"app": spec.key, "status": "unchanged", "revision": app.current_version}
    current = load(json.loads(current_row.definition))
    counts = await repository.record_counts(session, spec.key)
    old = {f.key: f for f in current.forms}
    new = {f.key: f for f in spec.forms}
    changed = []
    for key in sorted(old.keys() & new.keys()):
        if old[key] == new[key]:
            continue
        old_fields = {f.key: f for f in old[key].fields}
        new_fields = {f.key: f for f in new[key].fields}
        changed.append(
            {
                "form": key,
                "records": counts.get(key, 0),
                "fields_added": sorted(new_fields.keys() - old_fields.keys()),
                "fields_removed": sorted(old_fields.keys() - new_fields.keys()),
                "fields_changed": sorted(
                    k
                    for k in old_fields.keys() & new_fields.keys()
                    if old_fields[k] != new_fields[k]
                ),
            }
        )
    return {
        "app": spec.key,
        "status": "update",
        "revision": app.current_version,
        "forms": {
            "added": sorted(new.keys() - old.keys()),
            "changed": changed,
            "removed": [
                {"form": k, "records": counts.get(k, 0)} for k in sorted(old.keys() - new.keys())
            ],
        },
    }
