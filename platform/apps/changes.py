"""Changing an installed app: plan the change, then carry it out on the records — the use case.

Who does what:

* the form engine classifies every change (``engines.forms.diff``), turns the diff and the
  counts into a plan with the blocking policy (``engines.forms.plan``), and describes what
  happens to each record — renames, ``set`` expressions, defaults, the keys kept — once, as a
  ``RecordMigration`` (``engines.forms.migrate``), which also decides whether PostgreSQL can
  carry a migration out in one set-based statement with the same result;
* the repository (``platform.apps.repository``) holds the SQL: counting the records each
  change touches (one scan per form, against the *old* definition, never loading records),
  reading and writing records in batches, unique claims, and the set-based statement compiled
  from the same ``RecordMigration``;
* this module runs them in the import's own transaction.

Applying a changed form: on PostgreSQL, when the engine says the set-based statement gives
the batches' result, it runs first; it checks every record and writes nothing if one fails
(or if SQL cannot vouch for a value), and then the batches run, so a refusal (422, count and
examples) is always the one the batches give. The batches re-prepare every record through the
form engine and write each changed one with a history row; if any record would be invalid
the whole import is refused and nothing is written. Unique claims are rebuilt from the result.
See docs/app-changes.md.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.apps import AppSpec
from formloom.engines.forms import FormSpec, RecordInvalid, changed_fields, unique_fields
from formloom.engines.forms.diff import FormDiff, diff_entries, diff_forms
from formloom.engines.forms.migrate import (
    RecordMigration,
    SetBased,
    migrate_record,
    record_migration,
    set_based,
)
from formloom.engines.forms.plan import (
    ENTRY_LISTS,
    FormMigration,
    FormPlan,
    Plan,
    block,
    form_plan,
    migrations_by_form,
)
from formloom.engines.logic import LogicError
from formloom.platform.apps import repository
from formloom.platform.apps.repository import Migrated
from formloom.platform.errors import Conflict, Unprocessable
from formloom.platform.records import projections
from formloom.platform.records.claims import claim_value

log = logging.getLogger("formloom.apps.changes")

EXAMPLES = 5

Strategy = Literal["renames in SQL", "set-based SQL", "batches"]


# -- planning ---------------------------------------------------------------------------


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
    """The plan of importing ``spec`` over the installed ``current``, with the records each
    change touches counted by SQL, and the changes that may not be applied as they stand."""
    if current is None:
        plan = Plan(spec.key, "create", None)
        plan.forms = [FormPlan(FormDiff(f.key, "added"), 0) for f in spec.forms]
        return plan
    if unchanged:
        return Plan(spec.key, "unchanged", current_revision)
    migrations = migrations_by_form(spec.migrations)
    renames = {form: m.rename for form, m in migrations.items()}
    plan = Plan(spec.key, "update", current_revision, migrations=migrations)
    old_forms = {f.key: f for f in current.forms}
    for diff in diff_forms(list(current.forms), list(spec.forms), renames):
        if diff.kind == "added":
            plan.forms.append(FormPlan(diff, 0))
            continue
        total, touched = await repository.count_touches(
            session, spec.key, old_forms[diff.form], diff.fields, now
        )
        plan.forms.append(form_plan(diff, total, touched, migrations.get(diff.form)))
    _entry_changes(plan, current, spec)
    flows = plan.entries.get("flows")
    if flows is not None and (flows.changed or flows.removed):
        plan.running_flows = await repository.running_flows(
            session, spec.key, [*flows.changed, *flows.removed]
        )
    plan.projections = await projections.planned(session, spec)
    block(plan, allow_destructive)
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
    migrations = migrations_by_form(spec.migrations)
    renames = {form: m.rename for form, m in migrations.items()}
    plan = Plan(spec.key, "update", None, migrations=migrations)
    for diff in diff_forms(list(current.forms), list(spec.forms), renames):
        uncounted = [None] * len(diff.fields)
        plan.forms.append(form_plan(diff, None, uncounted, migrations.get(diff.form)))
    _entry_changes(plan, current, spec)
    return plan


# -- applying ---------------------------------------------------------------------------


async def apply_form_change(
    session: AsyncSession,
    app: str,
    plan: FormPlan,
    old_form: FormSpec,
    new_form: FormSpec,
    migration: FormMigration | None,
    *,
    form_version: int,
    actor: str,
    now: datetime,
) -> tuple[Strategy, int]:
    """Carry out a changed form's plan on its records, in the caller's transaction: set-based
    on PostgreSQL where that gives the same result, else in batches through the form engine.
    Returns the strategy used and the number of records changed."""
    form = plan.diff.form
    rules = record_migration(plan.diff, new_form, migration)
    strategy: Strategy = "batches"
    migrated: int | None = None
    if session.get_bind().dialect.name == "postgresql":
        chosen = set_based(rules, plan.changes, old_form, new_form)
        if isinstance(chosen, str):
            log.info("%s.%s: migrating in batches: %s", app, form, chosen)
        else:
            migrated = await migrate_in_sql(
                session,
                app,
                form,
                old_form,
                chosen,
                form_version=form_version,
                actor=actor,
                now=now,
            )
            if migrated is not None:
                strategy = "set-based SQL" if chosen.sets else "renames in SQL"
                if chosen.unique:
                    await rebuild_claims(session, app, new_form)
    if migrated is None:
        strategy = "batches"
        migrated = await migrate_form(
            session, app, new_form, rules, form_version=form_version, actor=actor, now=now
        )
        await rebuild_claims(session, app, new_form)
    log.info(
        "%s.%s: %d record(s) migrated (%s)",
        app,
        form,
        migrated,
        strategy,
        extra={"strategy": strategy, "form": form, "migrated": migrated},
    )
    return strategy, migrated


async def migrate_form(
    session: AsyncSession,
    app: str,
    new_form: FormSpec,
    migration: RecordMigration,
    *,
    form_version: int,
    actor: str,
    now: datetime,
) -> int:
    """The batches: re-prepare every live record of a changed form under its new definition
    (the reference result). Refuses (422, count and examples) if any record would be
    invalid, having written nothing."""
    invalid: list[dict[str, Any]] = []
    invalid_count = 0
    migrated = 0
    async for rows in repository.live_batches(session, app, new_form.key):
        batch: list[Migrated] = []
        for record_id, data, version in rows:
            try:
                clean = migrate_record(new_form, migration, data, now=now)
            except RecordInvalid as exc:
                invalid_count += 1
                if len(invalid) < EXAMPLES:
                    invalid.append({"id": record_id, "errors": [e.to_dict() for e in exc.errors]})
                continue
            except LogicError as exc:
                invalid_count += 1
                if len(invalid) < EXAMPLES:
                    failed = {
                        "code": "migration_failed",
                        "message": f"a `set` expression failed: {exc}",
                    }
                    invalid.append({"id": record_id, "errors": [failed]})
                continue
            if clean != data:
                batch.append(Migrated(record_id, clean, version + 1, changed_fields(data, clean)))
        if not invalid_count:
            await repository.write_migrated(
                session, app, new_form.key, batch, form_version=form_version, actor=actor, now=now
            )
            migrated += len(batch)
    if invalid_count:
        raise Unprocessable(
            f"The new definition of form '{new_form.key}' would leave {invalid_count} existing "
            "record(s) invalid; nothing was changed. Add or fix a `migrations` entry for the "
            "form, or change the definition.",
            errors=[
                {
                    "path": f"/forms/{new_form.key}",
                    "code": "records_invalid",
                    "message": f"{invalid_count} record(s) would be invalid",
                }
            ],
            invalid_records=invalid_count,
            examples=invalid,
        )
    return migrated


async def migrate_in_sql(
    session: AsyncSession,
    app: str,
    form: str,
    old_form: FormSpec,
    migration: SetBased,
    *,
    form_version: int,
    actor: str,
    now: datetime,
) -> int | None:
    """PostgreSQL: carry out a set-based migration in one statement, or return None (the
    caller then runs the batches) when an expression does not compile, when SQL cannot vouch
    for a record's value, or when a record would be invalid — in which case nothing was
    written. Returns the number of records changed."""
    if not migration.sets:  # values only move: nothing to check, nothing can fail
        migrated = await repository.rename_in_sql(
            session, app, form, migration.renames, form_version=form_version, actor=actor, now=now
        )
    else:
        if not await repository.floats_round_trip(session):
            log.info("%s.%s: extra_float_digits < 1, migrating in batches", app, form)
            return None
        statement = repository.set_based_statement(
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
    if not migration.unique:  # else the caller rebuilds the claims
        await repository.rename_claims(session, app, form, migration.renames)
    return migrated


async def rebuild_claims(session: AsyncSession, app: str, form: FormSpec) -> None:
    """Recreate a form's unique claims from its records; refuse (409) if values clash."""
    await repository.delete_claims(session, app, form.key)
    keys = unique_fields(form)
    if not keys:
        return
    seen: dict[tuple[str, str], str] = {}
    clashes: list[dict[str, Any]] = []
    async for rows in repository.live_batches(session, app, form.key):
        claims = []
        for record_id, data, _version in rows:
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
        if not clashes:
            await repository.insert_claims(session, claims)
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
    return await repository.soft_delete_form(session, app, form, actor=actor, now=now)
