"""All SQL about records, their history (reverse deltas: ``records.history``) and unique
claims."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Executable,
    FromClause,
    Integer,
    Select,
    String,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.platform.models import App, Record, RecordHistory, RecordUnique
from formloom.platform.models.audit import AuditEntry


def _table(model: Any) -> Table:
    """A model's table, for Core statements (inserts from a select, executemany)."""
    return cast(Table, model.__table__)


def literal_key(key: str) -> ColumnElement[str]:
    """An app or form key written into the SQL text (keys are validated identifiers), so a
    partial expression index ``WHERE app = 'x' AND form = 'y'`` is usable by the planner even
    for prepared, generic plans."""
    return literal_column(f"'{key}'")


def live(app: str, form: str) -> list[ColumnElement[bool]]:
    return [
        Record.app == literal_key(app),
        Record.form == literal_key(form),
        Record.deleted_at.is_(None),
    ]


async def get(
    session: AsyncSession,
    app: str,
    form: str,
    record_id: str,
    *,
    lock: bool = False,
    where: ColumnElement[bool] | None = None,
) -> Record | None:
    """A live record, or None — also when ``where`` (a caller's row filter) excludes it."""
    query = select(Record).where(Record.id == record_id, *live(app, form))
    if where is not None:
        query = query.where(where)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def existing_ids(
    session: AsyncSession,
    app: str,
    form: str,
    ids: Iterable[str],
    *,
    where: ColumnElement[bool] | None = None,
) -> set[str]:
    """Which of ``ids`` are live records of ``form`` (and match ``where``, if given)."""
    wanted = list(set(ids))
    if not wanted:
        return set()
    conditions = [Record.id.in_(wanted), *live(app, form)]
    if where is not None:
        conditions.append(where)
    query = select(Record.id).where(*conditions)
    return set((await session.execute(query)).scalars())


async def claimed(
    session: AsyncSession, app: str, form: str, claims: Sequence[tuple[str, str]]
) -> dict[str, str]:
    """For each (field, value) already claimed, the field -> the record that holds it."""
    if not claims:
        return {}
    found: dict[str, str] = {}
    for field, value in claims:
        query = select(RecordUnique.record_id).where(
            RecordUnique.app == app,
            RecordUnique.form == form,
            RecordUnique.field == field,
            RecordUnique.value == value,
        )
        holder = (await session.execute(query)).scalar_one_or_none()
        if holder is not None:
            found[field] = holder
    return found


async def release_claims(
    session: AsyncSession, record_id: str, fields: Iterable[str] | None = None
) -> None:
    query = delete(RecordUnique).where(RecordUnique.record_id == record_id)
    if fields is not None:
        query = query.where(RecordUnique.field.in_(list(fields)))
    await session.execute(query)


def add_claims(
    session: AsyncSession, app: str, form: str, record_id: str, claims: Sequence[tuple[str, str]]
) -> None:
    for field, value in claims:
        session.add(RecordUnique(app=app, form=form, field=field, value=value, record_id=record_id))


async def bump(session: AsyncSession, record: Record, expected_version: int, **values: Any) -> bool:
    """Write a new version only if nobody wrote one since ``expected_version`` was read."""
    result = await session.execute(
        update(Record)
        .where(Record.id == record.id, Record.version == expected_version)
        .values(version=expected_version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def history_of(record_id: str, through: int) -> Select[RecordHistory]:
    """The history rows of a record up to version ``through`` (the version of the data the
    caller read: rows a concurrent write committed since would not undo onto that data)."""
    return (
        select(RecordHistory)
        .where(RecordHistory.record_id == record_id, RecordHistory.version <= through)
        .order_by(RecordHistory.version)
    )


async def count(
    session: AsyncSession,
    conditions: Sequence[ColumnElement[bool]],
    source: FromClause | None = None,
) -> int:
    """How many rows of ``source`` (the records, or a typed projection joined to them)
    meet ``conditions``."""
    query = (
        select(func.count())
        .select_from(source if source is not None else Record)
        .where(*conditions)
    )
    return int((await session.execute(query)).scalar_one())


_RECORD_COLUMNS = (
    "id",
    "app",
    "form",
    "form_version",
    "data",
    "version",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
)
HISTORY_COLUMNS = (
    "record_id",
    "app",
    "form",
    "version",
    "form_version",
    "operation",
    "before",
    "added",
    "changed",
    "actor",
    "at",
)


def _insert_if_current_statement(dialect: str) -> Executable:
    """Built once per dialect: constructing a statement of 20 typed parameters costs more
    than running it, so only the values change from call to call."""
    record_types = Record.__table__.c
    history_types = RecordHistory.__table__.c
    still_current = exists().where(
        App.key == bindparam("app", type_=String()),
        App.current_version == bindparam("app_version", type_=Integer()),
    )
    record_values = select(
        *[bindparam(f"r_{name}", type_=record_types[name].type) for name in _RECORD_COLUMNS]
    ).where(still_current)
    insert_record = insert(_table(Record)).from_select(list(_RECORD_COLUMNS), record_values)
    if dialect != "postgresql":
        return insert_record
    inserted = insert_record.returning(Record.__table__.c.id).cte("inserted")
    history_values = select(
        inserted.c.id,
        *[bindparam(f"h_{name}", type_=history_types[name].type) for name in HISTORY_COLUMNS[1:]],
    )
    written = (
        insert(_table(RecordHistory))
        .from_select(list(HISTORY_COLUMNS), history_values)
        .returning(RecordHistory.__table__.c.record_id)
        .cte("written")
    )
    audit_types = AuditEntry.__table__.c
    audit_values = select(
        *[
            written.c.record_id
            if name == "record_id"
            else bindparam(f"a_{name}", type_=audit_types[name].type)
            for name in AUDIT_COLUMNS
        ]
    )
    return insert(_table(AuditEntry)).from_select(list(AUDIT_COLUMNS), audit_values)


_INSERT_IF_CURRENT: dict[str, Executable] = {}


#: The audit row of a write, written with it (``id`` is the table's own sequence).
AUDIT_COLUMNS = tuple(c.name for c in AuditEntry.__table__.c if c.name != "id")


def audit_values(row: AuditEntry) -> dict[str, Any]:
    return {name: getattr(row, name) for name in AUDIT_COLUMNS}


async def insert_if_current(
    session: AsyncSession,
    record: Record,
    history: dict[str, Any],
    app_version: int,
    audit: AuditEntry,
) -> bool:
    """Insert a new record and its first history row, but only if the app is still at
    ``app_version`` — the definition the record was validated against. False means the app
    changed meanwhile (nothing was written): reload the definition and validate again.

    The version check rides in the INSERT itself, so a cached definition costs no extra
    round trip and is still safe with several processes. On PostgreSQL the record, its
    history and the write's audit row go in one statement (a data-modifying CTE).
    """
    dialect = session.get_bind().dialect.name
    statement = _INSERT_IF_CURRENT.get(dialect)
    if statement is None:
        statement = _INSERT_IF_CURRENT[dialect] = _insert_if_current_statement(dialect)
    params: dict[str, Any] = {"app": record.app, "app_version": app_version}
    params.update({f"r_{name}": getattr(record, name) for name in _RECORD_COLUMNS})
    if dialect == "postgresql":
        params.update({f"h_{name}": history[name] for name in HISTORY_COLUMNS[1:]})
        params.update({f"a_{name}": value for name, value in audit_values(audit).items()})
        params.pop("a_record_id")
        result = await session.execute(statement, params)
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]
    result = await session.execute(statement, params)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    await session.execute(
        insert(_table(RecordHistory)),
        {"record_id": record.id, **{name: history[name] for name in HISTORY_COLUMNS[1:]}},
    )
    await session.execute(insert(_table(AuditEntry)), audit_values(audit))
    return True


async def insert_claims(
    session: AsyncSession, app: str, form: str, record_id: str, claims: Sequence[tuple[str, str]]
) -> None:
    if claims:
        await session.execute(
            insert(_table(RecordUnique)),
            [
                {"app": app, "form": form, "field": field, "value": value, "record_id": record_id}
                for field, value in claims
            ],
        )
