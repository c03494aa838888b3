"""Typed projections: a narrow, typed table per form beside the JSON records.

Records stay JSON documents, the source of truth: form changes need no DDL on ``records``,
history stays exact and exports byte-stable. But PostgreSQL reads ``CAST(data ->> 'amount'
AS NUMERIC)`` out of rows several times wider than a typed table's, so range filters,
counts and group-bys scanned the form three to four times slower than a peer with typed
columns (issue 21). So each form also gets a *projection*: one typed column per scalar
field (:data:`~formloom.engines.logic.sql.PROJECTED_TYPES`: NUMERIC, BOOLEAN, and text
types, dates and datetimes included, as ``COLLATE "C"`` TEXT in their stored ISO form, which
sorts and compares exactly as the JSON path does; a multiselect's array as JSONB, with a GIN
index when the field is indexed) plus the system columns, named with a leading ``_`` so that
no field key can collide with them.

Invariants
    * **Never stale.** Triggers on ``records`` write the projection in the statement that
      writes the record, whatever the path (API, bulk, import, rules, form migrations, raw
      SQL): an insert or update of a live record upserts its row, a soft delete, a hard
      delete or a move to another form removes it. A projection holds exactly the live
      records of its form.
    * **Online changes.** A form whose projected columns change gets a *new generation*
      (a new table and triggers, created in the transaction of the app change, so they commit
      with it); the old generation keeps serving reads until the new one is filled. The
      backfill copies records in id order in batches, each its own transaction, locking the
      rows it copies (``FOR SHARE``) so a concurrent delete cannot leave a row behind; its
      ``cursor`` is saved with each batch, so a build killed at any point resumes where it
      stopped (:func:`resume`). Then, in one transaction, the new generation becomes
      ``ready`` and the old one ``retired`` (its triggers dropped at once; its table at the
      next build, so a read that chose it a moment before still finds it).
    * **Reads choose per query.** :func:`ready` gives the form's ready generation, if any;
      the record service then reads projected fields from its columns (the filter compiler's
      ``FilterTarget.projected``) and everything else from the document, joined by id. The
      SQL-vs-evaluator tests run on both paths.
    * **Whole rows** (PostgreSQL, format 2). A row's ``_whole`` says whether its projected
      columns *are* its document — every key of the document a projected field, held as it
      is, no explicit null; the trigger decides it by rebuilding the object in SQL and
      comparing. A list whose conditions and sort read only the projection then answers a
      whole row's document from its columns (:meth:`Projection.document`, the same values,
      types and key order as the document's JSON) and reads the document only for the
      other rows: a page walks one index and one heap, as a typed table's does. The
      document stays the source of truth; ``_whole`` is derived from it in the same
      statement, so it is never stale either.
    * A form with few records is filled inside the app change itself (no window in which
      the JSON path serves it); larger ones after the change commits.
    * **SQLite** keeps projections too, with its own triggers: a field's column has no type
      affinity and holds exactly what ``json_extract`` gives (the SQLite JSON path's own
      value), so both paths compare and sort alike; its one writer at a time needs no row
      locks in the backfill. Measured in tests/bench/bench_projections.py (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import Collection, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.apps.spec import AppSpec
from formloom.engines.forms.spec import FormSpec, field_types
from formloom.engines.logic.sql import LONG_TEXT_TYPES, PROJECTED_TYPES
from formloom.platform.models.base import UtcDateTime
from formloom.platform.models.projection import RecordProjection


def enabled() -> bool:
    """Whether forms get typed projections: ``FORMLOOM_TYPED_PROJECTIONS=off`` serves every
    read from the documents (the JSON path), for an operator who wants that and for the
    test suite, which runs its record, permission and report tests this way too, so both
    read paths answer to the same tests."""
    return os.environ.get("FORMLOOM_TYPED_PROJECTIONS", "on").strip().lower() != "off"


#: Records copied per backfill transaction.
BATCH = 5_000
#: A form with at most this many records is filled inside the app change's transaction.
FILL_INLINE = 20_000

_SQL_TYPES = {
    "text": 'TEXT COLLATE "C"',
    "numeric": "NUMERIC",
    "boolean": "BOOLEAN",
    "json": "JSONB",
}
#: System columns of a projection: its name, the records column, its SQL type.
_SYSTEM = (
    ("_id", "id", "VARCHAR(32) PRIMARY KEY"),
    ("_version", "version", "INTEGER NOT NULL"),
    ("_created_at", "created_at", "TIMESTAMPTZ NOT NULL"),
    ("_created_by", "created_by", "VARCHAR(100) NOT NULL"),
    ("_updated_at", "updated_at", "TIMESTAMPTZ NOT NULL"),
    ("_updated_by", "updated_by", "VARCHAR(100) NOT NULL"),
)
#: PostgreSQL's generations from format 2 on also hold the record's form version and
#: ``_whole``: whether the projected columns *are* the document (see :func:`document`).
_SYSTEM_WHOLE = (("_form_version", "form_version", "INTEGER NOT NULL"),)

#: The layout of the generations this release builds, per dialect: a generation of another
#: format is rebuilt (at start-up: ``reconcile_projections``), as one whose columns differ.
#: 1: fields and system columns; 2 (PostgreSQL): also ``_form_version`` and ``_whole``.
FORMATS = {"postgresql": 2}


def format_of(dialect: str) -> int:
    """The format this release builds on ``dialect``."""
    return FORMATS.get(dialect, 1)


def wanted_columns(form: FormSpec) -> dict[str, str]:
    """The projected fields of ``form``: key -> SQL type name, in the form's order."""
    return {
        key: PROJECTED_TYPES[kind]
        for key, kind in field_types(form).items()
        if kind in PROJECTED_TYPES
    }


#: Core tables of the generations this process has read, by (table name, dialect).
_TABLES: dict[tuple[str, str], sa.Table] = {}
_TABLES_KEPT = 1_000


@dataclass(frozen=True)
class Projection:
    """A ready generation, as reads see it."""

    table_name: str
    columns: Mapping[str, str]
    dialect: str = "postgresql"
    format: int = 1

    @property
    def whole(self) -> bool:
        """Whether the generation knows which of its rows are their whole document."""
        return self.format >= 2 and self.dialect == "postgresql"

    def table(self) -> sa.Table:
        """The projection as a Core table (its system columns and projected fields). On
        SQLite a field's column holds ``json_extract``'s value as it is (no type affinity),
        so it is typed as ``json_extract`` is: no conversion on the way in or out.

        One object per generation and dialect, kept: a generation's columns never change,
        and SQLAlchemy's statement cache knows a table by its object, so a new one per
        request would compile every list's SQL afresh."""
        key = (self.table_name, self.dialect)
        table = _TABLES.get(key)
        if table is None:
            if len(_TABLES) >= _TABLES_KEPT:  # the oldest first (retired long since)
                del _TABLES[next(iter(_TABLES))]
            table = _TABLES[key] = self._new_table()
        return table

    def _new_table(self) -> sa.Table:
        column_types: dict[str, sa.types.TypeEngine[Any]] = {
            "text": sa.Text(),
            "numeric": sa.Numeric(),
            "boolean": sa.Boolean(),
            "json": JSONB(),
        }
        pg = self.dialect == "postgresql"
        return sa.Table(
            self.table_name,
            sa.MetaData(),
            sa.Column("_id", sa.String(32), primary_key=True),
            sa.Column("_version", sa.Integer()),
            sa.Column("_created_at", UtcDateTime()),
            sa.Column("_created_by", sa.String(100)),
            sa.Column("_updated_at", UtcDateTime()),
            sa.Column("_updated_by", sa.String(100)),
            *(
                (sa.Column("_form_version", sa.Integer()), sa.Column("_whole", sa.Boolean()))
                if self.whole
                else ()
            ),
            *(
                sa.Column(key, column_types[kind] if pg else sa.types.NullType())
                for key, kind in self.columns.items()
            ),
        )

    def document(self, values: Mapping[Any, Any]) -> dict[str, Any]:
        """A ``_whole`` row's document from its field columns (``values``: key -> the
        column's value as read): each non-NULL value as the document's JSON would decode —
        a NUMERIC with decimals as a float, without as an int, as ``json.loads`` reads
        JSONB's text of the same number — in JSONB's key order (shorter keys first, then by
        their bytes), so the answer is the one the document gives, to the byte."""
        out: dict[str, Any] = {}
        for key, numeric in _jsonb_order(self.columns):
            value = values[key]
            if value is None:
                continue
            if numeric:
                exponent = value.as_tuple().exponent
                value = int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
            out[key] = value
        return out


def _jsonb_order(columns: Mapping[str, str]) -> list[tuple[str, bool]]:
    """``columns``' keys in the order JSONB keeps an object's keys, each with whether it
    is numeric."""
    key = tuple(columns.items())
    order = _ORDERS.get(key)
    if order is None:
        if len(_ORDERS) >= _TABLES_KEPT:
            del _ORDERS[next(iter(_ORDERS))]
        order = _ORDERS[key] = [
            (name, kind == "numeric")
            for name, kind in sorted(
                columns.items(), key=lambda item: (len(item[0].encode()), item[0].encode())
            )
        ]
    return order


_ORDERS: dict[tuple[tuple[str, str], ...], list[tuple[str, bool]]] = {}


def _value_sql(key: str, kind: str, row: str, dialect: str = "postgresql") -> str:
    """The SQL of a field's projected value from ``row.data`` (keys are checked
    identifiers). PostgreSQL: numbers and booleans only from JSON values of their type (a
    document that does not conform gives NULL instead of failing the write); SQLite: what
    ``json_extract`` gives, which is what the JSON path reads."""
    if dialect != "postgresql":
        return f"json_extract({row}.data, '$.{key}')"
    json = f"{row}.data -> '{key}'"
    if kind == "numeric":
        return f"CASE jsonb_typeof({json}) WHEN 'number' THEN ({row}.data ->> '{key}')::numeric END"
    if kind == "boolean":
        return (
            f"CASE jsonb_typeof({json}) WHEN 'boolean' THEN ({row}.data ->> '{key}')::boolean END"
        )
    if kind == "json":  # a multiselect's array as it is stored (a JSON null is no value)
        return f"NULLIF({json}, 'null'::jsonb)"
    return f"{row}.data ->> '{key}'"


def _system(dialect: str) -> tuple[tuple[str, str, str], ...]:
    return _SYSTEM + _SYSTEM_WHOLE if format_of(dialect) >= 2 else _SYSTEM


def _names(columns: Mapping[str, str], dialect: str = "postgresql") -> list[str]:
    whole = ["_whole"] if format_of(dialect) >= 2 else []
    return [name for name, _, _ in _system(dialect)] + whole + [f'"{key}"' for key in columns]


def _values(columns: Mapping[str, str], row: str, dialect: str = "postgresql") -> list[str]:
    whole = [_whole_sql(columns, row)] if format_of(dialect) >= 2 else []
    return (
        [f"{row}.{source}" for _, source, _ in _system(dialect)]
        + whole
        + [_value_sql(key, kind, row, dialect) for key, kind in columns.items()]
    )


def _whole_sql(columns: Mapping[str, str], row: str) -> str:
    """PostgreSQL: whether ``row.data`` is exactly the object its projected values make
    (NULLs left out), so a read can answer the document from the projection alone. False
    for a document with a key the projection lacks (a removed field's value, say), an
    explicit null, or a value its column does not hold as it is (a number in a text field,
    text in a number field). The values equal the document's own (the same JSONB numeric,
    text, boolean or array), so the comparison decides only what is there."""
    pairs = [f"'{key}', {_value_sql(key, kind, row)}" for key, kind in columns.items()]
    # jsonb_build_object takes at most 100 arguments: 50 pairs a call
    parts = [
        f"jsonb_build_object({', '.join(pairs[i : i + 50])})" for i in range(0, len(pairs), 50)
    ] or ["'{}'::jsonb"]
    return f"({row}.data = jsonb_strip_nulls({' || '.join(parts)}))"


def _sqlite_ddl(table: str, app: str, form: str, columns: Mapping[str, str]) -> list[str]:
    """SQLite: the table (field columns without a type: no affinity, values kept as
    ``json_extract`` gives them) and three triggers on ``records``."""
    definitions = [f"{name} {kind.replace('TIMESTAMPTZ', 'DATETIME')}" for name, _, kind in _SYSTEM]
    definitions += [f'"{key}"' for key in columns]
    names = ", ".join(_names(columns, "sqlite"))
    values = ", ".join(_values(columns, "NEW", "sqlite"))
    ours_new = f"NEW.app = '{app}' AND NEW.form = '{form}'"
    ours_old = f"OLD.app = '{app}' AND OLD.form = '{form}'"
    return [
        f"CREATE TABLE {table} ({', '.join(definitions)})",
        f"CREATE TRIGGER {table}_insert AFTER INSERT ON records "
        f"WHEN {ours_new} AND NEW.deleted_at IS NULL "
        f"BEGIN INSERT OR REPLACE INTO {table} ({names}) VALUES ({values}); END",
        f"CREATE TRIGGER {table}_update AFTER UPDATE ON records "
        f"WHEN ({ours_new}) OR ({ours_old}) BEGIN "
        f"DELETE FROM {table} WHERE _id = OLD.id; "
        f"INSERT OR REPLACE INTO {table} ({names}) SELECT {values} "
        f"WHERE {ours_new} AND NEW.deleted_at IS NULL; END",
        f"CREATE TRIGGER {table}_delete AFTER DELETE ON records WHEN {ours_old} "
        f"BEGIN DELETE FROM {table} WHERE _id = OLD.id; END",
    ]


def _ddl(
    table: str, app: str, form: str, columns: Mapping[str, str], dialect: str = "postgresql"
) -> list[str]:
    """The table, its trigger function and its three triggers on ``records``."""
    if dialect != "postgresql":
        return _sqlite_ddl(table, app, form, columns)
    definitions = [f"{name} {kind}" for name, _, kind in _system(dialect)]
    if format_of(dialect) >= 2:
        definitions.append("_whole BOOLEAN NOT NULL")
    definitions += [f'"{key}" {_SQL_TYPES[kind]}' for key, kind in columns.items()]
    names = ", ".join(_names(columns))
    values = ", ".join(_values(columns, "NEW"))
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in _names(columns)[1:])
    ours_new = f"NEW.app = '{app}' AND NEW.form = '{form}'"
    ours_old = f"OLD.app = '{app}' AND OLD.form = '{form}'"
    return [
        f"CREATE TABLE {table} ({', '.join(definitions)})",
        f"""CREATE FUNCTION {table}_sync() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM {table} WHERE _id = OLD.id;
        RETURN NULL;
    END IF;
    IF NOT ({ours_new}) OR NEW.deleted_at IS NOT NULL THEN
        DELETE FROM {table} WHERE _id = NEW.id;
        RETURN NULL;
    END IF;
    INSERT INTO {table} ({names}) VALUES ({values})
    ON CONFLICT (_id) DO UPDATE SET {updates};
    RETURN NULL;
END
$body$""",
        f"CREATE TRIGGER {table}_insert AFTER INSERT ON records FOR EACH ROW "
        f"WHEN ({ours_new}) EXECUTE FUNCTION {table}_sync()",
        f"CREATE TRIGGER {table}_update AFTER UPDATE ON records FOR EACH ROW "
        f"WHEN (({ours_new}) OR ({ours_old})) EXECUTE FUNCTION {table}_sync()",
        f"CREATE TRIGGER {table}_delete AFTER DELETE ON records FOR EACH ROW "
        f"WHEN ({ours_old}) EXECUTE FUNCTION {table}_sync()",
    ]


def _drop_triggers(table: str, dialect: str = "postgresql") -> list[str]:
    events = ("insert", "update", "delete")
    on = " ON records" if dialect == "postgresql" else ""
    return [f"DROP TRIGGER IF EXISTS {table}_{event}{on}" for event in events]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def ready(session: AsyncSession, app: str, form: str) -> Projection | None:
    """The form's ready generation, or None: read the JSON path."""
    if not enabled():
        return None
    row = (
        await session.execute(
            sa.select(
                RecordProjection.table_name, RecordProjection.columns, RecordProjection.format
            ).where(
                RecordProjection.app == app,
                RecordProjection.form == form,
                RecordProjection.state == "ready",
            )
        )
    ).first()
    return None if row is None else Projection(row[0], dict(row[1]), _dialect(session), row[2])


async def prepare(session: AsyncSession, spec: AppSpec, *, now: datetime) -> list[str]:
    """In the app change's transaction: a new generation for every form whose projected
    columns change (none for an unchanged one), retire those of removed forms, drop the
    tables retired before. Small forms are filled at once; the names of the generations left
    to fill are returned (:func:`fill` them once the change has committed)."""
    if not enabled():
        return []
    dialect = _dialect(session)
    generations = list(
        (
            await session.scalars(
                sa.select(RecordProjection).where(RecordProjection.app == spec.key)
            )
        ).all()
    )
    for old in [g for g in generations if g.state == "retired"]:
        await session.execute(text(f"DROP TABLE IF EXISTS {old.table_name}"))
        if dialect == "postgresql":
            await session.execute(text(f"DROP FUNCTION IF EXISTS {old.table_name}_sync()"))
        await session.delete(old)
    live = [g for g in generations if g.state != "retired"]
    forms = {form.key: form for form in spec.forms}
    to_fill: list[str] = []
    for generation in live:
        if generation.form not in forms:
            await _retire(session, generation, now)
    for key, form in forms.items():
        columns = wanted_columns(form)
        mine = [g for g in live if g.form == key]
        # a generation still building is the newest (a newer one retires it at once)
        building = [g for g in mine if g.state == "building"]
        candidates = building or [g for g in mine if g.state == "ready"]
        newest = candidates[0] if candidates else None
        if (
            newest is not None
            and dict(newest.columns) == columns  # JSONB keeps no key order
            and newest.format == format_of(dialect)
        ):
            if newest.state == "building":
                to_fill.append(newest.table_name)
            continue
        for stale in [g for g in mine if g.state == "building"]:
            await _retire(session, stale, now)
        table = f"fp_{secrets.token_hex(10)}"
        for statement in _ddl(table, spec.key, key, columns, dialect):
            await session.execute(text(statement))
        generation = RecordProjection(
            table_name=table,
            app=spec.key,
            form=key,
            columns=columns,
            format=format_of(dialect),
            state="building",
            cursor=None,
            created_at=now,
            updated_at=now,
        )
        session.add(generation)
        await session.flush()
        count = (
            await session.execute(
                text(
                    "SELECT count(*) FROM records WHERE app = :app AND form = :form "
                    "AND deleted_at IS NULL"
                ),
                {"app": spec.key, "form": key},
            )
        ).scalar_one()
        if count <= FILL_INLINE:
            await _copy(session, generation, None)
            await _finish(session, generation, now)
        else:
            to_fill.append(table)
    for key, form in forms.items():
        indexed = _indexed(form)
        long_text = {key for key, kind in field_types(form).items() if kind in LONG_TEXT_TYPES}
        for generation in await session.scalars(
            sa.select(RecordProjection).where(
                RecordProjection.app == spec.key,
                RecordProjection.form == key,
                RecordProjection.state.in_(("ready", "building")),
            )
        ):
            await _sync_indexes(session, generation, indexed, long_text)
    return to_fill


def _indexed(form: FormSpec) -> list[str]:
    """The projected fields of ``form`` marked ``indexed`` (or ``unique``)."""
    columns = wanted_columns(form)
    return [
        fld.key
        for fld in form.fields
        if fld.key in columns and (getattr(fld, "indexed", False) or getattr(fld, "unique", False))
    ]


def index_name(table: str, key: str, *, descending: bool = False) -> str:
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return f"{table}_{digest}{'_d' if descending else ''}"


async def _sync_indexes(
    session: AsyncSession,
    generation: RecordProjection,
    indexed: Sequence[str],
    long_text: Collection[str] = (),
) -> None:
    """Two btree indexes per indexed field the generation holds, ``(field, _id)`` and
    ``(field DESC NULLS LAST, _id)``: what filters on it use and what pages sorted on it,
    either way with empty values last, walk in order; the others dropped. A multiselect's
    array gets a GIN index instead (PostgreSQL; membership tests ``@>`` use it), none on
    SQLite, whose ``json_each`` no index serves. A ``long_text`` field gets a hash index on
    PostgreSQL (equality; a B-tree entry cannot hold a value of more than ~2,700 bytes, and
    the write would fail)."""
    table = generation.table_name
    pg = _dialect(session) == "postgresql"
    wanted: dict[str, str] = {}
    for key in indexed:
        kind = generation.columns.get(key)
        if kind == "json":
            if pg:
                wanted[index_name(table, key)] = f'USING gin ("{key}" jsonb_path_ops)'
        elif kind is not None and pg and key in long_text:
            wanted[f"{index_name(table, key)}_h"] = f'USING hash ("{key}")'
        elif kind is not None:
            wanted[index_name(table, key)] = f'("{key}", _id)'
            if pg:  # (SQLite's indexes know no NULLS LAST)
                wanted[index_name(table, key, descending=True)] = f'("{key}" DESC NULLS LAST, _id)'
    listed = (
        "SELECT indexname FROM pg_indexes WHERE tablename = :table"
        if pg
        else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :table "
        "AND name NOT LIKE 'sqlite\\_autoindex%' ESCAPE '\\'"
    )
    existing = set((await session.execute(text(listed), {"table": table})).scalars()) - {
        f"{table}_pkey"
    }
    for name in sorted(existing - wanted.keys()):
        await session.execute(text(f"DROP INDEX IF EXISTS {name}"))
    for name, columns in wanted.items():
        if name not in existing:
            await session.execute(text(f"CREATE INDEX {name} ON {table} {columns}"))


async def planned(session: AsyncSession, spec: AppSpec) -> list[dict[str, Any]]:
    """What :func:`prepare` would do for ``spec``, read only (the change plan shows it): per
    form whose projected columns change, the columns added, removed and retyped, how many
    live records the new generation copies, and whether it is filled at once or online in
    batches after the change (the previous generation serving reads meanwhile)."""
    if not enabled():
        return []
    wanted_format = format_of(_dialect(session))
    current: dict[str, dict[str, str]] = {}
    formats: dict[str, int] = {}
    for key, columns, state, layout in (
        await session.execute(
            sa.select(
                RecordProjection.form,
                RecordProjection.columns,
                RecordProjection.state,
                RecordProjection.format,
            ).where(RecordProjection.app == spec.key, RecordProjection.state != "retired")
        )
    ).all():
        if key not in current or state == "building":  # the newest generation
            current[key] = dict(columns)
            formats[key] = layout
    out: list[dict[str, Any]] = []
    for form in spec.forms:
        columns = wanted_columns(form)
        before = current.get(form.key)
        if before == columns and formats.get(form.key) == wanted_format:
            continue
        count = (
            await session.execute(
                text(
                    "SELECT count(*) FROM records WHERE app = :app AND form = :form "
                    "AND deleted_at IS NULL"
                ),
                {"app": spec.key, "form": form.key},
            )
        ).scalar_one()
        old = before or {}
        online = count > FILL_INLINE
        out.append(
            {
                "form": form.key,
                "action": "build" if before is None else "rebuild",
                "added": [key for key in columns if key not in old],
                "removed": [key for key in old if key not in columns],
                "retyped": [key for key in columns if key in old and old[key] != columns[key]],
                "records": count,
                "online": online,
                "batches": -(-count // BATCH) if online else 0,
            }
        )
    return out


async def _retire(session: AsyncSession, generation: RecordProjection, now: datetime) -> None:
    for statement in _drop_triggers(generation.table_name, _dialect(session)):
        await session.execute(text(statement))
    generation.state = "retired"
    generation.updated_at = now


async def _copy(session: AsyncSession, generation: RecordProjection, limit: int | None) -> bool:
    """Copy the next ``limit`` live records (all, for None) after the generation's cursor;
    whether any were left to copy. Rows are locked as they are copied (see the module doc)."""
    table, columns = generation.table_name, dict(generation.columns)
    after = generation.cursor or ""
    bound = "" if limit is None else f"LIMIT {int(limit)}"
    where = {"app": generation.app, "form": generation.form, "after": after}
    if _dialect(session) != "postgresql":  # one writer at a time: nothing to lock
        batch = (
            "SELECT * FROM records WHERE app = :app AND form = :form AND deleted_at IS NULL "
            f"AND id > :after ORDER BY id {bound}"
        )
        last, copied = (
            await session.execute(text(f"SELECT max(id), count(*) FROM ({batch})"), where)
        ).one()
        await session.execute(
            text(
                f"INSERT OR IGNORE INTO {table} ({', '.join(_names(columns, 'sqlite'))}) "
                f"SELECT {', '.join(_values(columns, 'batch', 'sqlite'))} FROM ({batch}) AS batch"
            ),
            where,
        )
        if last is not None:
            generation.cursor = last
        return bool(copied) and limit is not None and copied >= limit
    batch = (
        "SELECT * FROM records WHERE app = :app AND form = :form AND deleted_at IS NULL "
        f"AND id > :after ORDER BY id {bound} FOR SHARE"
    )
    statement = (
        f"WITH batch AS ({batch}), copied AS (INSERT INTO {table} ({', '.join(_names(columns))}) "
        f"SELECT {', '.join(_values(columns, 'batch'))} FROM batch "
        "ON CONFLICT (_id) DO NOTHING) SELECT max(id), count(*) FROM batch"
    )
    last, copied = (await session.execute(text(statement), where)).one()
    if last is not None:
        generation.cursor = last
    return bool(copied) and limit is not None and copied >= limit


async def _finish(session: AsyncSession, generation: RecordProjection, now: datetime) -> None:
    """The generation becomes the form's ready one; the one before is retired."""
    others = await session.scalars(
        sa.select(RecordProjection).where(
            RecordProjection.app == generation.app,
            RecordProjection.form == generation.form,
            RecordProjection.state == "ready",
            RecordProjection.table_name != generation.table_name,
        )
    )
    for other in others.all():
        await _retire(session, other, now)
    generation.state = "ready"
    generation.cursor = None
    generation.updated_at = now
    await session.execute(text(f"ANALYZE {generation.table_name}"))


async def fill(database: Any, table_names: Sequence[str], *, now: datetime) -> None:
    """Fill generations in batches, a transaction each, then make each ready (after the app
    change committed; ``database`` is the platform's :class:`~formloom.platform.db.Database`).
    Safe to run again at any point: it goes on from the saved cursor."""
    for name in table_names:
        while True:
            async with database.transaction() as session:
                generation = await session.get(RecordProjection, name, with_for_update=True)
                if generation is None or generation.state != "building":
                    break
                more = await _copy(session, generation, BATCH)
                generation.updated_at = now
                if not more:
                    await _finish(session, generation, now)
                    break


#: Builds running in the background of this process (kept so they are not collected).
_RUNNING: set[asyncio.Task[None]] = set()


def start_filling(database: Any, table_names: Sequence[str], *, now: datetime) -> None:
    """:func:`fill` in the background of this process (the request that changed the form
    has answered). A build that does not finish here is resumed at the next start-up or by
    the worker (:func:`resume`)."""
    if not table_names:
        return
    task = asyncio.get_running_loop().create_task(fill(database, list(table_names), now=now))
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


async def stop_filling() -> None:
    """Cancel this event loop's background fills and wait until they have unwound (at
    shutdown, before the database closes); an unfinished build resumes at the next start-up
    or by the worker (:func:`resume`)."""
    loop = asyncio.get_running_loop()
    mine = [task for task in _RUNNING if task.get_loop() is loop and not task.done()]
    for task in mine:
        task.cancel()
    for task in mine:
        with suppress(asyncio.CancelledError):
            await task


async def unfinished(session: AsyncSession) -> list[str]:
    """The generations a build left unfilled (a process stopped mid-way)."""
    return list(
        (
            await session.scalars(
                sa.select(RecordProjection.table_name).where(RecordProjection.state == "building")
            )
        ).all()
    )


async def resume(database: Any, *, now: datetime) -> list[str]:
    """Finish every build a stopped process left (at start-up and by the worker)."""
    async with database.transaction(write=False) as session:
        names = await unfinished(session)
    await fill(database, names, now=now)
    return names
