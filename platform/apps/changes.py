"""Plans and migrations: what an import changes, and carrying it out on existing records.

The form engine (``engines.forms.diff``) classifies every change and gives, for each, a
JsonLogic filter of the records it touches. Here those filters are compiled to SQL against
the *old* definition (records are stored in its shape) and counted — one scan per form,
never loading records — which makes a dry-run cheap on any number of records.

Applying runs in the import's own transaction: records of every form whose change reaches
stored data are re-prepared in batches (renames, ``set`` expressions, defaults for new
required fields, removed fields dropped), validated by the form engine against the new
definition, and written with a history row each. If any record would be left invalid, the
whole import is refused with the count and the first examples, and nothing is written.

On PostgreSQL two kinds of change skip the form engine and run as one set-based statement
that also writes the history rows: a change that only renames fields, and a change that
renames fields and computes values with `set` expressions, when every expression compiles to
SQL (``engines.logic.sql_values``), every field it sets has a definition whose validation SQL
can check (text, select, number, integer, boolean without a pattern or a visibility rule), no
formula or visibility rule reads a field it sets, and nothing else in the change needs the
engine. That statement first checks every record — validity of each new value, and that SQL
computed exactly what the evaluator would — and writes nothing if one fails; the batches then
run, so a refusal (422, count and examples) is always the one the batches give. Any other
change runs in batches.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION, JSONB, array
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Boolean, Text

from formloom.engines.forms import (
    FormSpec,
    RecordInvalid,
    changed_fields,
    field_types,
    prepare,
    unique_fields,
)
from formloom.engines.forms.diff import (
    EntryChanges,
    FieldChange,
    FormDiff,
    diff_entries,
    diff_forms,
)
from formloom.engines.forms.fields import (
    BaseField,
    BooleanField,
    ComputedField,
    IntegerField,
    NumberField,
    SectionField,
    SelectField,
    TableField,
    TextareaField,
    TextField,
)
from formloom.engines.logic import LogicError, evaluate, variables
from formloom.engines.logic.sql import FIELD_TYPES, FilterError, FilterTarget, compile_filter
from formloom.engines.logic.sql_values import SAFE, CompiledValue, compile_value
from formloom.platform.apps.definition import AppSpec, MigrationSpec
from formloom.platform.errors import Conflict, Unprocessable
from formloom.platform.models import Record, RecordHistory, RecordUnique, system_columns
from formloom.platform.models.base import UtcDateTime
from formloom.platform.records.repository import HISTORY_COLUMNS, live

log = logging.getLogger("formloom.apps.changes")

BATCH = 1000
EXAMPLES = 5
ENTRY_LISTS = ("roles", "rules", "flows", "reports", "dashboards", "permissions")


@dataclass
class CountedChange:
    change: FieldChange
    records: int | None  # None: not counted (a plan between two files, no database)
    covered_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = self.change.to_dict()
        out["records"] = self.records
        if not self.change.exact and self.records:
            out["records_note"] = "at most; every record is checked when the change is applied"
        if self.covered_by:
            out["covered_by"] = self.covered_by
        out["class"] = self.effective_class
        return out

    @property
    def effective_class(self) -> str:
        # A change that touches no record is safe, whatever its kind.
        if self.change.change_class != "safe" and self.records == 0:
            return "safe"
        return self.change.change_class


@dataclass
class FormPlan:
    diff: FormDiff
    records: int | None
    changes: list[CountedChange] = field(default_factory=list)

    @property
    def change_class(self) -> str:
        if self.diff.kind == "removed":
            return "destructive" if self.records else "safe"
        rank = {"safe": 0, "needs_migration": 1, "destructive": 2}
        worst = "safe"
        for change in self.changes:
            if rank[change.effective_class] > rank[worst]:
                worst = change.effective_class
        return worst

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "form": self.diff.form,
            "change": self.diff.kind,
            "class": self.change_class,
            "records": self.records,
        }
        if self.changes:
            out["fields"] = [c.to_dict() for c in self.changes]
        return out


@dataclass
class Plan:
    app: str
    status: Literal["create", "update", "unchanged"]
    revision: int | None
    forms: list[FormPlan] = field(default_factory=list)
    entries: dict[str, EntryChanges] = field(default_factory=dict)
    blocked: list[dict[str, Any]] = field(default_factory=list)
    migrations: dict[str, MigrationSpec] = field(default_factory=dict)

    @property
    def can_apply(self) -> bool:
        return not self.blocked

    def to_dict(self) -> dict[str, Any]:
        counts = {"safe": 0, "needs_migration": 0, "destructive": 0}
        for form in self.forms:
            if form.diff.kind == "changed":
                for change in form.changes:
                    counts[change.effective_class] += 1
            else:
                counts[form.change_class] += 1
        return {
            "app": self.app,
            "status": self.status,
            "revision": self.revision,
            "summary": counts,
            "forms": [f.to_dict() for f in self.forms],
            **{name: changes.to_dict() for name, changes in self.entries.items()},
            "can_apply": self.can_apply,
            "blocked": self.blocked,
        }


def _migrations_by_form(spec: AppSpec) -> dict[str, MigrationSpec]:
    merged: dict[str, MigrationSpec] = {}
    for entry in spec.migrations:
        previous = merged.get(entry.form)
        if previous is None:
            merged[entry.form] = entry
        else:
            merged[entry.form] = MigrationSpec(
                form=entry.form,
                rename={**previous.rename, **entry.rename},
                set={**previous.set, **entry.set},
            )
    return merged


def _target(form: FormSpec, dialect: str) -> FilterTarget:
    return FilterTarget(
        data=Record.data,
        fields=field_types(form),
        columns=system_columns(),
        dialect="postgresql" if dialect == "postgresql" else "sqlite",
    )


async def _count_touches(
    session: AsyncSession,
    app: str,
    old_form: FormSpec,
    changes: list[FieldChange],
    now: datetime,
) -> tuple[int, list[int]]:
    """Live records of the form, and how many each change touches — in one scan."""
    target = _target(old_form, session.bind.dialect.name)
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


def _covered(change: FieldChange, migration: MigrationSpec | None) -> str | None:
    if change.renamed_from is not None:
        return "rename"
    if migration is not None and change.field in migration.set:
        return "set"
    return None


async def make_plan(
    session: AsyncSession,
    current: AppSpec | None,
    current_revision: int | None,
    spec: AppSpec,
    *,
    unchanged: bool,
    allow_destructive: bool,
    now: datetime,
) -> Plan:
    if current is None:
        plan = Plan(spec.key, "create", None)
        plan.forms = [FormPlan(FormDiff(f.key, "added"), 0) for f in spec.forms]
        return plan
    if unchanged:
        return Plan(spec.key, "unchanged", current_revision)
    migrations = _migrations_by_form(spec)
    renames = {form: m.rename for form, m in migrations.items()}
    plan = Plan(spec.key, "update", current_revision, migrations=migrations)
    old_forms = {f.key: f for f in current.forms}
    for diff in diff_forms(list(current.forms), list(spec.forms), renames):
        if diff.kind == "added":
            plan.forms.append(FormPlan(diff, 0))
            continue
        old_form = old_forms[diff.form]
        total, touched = await _count_touches(session, spec.key, old_form, list(diff.fields), now)
        form_plan = FormPlan(diff, total)
        for change, count in zip(diff.fields, touched, strict=True):
            form_plan.changes.append(
                CountedChange(change, count, _covered(change, migrations.get(diff.form)))
            )
        plan.forms.append(form_plan)
    _entry_changes(plan, current, spec)
    _block(plan, allow_destructive)
    return plan


def _entry_changes(plan: Plan, current: AppSpec, spec: AppSpec) -> None:
    """Rules, flows, reports and dashboards added, changed or removed, by key."""
    for name in ENTRY_LISTS:
        changes = diff_entries(
            [e if isinstance(e, dict) else e.model_dump() for e in getattr(current, name)],
            [e if isinstance(e, dict) else e.model_dump() for e in getattr(spec, name)],
        )
        if changes:
            plan.entries[name] = changes


def plan_offline(current: AppSpec, spec: AppSpec) -> Plan:
    """The plan between two definitions without a database: kinds and classes, no counts
    (``formloom app diff``). Every change is classed as if records had values."""
    migrations = _migrations_by_form(spec)
    renames = {form: m.rename for form, m in migrations.items()}
    plan = Plan(spec.key, "update", None, migrations=migrations)
    for diff in diff_forms(list(current.forms), list(spec.forms), renames):
        form_plan = FormPlan(diff, None)
        for change in diff.fields:
            form_plan.changes.append(
                CountedChange(change, None, _covered(change, migrations.get(diff.form)))
            )
        plan.forms.append(form_plan)
    _entry_changes(plan, current, spec)
    return plan


def render_table(plan: dict[str, Any]) -> str:
    """A plan (``Plan.to_dict()``) as a table a person reads in a terminal."""
    rows = [("FORM", "FIELD", "CHANGE", "CLASS", "RECORDS", "DETAIL")]
    for form in plan.get("forms", []):
        records = "-" if form.get("records") is None else f"{form['records']:,}"
        if form["change"] != "changed" or not form.get("fields"):
            rows.append(
                (form["form"], "", form["change"], form["class"].replace("_", " "), records, "")
            )
            continue
        for change in form["fields"]:
            name = change["field"] or "(form)"
            if change.get("renamed_from"):
                name = f"{change['renamed_from']} -> {change['field']}"
            count = "-" if change.get("records") is None else f"{change['records']:,}"
            if change.get("records_note"):
                count = "<=" + count
            detail = "; ".join(change["reasons"])
            if change.get("covered_by"):
                detail += f" [by {change['covered_by']}]"
            rows.append(
                (
                    form["form"],
                    name,
                    change["change"],
                    change["class"].replace("_", " "),
                    count,
                    detail,
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5]
        for row in rows
    ]
    for name in ENTRY_LISTS:
        entries = plan.get(name)
        if entries:
            parts = [f"{verb} {', '.join(keys)}" for verb, keys in entries.items() if keys]
            lines.append(f"{name}: " + "; ".join(parts))
    summary = plan.get("summary")
    if summary:
        lines.append(
            f"summary: {summary['safe']} safe, {summary['needs_migration']} needing migration, "
            f"{summary['destructive']} destructive"
        )
    for blocked in plan.get("blocked", []):
        lines.append(f"blocked: {blocked['message']}")
    if plan.get("status") == "unchanged":
        lines = ["no changes: the definition is the one installed"]
    return "\n".join(line.rstrip() for line in lines)


def _block(plan: Plan, allow_destructive: bool) -> None:
    for form in plan.forms:
        if form.diff.kind == "removed" and form.records and not allow_destructive:
            plan.blocked.append(
                {
                    "form": form.diff.form,
                    "class": "destructive",
                    "message": f"Removing form '{form.diff.form}' drops {form.records} record(s); "
                    "pass allow_destructive to confirm.",
                }
            )
        for counted in form.changes:
            change = counted.change
            label = f"{form.diff.form}.{change.field}"
            if counted.effective_class == "destructive" and not allow_destructive:
                plan.blocked.append(
                    {
                        "form": form.diff.form,
                        "field": change.field,
                        "class": "destructive",
                        "message": f"{label}: {'; '.join(change.reasons)} — {counted.records} "
                        "record(s) have a value; pass allow_destructive to confirm.",
                    }
                )
            elif (
                counted.effective_class == "needs_migration"
                and change.exact
                and counted.covered_by is None
            ):
                plan.blocked.append(
                    {
                        "form": form.diff.form,
                        "field": change.field,
                        "class": "needs_migration",
                        "message": f"{label}: {'; '.join(change.reasons)} — touches "
                        f"{counted.records} record(s). Add a `migrations` entry for form "
                        f"'{form.diff.form}' with `set` (a JsonLogic expression computing the new "
                        "value from the old record) or `rename`.",
                    }
                )


# -- applying ---------------------------------------------------------------------------


@dataclass
class MigrationResult:
    migrated: dict[str, int] = field(default_factory=dict)
    removed_forms: dict[str, int] = field(default_factory=dict)


def _transform(
    data: dict[str, Any],
    *,
    renames: Mapping[str, str],
    sets: Mapping[str, Any],
    defaults: Mapping[str, Any],
    keep: set[str],
    now: datetime,
) -> dict[str, Any]:
    moved = dict(data)
    for old_key, new_key in renames.items():
        if old_key in moved:
            moved[new_key] = moved.pop(old_key)
    context = {**data, **moved}
    for key, expression in sets.items():
        value = evaluate(expression, context, now=now)
        if value is None:
            moved.pop(key, None)
        else:
            moved[key] = value
    for key, default in defaults.items():
        if moved.get(key) in (None, "", []):
            moved[key] = default
    return {key: value for key, value in moved.items() if key in keep}


async def migrate_form(
    session: AsyncSession,
    app: str,
    diff: FormDiff,
    new_form: FormSpec,
    migration: MigrationSpec | None,
    *,
    form_version: int,
    actor: str,
    now: datetime,
) -> int:
    """Re-prepare every live record of a changed form under its new definition."""
    renames = {c.renamed_from: c.field for c in diff.fields if c.renamed_from is not None}
    needs = {c.field for c in diff.fields if c.change_class == "needs_migration"}
    sets = {k: v for k, v in (migration.set if migration else {}).items() if k in needs}
    defaults = {}
    for change in diff.fields:
        if change.fills_default:
            spec = next(f for f in new_form.fields if f.key == change.field)
            defaults[change.field] = getattr(spec, "default", None)
    keep = {f.key for f in new_form.value_fields()}
    invalid: list[dict[str, Any]] = []
    invalid_count = 0
    migrated = 0
    last_id = ""
    table = Record.__table__
    history = RecordHistory.__table__
    while True:
        rows = (
            await session.execute(
                select(Record.id, Record.data, Record.version)
                .where(*live(app, diff.form), Record.id > last_id)
                .order_by(Record.id)
                .limit(BATCH)
            )
        ).all()
        if not rows:
            break
        last_id = rows[-1][0]
        updates: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        for record_id, data, version in rows:
            try:
                moved = _transform(
                    data, renames=renames, sets=sets, defaults=defaults, keep=keep, now=now
                )
                clean = prepare(new_form, {}, existing=moved, now=now, allow_read_only=True)
            except RecordInvalid as exc:
                invalid_count += 1
                if len(invalid) < EXAMPLES:
                    invalid.append({"id": record_id, "errors": [e.to_dict() for e in exc.errors]})
                continue
            except LogicError as exc:
                invalid_count += 1
                if len(invalid) < EXAMPLES:
                    invalid.append(
                        {
                            "id": record_id,
                            "errors": [
                                {
                                    "code": "migration_failed",
                                    "message": f"a `set` expression failed: {exc}",
                                }
                            ],
                        }
                    )
                continue
            if clean == data:
                continue
            changed = changed_fields(data, clean)
            updates.append({"b_id": record_id, "b_data": clean, "b_version": version + 1})
            entries.append(
                {
                    "record_id": record_id,
                    "app": app,
                    "form": diff.form,
                    "version": version + 1,
                    "form_version": form_version,
                    "operation": "migrate",
                    "data": clean,
                    "changed": changed,
                    "actor": actor,
                    "at": now,
                }
            )
        if updates and not invalid_count:
            await session.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values(
                    data=bindparam("b_data"),
                    version=bindparam("b_version"),
                    form_version=form_version,
                    updated_at=now,
                    updated_by=actor,
                )
                .execution_options(synchronize_session=False),
                updates,
            )
            await session.execute(history.insert(), entries)
            migrated += len(updates)
    if invalid_count:
        raise Unprocessable(
            f"The new definition of form '{diff.form}' would leave {invalid_count} existing "
            "record(s) invalid; nothing was changed. Add or fix a `migrations` entry for the "
            "form, or change the definition.",
            errors=[
                {
                    "path": f"/forms/{diff.form}",
                    "code": "records_invalid",
                    "message": f"{invalid_count} record(s) would be invalid",
                }
            ],
            invalid_records=invalid_count,
            examples=invalid,
        )
    return migrated


def set_based_renames(diff: FormDiff, counted: list[CountedChange]) -> dict[str, str] | None:
    """The renames of a diff that can be carried out by one SQL statement, or None.

    That is the case when every change either moves values unchanged (a rename whose
    definition is otherwise identical) or touches no stored value (cosmetic changes, new
    optional fields, removed fields no record has): every record then stays valid and its
    computed values stay what they were, so no record needs the form engine.
    """
    renames: dict[str, str] = {}
    for item in counted:
        change = item.change
        pure_rename = change.renamed_from is not None and change.reasons == (
            f"renamed {change.renamed_from} -> {change.field}",
        )
        if pure_rename:
            assert change.renamed_from is not None
            renames[change.renamed_from] = change.field
        else:
            untouched = change.change_class == "safe" and not (
                change.recompute or change.fills_default
            )
            unused_removal = change.kind == "removed" and item.records == 0
            if not (untouched or unused_removal):
                return None
    return renames or None


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
    changed, in one statement. Keys are validated identifiers (written into the SQL)."""
    olds = ", ".join(f"'{o}'" for o in renames)
    removed = "".join(f" - '{o}'" for o in renames)
    built = ", ".join(f"'{n}', data -> '{o}'" for o, n in renames.items())
    pairs = ", ".join(f"('{o}', '{n}')" for o, n in renames.items())
    statement = text(
        f"""
        WITH moved AS (
            UPDATE records
            SET data = (data{removed}) || jsonb_strip_nulls(jsonb_build_object({built})),
                version = version + 1, form_version = :form_version,
                updated_at = :now, updated_by = :actor
            WHERE app = '{app}' AND form = '{form}' AND deleted_at IS NULL
              AND data ?| array[{olds}]
            RETURNING id, data, version
        )
        INSERT INTO record_history
            (record_id, app, form, version, form_version, operation, data, changed, actor, at)
        SELECT moved.id, '{app}', '{form}', moved.version, :form_version, 'migrate',
               moved.data,
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
    renamed = int(result.rowcount)  # type: ignore[attr-defined]
    claims = RecordUnique.__table__
    for old_key, new_key in renames.items():
        await session.execute(
            claims.update()
            .where(claims.c.app == app, claims.c.form == form, claims.c.field == old_key)
            .values(field=new_key)
        )
    return renamed


async def rebuild_claims(session: AsyncSession, app: str, form: FormSpec) -> None:
    """Recreate a form's unique claims from its records; refuse if values clash."""
    from formloom.platform.records.service import claim_value

    table = RecordUnique.__table__
    await session.execute(table.delete().where(table.c.app == app, table.c.form == form.key))
    keys = unique_fields(form)
    if not keys:
        return
    seen: dict[tuple[str, str], str] = {}
    clashes: list[dict[str, Any]] = []
    last_id = ""
    while True:
        rows = (
            await session.execute(
                select(Record.id, Record.data)
                .where(*live(app, form.key), Record.id > last_id)
                .order_by(Record.id)
                .limit(BATCH)
            )
        ).all()
        if not rows:
            break
        last_id = rows[-1][0]
        claims = []
        for record_id, data in rows:
            for key in keys:
                if data.get(key) in (None, "", []):
                    continue
                value = claim_value(data[key])
                holder = seen.get((key, value))
                if holder is not None:
                    if len(clashes) < EXAMPLES:
                        clashes.append({"field": key, "records": [holder, record_id]})
                    continue
                seen[(key, value)] = record_id
                claims.append(
                    {
                        "app": app,
                        "form": form.key,
                        "field": key,
                        "value": value,
                        "record_id": record_id,
                    }
                )
        if claims and not clashes:
            await session.execute(table.insert(), claims)
    if clashes:
        raise Conflict(
            f"Form '{form.key}' would have duplicate values in unique field(s); nothing was "
            "changed. Make the values unique first (or migrate them).",
            examples=clashes,
        )


async def remove_form_records(
    session: AsyncSession, app: str, form: str, *, actor: str, now: datetime
) -> int:
    """Soft-delete the records of a removed form; each keeps its history."""
    rows = (
        await session.execute(
            select(Record.id, Record.data, Record.version).where(*live(app, form))
        )
    ).all()
    if not rows:
        return 0
    table = Record.__table__
    await session.execute(
        update(table)
        .where(table.c.app == app, table.c.form == form, table.c.deleted_at.is_(None))
        .values(deleted_at=now, version=table.c.version + 1, updated_at=now, updated_by=actor)
    )
    await session.execute(
        RecordHistory.__table__.insert(),
        [
            {
                "record_id": rid,
                "app": app,
                "form": form,
                "version": version + 1,
                "form_version": 0,
                "operation": "delete",
                "data": data,
                "changed": [],
                "actor": actor,
                "at": now,
            }
            for rid, data, version in rows
        ],
    )
    await session.execute(
        RecordUnique.__table__.delete().where(RecordUnique.app == app, RecordUnique.form == form)
    )
    return len(rows)


# -- set-based migrations (PostgreSQL) ----------------------------------------------------

Strategy = Literal["renames in SQL", "set-based SQL", "batches"]

#: The new value's kind (see ``engines.logic.sql_values``) each checkable field type needs.
_KIND_OF_FIELD: dict[type[BaseField], str] = {
    TextField: "text",
    TextareaField: "text",
    SelectField: "text",
    NumberField: "number",
    IntegerField: "number",
    BooleanField: "boolean",
}


@dataclass(frozen=True)
class SetBasedMigration:
    """A change PostgreSQL carries out in one statement: values moved by ``renames``
    (every rename of the diff, old key -> new key) and computed by ``sets`` (field -> the
    JsonLogic expression), each set value checked against ``targets`` (its new field)."""

    renames: dict[str, str]
    sets: dict[str, Any]
    targets: dict[str, BaseField]

    @property
    def unique(self) -> bool:
        return any(getattr(target, "unique", False) for target in self.targets.values())


def _rules_of(form: FormSpec) -> list[Any]:
    """Every formula and visibility rule of a form, table columns included."""
    rules: list[Any] = []
    for item in form.fields:
        columns: list[Any] = [item]
        if isinstance(item, TableField):
            columns += list(item.fields)
        for column in columns:
            if column.visible_if is not None:
                rules.append(column.visible_if)
            if isinstance(column, ComputedField):
                rules.append(column.formula)
    return rules


def _reads_clock(rule: Any) -> bool:
    """Whether a rule uses ``now``/``today``: its value changes whenever it is re-run."""
    if isinstance(rule, list):
        return any(_reads_clock(item) for item in rule)
    if isinstance(rule, dict):
        return any(op in ("now", "today") or _reads_clock(args) for op, args in rule.items())
    return False


def _form_reads_clock(form: FormSpec) -> bool:
    """The batches re-run every formula and visibility rule of every record: one that reads
    the clock can give a new answer for any record, so only the batches do it right."""
    return any(_reads_clock(rule) for rule in _rules_of(form))


def set_based_migration(
    diff: FormDiff,
    counted: list[CountedChange],
    old_form: FormSpec,
    new_form: FormSpec,
    migration: MigrationSpec | None,
) -> SetBasedMigration | str:
    """The set-based form of a change with `set` expressions, or why it needs batches.

    Every change must either be computed by a `set` into a field whose new definition SQL
    can check, move values unchanged (a pure rename), or touch no stored value; no formula or
    visibility rule may read a field that is set or the clock (the batches re-run them all,
    so their results could change), and a set field must always be visible (a hidden
    field's value is dropped). The expressions are compiled when the migration runs.
    """
    needs = {c.field for c in diff.fields if c.change_class == "needs_migration"}
    sets = {k: v for k, v in (migration.set if migration else {}).items() if k in needs}
    if not sets:
        return "no `set` expression applies"
    for item in counted:
        change = item.change
        if change.field in sets:
            continue
        pure_rename = change.renamed_from is not None and change.reasons == (
            f"renamed {change.renamed_from} -> {change.field}",
        )
        untouched = change.change_class == "safe" and not (change.recompute or change.fills_default)
        unused_removal = change.kind == "removed" and item.records == 0
        if not (pure_rename or untouched or unused_removal):
            return f"{change.field}: {'; '.join(change.reasons)}"
    targets: dict[str, BaseField] = {}
    hidden_section = False
    for item in new_form.fields:
        if isinstance(item, SectionField):
            hidden_section = hidden_section or item.visible_if is not None
        if item.key not in sets:
            continue
        if type(item) not in _KIND_OF_FIELD or getattr(item, "pattern", None) is not None:
            return f"{item.key}: a {item.field_type} field is validated by the form engine"
        if item.visible_if is not None or hidden_section:
            return f"{item.key}: the field can be hidden"
        targets[item.key] = item
    if _form_reads_clock(new_form):
        return "a formula or visibility rule reads the clock"
    if sets.keys() - targets.keys():
        return "a `set` names a field the form does not have"
    for rule in _rules_of(new_form):
        read = {path.split(".")[0] for path in variables(rule)}
        if "*" in read or read & sets.keys():
            return "a formula or visibility rule reads a field that is set"

    for key, target in targets.items():
        before = old_form.field(key)
        if before is not None and before.has_value:
            kinds = {FIELD_TYPES.get(before.field_type), _KIND_OF_FIELD[type(target)]}
            if kinds == {"number", "boolean"}:  # Python's True == 1 would hide the change
                return f"{key}: a change between boolean and number"
    renames = {c.renamed_from: c.field for c in diff.fields if c.renamed_from is not None}
    return SetBasedMigration(renames, sets, targets)


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
    migration: SetBasedMigration,
    *,
    form_version: int,
    actor: str,
    now: datetime,
) -> Select[Any] | str:
    """The one statement of a set-based migration (PostgreSQL), or why there is none.

    It computes every live record's new data, checks every record (each set value valid
    for its field, and exactly what the evaluator would compute), and — only if all pass —
    updates the records whose data changes and writes their history rows. It returns one
    row: ``invalid`` (records failing a check; nothing was written if any) and ``migrated``.
    """
    records = Record.__table__
    history = RecordHistory.__table__
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
        wanted = _KIND_OF_FIELD[type(migration.targets[key])]
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
        .returning(records.c.id, records.c.version, records.c.data, source.c.changed)
        .cte("moved")
    )
    written = (
        history.insert()
        .from_select(
            list(HISTORY_COLUMNS),
            select(
                moved_rows.c.id,
                literal(app, Text()),
                literal(form, Text()),
                moved_rows.c.version,
                literal(form_version),
                literal("migrate", Text()),
                moved_rows.c.data,
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


async def migrate_in_sql(
    session: AsyncSession,
    app: str,
    form: str,
    old_form: FormSpec,
    migration: SetBasedMigration,
    *,
    form_version: int,
    actor: str,
    now: datetime,
) -> int | None:
    """PostgreSQL: carry out a set-based migration in one statement, or return None (the
    caller then runs the batches) when an expression does not compile, when SQL cannot vouch
    for a record's value, or when a record would be invalid — in which case nothing was
    written. Returns the number of records changed."""
    setting = await session.scalar(text("SELECT current_setting('extra_float_digits')::int"))
    if setting is None or setting < 1:  # to_jsonb must print shortest round-trip digits
        log.info("%s.%s: extra_float_digits < 1, migrating in batches", app, form)
        return None
    statement = set_based_statement(
        app, form, old_form, migration, form_version=form_version, actor=actor, now=now
    )
    if isinstance(statement, str):
        log.info("%s.%s: %s, migrating in batches", app, form, statement)
        return None
    try:
        async with session.begin_nested():
            row = (await session.execute(statement)).one()
    except DBAPIError as exc:  # e.g. a double precision overflow: the evaluator decides
        log.info("%s.%s: set-based SQL failed (%s), migrating in batches", app, form, exc.orig)
        return None
    if row.invalid:
        log.info(
            "%s.%s: %d record(s) need the form engine, migrating in batches",
            app,
            form,
            row.invalid,
        )
        return None
    migrated = int(row.migrated)
    if migration.unique:
        return migrated  # the caller rebuilds the claims
    claims = RecordUnique.__table__
    for old_key, new_key in migration.renames.items():
        await session.execute(
            claims.update()
            .where(claims.c.app == app, claims.c.form == form, claims.c.field == old_key)
            .values(field=new_key)
        )
    return migrated


async def apply_form_change(
    session: AsyncSession,
    app: str,
    form_plan: FormPlan,
    old_form: FormSpec,
    new_form: FormSpec,
    migration: MigrationSpec | None,
    *,
    form_version: int,
    actor: str,
    now: datetime,
) -> tuple[Strategy, int]:
    """Carry out a changed form's plan on its records, in the caller's transaction: set-based
    on PostgreSQL where that gives the same result, else in batches through the form engine.
    Returns the strategy used and the number of records changed."""
    diff = form_plan.diff
    strategy: Strategy = "batches"
    migrated: int | None = None
    if session.bind.dialect.name == "postgresql":
        renames = set_based_renames(diff, form_plan.changes)
        if renames and not _form_reads_clock(new_form):
            # values only move between keys: one statement, no record needs the engine
            strategy = "renames in SQL"
            migrated = await rename_in_sql(
                session, app, diff.form, renames, form_version=form_version, actor=actor, now=now
            )
        else:
            chosen = set_based_migration(diff, form_plan.changes, old_form, new_form, migration)
            if isinstance(chosen, str):
                log.info("%s.%s: migrating in batches: %s", app, diff.form, chosen)
            else:
                migrated = await migrate_in_sql(
                    session,
                    app,
                    diff.form,
                    old_form,
                    chosen,
                    form_version=form_version,
                    actor=actor,
                    now=now,
                )
                if migrated is not None:
                    strategy = "set-based SQL"
                    if chosen.unique:
                        await rebuild_claims(session, app, new_form)
    if migrated is None:
        strategy = "batches"
        migrated = await migrate_form(
            session,
            app,
            diff,
            new_form,
            migration,
            form_version=form_version,
            actor=actor,
            now=now,
        )
        await rebuild_claims(session, app, new_form)
    log.info(
        "%s.%s: %d record(s) migrated (%s)",
        app,
        diff.form,
        migrated,
        strategy,
        extra={"strategy": strategy, "form": diff.form, "migrated": migrated},
    )
    return strategy, migrated
