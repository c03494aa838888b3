"""Bulk writes: many creates, updates, upserts and deletes of one form in one call.

Invariants:

* Every item is checked exactly as the single write would check it — the caller's grants
  (actions, row filters, hidden and read-only fields), the form engine, the rules' rejections,
  relations, files and unique values — and every written record gets its history row, its
  audit row (one per record) and its rules' actions, as a single write does.
* All-or-nothing (``atomic``, the default): every item is tried, every failing item is named
  with its index and its field errors (``/items/<i>/data/<field>``), and if one failed the
  whole unit of work rolls back. Not atomic: each update, upsert and delete runs in a
  savepoint of its own, creates failing a check are never inserted, and the call answers a
  result per item.
* Runs of creates are batched: each item is validated on its own, then the unique values of
  the whole run are checked in a few queries (a value claimed twice *within* the call is an
  error of the later item), the app's definition is pinned (the app row is touched, so an
  app change waits for this unit or finds it done) and the records, history rows, audit rows
  and claims are inserted as multi-row statements. Rules' actions, date timers and webhooks
  then run per record, as after a single create.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import String, Table, any_, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from formloom.engines.forms import FieldError, RecordInvalid, prepare, unique_fields
from formloom.platform.apps.service import InstalledApp
from formloom.platform.audit.log import entry as audit_entry
from formloom.platform.errors import Conflict, Forbidden, Problem, Unprocessable, record_invalid
from formloom.platform.models import App, Record, RecordHistory, RecordUnique, WebhookSubscription
from formloom.platform.models.audit import AuditEntry
from formloom.platform.people import service as people
from formloom.platform.records import numbering
from formloom.platform.records.claims import claim_value, claims_of, unique_errors
from formloom.platform.records.ids import new_id
from formloom.platform.records.repository import audit_values
from formloom.platform.records.service import RecordService, _as_object
from formloom.platform.rules import automation

#: The most items one call may carry.
MAX_ITEMS = 10_000
#: The largest bulk request body (bytes): 10,000 items of a few hundred bytes each.
MAX_BODY_BYTES = 32 * 1024 * 1024
#: Values per ``IN (...)`` of the batched unique check.
_CHUNK = 500
#: From this many rows on, PostgreSQL gets new rows by COPY rather than INSERT.
_COPY_FROM = 200

Op = Literal["create", "update", "upsert", "delete"]


class BulkItem(BaseModel):
    """One write of a bulk call."""

    model_config = ConfigDict(extra="forbid")

    op: Op = Field(description="create, update (by `id`), upsert (by `match`) or delete.")
    id: str | None = Field(default=None, description="The record, for update and delete.")
    match: str | None = Field(
        default=None,
        description="Upsert: a unique field of the form; the record holding `data`'s value "
        "of it is updated, or a new one is created.",
    )
    data: dict[str, Any] | None = Field(
        default=None, description="Field values (all for a create, the changes for an update)."
    )
    if_match: str | None = Field(
        default=None, description="As the If-Match header of a single write (updates, deletes)."
    )


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[BulkItem] = Field(
        description=f"At most {MAX_ITEMS:,} writes, carried out in order.",
        json_schema_extra={"maxItems": MAX_ITEMS},
    )


class BulkError(BaseModel):
    path: str = Field(description="JSON pointer into the request: /items/<i>/data/<field>.")
    code: str
    message: str
    field: str | None = None


class BulkResult(BaseModel):
    index: int
    op: Op
    status: int = Field(description="The status the single write would have answered.")
    id: str | None = None
    version: int | None = None
    errors: list[BulkError] = Field(default_factory=list)


class BulkOut(BaseModel):
    atomic: bool
    created: int
    updated: int
    deleted: int
    failed: int
    results: list[BulkResult]


@dataclass
class _Outcome:
    index: int
    op: Op
    status: int
    id: str | None = None
    version: int | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Row:
    """A new record's columns."""

    id: str
    app: str
    form: str
    form_version: int
    data: dict[str, Any]
    version: int
    created_at: Any
    created_by: str
    updated_at: Any
    updated_by: str


@dataclass
class _Create:
    index: int
    record: _Row
    claims: list[tuple[str, str]]
    plan: Any


def _field_errors(index: int, errors: Sequence[FieldError]) -> list[dict[str, Any]]:
    return [
        {"path": f"/items/{index}{e.path}", "code": e.code, "message": e.message, "field": e.field}
        for e in errors
    ]


def _problem_errors(index: int, problem: Problem) -> list[dict[str, Any]]:
    if problem.errors:
        listed = []
        for error in problem.errors:
            path = error.get("path") or ""
            listed.append(
                {
                    "path": f"/items/{index}{path if path.startswith('/data') else ''}",
                    "code": str(error.get("code", problem.slug)),
                    "message": str(error.get("message", problem.detail)),
                    "field": error.get("field"),
                }
            )
        return listed
    return [{"path": f"/items/{index}", "code": problem.slug, "message": problem.detail}]


class BulkWriter:
    """Carries out one bulk call for ``service``'s caller on one form."""

    def __init__(self, service: RecordService, app: str, form: str, *, atomic: bool) -> None:
        self.service = service
        self.session = service.session
        self.app = app
        self.form = form
        self.atomic = atomic
        self.outcomes: list[_Outcome] = []
        #: Audit rows of refused items, written in their own unit by the caller.
        self.refusals: list[dict[str, Any]] = []
        #: Set when the database refused a statement: the unit cannot go on.
        self.broken = False

    # -- the call --------------------------------------------------------------------------

    async def run(self, items: Sequence[BulkItem]) -> list[_Outcome]:
        installed, spec = await self.service.load_form(self.app, self.form)
        self.installed, self.spec = installed, spec
        pending: list[tuple[int, Any]] = []
        pending_claims: set[tuple[str, str]] = set()
        for index, item in enumerate(items):
            if self.broken:
                break
            if item.op == "create":
                pending.append((index, item.data))
                pending_claims.update(self._claims_guess(item.data))
                continue
            if item.op == "upsert" and self._upsert_key(item) in pending_claims:
                # the record it matches may be among the pending creates: write them first
                await self._creates(pending)
                pending, pending_claims = [], set()
            if item.op != "upsert" and pending:
                await self._creates(pending)
                pending, pending_claims = [], set()
            if self.broken:
                break
            if item.op == "upsert":
                target = await self._upsert_target(index, item)
                if target is False:
                    continue
                if target is None:
                    pending.append((index, item.data))
                    pending_claims.update(self._claims_guess(item.data))
                    continue
                await self._one(index, item, target)
            else:
                await self._one(index, item, item.id)
        if pending and not self.broken:
            await self._creates(pending)
        done = {outcome.index for outcome in self.outcomes}
        for index, item in enumerate(items):
            if index not in done:
                self.outcomes.append(
                    _Outcome(
                        index,
                        item.op,
                        500,
                        errors=[
                            {
                                "path": f"/items/{index}",
                                "code": "not_attempted",
                                "message": "Not attempted: the database refused an earlier item.",
                            }
                        ],
                    )  # fmt: skip
                )
        self.outcomes.sort(key=lambda outcome: outcome.index)
        return self.outcomes

    def _fail(self, index: int, op: Op, status: int, errors: list[dict[str, Any]]) -> None:
        self.outcomes.append(_Outcome(index, op, status, errors=errors))

    def _caught(self, index: int, op: Op, exc: Exception) -> None:
        if isinstance(exc, RecordInvalid):
            self._fail(index, op, 422, _field_errors(index, exc.errors))
        elif isinstance(exc, Problem):
            if exc.audit is not None:
                self.refusals.append(exc.audit)
            self._fail(index, op, exc.status, _problem_errors(index, exc))
        else:
            raise exc

    # -- upserts ---------------------------------------------------------------------------

    def _upsert_key(self, item: BulkItem) -> tuple[str, str] | None:
        if item.match is None or not isinstance(item.data, dict):
            return None
        value = item.data.get(item.match)
        if value in (None, "", []):
            return None
        return (item.match, claim_value(value))

    def _claims_guess(self, data: Any) -> list[tuple[str, str]]:
        """The unique values a pending create will probably claim (as sent)."""
        if not isinstance(data, dict):
            return []
        return [
            (key, claim_value(data[key]))
            for key in unique_fields(self.spec)
            if data.get(key) not in (None, "", [])
        ]

    async def _upsert_target(self, index: int, item: BulkItem) -> str | None | Literal[False]:
        """The id of the record an upsert updates, None to create, False: failed."""
        problem = None
        if item.match is None:
            problem = ("required", "/match", "An upsert needs `match`: a unique field.")
        elif item.match not in unique_fields(self.spec):
            problem = (
                "not_unique",
                "/match",
                f"'{item.match}' is not a unique field of {self.form}.",
            )
        elif self._upsert_key(item) is None:
            message = f"An upsert needs a value of '{item.match}'."
            problem = ("required", f"/data/{item.match}", message)
        if problem is not None:
            code, path, message = problem
            errors = [{"path": f"/items/{index}{path}", "code": code, "message": message}]
            self._fail(index, "upsert", 422, errors)
            return False
        key = self._upsert_key(item)
        assert key is not None
        holders = await _claimed(self.session, self.app, self.form, [key])
        return holders.get(key)

    # -- one update or delete ----------------------------------------------------------------

    async def _one(self, index: int, item: BulkItem, record_id: str | None) -> None:
        op = item.op
        if record_id is None:
            self._fail(index, op, 422, [{
                "path": f"/items/{index}/id", "code": "required",
                "message": f"An {op} needs the record's `id`.",
            }])  # fmt: skip
            return
        if op != "delete" and item.data is None:
            self._fail(index, op, 422, [{
                "path": f"/items/{index}/data", "code": "required",
                "message": "An update needs `data`.",
            }])  # fmt: skip
            return
        try:
            if self.atomic:
                await self._write_one(index, item, record_id)
            else:
                async with self.session.begin_nested():
                    await self._write_one(index, item, record_id)
        except IntegrityError:
            # the database refused a statement: in an atomic call the unit cannot go on
            self.broken = self.atomic
            self._fail(index, op, 422, [{
                "path": f"/items/{index}", "code": "unique",
                "message": "The database refused this write (a unique value taken meanwhile).",
            }])  # fmt: skip
        except (RecordInvalid, Problem) as exc:
            self._caught(index, op, exc)

    async def _write_one(self, index: int, item: BulkItem, record_id: str) -> None:
        service = self.service
        if item.op == "delete":
            await service.delete(self.app, self.form, record_id, if_match=item.if_match)
            self.outcomes.append(_Outcome(index, "delete", 204, id=record_id))
            return
        record = await service.update(
            self.app, self.form, record_id, item.data, if_match=item.if_match
        )
        self.outcomes.append(_Outcome(index, item.op, 200, id=record.id, version=record.version))

    # -- runs of creates ----------------------------------------------------------------------

    async def _creates(self, items: list[tuple[int, Any]]) -> None:
        if not items:
            return
        service, spec, installed = self.service, self.spec, self.installed
        access = service.allowed(installed, self.form, "create")
        ready: list[_Create] = []
        for index, incoming in items:
            try:
                ready.append(await self._check_create(index, incoming, access))
            except (RecordInvalid, Problem) as exc:
                self._caught(index, "create", exc)
        # unique values: held by stored records, or claimed twice within this run
        wanted = [claim for one in ready for claim in one.claims]
        holders = await _claimed(self.session, self.app, self.form, wanted)
        seen: set[tuple[str, str]] = set()
        accepted: list[_Create] = []
        for one in ready:
            clashes = [key for key, value in one.claims if (key, value) in holders]
            clashes += [key for key, value in one.claims if (key, value) in seen]
            if clashes:
                errors = _field_errors(one.index, unique_errors(spec, sorted(set(clashes))))
                self._fail(one.index, "create", 422, errors)
                continue
            seen.update(one.claims)
            accepted.append(one)
        if self.atomic and any(o.status >= 400 for o in self.outcomes):
            # nothing of this call will be kept: spare the inserts, report the others as fine
            for one in accepted:
                self.outcomes.append(_Outcome(one.index, "create", 201, id=one.record.id))
            return
        if not accepted:
            return
        await self._insert(installed, accepted)
        subscribed = await _has_webhooks(self.session, self.app)
        for one in accepted:
            record = one.record
            if one.plan is not None:
                await automation.carry_out(
                    service, installed, one.plan, form=self.form, record_id=record.id
                )
            await automation.move_date_timers(
                service, installed, self.form, record.id, record.data, None
            )
            await automation.close_waiting_tasks(
                service, installed, self.form, record.id, record.data
            )
            if subscribed:
                await service._webhooks(  # noqa: SLF001 - the single create's own step
                    self.app, self.form, "record.created", record.id, 1, record.data
                )
            self.outcomes.append(_Outcome(one.index, "create", 201, id=record.id, version=1))

    async def _check_create(self, index: int, incoming: Any, access: Any) -> _Create:
        """The single create's checks, without writing (service.RecordService.create)."""
        service, spec, installed = self.service, self.spec, self.installed
        if incoming is None:
            raise RecordInvalid(
                [
                    FieldError(
                        field="data",
                        path="/data",
                        code="required",
                        message="A create needs `data`.",
                    )
                ]  # fmt: skip
            )
        payload = _as_object(incoming)
        service.grants.check_input(access, spec, payload, None)
        now = service.now
        payload = {**payload, **people.current_defaults(self.app, spec, payload, service.principal)}
        data = prepare(spec, payload, existing=None, now=now, allow_read_only=service.trusted)
        record_id = new_id()
        plan, data = await service._before_write(  # noqa: SLF001 - the single create's own step
            installed, spec, "created", data, None, record_id, 1
        )
        claims = claims_of(spec, data, None)
        errors = await service._check_references(installed, spec, data, None, None)  # noqa: SLF001
        if errors:
            raise RecordInvalid(errors)
        # the columns as the insert writes them (a plain object: an ORM instance per row
        # costs more than the rest of the checks of a small record)
        record = _Row(
            id=record_id,
            app=self.app,
            form=self.form,
            form_version=installed.form_version(self.form),
            data=data,
            version=1,
            created_at=now,
            created_by=service.actor,
            updated_at=now,
            updated_by=service.actor,
        )
        if not service.grants.admits(access, "create", cast(Record, record)):
            raise Forbidden(
                f"Your roles in app '{self.app}' do not allow you to create this {self.form} "
                "record (it is outside the records you may create).",
                audit={
                    "action": "auth.denied",
                    "app": self.app,
                    "form": self.form,
                    "detail": {"reason": "row_filter", "action": "create", "bulk": True},
                },
            )
        return _Create(index, record, claims, plan)

    async def _insert(self, installed: InstalledApp, accepted: list[_Create]) -> None:
        """The records, their first history rows, audit rows and claims: multi-row inserts,
        with the app pinned at the definition they were validated against."""
        session, service = self.session, self.service
        pinned = await session.execute(
            update(App)
            .where(App.key == self.app, App.current_version == installed.version)
            .values(current_version=App.current_version)
        )
        if pinned.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("The app's definition changed during the bulk write; send it again.")
        columns = ("id", "app", "form", "form_version", "data", "version",
                   "created_at", "created_by", "updated_at", "updated_by")  # fmt: skip
        # numbered here, once the run is known to be written: a failed item takes none
        await numbering.number_records(
            session, self.app, self.spec, [one.record.data for one in accepted], service.now
        )
        numbered = {field.key for field in numbering.autonumber_fields(self.spec)}
        if numbered:  # a unique number is claimed like any unique value
            for one in accepted:
                one.claims += claims_of(self.spec, one.record.data, numbered)
        records = [{name: getattr(one.record, name) for name in columns} for one in accepted]
        history = [
            {
                "record_id": one.record.id,
                "app": self.app,
                "form": self.form,
                "version": 1,
                "form_version": one.record.form_version,
                "operation": "create",
                # version 1: no delta, and its changed keys are its data's (NULL: not stored)
                "before": None,
                "added": None,
                "changed": None,
                "actor": service.actor,
                "at": service.now,
            }
            for one in accepted
        ]
        audit_row = audit_values(
            audit_entry(
                service.principal,
                "record.create",
                at=service.now,
                app=self.app,
                form=self.form,
                record_id=None,
                version=1,
            )  # fmt: skip
        )
        audits = [{**audit_row, "record_id": one.record.id} for one in accepted]
        claims = [
            {
                "app": self.app,
                "form": self.form,
                "field": key,
                "value": value,
                "record_id": one.record.id,
            }  # fmt: skip
            for one in accepted
            for key, value in one.claims
        ]
        try:
            await _insert_rows(session, Record, records)
            await _insert_rows(session, RecordHistory, history)
            await _insert_rows(session, AuditEntry, audits)
            if claims:
                await _insert_rows(session, RecordUnique, claims)
        except (IntegrityError, _Clash):
            # a unique value claimed by a concurrent writer after the check: as a single write
            raise record_invalid(
                RecordInvalid(unique_errors(self.spec, sorted({c["field"] for c in claims})))
            ) from None


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


async def _insert_rows(session: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys): one multi-row INSERT per page of rows, or
    on PostgreSQL, from ``_COPY_FROM`` rows on, one COPY (each value through its column
    type's own bind processing first, so what is stored is what the INSERT would store)."""
    table = _table(model)
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql" or len(rows) < _COPY_FROM:
        await session.execute(insert(table), rows)
        return
    columns = list(rows[0])
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                  for name in columns]  # fmt: skip
    records = [
        tuple(
            row[name] if process is None else process(row[name])
            for name, process in zip(columns, processors, strict=True)
        )
        for row in rows
    ]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    try:
        await raw.driver_connection.copy_records_to_table(
            table.name, records=records, columns=columns
        )
    except Exception as exc:
        # the driver's own error (COPY bypasses SQLAlchemy's wrapping): 23xxx is a clash
        if str(getattr(exc, "sqlstate", "")).startswith("23"):
            raise _Clash from exc
        raise


class _Clash(Exception):
    """A COPY refused by a constraint (a unique value taken by a concurrent writer)."""


async def _claimed(
    session: Any, app: str, form: str, claims: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Which of ``claims`` are held already, and by which record: one query per field on
    PostgreSQL (the values as one array parameter), one per ``_CHUNK`` values elsewhere."""
    by_field: dict[str, list[str]] = {}
    for key, value in claims:
        by_field.setdefault(key, []).append(value)
    postgres = session.get_bind().dialect.name == "postgresql"
    found: dict[tuple[str, str], str] = {}
    for key, values in by_field.items():
        unique_values = sorted(set(values))
        step = len(unique_values) if postgres else _CHUNK
        for start in range(0, len(unique_values), max(step, 1)):
            chunk = unique_values[start : start + step]
            if postgres:
                wanted = RecordUnique.value == any_(
                    bindparam("wanted", chunk, type_=ARRAY(String()))
                )
            else:
                wanted = RecordUnique.value.in_(chunk)
            rows = await session.execute(
                select(RecordUnique.value, RecordUnique.record_id).where(
                    RecordUnique.app == app,
                    RecordUnique.form == form,
                    RecordUnique.field == key,
                    wanted,
                )
            )
            for value, holder in rows.all():
                found[(key, value)] = holder
    return found


async def _has_webhooks(session: Any, app: str) -> bool:
    query = select(WebhookSubscription.id).where(
        WebhookSubscription.app == app, WebhookSubscription.active.is_(True)
    )
    return (await session.execute(query.limit(1))).first() is not None


def report(outcomes: Sequence[_Outcome], *, atomic: bool) -> dict[str, Any]:
    """The answer of a call that was written (``BulkOut``'s shape, built as plain data: a
    model per result would cost more than the writes of small records)."""

    def count(status: int) -> int:
        return sum(1 for o in outcomes if o.status == status)

    return {
        "atomic": atomic,
        "created": count(201),
        "updated": count(200),
        "deleted": count(204),
        "failed": sum(1 for o in outcomes if o.status >= 400),
        "results": [
            {
                "index": o.index,
                "op": o.op,
                "status": o.status,
                "id": o.id,
                "version": o.version,
                "errors": [
                    {
                        "path": e["path"],
                        "code": e["code"],
                        "message": e["message"],
                        "field": e.get("field"),
                    }  # fmt: skip
                    for e in o.errors
                ],
            }
            for o in outcomes
        ],
    }


def refused(outcomes: Sequence[_Outcome]) -> Unprocessable:
    """The answer of an atomic call with failing items: every one of them, nothing written."""
    failing = [o for o in outcomes if o.status >= 400]
    errors = [{"index": o.index, **e} for o in failing for e in o.errors]
    noun = "item is" if len(failing) == 1 else "items are"
    return Unprocessable(
        f"{len(failing)} {noun} not valid; nothing was written. Fix them, or send "
        "?atomic=false to write the others.",
        errors=errors,
        failed_items=[o.index for o in failing],
    )


def too_many(count: int) -> Unprocessable:
    return Unprocessable(
        f"A bulk call takes at most {MAX_ITEMS:,} items; this one has {count:,}. "
        "Split it into several calls.",
        errors=[
            {
                "in": "body",
                "path": "/items",
                "code": "too_many_items",
                "message": f"at most {MAX_ITEMS} items",
            }
        ],  # fmt: skip
    )
