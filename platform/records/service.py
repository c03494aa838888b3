"""The record use cases: create, read, update, delete, list and history of any form.

Each write is one unit of work: the record, its history row and its unique claims are
flushed together, and the caller commits once. A failed check raises before anything is
written, and a unique clash found by the database itself (two concurrent writers) aborts
the whole unit, so nothing is ever half-written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.apps.permissions import FULL_ACCESS, NOTHING, FormAccess
from formloom.engines.forms import (
    SCALAR_TYPES,
    FieldError,
    FormSpec,
    RecordInvalid,
    changed_fields,
    field_types,
    label_text,
    prepare,
    relation_values,
    unique_fields,
)
from formloom.engines.forms.fields import FileField, ImageField, TableField
from formloom.engines.logic import LogicError, evaluate
from formloom.engines.logic.coercion import truthy
from formloom.engines.logic.sql import (
    FIELD_TYPES,
    FilterError,
    FilterTarget,
    compile_filter,
    field_value,
)
from formloom.engines.rules import DEFAULT_MAX_DEPTH, Cascade, CascadeError, EventKind, Plan
from formloom.platform import jsonsafe
from formloom.platform.apps.service import AppCatalog, InstalledApp
from formloom.platform.audit.log import audit
from formloom.platform.audit.log import entry as audit_entry
from formloom.platform.auth.principal import Principal
from formloom.platform.db import after_success
from formloom.platform.deps import Platform
from formloom.platform.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    Unprocessable,
    shown,
)
from formloom.platform.models import SYSTEM_COLUMNS, Record, RecordHistory, system_columns
from formloom.platform.models.file import StoredFile
from formloom.platform.permissions import guard
from formloom.platform.permissions.expressions import hidden_reads, probe_audit
from formloom.platform.permissions.policy import resolve
from formloom.platform.records import cursor as keyset
from formloom.platform.records import repository
from formloom.platform.records.ids import is_id, new_id
from formloom.platform.rules import automation

#: Stands for a value a field cannot hold (compares unequal to everything).
_UNUSABLE: Any = object()

# Bounds the SQL a filter can produce (SQLite refuses expressions more than 1000 deep).
# Long value lists (`in`) are one operation however many values they hold.
MAX_FILTER_OPERATIONS = 300
# A keyset condition grows with the square of the number of sort keys.
MAX_SORT_KEYS = 10
#: What cursors carry for each sortable system column and field kind.
_COLUMN_KINDS: dict[str, keyset.ValueKind] = {
    "version": "integer",
    "created_at": "timestamp",
    "updated_at": "timestamp",
}
_FIELD_KINDS: dict[str, keyset.ValueKind] = {"number": "number", "boolean": "boolean"}


def _sort_problem(code: str, message: str) -> BadRequest:
    return BadRequest(
        f"`sort` cannot be used: {message}.",
        errors=[{"in": "query", "parameter": "sort", "code": code, "message": message}],
    )


@dataclass(frozen=True)
class ListQuery:
    filter: Any = None
    sort: str = "id"
    limit: int = 50
    cursor: str | None = None
    fields: list[str] | None = None
    count: bool = False


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None
    count: int | None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def record_out(
    record: Record, fields: Sequence[str] | None = None, hidden: frozenset[str] = frozenset()
) -> dict[str, Any]:
    data = record.data
    if fields is not None:
        data = {key: data[key] for key in fields if key in data and key not in hidden}
    elif hidden:
        data = {key: value for key, value in data.items() if key not in hidden}
    return {
        "id": record.id,
        "app": record.app,
        "form": record.form,
        "version": record.version,
        "form_version": record.form_version,
        "created_at": iso(record.created_at),
        "created_by": record.created_by,
        "updated_at": iso(record.updated_at),
        "updated_by": record.updated_by,
        "data": data,
    }


def etag(record: Record) -> str:
    return f'"{record.version}"'


def _matches(if_match: str | None, version: int) -> bool:
    if if_match is None:
        return True
    for tag in if_match.split(","):
        tag = tag.strip().removeprefix("W/").strip('"')
        if tag == "*" or tag == str(version):
            return True
    return False


def claim_value(value: Any) -> str:
    """The value a unique claim is made on: text compares trimmed and case-insensitively."""
    text = (
        value.strip().casefold()
        if isinstance(value, str)
        else json.dumps(value, sort_keys=True, ensure_ascii=False)
    )
    if len(text) <= 200:
        return text
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class RecordService:
    """Every record use case, on behalf of one caller (``principal``) — and so the one place
    where the app's permissions are enforced: actions, row filters (ANDed into the SQL of
    every read, so a row outside them is a 404 and never counted) and field rules (hidden
    fields stripped from every output, hidden and read-only ones refused in every input).

    Without a principal the service acts as the platform itself (``actor`` names it: the
    demo loader, migrations, benchmarks) with full access.
    """

    def __init__(
        self,
        session: AsyncSession,
        catalog: AppCatalog,
        *,
        now: datetime,
        actor: str | None = None,
        principal: Principal | None = None,
        max_page_size: int = 500,
        cascade: Cascade | None = None,
        locale: str | None = None,
        cursor_secret: str | None = None,
    ) -> None:
        if principal is None:
            principal = Principal(username=actor or "system", is_admin=True, via="system")
        self.session = session
        self.catalog = catalog
        self.principal = principal
        self.actor = principal.username
        self.now = now
        self.max_page_size = max_page_size
        #: Rules that led to this service's writes (rule actions write one level deeper).
        self.cascade = cascade if cascade is not None else Cascade(DEFAULT_MAX_DEPTH)
        #: The platform itself (rules, the demo loader) may write read-only fields.
        self.trusted = principal.via == "system"
        #: Language of rule rejections (default: the app's first locale).
        self.locale = locale
        self.dialect = session.bind.dialect.name
        self._access: dict[tuple[str, str], FormAccess] = {}
        #: Signs the cursors of lists (None: the process's own key, see records.cursor).
        self.cursor_secret = cursor_secret

    # -- who may do what ---------------------------------------------------------------

    def require_app(self, app: str) -> None:
        guard.require_app(self.principal, app)

    # -- acting for rules ----------------------------------------------------------------

    def for_rule(
        self, rule: str, form: str | None = None, record_id: str | None = None
    ) -> RecordService:
        """A service acting for ``rule`` (full access, named ``rule:<key>`` in history and
        audit). Given the record the rule ran for, its writes are one cascade level deeper;
        past the bound the whole write is refused with the chain and the loop."""
        cascade = self.cascade
        if form is not None:
            try:
                cascade = cascade.enter(rule, form, record_id)
            except CascadeError as error:
                raise automation.cascade_problem(error) from None
        return RecordService(
            self.session,
            self.catalog,
            now=self.now,
            principal=Principal(username=f"rule:{rule}", is_admin=True, via="system"),
            max_page_size=self.max_page_size,
            cascade=cascade,
            locale=self.locale,
        )

    async def exists(self, app: str, form: str, filter: Any) -> bool:
        """Whether a readable record of ``form`` matches ``filter`` (one SQL query)."""
        page = await self.list(app, form, ListQuery(filter=filter, limit=1, fields=[]))
        return bool(page.items)

    async def matching_ids(self, app: str, form: str, filter: Any) -> list[str]:
        """Ids of every readable record of ``form`` matching ``filter``, in id order."""
        ids: list[str] = []
        cursor = None
        while True:
            page = await self.list(
                app,
                form,
                ListQuery(filter=filter, limit=self.max_page_size, cursor=cursor, fields=[]),
            )
            ids += [item["id"] for item in page.items]
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor

    def _rule_locale(self, installed: InstalledApp) -> str:
        return self.locale or automation.app_locale(installed)

    async def _before_write(
        self,
        installed: InstalledApp,
        spec: FormSpec,
        kind: EventKind,
        data: dict[str, Any],
        old: dict[str, Any] | None,
        record_id: str,
        version: int,
    ) -> tuple[Plan | None, dict[str, Any]]:
        """The rules' plan for a create or update, its rejections raised, and the data to
        store: with the plan's ``set`` values, validated again by the form engine."""
        plan = automation.plan_write(
            self, installed, spec.key, kind, data=data, old=old, record_id=record_id,
            version=version,
        )  # fmt: skip
        if plan is None:
            return None, data
        await automation.check_rejections(self, plan, self._rule_locale(installed))
        extra = automation.set_values(plan, data)
        if extra:
            data = prepare(spec, extra, existing=data, now=self.now, allow_read_only=True)
        return plan, data

    def access(self, installed: InstalledApp, form: str) -> FormAccess:
        key = (installed.key, form)
        found = self._access.get(key)
        if found is None:
            found = resolve(installed.spec.permissions, self.principal, installed.key, form)
            self._access[key] = found
        return found

    def allowed(self, installed: InstalledApp, form: str, action: str) -> FormAccess:
        access = self.access(installed, form)
        if not access.allows(action):
            noun = {"create": "create", "read": "read", "update": "change", "delete": "delete"}
            raise Forbidden(
                f"Your roles in app '{installed.key}' do not allow you to {noun[action]} "
                f"{form} records.",
                audit={
                    "action": "auth.denied",
                    "app": installed.key,
                    "form": form,
                    "detail": {"reason": "action", "action": action},
                },
            )
        return access

    def row_condition(
        self, access: FormAccess, action: str, spec: FormSpec
    ) -> ColumnElement[bool] | None:
        rule = access.row_filter(action)
        if rule is None:
            return None
        try:
            return compile_filter(rule, self._target(spec), now=self.now)
        except FilterError:
            # Checked at import; a `$user` attribute of an unexpected type can still fail.
            # Admit nothing rather than everything.
            return compile_filter(NOTHING, self._target(spec), now=self.now)

    def _admits(self, access: FormAccess, action: str, record: Record) -> bool:
        rule = access.row_filter(action)
        if rule is None:
            return True
        values = {name: getattr(record, name) for name in SYSTEM_COLUMNS}
        values = {k: iso(v) if isinstance(v, datetime) else v for k, v in values.items()}
        try:
            return truthy(evaluate(rule, {**record.data, **values}, now=self.now))
        except LogicError:
            return False

    def _check_input(
        self,
        access: FormAccess,
        spec: FormSpec,
        payload: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> None:
        """Hidden fields cannot be written at all. A read-only field may be sent only when the
        write leaves its stored value as it is (a client may send a whole record back): the
        value it holds — on create (``old is None``), the value it would get anyway, its
        default or nothing — compared in stored form. Clearing it (``null``, ``""``, ``[]``)
        is a change when it holds a value, so it is refused like any other."""
        if access.unrestricted:
            return
        errors = []
        for key, value in payload.items():
            if key in access.hidden:
                errors.append(
                    FieldError(
                        field=key,
                        path=f"/data/{key}",
                        code="forbidden_field",
                        message="Your role may not set this field.",
                    )
                )
            elif key in access.read_only and not self._keeps(spec, key, value, payload, old):
                field = spec.field(key)
                label = label_text(getattr(field, "label", None) or key)
                errors.append(
                    FieldError(
                        field=key,
                        path=f"/data/{key}",
                        code="read_only",
                        message=f"{label} is read-only for your role.",
                    )
                )
        if errors:
            raise RecordInvalid(errors)

    def _keeps(
        self,
        spec: FormSpec,
        key: str,
        value: Any,
        payload: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> bool:
        """Whether writing ``value`` to field ``key`` leaves what the record would hold
        without it (``_check_input``). Both sides are compared as ``prepare`` stores them:
        normalised (a date or a number in another spelling is the same value), with
        ``None``, ``""`` and ``[]`` all meaning "no value"."""
        field = spec.field(key)

        def stored(raw: Any) -> Any:
            if field is None or not hasattr(field, "normalise"):
                return raw
            problems: list[Any] = []
            clean = field.normalise(raw, problems)
            if problems:
                return _UNUSABLE  # not a value the field could hold: a change
            if isinstance(field, TableField) and isinstance(clean, list):
                # clients' rows never need to carry computed cells (prepare recomputes them)
                computed = {c.key for c in field.fields if c.type == "computed"}
                clean = [
                    {k: v for k, v in row.items() if k not in computed}
                    if isinstance(row, dict)
                    else row
                    for row in clean
                ]
            return None if clean in ("", []) else clean

        if old is not None:
            before = old.get(key)
        else:
            # On create the field gets its default when it is not sent (prepare, step 3).
            before = getattr(field, "default", None)
            formula = getattr(field, "default_expr", None)
            if before is None and formula is not None:
                rest = {k: v for k, v in payload.items() if k != key}
                try:
                    before = evaluate(formula, rest, now=self.now)
                except LogicError:
                    before = None
        return bool(stored(value) == stored(before))

    def view(self, record: Record, fields: Sequence[str] | None = None) -> dict[str, Any]:
        """The record as this caller may see it."""
        access = self._access.get((record.app, record.form), FULL_ACCESS)
        return record_out(record, fields, access.hidden)

    def _read_event(self, installed: InstalledApp, spec: FormSpec, ids: list[str]) -> None:
        """A read of a sensitive form goes to the audit log with the unit of work that
        read it, once that unit has succeeded (``db.after_success``). Reads by the platform
        itself (rules, the worker, the demo loader) deliver nothing to anyone: not audited."""
        if spec.sensitive and ids and not self.trusted:
            self.audit_after_success(
                "record.read",
                app=installed.key,
                form=spec.key,
                record_id=ids[0] if len(ids) == 1 else None,
                detail={"ids": ids},
            )

    def audit_after_success(self, action: str, **fields: Any) -> None:
        """Record an event of this caller's in the audit log once the unit of work has
        succeeded (``fields`` as for ``audit.log.entry``), even if the unit only reads."""
        entry = audit_entry(self.principal, action, at=self.now, **fields)
        after_success(self.session).append(entry)

    # -- loading -----------------------------------------------------------------------

    async def load_form(self, app: str, form: str) -> tuple[InstalledApp, FormSpec]:
        self.require_app(app)
        installed = await self.catalog.get(self.session, app)
        return installed, installed.form(form)

    async def _load(
        self,
        app: str,
        form: str,
        record_id: str,
        *,
        lock: bool = False,
        where: ColumnElement[bool] | None = None,
    ) -> Record:
        record = None
        if is_id(record_id):
            record = await repository.get(
                self.session, app, form, record_id, lock=lock, where=where
            )
        if record is None:
            raise NotFound(f"No {form} record with id '{shown(record_id)}' in app '{app}'.")
        return record

    # -- checks that need the database -------------------------------------------------

    async def _check_relations(
        self, installed: InstalledApp, spec: FormSpec, data: dict[str, Any], only: set[str] | None
    ) -> list[FieldError]:
        """Relation values must name live records the writer could read: the read action
        and its row filter on the target form (a platform admin and the platform itself
        read everything). A record they may not read gets the very answer a missing id
        gets, so a write cannot probe for ids either. ``only`` (an update's changed
        top-level keys) limits the check to what the write changes: a pointer already
        stored, which this writer may not be able to read, is not theirs to answer for."""
        errors = []
        by_target: dict[str, list[tuple[str, str]]] = {}
        for key, target, value in relation_values(spec, data):
            # keys inside table rows come as "items/0/product"; `only` holds top-level keys
            if only is None or key.split("/", 1)[0] in only:
                by_target.setdefault(target, []).append((key, value))
        for target, refs in by_target.items():
            access = self.access(installed, target)
            found: set[str] = set()
            if access.allows("read"):
                where = self.row_condition(access, "read", installed.form(target))
                found = await repository.existing_ids(
                    self.session, installed.key, target, [value for _, value in refs], where=where
                )
            target_form = installed.forms.get(target)
            noun = label_text(target_form.label) if target_form else target
            for key, value in refs:
                if value not in found:
                    errors.append(
                        FieldError(
                            field=key.split("/", 1)[0],
                            path=f"/data/{key}",
                            code="relation",
                            message=f"There is no {noun} record with id '{value}'.",
                        )
                    )
        return errors

    async def _check_files(
        self,
        installed: InstalledApp,
        spec: FormSpec,
        data: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> list[FieldError]:
        """Files a write newly refers to must have been uploaded for this very field, by
        this caller (rules and the platform excepted), and be described as stored: a file
        cannot be taken over by copying its id into another record."""
        before = {ref["id"] for _, _, ref in _file_refs(spec, old or {})}
        wanted = [(key, path, ref) for key, path, ref in _file_refs(spec, data)
                  if ref["id"] not in before]  # fmt: skip
        if not wanted:
            return []
        rows = {
            row.id: row
            for row in (
                await self.session.execute(
                    select(StoredFile).where(StoredFile.id.in_({r["id"] for _, _, r in wanted}))
                )
            ).scalars()
        }
        errors = []
        for key, path, ref in wanted:
            row = rows.get(ref["id"])
            ok = (
                row is not None
                and (row.app, row.form, row.field) == (installed.key, spec.key, path)
                and (self.trusted or row.created_by == self.actor)
                and (ref.get("name"), ref.get("content_type"), ref.get("size"))
                == (row.name, row.content_type, row.size)
            )
            if not ok:
                errors.append(
                    FieldError(
                        field=key.split("/", 1)[0],
                        path=f"/data/{key}",
                        code="file",
                        message=f"There is no file '{shown(str(ref['id']))}' uploaded for "
                        f"this field by you; upload it with POST /api/files/{installed.key}/"
                        f"{spec.key}/{path}.",
                    )
                )
        return errors

    def _claims(
        self, spec: FormSpec, data: dict[str, Any], only: set[str] | None
    ) -> list[tuple[str, str]]:
        return [
            (key, claim_value(data[key]))
            for key in unique_fields(spec)
            if data.get(key) not in (None, "", []) and (only is None or key in only)
        ]

    @staticmethod
    def _unique_errors(spec: FormSpec, keys: Sequence[str]) -> list[FieldError]:
        labels = {f.key: label_text(getattr(f, "label", None) or f.key) for f in spec.fields}
        return [
            FieldError(
                field=key,
                path=f"/data/{key}",
                code="unique",
                message=f"{labels.get(key, key)} must be unique; another record already "
                "has this value.",
            )
            for key in keys
        ]

    async def _check_unique(
        self, app: str, spec: FormSpec, claims: list[tuple[str, str]], record_id: str | None
    ) -> list[FieldError]:
        holders = await repository.claimed(self.session, app, spec.key, claims)
        return self._unique_errors(
            spec, [key for key, holder in holders.items() if holder != record_id]
        )

    def _unique_race(
        self, spec: FormSpec, claims: list[tuple[str, str]] | None = None
    ) -> RecordInvalid:
        """A unique value claimed by a concurrent write that committed after this one's
        check: the database's unique index refused the claim. Answered exactly like the
        check's own finding (422, a ``unique`` error per field) so that a client sees one
        status for a duplicate whatever the timing; which of the claimed fields clashed is
        not known here, so each field this write claimed is named."""
        keys = [key for key, _ in claims] if claims else list(unique_fields(spec))
        return RecordInvalid(self._unique_errors(spec, keys))

    async def _flush_or_conflict(
        self, spec: FormSpec, claims: list[tuple[str, str]] | None = None
    ) -> None:
        try:
            await self.session.flush()
        except IntegrityError:
            raise self._unique_race(spec, claims) from None

    def _history(self, record: Record, operation: str, changed: list[str]) -> None:
        self.session.add(
            RecordHistory(
                record_id=record.id,
                app=record.app,
                form=record.form,
                version=record.version,
                form_version=record.form_version,
                operation=operation,
                data=record.data,
                changed=changed,
                actor=self.actor,
                at=self.now,
            )
        )

    # -- use cases ---------------------------------------------------------------------

    async def create(self, app: str, form: str, incoming: Any) -> Record:
        self.require_app(app)
        payload = _as_object(incoming)
        installed = await self.catalog.latest_known(self.session, app)
        for _attempt in range(3):
            spec = installed.form(form)
            self._access.pop((app, form), None)
            access = self.allowed(installed, form, "create")
            self._check_input(access, spec, payload, None)
            data = prepare(spec, payload, existing=None, now=self.now, allow_read_only=self.trusted)
            record_id = new_id()
            plan, data = await self._before_write(
                installed, spec, "created", data, None, record_id, 1
            )
            claims = self._claims(spec, data, None)
            errors = await self._check_relations(installed, spec, data, None)
            errors += await self._check_files(installed, spec, data, None)
            errors += await self._check_unique(app, spec, claims, None)
            if errors:
                raise RecordInvalid(errors)
            record = Record(
                id=record_id,
                app=app,
                form=form,
                form_version=installed.form_version(form),
                data=data,
                version=1,
                created_at=self.now,
                created_by=self.actor,
                updated_at=self.now,
                updated_by=self.actor,
            )
            if not self._admits(access, "create", record):
                raise Forbidden(
                    f"Your roles in app '{app}' do not allow you to create this {form} record "
                    "(it is outside the records you may create).",
                    audit={
                        "action": "auth.denied",
                        "app": app,
                        "form": form,
                        "detail": {"reason": "row_filter", "action": "create"},
                    },
                )
            history = {
                "app": app,
                "form": form,
                "version": 1,
                "form_version": installed.form_version(form),
                "operation": "create",
                "data": data,
                "changed": sorted(data),
                "actor": self.actor,
                "at": self.now,
            }
            written = audit_entry(
                self.principal,
                "record.create",
                at=self.now,
                app=app,
                form=form,
                record_id=record.id,
                version=1,
            )
            if await repository.insert_if_current(
                self.session, record, history, installed.version, written
            ):
                try:
                    await repository.insert_claims(self.session, app, form, record.id, claims)
                except IntegrityError:
                    raise self._unique_race(spec, claims) from None
                if plan is not None:
                    await automation.carry_out(
                        self, installed, plan, form=form, record_id=record.id
                    )
                await automation.move_date_timers(self, installed, form, record.id, data, None)
                return record
            # The app changed since this process last read it: validate against the new one.
            installed = await self.catalog.get(self.session, app)
        raise Conflict("The app's definition kept changing during the write; try again.")

    def _audit_write(self, action: str, record: Record) -> None:
        audit(
            self.session,
            self.principal,
            action,
            at=self.now,
            app=record.app,
            form=record.form,
            record_id=record.id,
            version=record.version,
        )

    async def get(self, app: str, form: str, record_id: str) -> Record:
        installed, spec = await self.load_form(app, form)
        record = await self._readable_record(installed, spec, record_id)
        self._read_event(installed, spec, [record.id])
        return record

    async def require_readable(self, app: str, form: str, record_id: str) -> None:
        """That the caller may read the record (403 or 404 as ``get``): a check made on
        the caller's behalf, which delivers nothing and so is not audited as a read."""
        installed, spec = await self.load_form(app, form)
        await self._readable_record(installed, spec, record_id)

    async def _readable_record(
        self, installed: InstalledApp, spec: FormSpec, record_id: str
    ) -> Record:
        access = self.allowed(installed, spec.key, "read")
        where = self.row_condition(access, "read", spec)
        return await self._load(installed.key, spec.key, record_id, where=where)

    async def update(
        self, app: str, form: str, record_id: str, patch: Any, *, if_match: str | None
    ) -> Record:
        installed, spec = await self.load_form(app, form)
        access = self.allowed(installed, form, "update")
        where = self.row_condition(access, "update", spec)
        record = await self._load(app, form, record_id, lock=True, where=where)
        if not _matches(if_match, record.version):
            raise PreconditionFailed(
                f"The record is at version {record.version}, not the version in If-Match "
                f"({if_match}); reload it and apply the change again.",
                current_version=record.version,
            )
        old = dict(record.data)
        payload = _as_object(patch)
        self._check_input(access, spec, payload, old)
        data = prepare(spec, payload, existing=old, now=self.now, allow_read_only=self.trusted)
        changed = changed_fields(old, data)
        if not changed:
            return record
        plan, data = await self._before_write(
            installed, spec, "updated", data, old, record.id, record.version + 1
        )
        changed = changed_fields(old, data)
        touched = set(changed)
        moved = Record(**{name: getattr(record, name) for name in SYSTEM_COLUMNS}, data=data)
        if not self._admits(access, "update", moved):
            raise Forbidden(
                f"This change would move the {form} record outside the records your roles "
                "may change; nothing was saved.",
                audit={
                    "action": "auth.denied",
                    "app": app,
                    "form": form,
                    "record_id": record.id,
                    "detail": {"reason": "row_filter", "action": "update"},
                },
            )
        claims = self._claims(spec, data, touched)
        errors = await self._check_relations(installed, spec, data, touched)
        errors += await self._check_files(installed, spec, data, old)
        errors += await self._check_unique(app, spec, claims, record.id)
        if errors:
            raise RecordInvalid(errors)
        expected = record.version
        if not await repository.bump(
            self.session,
            record,
            expected,
            data=data,
            form_version=installed.form_version(form),
            updated_at=self.now,
            updated_by=self.actor,
        ):
            raise PreconditionFailed("The record was changed by someone else meanwhile.")
        await repository.release_claims(self.session, record.id, touched & set(unique_fields(spec)))
        repository.add_claims(self.session, app, form, record.id, claims)
        await self.session.refresh(record)
        self._history(record, "update", changed)
        self._audit_write("record.update", record)
        await self._flush_or_conflict(spec, claims)
        if plan is not None:
            await automation.carry_out(self, installed, plan, form=form, record_id=record.id)
        await automation.move_date_timers(self, installed, form, record.id, data, changed)
        return record

    async def delete(self, app: str, form: str, record_id: str, *, if_match: str | None) -> None:
        installed, spec = await self.load_form(app, form)
        access = self.allowed(installed, form, "delete")
        where = self.row_condition(access, "delete", spec)
        record = await self._load(app, form, record_id, lock=True, where=where)
        if not _matches(if_match, record.version):
            raise PreconditionFailed(
                f"The record is at version {record.version}, not the version in If-Match.",
                current_version=record.version,
            )
        old = dict(record.data)
        plan = automation.plan_write(
            self, installed, form, "deleted", data=old, old=old, record_id=record.id,
            version=record.version + 1,
        )  # fmt: skip
        if plan is not None:
            await automation.check_rejections(self, plan, self._rule_locale(installed))
        if not await repository.bump(
            self.session,
            record,
            record.version,
            deleted_at=self.now,
            updated_at=self.now,
            updated_by=self.actor,
        ):
            raise PreconditionFailed("The record was changed by someone else meanwhile.")
        await repository.release_claims(self.session, record.id)
        await self.session.refresh(record)
        self._history(record, "delete", [])
        self._audit_write("record.delete", record)
        await self.session.flush()
        if plan is not None:
            await automation.carry_out(self, installed, plan, form=form, record_id=record.id)
        if installed.rules.date_rules(form):
            await automation.drop_record_timers(self, record.id)

    async def history(self, app: str, form: str, record_id: str) -> list[dict[str, Any]]:
        installed, spec = await self.load_form(app, form)
        access = self.allowed(installed, form, "read")
        where = self.row_condition(access, "read", spec)
        await self._load(app, form, record_id, where=where)
        rows = (await self.session.execute(repository.history_of(record_id))).scalars()
        hidden = access.hidden
        self._read_event(installed, spec, [record_id])
        return [
            {
                "version": row.version,
                "operation": row.operation,
                "at": iso(row.at),
                "actor": row.actor,
                "form_version": row.form_version,
                "changed": [key for key in row.changed if key not in hidden],
                "data": {k: v for k, v in row.data.items() if k not in hidden},
            }
            for row in rows
        ]

    # -- lists ---------------------------------------------------------------------------

    def _target(self, spec: FormSpec, hidden: frozenset[str] = frozenset()) -> FilterTarget:
        """What filters run against; a caller's own filters do not see hidden fields."""
        columns: dict[str, ColumnElement[Any]] = system_columns()
        types = field_types(spec)
        if hidden:
            types = {key: kind for key, kind in types.items() if key not in hidden}
        return FilterTarget(data=Record.data, fields=types, columns=columns, dialect=self.dialect)

    def _sort_keys(self, target: FilterTarget, sort: str) -> list[keyset.SortKey]:
        """The keys of ``sort`` (``"-created_at,name"``), then ``id``; every part must name a
        sortable field or column once, with at most one sign (a 400 otherwise)."""
        keys: list[keyset.SortKey] = []
        types = target.fields
        parts = [part.strip() for part in sort.split(",")] if sort.strip() else ["id"]
        if len(parts) > MAX_SORT_KEYS:
            raise _sort_problem(
                "too_many_keys",
                f"has {len(parts)} keys; at most {MAX_SORT_KEYS} are allowed",
            )
        for position, raw in enumerate(parts, start=1):
            descending = raw.startswith("-")
            name = raw[1:] if raw[:1] in ("-", "+") else raw
            if not name or name[:1] in ("-", "+"):
                what = "is empty" if not raw else f"'{shown(raw)}' is not a key with one sign"
                raise _sort_problem("empty_key", f"part {position} {what}")
            nullable = name not in SYSTEM_COLUMNS
            kind: keyset.ValueKind
            if name in SYSTEM_COLUMNS:
                expression: ColumnElement[Any] = getattr(Record, name)
                kind = _COLUMN_KINDS.get(name, "text")
            elif types.get(name) in SCALAR_TYPES:
                expression = field_value(target, name)
                kind = _FIELD_KINDS.get(FIELD_TYPES[types[name]], "text")
            else:
                reason = (
                    "is not a field of this form"
                    if name not in types
                    else f"is a {types[name]} field, which cannot be sorted on"
                )
                raise BadRequest(
                    f"Cannot sort by '{shown(name)}': it {reason}.",
                    errors=[
                        {
                            "in": "query",
                            "parameter": "sort",
                            "code": "unknown_field",
                            "message": f"'{shown(name)}' {reason}",
                        }
                    ],
                )
            if any(key.name == name for key in keys):
                raise _sort_problem("duplicate_key", f"'{name}' is named twice")
            keys.append(keyset.SortKey(name, descending, expression, nullable, kind))
        if not any(key.name == "id" for key in keys):
            keys.append(keyset.SortKey("id", False, Record.id, nullable=False))
        return keys

    def _readable(
        self, app: str, form: str, access: FormAccess, spec: FormSpec
    ) -> list[ColumnElement[bool]]:
        """The conditions selecting the live records of ``form`` the caller may read."""
        conditions = repository.live(app, form)
        row_condition = self.row_condition(access, "read", spec)
        if row_condition is not None:
            conditions.append(row_condition)
        return conditions

    async def matching_statement(self, app: str, form: str, filter: Any) -> Select[Any]:
        """One statement selecting ``(id, data)`` of every readable live record of ``form``
        matching ``filter`` (a schedule rule's selection), in id order."""
        installed, spec = await self.load_form(app, form)
        access = self.allowed(installed, form, "read")
        conditions = self._readable(app, form, access, spec)
        if filter is not None:
            try:
                conditions.append(compile_filter(filter, self._target(spec), now=self.now))
            except FilterError as exc:
                raise Unprocessable(
                    f"The filter cannot be used: {exc.message}",
                    errors=[{"path": exc.pointer, "code": "unsupported_filter",
                             "message": exc.message}],
                ) from None  # fmt: skip
        return select(Record.id, Record.data).where(*conditions).order_by(Record.id)

    async def count_matching(self, app: str, form: str, filter: Any, cap: int) -> tuple[int, bool]:
        """How many readable records of ``form`` match ``filter``, counting at most
        ``cap + 1`` (cheap on any table size): (count, whether there are more than ``cap``).
        For a filter a ``list`` has already accepted (a bad one raises ``FilterError``)."""
        installed, spec = await self.load_form(app, form)
        access = self.allowed(installed, form, "read")
        conditions = self._readable(app, form, access, spec)
        if filter is not None:
            target = self._target(spec, access.hidden)
            conditions.append(compile_filter(filter, target, now=self.now))
        inner = select(Record.id).where(*conditions).limit(cap + 1).subquery()
        found = int(
            (await self.session.execute(select(func.count()).select_from(inner))).scalar_one()
        )
        return min(found, cap), found > cap

    async def count(self, app: str, form: str) -> int:
        """How many live records of ``form`` the caller may read (one COUNT query)."""
        installed, spec = await self.load_form(app, form)
        access = self.allowed(installed, form, "read")
        conditions = self._readable(app, form, access, spec)
        return await repository.count(self.session, conditions)

    async def list(self, app: str, form: str, query: ListQuery) -> Page:
        installed, spec = await self.load_form(app, form)
        access = self.allowed(installed, form, "read")
        if not 1 <= query.limit <= self.max_page_size:
            raise BadRequest(
                f"`limit` must be between 1 and {self.max_page_size}.",
                errors=[
                    {
                        "in": "query",
                        "parameter": "limit",
                        "code": "range",
                        "message": f"must be between 1 and {self.max_page_size}",
                    }
                ],
            )
        target = self._target(spec, access.hidden)
        types = target.fields
        if query.fields is not None:
            unknown = [name for name in query.fields if name not in types]
            if unknown:
                probed = access.hidden.intersection(unknown)
                raise BadRequest(
                    f"Unknown field(s) in `fields`: {', '.join(unknown)}.",
                    audit=probe_audit(app, form, probed, "fields") if probed else None,
                    errors=[
                        {
                            "in": "query",
                            "parameter": "fields",
                            "code": "unknown_field",
                            "message": f"'{name}' is not a field of {form}",
                        }
                        for name in unknown
                    ],
                )
        conditions = self._readable(app, form, access, spec)
        if query.filter is not None:
            found = jsonsafe.problems(query.filter, bounded_ints=True)
            operations = jsonsafe.operator_count(query.filter)
            if operations > MAX_FILTER_OPERATIONS:
                found.insert(
                    0,
                    (
                        "",
                        f"has {operations} operations; at most {MAX_FILTER_OPERATIONS} are allowed",
                    ),
                )
            if found:
                pointer, message = found[0]
                raise BadRequest(
                    f"The filter cannot be used: the value at {pointer or '/'} {message}.",
                    errors=[
                        {
                            "in": "query",
                            "parameter": "filter",
                            "pointer": pointer,
                            "code": "invalid_value",
                            "message": message,
                        }
                    ],
                )
            try:
                conditions.append(compile_filter(query.filter, target, now=self.now))
            except FilterError as exc:
                # A hidden field is an unknown name (the same 400), but the probe is audited.
                probed = hidden_reads(query.filter, access.hidden, now=self.now)
                raise BadRequest(
                    f"The filter cannot be used: {exc.message}",
                    errors=[
                        {
                            "in": "query",
                            "parameter": "filter",
                            "pointer": exc.pointer,
                            "code": "unsupported_filter",
                            "message": exc.message,
                        }
                    ],
                    audit=probe_audit(app, form, probed, "filter") if probed else None,
                ) from None
        total = await repository.count(self.session, conditions) if query.count else None
        try:
            keys = self._sort_keys(target, query.sort)
        except BadRequest as problem:
            sorted_by = {part.strip().lstrip("-+") for part in query.sort.split(",")}
            probed = access.hidden & sorted_by
            if probed:
                problem.audit = probe_audit(app, form, probed, "sort")
            raise
        sort_text = ",".join(("-" if k.descending else "") + k.name for k in keys)
        scope = f"records:{app}/{form}"
        page_conditions = list(conditions)
        if query.cursor:
            values = keyset.decode(
                query.cursor, sort_text, keys, secret=self.cursor_secret, scope=scope
            )
            page_conditions.append(keyset.after(keys, values))
        statement = (
            select(Record, *[k.expression.label(f"k{i}") for i, k in enumerate(keys)])
            .where(*page_conditions)
            .order_by(*keyset.order_by(keys))
            .limit(query.limit + 1)
        )
        rows = (await self.session.execute(statement)).all()
        next_cursor = None
        if len(rows) > query.limit:
            rows = rows[: query.limit]
            last = rows[-1]
            next_cursor = keyset.encode(
                sort_text,
                [last[i + 1] for i in range(len(keys))],
                secret=self.cursor_secret,
                scope=scope,
            )
        items = [record_out(row[0], query.fields, access.hidden) for row in rows]
        self._read_event(installed, spec, [item["id"] for item in items])
        return Page(items, next_cursor, total)


def _file_refs(spec: FormSpec, data: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(JSON path under data, field path "key" or "table.column", reference)`` of every
    file a record's file and image fields (and table columns) hold."""

    def refs(value: Any) -> list[dict[str, Any]]:
        items = value if isinstance(value, list) else [value]
        return [
            item for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)
        ]

    for field in spec.value_fields():
        value = data.get(field.key)
        if value is None:
            continue
        if isinstance(field, FileField | ImageField):
            for n, ref in enumerate(refs(value)):
                where = f"{field.key}/{n}" if isinstance(value, list) else field.key
                yield where, field.key, ref
        elif isinstance(field, TableField) and isinstance(value, list):
            for row_number, row in enumerate(value):
                if not isinstance(row, dict):
                    continue
                for column in field.fields:
                    if isinstance(column, FileField | ImageField) and row.get(column.key):
                        cell = row[column.key]
                        for n, ref in enumerate(refs(cell)):
                            where = f"{field.key}/{row_number}/{column.key}"
                            if isinstance(cell, list):
                                where += f"/{n}"
                            yield where, f"{field.key}.{column.key}", ref


def _as_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(
            "`data` must be a JSON object of field values.",
            errors=[
                {"in": "body", "path": "/data", "code": "type", "message": "must be an object"}
            ],
        )
    found = jsonsafe.problems(value, "/data")
    if found:
        raise RecordInvalid(
            [
                FieldError(
                    field=pointer.split("/")[2] if pointer.count("/") >= 2 else "data",
                    path=pointer,
                    code="invalid_value",
                    message=f"The value at {pointer} {message}.",
                )
                for pointer, message in found
            ]
        )
    return value


def service_for(p: Platform, session: AsyncSession, who: Principal) -> RecordService:
    """The record service of one request: the caller, the platform's clock, page size and
    rule cascade bound."""
    return RecordService(
        session,
        p.catalog,
        principal=who,
        now=p.clock.now(),
        max_page_size=p.settings.max_page_size,
        cascade=Cascade(p.settings.rule_cascade_depth),
        cursor_secret=p.settings.cursor_secret.get_secret_value(),
    )
