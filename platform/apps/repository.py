"""All SQL about apps, their versions, and the records an app change migrates."""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION, JSONB, array
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Boolean, Text

from formloom.engines.forms import (
    BaseField,
    FormSpec,
    IntegerField,
    NumberField,
    SelectField,
    TextareaField,
    TextField,
    field_types,
)
from formloom.engines.forms.diff import FieldChange
from formloom.engines.forms.migrate import SetBased
from formloom.engines.logic import variables
from formloom.engines.logic.sql import FilterError, FilterTarget, compile_filter
from formloom.engines.logic.sql_values import SAFE, CompiledValue, compile_value
from formloom.platform.models import (
    App,
    AppVersion,
    FlowInstance,
    Record,
    RecordHistory,
    RecordUnique,
    system_columns,
)
from formloom.platform.models.base import UtcDateTime
from formloom.platform.records.history import delta
from formloom.platform.records.repository import HISTORY_COLUMNS, live


async def get_app(session: AsyncSession, key: str, *, lock: bool = False) -> App | None:
    query = select(App).where(App.key == key)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def current_version_number(session: AsyncSession, key: str) -> int | None:
    result = await session.execute(_CURRENT_VERSION, {"key": key})
    return result.scalar_one_or_none()


# built once: building the statement and its cache key cost as much as running it
_CURRENT_VERSION = select(App.current_version).where(App.key == bindparam("key"))


async def get_version(session: AsyncSession, key: str, version: int) -> AppVersion | None:
    return await session.get(AppVersion, (key, version))


async def revisions(session: AsyncSession) -> tuple[tuple[str, int], ...]:
    """(key, current revision) of every installed app, without their definitions."""
    rows = await session.execute(select(App.key, App.current_version).order_by(App.key))
    return tuple((key, version) for key, version in rows.all())


async def versions(session: AsyncSession, key: str) -> list[AppVersion]:
    query = select(AppVersion).where(AppVersion.app == key).order_by(AppVersion.version)
    return list((await session.execute(query)).scalars())


async def list_apps(session: AsyncSession) -> list[tuple[App, AppVersion]]:
    query = (
        select(App, AppVersion)
        .join(AppVersion, (AppVersion.app == App.key) & (AppVersion.version == App.current_version))
        .order_by(App.key)
    )
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def record_counts(session: AsyncSession, app: str) -> dict[str, int]:
    query = (
        select(Record.form, func.count())
        .where(Record.app == app, Record.deleted_at.is_(None))
        .group_by(Record.form)
    )
    return {form: count for form, count in (await session.execute(query)).all()}


async def existing_index_names(session: AsyncSession, prefix: str) -> set[str]:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        query = text("SELECT indexname FROM pg_indexes WHERE tablename = 'records'")
    else:
        query = text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'")
    rows = await session.execute(query)
    return {row[0] for row in rows if row[0].startswith(prefix)}


# -- migrating records (app changes) --------------------------------------------------------

BATCH = 1000

# the ORM declares __table__ as a FromClause; these are Tables
_RECORDS = typing.cast(Table, Record.__table__)
_HISTORY = typing.cast(Table, RecordHistory.__table__)
_CLAIMS = typing.cast(Table, RecordUnique.__table__)


def _target(form: FormSpec, dialect: str) -> FilterTarget:
    return FilterTarget(
        data=_RECORDS.c.data,
        fields=field_types(form),
        columns=system_columns(),
        dialect="postgresql" if dialect == "postgresql" else "sqlite",
    )


async def count_touches(
    session: AsyncSession,
    app: str,
    old_form: FormSpec,
    changes: Sequence[FieldChange],
    now: datetime,
) -> tuple[int, list[int]]:
    """Live records of the form, and how many each change touches — in one scan. A change
    whose filter does not compile counts every record (an upper bound)."""
    target = _target(old_form, session.get_bind().dialect.name)
    columns: list[Any] = [func.count()]
    for change in changes:
        if change.touches is None:
            columns.append(literal(0, Integer))
        elif change.touches is True:
            columns.append(func.count())
        else:
            try:
                condition = compile_filter(change.touches, target, now=now)
            except FilterError:
                condition = None
            if condition is None:
                columns.append(func.count())
            else:
                columns.append(func.coalesce(func.sum(case((condition, 1), else_=0)), 0))
    row = (await session.execute(select(*columns).where(*live(app, old_form.key)))).one()
    return int(row[0]), [int(value) for value in row[1:]]


async def live_batches(
    session: AsyncSession, app: str, form: str
) -> AsyncIterator[list[tuple[str, dict[str, Any], int]]]:
    """The live records of a form as ``(id, data, version)``, :data:`BATCH` at a time in id
    order. Writing the records of a batch before reading the next one is safe."""
    last_id = ""
    while True:
        rows = (
            await session.execute(
                select(Record.id, Record.data, Record.version)
                .where(*live(app, form), Record.id > last_id)
                .order_by(Record.id)
                .limit(BATCH)
            )
        ).all()
        if not rows:
            return
        last_id = rows[-1][0]
        yield [(record_id, data, version) for record_id, data, version in rows]


@dataclass(frozen=True)
class Migrated:
    """A record's new data after a migration, and the keys whose values changed."""

    record_id: str
    data: dict[str, Any]
    version: int  # the new version
    changed: list[str]


async def write_migrated(
    session: AsyncSession,
    app: str,
    form: str,
    records: Sequence[Migrated],
    *,
    form_version: int,
    actor: str,
    now: datetime,
) -> None:
    """Store migrated records, each with a history row (``operation: migrate``) holding its
    reverse delta from the data it replaces (read here, in the same unit of work)."""
    if not records:
        return
    olds = dict(
        (
            await session.execute(
                select(_RECORDS.c.id, _RECORDS.c.data).where(
                    _RECORDS.c.id.in_([r.record_id for r in records])
                )
            )
        ).all()
    )
    deltas = {r.record_id: delta(olds[r.record_id], r.data) for r in records}
    await session.execute(
        update(_RECORDS)
        .where(_RECORDS.c.id == bindparam("b_id"))
        .values(
            data=bindparam("b_data"),
            version=bindparam("b_version"),
            form_version=form_version,
            updated_at=now,
            updated_by=actor,
        )
        .execution_options(synchronize_session=False),
        [{"b_id": r.record_id, "b_data": r.data, "b_version": r.version} for r in records],
    )
    await session.execute(
        _HISTORY.insert(),
        [
            {
                "record_id": r.record_id,
                "app": app,
                "form": form,
                "version": r.version,
                "form_version": form_version,
                "operation": "migrate",
                "before": deltas[r.record_id][0],
                "added": deltas[r.record_id][1],
                "changed": r.changed,
                "actor": actor,
                "at": now,
            }
            for r in records
        ],
    )


async def delete_claims(session: AsyncSession, app: str, form: str) -> None:
    await session.execute(_CLAIMS.delete().where(_CLAIMS.c.app == app, _CLAIMS.c.form == form))


async def insert_claims(session: AsyncSession, claims: Sequence[Mapping[str, Any]]) -> None:
    """Unique claims: ``app``, ``form``, ``field``, ``value``, ``record_id`` each."""
    if claims:
        await session.execute(_CLAIMS.insert(), list(claims))


async def rename_claims(
    session: AsyncSession, app: str, form: str, renames: Mapping[str, str]
) -> None:
    """Unique claims follow their field's values to its new key."""
    for old_key, new_key in renames.items():
        await session.execute(
            _CLAIMS.update()
            .where(_CLAIMS.c.app == app, _CLAIMS.c.form == form, _CLAIMS.c.field == old_key)
            .values(field=new_key)
        )


async def soft_delete_form(
    session: AsyncSession, app: str, form: str, *, actor: str, now: datetime
) -> int:
    """Soft-delete every live record of a form, each with a history row (``delete``), and
    free its unique claims. Returns the number of records."""
    rows = (await session.execute(select(Record.id, Record.version).where(*live(app, form)))).all()
    if not rows:
        return 0
    await session.execute(
        update(_RECORDS)
        .where(_RECORDS.c.app == app, _RECORDS.c.form == form, _RECORDS.c.deleted_at.is_(None))
        .values(deleted_at=now, version=_RECORDS.c.version + 1, updated_at=now, updated_by=actor)
    )
    await session.execute(
        _HISTORY.insert(),
        [
            {
                "record_id": rid,
                "app": app,
                "form": form,
                "version": version + 1,
                "form_version": 0,
                "operation": "delete",
                "before": None,  # a delete keeps the data: no delta
                "added": None,
                "changed": [],
                "actor": actor,
                "at": now,
            }
            for rid, version in rows
        ],
    )
    await session.execute(
        _CLAIMS.delete().where(RecordUnique.app == app, RecordUnique.form == form)
    )
    return len(rows)


# -- set-based migrations (PostgreSQL): a RecordMigration compiled to one statement --------


async def floats_round_trip(session: AsyncSession) -> bool:
    """Whether ``to_jsonb`` prints the shortest round-trip digits of a double, as Python's
    ``repr`` does (``extra_float_digits`` >= 1, PostgreSQL's default)."""
    setting = await session.scalar(text("SELECT current_setting('extra_float_digits')::int"))
    return setting is not None and setting >= 1


def before_sql(old: str, new: str) -> str:
    """PostgreSQL: a history row's ``before`` (``records.history.delta``) in SQL, from the
    old and new JSONB data named ``old`` and ``new``: the old values of the keys whose stored
    JSON differs (compared as text: ``1`` and ``1.0`` differ, as in the strict Python
    comparison), NULL when none."""
    return (
        f"(SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each({old}) AS e "
        f"WHERE ({new} -> e.key)::text IS DISTINCT FROM e.value::text)"
    )


def added_sql(old: str, new: str) -> str:
    """PostgreSQL: a history row's ``added``: the keys of ``new`` absent from ``old``,
    sorted by code point as Python sorts, NULL when none."""
    return (
        f'(SELECT jsonb_agg(k ORDER BY k COLLATE "C") FROM jsonb_object_keys({new}) AS k '
        f"WHERE NOT {old} ? k)"
    )


async def rename_in_sql(
    session: AsyncSession,
    app: str,
    form: str,
    renames: Mapping[str, str],
    *,
    form_version: int,
    actor: str,
    now: datetime,
) -> int:
    """PostgreSQL: move the values of renamed keys and write a history row for each record
    changed, in one statement (a migration of renames only: nothing else can change, so this
    is lighter than :func:`set_based_statement`). Keys are validated identifiers (written
    into the SQL). Returns the number of records changed."""
    olds = ", ".join(f"'{o}'" for o in renames)
    removed = "".join(f" - '{o}'" for o in renames)
    built = ", ".join(f"'{n}', prev.data -> '{o}'" for o, n in renames.items())
    pairs = ", ".join(f"('{o}', '{n}')" for o, n in renames.items())
    statement = text(
        f"""
        WITH prev AS (
            SELECT id, data FROM records
            WHERE app = '{app}' AND form = '{form}' AND deleted_at IS NULL
              AND data ?| array[{olds}]
            FOR UPDATE
        ), moved AS (
            UPDATE records
            SET data = (prev.data{removed}) || jsonb_strip_nulls(jsonb_build_object({built})),
                version = records.version + 1, form_version = :form_version,
                updated_at = :now, updated_by = :actor
            FROM prev
            WHERE records.id = prev.id
            RETURNING records.id, records.data, records.version, prev.data AS old
        )
        INSERT INTO record_history
            (record_id, app, form, version, form_version, operation, before, added, changed,
             actor, at)
        SELECT moved.id, '{app}', '{form}', moved.version, :form_version, 'migrate',
               {before_sql("moved.old", "moved.data")}, {added_sql("moved.old", "moved.data")},
               (SELECT coalesce(jsonb_agg(k ORDER BY k COLLATE "C"), '[]'::jsonb)
                FROM (VALUES {pairs}) AS p(o, n), LATERAL unnest(array[p.o, p.n]) AS k
                WHERE moved.data ? p.n),
               :actor, :now
        FROM moved
        """
    ).bindparams(
        bindparam("now", type_=UtcDateTime()),
    )
    result = await session.execute(
        statement, {"form_version": form_version, "now": now, "actor": actor}
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _json_text(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return value.op("#>>", return_type=Text())(text("'{}'::text[]"))


def _valid_in_sql(target: BaseField, value: ColumnElement[Any]) -> ColumnElement[bool]:
    """True where the form engine accepts ``value`` (JSONB of the kind the field needs,
    SQL NULL for no value) as the field's stored value: required, type, limits, options."""
    required = bool(getattr(target, "required", False))
    checks: list[ColumnElement[bool]] = []
    if isinstance(target, TextField | TextareaField | SelectField):
        chars = func.char_length(_json_text(value))
        if required:
            checks.append(_json_text(value) != "")
        if isinstance(target, SelectField):
            checks.append(_json_text(value).in_([option.value for option in target.options]))
        else:
            checks.append(chars <= target.effective_max_length)
            if target.min_length:
                checks.append(chars >= target.min_length)
    elif isinstance(target, NumberField | IntegerField):
        number = cast(value, DOUBLE_PRECISION)
        # limits compare as Python compares them: exact for integers below 2**53
        checks.append(func.abs(number) < SAFE)
        if isinstance(target, IntegerField):
            checks.append(number == func.trunc(number))
        if target.min is not None:
            checks.append(number >= float(target.min))
        if target.max is not None:
            checks.append(number <= float(target.max))
    present = and_(value.is_not(None), *checks) if checks else value.is_not(None)
    if required:
        return func.coalesce(present, false())
    return func.coalesce(or_(value.is_(None), present), false())


def _object_of(key: str, value: ColumnElement[Any]) -> ColumnElement[Any]:
    """``{key: value}``, or ``{}`` where ``value`` is SQL NULL (no value)."""
    return case(
        (value.is_(None), cast(literal("{}"), JSONB)),
        else_=func.jsonb_build_object(literal(key, Text()), value, type_=JSONB),
    )


def set_based_statement(
    app: str,
    form: str,
    old_form: FormSpec,
    migration: SetBased,
    *,
    form_version: int,
    actor: str,
    now: datetime,
) -> Select[Any] | str:
    """The one statement of a set-based migration (PostgreSQL), or why there is none.

    It compiles the migration's renames and ``set`` expressions (the same
    :class:`~formloom.engines.forms.migrate.RecordMigration` the batches interpret), computes
    every live record's new data, checks every record (each set value valid for its field,
    and exactly what the evaluator would compute), and — only if all pass — updates the
    records whose data changes and writes their history rows. It returns one row:
    ``invalid`` (records failing a check; nothing was written if any) and ``migrated``.
    """
    records = _RECORDS
    data = records.c.data
    renames = migration.renames
    # What a `set` reads: the old record plus each renamed value under its new key (only
    # the renamed keys some expression reads: building the object costs a copy per record).
    read = {path.split(".")[0] for rule in migration.sets.values() for path in variables(rule)}
    context: ColumnElement[Any] = data
    for old_key, new_key in renames.items():
        if new_key not in read and "*" not in read:
            continue
        moved = func.jsonb_build_object(
            literal(new_key, Text()), data.op("->", return_type=JSONB)(literal(old_key, Text()))
        )
        present = data.op("?", return_type=Boolean)(literal(old_key, Text()))
        context = context.op("||", return_type=JSONB)(
            case((present, moved), else_=cast(literal("{}"), JSONB))
        )
    old_types = field_types(old_form)
    types = {**old_types, **{new: old_types[old] for old, new in renames.items()}}
    # OFFSET 0 keeps PostgreSQL from inlining each layer (which would compute a value once
    # per reference instead of once per row).
    base = (
        select(records.c.id, data.label("old"), context.label("ctx"))
        .where(*live(app, form))
        .offset(0)
        .subquery("base")
    )
    target = FilterTarget(base.c.ctx, types, {}, "postgresql")
    compiled: dict[str, CompiledValue] = {}
    for key, expression in migration.sets.items():
        try:
            value = compile_value(expression, target, now=now)
        except FilterError as exc:
            return f"`set` of {key} is not SQL ({exc})"
        wanted = migration.kind(key)
        if value.kind not in (wanted, "null"):
            return f"`set` of {key} gives {value.kind}, the field needs {wanted}"
        compiled[key] = value
    keys = sorted(compiled)
    values = (
        select(
            base.c.id,
            base.c.old,
            *(compiled[k].value.label(f"v{i}") for i, k in enumerate(keys)),
            *(compiled[k].exact.label(f"x{i}") for i, k in enumerate(keys)),
        )
        .offset(0)
        .subquery("computed")
    )
    old = values.c.old
    new_values: dict[str, ColumnElement[Any]] = {}
    for old_key, new_key in renames.items():
        new_values[old_key] = null()
        if new_key not in compiled:
            new_values[new_key] = old.op("->", return_type=JSONB)(literal(old_key, Text()))
    for i, key in enumerate(keys):
        new_values[key] = values.c[f"v{i}"]
    dropped = cast(array([literal(k, Text()) for k in sorted(new_values)]), ARRAY(Text()))
    new_data: ColumnElement[Any] = old.op("-", return_type=JSONB)(dropped)
    for key in sorted(new_values):
        if key not in renames:  # a renamed-away key stays dropped
            new_data = new_data.op("||", return_type=JSONB)(_object_of(key, new_values[key]))
    changed_keys = func.array_remove(
        array(
            [
                case(
                    (
                        old.op("->", return_type=JSONB)(literal(key, Text())).is_distinct_from(
                            new_values[key]
                        ),
                        literal(key, Text()),
                    ),
                    else_=cast(null(), Text()),
                )
                for key in sorted(new_values)
            ]
        ),
        cast(null(), Text()),
        type_=ARRAY(Text()),
    )
    ok = and_(
        true(),
        *(values.c[f"x{i}"] for i in range(len(keys))),
        *(_valid_in_sql(migration.targets[k], values.c[f"v{i}"]) for i, k in enumerate(keys)),
    )
    source = select(
        values.c.id,
        old.label("old"),
        new_data.label("new"),
        func.coalesce(ok, false()).label("ok"),
        changed_keys.label("changed"),
    ).cte("source")
    invalid = select(func.count()).select_from(source).where(not_(source.c.ok)).scalar_subquery()
    moved_rows = (
        update(records)
        .where(
            *live(app, form),
            records.c.id == source.c.id,
            func.cardinality(source.c.changed) > 0,
            invalid == 0,
        )
        .values(
            data=source.c.new,
            version=records.c.version + 1,
            form_version=form_version,
            updated_at=now,
            updated_by=actor,
        )
        .returning(records.c.id, records.c.version, records.c.data, source.c.old, source.c.changed)
        .cte("moved")
    )
    written = (
        _HISTORY.insert()
        .from_select(
            list(HISTORY_COLUMNS),
            select(
                moved_rows.c.id,
                literal(app, Text()),
                literal(form, Text()),
                moved_rows.c.version,
                literal(form_version),
                literal("migrate", Text()),
                literal_column(before_sql("moved.old", "moved.data"), JSONB),
                literal_column(added_sql("moved.old", "moved.data"), JSONB),
                func.to_jsonb(moved_rows.c.changed, type_=JSONB),
                literal(actor, Text()),
                literal(now, UtcDateTime()),
            ),
        )
        .cte("written")
    )
    return select(
        invalid.label("invalid"),
        select(func.count()).select_from(moved_rows).scalar_subquery().label("migrated"),
    ).add_cte(written)


async def running_flows(session: AsyncSession, app: str, flows: Sequence[str]) -> dict[str, int]:
    """How many instances of each of ``flows`` run (on whatever version they started on)."""
    rows = await session.execute(
        select(FlowInstance.flow, func.count())
        .where(
            FlowInstance.app == app,
            FlowInstance.flow.in_(list(flows)),
            FlowInstance.status == "running",
        )
        .group_by(FlowInstance.flow)
    )
    return {flow: int(count) for flow, count in rows.all()}
