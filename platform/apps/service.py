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

from formloom.engines.apps import KEY_PATTERN, AppSpec, DefinitionInvalid, canonical_text, digest
from formloom.engines.forms import SCALAR_TYPES, FormSpec, field_types, label_text
from formloom.engines.forms.plan import Plan
from formloom.engines.logic.sql import LONG_TEXT_TYPES, PROJECTED_TYPES, index_expression_sql
from formloom.engines.rules import RuleIndex
from formloom.platform import jsonsafe
from formloom.platform.apps import changes, repository
from formloom.platform.apps.definition import load
from formloom.platform.errors import Conflict, InvalidDefinition, NotFound, shown
from formloom.platform.models import App, AppVersion
from formloom.platform.records import projections, search
from formloom.platform.rules import timers as rule_timers

INDEX_PREFIX = "ix_rec_"
_KEY = re.compile(KEY_PATTERN)


@dataclass(frozen=True)
class InstalledApp:
    key: str
    version: int
    spec: AppSpec
    document: dict[str, Any]
    forms: dict[str, FormSpec] = field(default_factory=dict)
    form_versions: dict[str, int] = field(default_factory=dict)
    #: The app's rules by trigger (built once per version).
    rules: RuleIndex = field(default_factory=lambda: RuleIndex(()))

    def form_version(self, key: str) -> int:
        return self.form_versions.get(key, self.version)

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
    plan: Plan | None = None
    #: Typed projections (PostgreSQL) left to fill once the change has committed
    #: (:func:`formloom.platform.records.projections.fill`).
    projections_to_fill: list[str] = field(default_factory=list)


def _installed(
    key: str, version: int, document: dict[str, Any], form_versions: dict[str, int]
) -> InstalledApp:
    spec = load(document)
    forms = {form.key: form for form in spec.forms}
    return InstalledApp(
        key, version, spec, document, forms, dict(form_versions), RuleIndex(spec.rules)
    )


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
        installed = _installed(key, version, json.loads(row.definition), row.form_versions)
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

    def pinned(self) -> AppCatalog:
        """This catalog for one unit of background work (a batch of the worker's timers):
        each app's current version is read once, not on every ``get``. Not for a unit that
        installs apps."""
        return _PinnedCatalog(self)


class _PinnedCatalog(AppCatalog):
    """See :meth:`AppCatalog.pinned`: shares the parsed definitions of the catalog it
    pins."""

    def __init__(self, shared: AppCatalog) -> None:
        self._by_version = shared._by_version
        self._latest = shared._latest
        self._current: dict[str, InstalledApp] = {}

    async def get(self, session: AsyncSession, key: str) -> InstalledApp:
        found = self._current.get(key)
        if found is None:
            found = self._current[key] = await super().get(session, key)
        return found


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
    allow_destructive: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Validate, plan and (unless ``dry_run``) apply a definition in the caller's unit of
    work: the new version, the migrated records and the indexes commit together or not at
    all. A plan with blocked changes is refused (409) with the plan in the problem."""
    spec = validate_document(document)
    assert isinstance(document, dict)
    forms = [form.key for form in spec.forms]
    app = await repository.get_app(session, spec.key, lock=not dry_run)
    new_digest = digest(document)
    current: InstalledApp | None = None
    current_row = None
    if app is not None:
        current_row = await repository.get_version(session, spec.key, app.current_version)
        current = await catalog.get_version(session, spec.key, app.current_version)
    unchanged = current_row is not None and current_row.digest == new_digest
    plan = await changes.make_plan(
        session,
        current.spec if current else None,
        app.current_version if app else None,
        spec,
        unchanged=unchanged,
        allow_destructive=allow_destructive,
        now=now,
    )
    if dry_run or unchanged:
        status: Literal["created", "updated", "unchanged"] = (
            "unchanged" if unchanged else ("created" if app is None else "updated")
        )
        return ImportResult(spec.key, app.current_version if app else 0, status, forms, plan)
    if not plan.can_apply:
        raise Conflict(
            f"The import of '{spec.key}' needs {len(plan.blocked)} decision(s) before it can "
            "be applied; nothing was changed.",
            errors=[
                {
                    "path": f"/forms/{b['form']}" + (f"/{b['field']}" if b.get("field") else ""),
                    "code": b["class"],
                    "message": b["message"],
                }
                for b in plan.blocked
            ],
            plan=plan.to_dict(),
        )
    if app is not None:
        number = app.current_version + 1
        app.current_version = number
        app.updated_at = now
        status = "updated"
    else:
        number = 1
        session.add(App(key=spec.key, current_version=1, created_at=now, updated_at=now))
        status = "created"
    await session.flush()
    form_versions = _form_versions(current, plan, spec, number)
    session.add(
        AppVersion(
            app=spec.key,
            version=number,
            label=label_text(spec.label)[:200],
            semver=spec.version,
            definition=canonical_text(document),
            digest=new_digest,
            form_versions=form_versions,
            created_at=now,
            created_by=actor,
        )
    )
    await session.flush()
    new_forms = {f.key: f for f in spec.forms}
    for form_plan in plan.forms:
        diff = form_plan.diff
        if diff.kind == "removed":
            await changes.remove_form_records(session, spec.key, diff.form, actor=actor, now=now)
        elif diff.rewrites_records and form_plan.records:
            assert current is not None  # a changed form was installed before
            await changes.apply_form_change(
                session,
                spec.key,
                form_plan,
                current.forms[diff.form],
                new_forms[diff.form],
                plan.migrations.get(diff.form),
                form_version=form_versions[diff.form],
                actor=actor,
                now=now,
            )
    await sync_indexes(session, spec)
    to_fill = await projections.prepare(session, spec, now=now)
    installed = InstalledApp(
        spec.key, number, spec, document, new_forms, form_versions, RuleIndex(spec.rules)
    )
    await rule_timers.sync(session, current, installed, now)
    await session.flush()
    catalog.remember(installed)
    return ImportResult(spec.key, number, status, forms, plan, to_fill)


def _form_versions(
    current: InstalledApp | None, plan: Plan, spec: AppSpec, number: int
) -> dict[str, int]:
    """Each form keeps its version unless this import changes it."""
    changed = {f.diff.form for f in plan.forms}
    versions = {}
    for form in spec.forms:
        if current is None or form.key in changed or form.key not in current.forms:
            versions[form.key] = number
        else:
            versions[form.key] = current.form_version(form.key)
    return versions


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


async def _wanted_indexes(session: AsyncSession, spec: AppSpec) -> dict[str, str]:
    """The documents' indexes ``spec`` asks for: name -> DDL."""
    dialect = session.get_bind().dialect.name
    # a field the forms' typed projections hold is indexed there (every read of it goes
    # through the projection); a second index on the documents would only cost writes
    projected = PROJECTED_TYPES if projections.enabled() else {}
    wanted: dict[str, str] = {}
    for form in spec.forms:
        types = field_types(form)
        for fld in form.fields:
            if getattr(fld, "indexed", False) or getattr(fld, "unique", False):
                field_type = types.get(fld.key)
                if field_type not in SCALAR_TYPES or field_type in projected:
                    continue
                name = index_name(spec.key, form.key, fld.key)
                expression = _index_expression(dialect, fld.key, field_type)
                # long text: a hash of the value on PostgreSQL (a B-tree entry holds at most
                # ~2,700 bytes, and a longer value's write would fail)
                hashed = dialect == "postgresql" and field_type in LONG_TEXT_TYPES
                columns = f"USING hash (({expression}))" if hashed else f"(({expression}), id)"
                wanted[name] = (
                    f"CREATE INDEX IF NOT EXISTS {name} ON records {columns} "
                    f"WHERE app = '{spec.key}' AND form = '{form.key}' AND deleted_at IS NULL"
                )
    wanted.update(await search.index_statements(session, spec, INDEX_PREFIX))
    return wanted


async def _indexes_as_wanted(session: AsyncSession, spec: AppSpec) -> bool:
    existing = await repository.existing_index_names(session, f"{INDEX_PREFIX}{spec.key}__")
    return existing == (await _wanted_indexes(session, spec)).keys()


async def sync_indexes(session: AsyncSession, spec: AppSpec) -> None:
    """Create an expression index per `indexed` field the typed projections do not hold
    (partial: this form's live rows), and drop the indexes of this app that no field asks for
    any more. Keys are validated identifiers, so they can be written into the DDL."""
    wanted = await _wanted_indexes(session, spec)
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


async def list_versions(session: AsyncSession, key: str) -> list[dict[str, Any]]:
    if not _KEY.match(key) or await repository.current_version_number(session, key) is None:
        raise NotFound(f"No app '{shown(key)}' is installed.")
    current = await repository.current_version_number(session, key)
    return [
        {
            "revision": row.version,
            "version": row.semver,
            "label": row.label,
            "digest": row.digest,
            "form_versions": row.form_versions,
            "created_at": row.created_at,
            "created_by": row.created_by,
            "current": row.version == current,
        }
        for row in await repository.versions(session, key)
    ]


def _reverse_renames(catalog_versions: list[InstalledApp], target: AppSpec) -> list[dict[str, Any]]:
    """Renames made after ``target`` was current, undone: rolling back a rename moves the
    values back instead of dropping them. Only pairs whose old key is a field of the
    target's form are kept (a field added and then renamed since has nothing to go back to)."""
    inverse: dict[str, dict[str, str]] = {}
    for installed in catalog_versions:
        for entry in installed.spec.migrations:
            for old_key, new_key in entry.rename.items():
                inverse.setdefault(entry.form, {})[new_key] = old_key
    out = []
    for form in target.forms:
        keys = {f.key for f in form.fields}
        pairs = {n: o for n, o in inverse.get(form.key, {}).items() if o in keys}
        if pairs:
            out.append({"form": form.key, "rename": pairs})
    return out


async def rollback(
    session: AsyncSession,
    catalog: AppCatalog,
    key: str,
    to: int,
    *,
    actor: str,
    now: datetime,
    allow_destructive: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Make revision ``to``'s definition current again, as a new revision, through the same
    plan-and-apply path as an import. Renames made since are undone automatically."""
    current = await catalog.get(session, key)
    if not 1 <= to <= current.version:
        raise NotFound(f"App '{key}' has no revision {to}.")
    target = await catalog.get_version(session, key, to)
    later = [await catalog.get_version(session, key, n) for n in range(to + 1, current.version + 1)]
    document = dict(target.document)
    inverse = _reverse_renames(later, target.spec)
    if inverse:
        document["migrations"] = inverse
    return await import_app(
        session,
        catalog,
        document,
        actor=actor,
        now=now,
        allow_destructive=allow_destructive,
        dry_run=dry_run,
    )


async def save_form(
    session: AsyncSession,
    catalog: AppCatalog,
    key: str,
    form_document: Any,
    *,
    migration: dict[str, Any] | None,
    if_match: str | None,
    actor: str,
    now: datetime,
    allow_destructive: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """The designer's save: one form replaced (or added) in the current definition, then
    the same plan-and-apply path as an import. ``If-Match`` guards against overwriting a
    save someone else made meanwhile (the ETag is the app revision)."""
    current = await catalog.get(session, key)
    if if_match is not None and if_match.strip().removeprefix("W/").strip('"') not in (
        "*",
        str(current.version),
    ):
        from formloom.platform.errors import PreconditionFailed

        raise PreconditionFailed(
            f"The app is at revision {current.version}, not {if_match}; reload the form and "
            "save again.",
            current_revision=current.version,
        )
    if not isinstance(form_document, dict) or not isinstance(form_document.get("key"), str):
        raise InvalidDefinition(
            "The body must be a form definition (an object with a `key`).",
            errors=[{"path": "/key", "code": "missing", "message": "is required"}],
        )
    document = json.loads(json.dumps(current.document))
    forms = document.setdefault("forms", [])
    for index, existing in enumerate(forms):
        if isinstance(existing, dict) and existing.get("key") == form_document["key"]:
            forms[index] = form_document
            break
    else:
        forms.append(form_document)
    document.pop("migrations", None)
    if migration:
        document["migrations"] = [{"form": form_document["key"], **migration}]
    return await import_app(
        session,
        catalog,
        document,
        actor=actor,
        now=now,
        allow_destructive=allow_destructive,
        dry_run=dry_run,
    )


async def reconcile_projections(database: Any, *, now: datetime) -> list[str]:
    """At start-up: a new typed-projection generation for every installed form whose
    projected columns this release chooses differently from the generation it has (a release
    that projects another field type), built as an app change builds one (the old generation
    serves reads until the new one is filled); and the documents' expression indexes as this
    release wants them (none for a field a projection holds, unless projections are off).
    Returns the generations left to fill."""
    async with database.transaction(write=False) as session:
        installed = [
            load(json.loads(version.definition))
            for _, version in await repository.list_apps(session)
        ]
        stale = [
            spec.key
            for spec in installed
            if await projections.planned(session, spec)
            or not await _indexes_as_wanted(session, spec)
        ]
    to_fill: list[str] = []
    for key in stale:
        async with database.transaction() as session:
            current = await repository.get_app(session, key, lock=True)  # one change at a time
            if current is None:
                continue
            definition = await repository.get_version(session, key, current.current_version)
            if definition is None:
                continue
            spec = load(json.loads(definition.definition))
            to_fill += await projections.prepare(session, spec, now=now)
            await sync_indexes(session, spec)
    return to_fill
