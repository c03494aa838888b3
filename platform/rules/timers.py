"""Keeping the timers of schedule and date-relative rules in step with app definitions.

On every import (and rollback, and designer save) of an app:

* a schedule rule that is new, enabled again or whose trigger changed gets its next run
  armed (one ``schedule`` timer per rule); an unchanged one keeps its timer;
* a date-relative rule that is new, enabled again or whose trigger changed gets one
  ``date`` timer per live record of its form (in batches). Moments already past are not
  armed here: adding a "3 days after discharge" rule must not message every patient ever
  discharged; yearly rules arm their next anniversary;
* timers of rules that were removed, disabled or changed are dropped (pending ones only;
  the history of fired ones stays).

Schedule rules run on the deployment's clock; a date timer's moment is on its record's
(platform/rules/zones.py, one query per batch of records). An import that adds or changes
the app's ``zone`` declaration re-arms every date rule, as its moments may move.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.rules import (
    DateTrigger,
    InvalidTiming,
    RuleSpec,
    ScheduleTrigger,
    date_due,
    next_schedule_run,
)
from formloom.platform.models import Record
from formloom.platform.models.automation import Timer
from formloom.platform.records.ids import new_id
from formloom.platform.rules import zones
from formloom.platform.rules.automation import RuleApp, date_timer_values, zone_of

BATCH = 1_000


def schedule_timer_key(app: str, rule: str) -> str:
    return f"schedule:{app}:{rule}"


def _armed(rule: RuleSpec) -> tuple[bool, Any]:
    return rule.enabled, rule.on.model_dump(mode="json")


def schedule_timer_values(app: str, rule: RuleSpec, due: datetime, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "key": schedule_timer_key(app, rule.key),
        "kind": "schedule",
        "app": app,
        "rule": rule.key,
        "form": rule.on.form,
        "record_id": None,
        "due_at": due,
        "payload": {},
        "status": "pending",
        "attempts": 0,
        "last_error": None,
        "created_at": now,
        "fired_at": None,
    }


async def sync(
    session: AsyncSession,
    previous: RuleApp | None,
    installed: RuleApp,
    now: datetime,
) -> None:
    before = {rule.key: rule for rule in previous.spec.rules} if previous else {}
    after = {rule.key: rule for rule in installed.spec.rules}
    timed = (ScheduleTrigger, DateTrigger)
    rezoned = previous is not None and _zone(previous) != _zone(installed)
    stale: list[str] = []
    fresh: list[RuleSpec] = []
    for key, rule in before.items():
        if not isinstance(rule.on, timed):
            continue
        new = after.get(key)
        if new is None or _armed(new) != _armed(rule) or (rezoned and _dated(rule)):
            stale.append(key)
    for key, rule in after.items():
        if not isinstance(rule.on, timed) or not rule.enabled:
            continue
        old = before.get(key)
        if old is None or _armed(old) != _armed(rule) or (rezoned and _dated(rule)):
            fresh.append(rule)
    if stale or fresh:
        await session.execute(
            delete(Timer).where(
                Timer.app == installed.key,
                Timer.rule.in_(stale + [rule.key for rule in fresh]),
                Timer.kind.in_(("schedule", "date")),
                Timer.status == "pending",
            )
        )
    zone = ZoneInfo(zone_of(now))
    for rule in fresh:
        if isinstance(rule.on, ScheduleTrigger):
            due = next_schedule_run(rule, now, zone)
            if due is not None:
                await session.execute(
                    insert(Timer), [schedule_timer_values(installed.key, rule, due, now)]
                )
        else:
            await _arm_dates(session, installed, rule, now)


def _zone(installed: RuleApp) -> Any:
    zone = getattr(installed.spec, "zone", None)
    return zone.model_dump(mode="json") if zone is not None else None


def _dated(rule: RuleSpec) -> bool:
    return isinstance(rule.on, DateTrigger)


async def rearm_dates(session: AsyncSession, installed: RuleApp, now: datetime) -> None:
    """Re-arm every date-relative rule of the app from its records as of ``now``, as an
    import would (records written with back-dated clocks — the demo's sample data — would
    otherwise leave timers already due for moments long past)."""
    rules = [r for r in installed.spec.rules if r.enabled and isinstance(r.on, DateTrigger)]
    if not rules:
        return
    await session.flush()  # timers armed by this unit's writes and not yet flushed go too
    await session.execute(
        delete(Timer).where(
            Timer.app == installed.key, Timer.kind == "date", Timer.status == "pending"
        )
    )
    for rule in rules:
        await _arm_dates(session, installed, rule, now)


async def _arm_dates(
    session: AsyncSession, installed: RuleApp, rule: RuleSpec, now: datetime
) -> None:
    """One timer per live record of the rule's form whose moment (on the record's clock)
    is still to come, a batch of records at a time."""
    app = installed.key
    home = zone_of(now)
    form = rule.on.form
    last = ""
    while True:
        rows = (
            await session.execute(
                select(Record.id, Record.data)
                .where(
                    Record.app == app,
                    Record.form == form,
                    Record.deleted_at.is_(None),
                    Record.id > last,
                )
                .order_by(Record.id)
                .limit(BATCH)
            )
        ).all()
        if not rows:
            return
        values = []
        record_zones = await zones.record_zones(
            session, installed, form, [d for _, d in rows], home
        )
        for (record_id, data), zone in zip(rows, record_zones, strict=True):
            try:
                due = date_due(rule, data, now=now, zone=ZoneInfo(zone))
            except InvalidTiming:
                continue
            if due is not None and due > now:
                values.append(date_timer_values(app, rule, form, record_id, due, now))
        if values:
            await session.execute(insert(Timer), values)
        last = rows[-1][0]
