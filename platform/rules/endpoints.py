"""Rules over HTTP: the dry run (one rule against a given record: its plan, nothing done),
the rule log, the outbox with its dead letters (retried by hand), timers, tasks and the
caller's in-app notifications.

Reading what rules did (log, outbox, timers) is for platform admins, as testing rules is
(the log and the test also for the app's designers, docs/permissions.md);
notifications for their reader. Tasks (the rules' and the flows') are in the inbox,
``GET /api/tasks`` (platform/flows/endpoints.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, select, update

from formloom.engines.logic.dates import format_datetime
from formloom.engines.rules import DateTrigger, Event, RecordTrigger, RuleRun, RuleSpec
from formloom.platform import jsonsafe
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import Platform, PlatformDep
from formloom.platform.errors import BadRequest, Conflict, NotFound, Unprocessable
from formloom.platform.models.automation import (
    Notification,
    OutboxMessage,
    RuleRunLog,
    Timer,
)
from formloom.platform.permissions import guard
from formloom.platform.records.access import sight_for
from formloom.platform.records.cursor import decode, encode
from formloom.platform.rules import automation, related, zones

router = APIRouter(prefix="/api/rules", tags=["rules"])
automation_router = APIRouter(prefix="/api", tags=["rules"])
Limit = Annotated[int, Query(ge=1, le=500, description="Rows per page.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]


class RuleTest(BaseModel):
    """An event to evaluate a rule against."""

    model_config = ConfigDict(extra="forbid")

    record: dict[str, Any] = Field(description="The record's data as after the write.")
    old: dict[str, Any] | None = Field(
        default=None, description="The record's data before an update (or a delete)."
    )
    event: Literal["created", "updated", "deleted", "schedule", "date"] | None = Field(
        default=None,
        description="The event; by default the rule's own record event (or its trigger kind).",
    )
    record_id: str | None = Field(default=None, description="Id used in idempotency keys.")
    user: dict[str, Any] | None = Field(
        default=None, description="The acting user's context; by default the caller's."
    )


def _default_event(rule: Any) -> str:
    trigger = rule.on
    return getattr(trigger, "event", None) or ("date" if hasattr(trigger, "field") else "schedule")


def _not_triggered(rule: RuleSpec, kind: str) -> str | None:
    """Why the rule would not run at all on an event of ``kind`` (its trigger listens for
    another one), or ``None``: the dry run must not say a rule matches that never runs."""
    trigger = rule.on
    if isinstance(trigger, RecordTrigger):
        if kind != trigger.event:
            return f"the rule runs when a {trigger.form} record is {trigger.event}, not {kind}"
        return None
    wanted = "date" if isinstance(trigger, DateTrigger) else "schedule"
    if kind != wanted:
        return f"the rule runs on its {wanted} trigger, not when a record is {kind}"
    return None


@router.post("/{app}/{rule}/test")
async def test_rule(
    app: str,
    rule: str,
    p: PlatformDep,
    who: PrincipalDep,
    body: Annotated[RuleTest, Body()],
) -> dict[str, Any]:
    """Evaluate one rule against the given record; nothing is written, sent or scheduled.
    For app designers: platform admins (or a token scoped to the app) and the roles the
    app grants `design`.

    The related records the rule reads (``record.<relation>.<field>``) are loaded as a run would
    load them, through the caller's grants: the answer's ``related`` holds them and
    ``related_hidden`` the paths left out as hidden from the caller. An event the rule's
    trigger does not listen for is not matched, with the reason."""
    guard.require_designer(who, app, "test rules")
    found = jsonsafe.problems(body.model_dump(mode="json"))
    if found:
        raise Unprocessable(
            "The test event holds values that cannot be used.",
            errors=[{"path": p_, "code": "invalid_value", "message": m} for p_, m in found],
        )
    now = p.clock.now()
    async with p.db.transaction(write=False) as session:
        installed = await p.catalog.get(session, app)
        guard.require_design(who, app, installed.spec.design, "test rules")
        spec = next((r for r in installed.spec.rules if r.key == rule), None)
        if spec is None:
            raise NotFound(f"App '{app}' has no rule '{rule[:80]}'.")
        # the related records the rule reads, as a run would load them, as the caller sees them
        hops = related.hops_for(installed.rules, installed.spec, (spec,))
        sight = sight_for(who, installed, now, p.db.dialect)
        loaded = await related.load_related(session, app, installed.spec, hops, body.record, sight)
        # the record's zone (its branch's), as a run would use it
        zone = await zones.record_zone(
            session, installed, spec.on.form, body.record, p.settings.timezone
        )
    kind = body.event or _default_event(spec)
    event = Event(
        app=app,
        form=spec.on.form,
        kind=kind,  # type: ignore[arg-type]
        record=body.record,
        now=now,
        record_id=body.record_id,
        old=body.old,
        user=body.user if body.user is not None else who.context(app),
        zone=zone,
        occurrence="test",
        related=loaded,
    )
    withheld = sorted(
        f"{hop.path.replace('/', '.')}.{name}"
        for hop in hops
        for name in hop.fields & sight(hop.form).hidden
    )
    reason = _not_triggered(spec, kind)
    if reason is not None:
        runs = (RuleRun(spec.key, False, reason=reason),)
        plan = automation.MeasuredPlan(event, runs, dict(body.record), frozenset(), (0.0,))
    else:
        plan = automation.measured_plan(event, (spec,))  # with each rule's duration
    return {
        "rule": rule,
        "dry_run": True,
        **plan.to_dict(),
        "related": loaded,
        "related_hidden": withheld,
    }


# -- what rules did --------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return format_datetime(moment) if moment is not None else None


def _row(row: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in columns}
    return {name: _iso(v) if isinstance(v, datetime) else v for name, v in values.items()}


async def _page(
    p: Platform, statement: Select[Any], model: Any, limit: int, cursor: str | None, kind: str
) -> tuple[list[Any], str | None]:
    """Newest first, keyset-paginated on the time-ordered id."""
    secret = p.settings.cursor_secret.get_secret_value()
    if cursor is not None:
        (last,) = decode(cursor, kind, 1, secret=secret)
        statement = statement.where(model.id < last)
    statement = statement.order_by(model.id.desc()).limit(limit + 1)
    async with p.db.transaction(write=False) as session:
        rows = list((await session.execute(statement)).scalars())
    following = encode(kind, [rows[limit - 1].id], secret=secret) if len(rows) > limit else None
    return rows[:limit], following


@router.get("/{app}/log")
async def rule_log(
    app: str,
    p: PlatformDep,
    who: PrincipalDep,
    rule: Annotated[str | None, Query(description="Only this rule.")] = None,
    record_id: Annotated[str | None, Query(description="Only runs for this record.")] = None,
    matched: Annotated[bool | None, Query(description="Only matched (or unmatched) runs.")] = None,
    errors: Annotated[bool, Query(description="Only runs that failed.")] = False,
    limit: Annotated[int, Query(ge=1, le=500, description="Events per page.")] = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The rule log, newest first: one item per rule run (rule, record, event, matched or
    why not, planned actions, error with its pointer into the rule, duration). A page holds
    the runs of up to ``limit`` events."""
    if not (who.is_admin and who.may_use_app(app)):  # the app's designers too
        guard.require_designer(who, app, "read the rule log")
        async with p.db.transaction(write=False) as session:
            design = (await p.catalog.get(session, app)).spec.design
        guard.require_design(who, app, design, "read the rule log")
    statement = select(RuleRunLog).where(RuleRunLog.app == app)
    if rule is not None:
        statement = statement.where(RuleRunLog.rules.contains(f",{rule},", autoescape=True))
    if record_id is not None:
        statement = statement.where(RuleRunLog.record_id == record_id)
    if matched is True and rule is not None:
        statement = statement.where(RuleRunLog.matched.contains(f",{rule},", autoescape=True))
    elif matched is True:
        statement = statement.where(RuleRunLog.matched != ",,")
    if errors:
        statement = statement.where(RuleRunLog.failed.is_(True))
    rows, following = await _page(p, statement, RuleRunLog, limit, cursor, "rule_log")
    items = []
    for row in rows:
        for number, logged in enumerate(row.runs):
            run = (
                {"rule": logged[0], "matched": False, "reason": "condition is false",
                 "error": None, "error_pointer": None, "duration_ms": logged[1], "actions": []}
                if isinstance(logged, list)
                else logged
            )  # fmt: skip
            if rule is not None and run["rule"] != rule:
                continue
            if matched is not None and run["matched"] is not matched:
                continue
            if errors and run["error"] is None:
                continue
            items.append(
                {
                    "id": f"{row.id}.{number}",
                    **run,
                    "form": row.form,
                    "record_id": row.record_id,
                    "event": row.event,
                    "depth": row.depth,
                    "at": _iso(row.at),
                }
            )
    return {"items": items, "next_cursor": following}


OUTBOX_COLUMNS = ("id", "app", "rule", "kind", "channel", "idempotency_key", "status",
                  "attempts", "next_attempt_at", "last_error", "created_at", "delivered_at",
                  "payload")  # fmt: skip


@automation_router.get("/outbox")
async def list_outbox(
    p: PlatformDep,
    who: PrincipalDep,
    app: Annotated[str | None, Query(description="Only this app.")] = None,
    status: Annotated[
        Literal["pending", "done", "dead"] | None, Query(description="`dead`: dead letters.")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Outbound messages (notifications, webhooks), newest first, with their delivery
    state: attempts, the next attempt, the last error. Dead letters are ``status=dead``."""
    guard.require_admin(who, app, "read the outbox")
    statement = select(OutboxMessage)
    if app is not None:
        statement = statement.where(OutboxMessage.app == app)
    elif who.app_scope is not None:
        statement = statement.where(OutboxMessage.app == who.app_scope)
    if status is not None:
        statement = statement.where(OutboxMessage.status == status)
    rows, following = await _page(p, statement, OutboxMessage, limit, cursor, "outbox")
    return {"items": [_row(r, OUTBOX_COLUMNS) for r in rows], "next_cursor": following}


@automation_router.post("/outbox/{message_id}/retry")
async def retry_message(message_id: str, p: PlatformDep, who: PrincipalDep) -> dict[str, Any]:
    """Send a dead letter again: it is pending at once, with a fresh round of attempts."""
    guard.require_admin(who, None, "retry messages")
    async with p.db.transaction() as session:
        row = await session.get(OutboxMessage, message_id[:32])
        if row is None or not who.may_use_app(row.app):
            raise NotFound(f"No outbox message '{message_id[:40]}'.")
        if row.status != "dead":
            raise Conflict(f"Only dead letters are retried by hand; this one is {row.status}.")
        row.status, row.attempts, row.next_attempt_at = "pending", 0, p.clock.now()
        row.lease_until = None
        await session.flush()
        return _row(row, OUTBOX_COLUMNS)


TIMER_COLUMNS = ("id", "key", "kind", "app", "rule", "form", "record_id", "due_at", "status",
                 "attempts", "last_error", "created_at", "fired_at", "payload")  # fmt: skip


@automation_router.get("/timers")
async def list_timers(
    p: PlatformDep,
    who: PrincipalDep,
    app: Annotated[str | None, Query(description="Only this app.")] = None,
    status: Annotated[
        Literal["pending", "fired", "dead", "cancelled"] | None, Query(description="State.")
    ] = None,
    record_id: Annotated[str | None, Query(description="Only this record's timers.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Durable timers: delayed actions, date-relative rules per record, schedules' next runs."""
    guard.require_admin(who, app, "read timers")
    statement = select(Timer)
    if app is not None:
        statement = statement.where(Timer.app == app)
    if status is not None:
        statement = statement.where(Timer.status == status)
    if record_id is not None:
        statement = statement.where(Timer.record_id == record_id)
    rows, following = await _page(p, statement, Timer, limit, cursor, "timers")
    return {"items": [_row(r, TIMER_COLUMNS) for r in rows], "next_cursor": following}


NOTE_COLUMNS = ("id", "app", "rule", "subject", "body", "form", "record_id", "created_at",
                "read_at")  # fmt: skip


@automation_router.get("/notifications")
async def my_notifications(
    p: PlatformDep,
    who: PrincipalDep,
    unread: Annotated[bool, Query(description="Only unread ones.")] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The caller's in-app inbox, newest first."""
    guard.require_app(who, None)
    if who.user_id is None:
        raise BadRequest("Only users have an inbox.")
    statement = select(Notification).where(Notification.user_id == who.user_id)
    if who.app_scope is not None:
        statement = statement.where(Notification.app == who.app_scope)
    if unread:
        statement = statement.where(Notification.read_at.is_(None))
    rows, following = await _page(p, statement, Notification, limit, cursor, "notes")
    return {"items": [_row(r, NOTE_COLUMNS) for r in rows], "next_cursor": following}


@automation_router.post("/notifications/{note_id}/read", status_code=204)
async def mark_read(note_id: str, p: PlatformDep, who: PrincipalDep) -> None:
    guard.require_app(who, None)
    async with p.db.transaction() as session:
        done = await session.execute(
            update(Notification)
            .where(
                Notification.id == note_id[:32],
                Notification.user_id == (who.user_id or ""),
                Notification.read_at.is_(None),
            )
            .values(read_at=p.clock.now())
        )
        if done.rowcount == 0:  # type: ignore[attr-defined]
            found = await session.get(Notification, note_id[:32])
            if found is None or found.user_id != who.user_id:
                raise NotFound(f"No notification '{note_id[:40]}'.")


@automation_router.post("/notifications/read-all")
async def mark_all_read(p: PlatformDep, who: PrincipalDep) -> dict[str, int]:
    """Mark every unread notification of the caller read (within a token's app scope);
    answers how many were marked."""
    guard.require_app(who, None)
    if who.user_id is None:
        raise BadRequest("Only users have an inbox.")
    statement = update(Notification).where(
        Notification.user_id == who.user_id, Notification.read_at.is_(None)
    )
    if who.app_scope is not None:
        statement = statement.where(Notification.app == who.app_scope)
    async with p.db.transaction() as session:
        done = await session.execute(statement.values(read_at=p.clock.now()))
    return {"marked": int(done.rowcount or 0)}  # type: ignore[attr-defined]
