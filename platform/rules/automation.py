"""Carrying rule plans out inside a record write (docs/rules.md, "Carrying plans out").

The engine (:mod:`formloom.engines.rules`) turns an event into a plan; this module does what
the plan says, in the write's unit of work:

* ``set`` values were applied by the engine to the working copy; the record service
  validates the result with the form engine before it stores it;
* a ``reject`` refuses the write (422 at the field); one with ``exists`` only if a SQL query
  in the same transaction finds such a record;
* ``create_record`` / ``update_records`` write through a record service acting for the rule
  (:class:`RuleRecords`), whose own rules run one cascade level deeper (bounded, the error
  names the loop);
* ``create_task`` inserts a task;
* ``create_link`` inserts a one-submission public link (acting with the rule's grant, see
  docs/permissions.md) whose URL the same run's later actions read as ``links.<as>``: the
  URL (it holds the secret) is added to their context here, after the plan was made and
  logged, so the rule log and plan dumps never hold it (they show the link id);
* outbound actions (``notify``, ``webhook``) become outbox rows, delayed actions become
  timers — both committed with the write, carried out later by the worker;
* date-relative rules keep one timer per record, moved when its date field changes or
  the record moves to another zone (its zone relation, e.g. ``branch``, changes);
* times are the record's: the event's zone and the texts' zone are the record's zone
  (:mod:`.zones`: its branch's, else the deployment's); texts in a zone other than the
  deployment's name it. Outbox messages and delayed actions keep the zone they were
  planned in (``payload["zone"]``);
* every rule that ran is logged in ``rule_runs``, with how long it took: the engine reads no
  clock, so each rule is timed here, around the engine's step for it (:func:`measured_plan`).

Nothing here sends anything or reads the clock: ``now`` is the record service's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.apps import AppSpec
from formloom.engines.apps.zones import ZoneSource
from formloom.engines.forms import label_text
from formloom.engines.logic import LogicError, evaluate
from formloom.engines.logic.coercion import truthy
from formloom.engines.logic.dates import format_datetime
from formloom.engines.rules import (
    Cascade,
    CascadeError,
    DateTrigger,
    Evaluation,
    Event,
    EventKind,
    InvalidTiming,
    Plan,
    PlanFormatError,
    PlannedAction,
    PlannedCreateLink,
    PlannedCreateRecord,
    PlannedNotify,
    PlannedReject,
    PlannedSet,
    PlannedStartFlow,
    PlannedTask,
    PlannedUpdateRecords,
    PlannedWebhook,
    RuleIndex,
    RuleRun,
    RuleSpec,
    action_from_dict,
    add_duration,
    date_due,
    parse_duration,
    render_template,
)
from formloom.platform.audit.log import audit
from formloom.platform.auth.principal import Principal
from formloom.platform.errors import Unprocessable
from formloom.platform.links import tokens
from formloom.platform.models import Record
from formloom.platform.models.auth import User, UserRole
from formloom.platform.models.automation import OutboxMessage, RuleRunLog, Task, Timer
from formloom.platform.models.flow import TaskCandidate
from formloom.platform.models.public_link import PublicLink
from formloom.platform.records.ids import new_id
from formloom.platform.records.watchers import flow_starter
from formloom.platform.rules import related, zones


class RuleApp(Protocol):
    """An installed app as the rules read it (``apps.service.InstalledApp`` is one; this
    module and ``rules.timers`` lie below the app and record services, so they name what
    they use instead of importing those)."""

    @property
    def key(self) -> str: ...

    @property
    def spec(self) -> AppSpec: ...

    @property
    def rules(self) -> RuleIndex: ...


class RuleRecords(Protocol):
    """The record service of a write, as carrying out its plan uses it
    (``records.service.RecordService`` is one)."""

    session: AsyncSession
    now: datetime
    principal: Principal
    cascade: Cascade

    def for_rule(
        self, rule: str, form: str | None = None, record_id: str | None = None
    ) -> RuleRecords: ...

    async def exists(self, app: str, form: str, filter: Any) -> bool: ...

    async def matching_ids(self, app: str, form: str, filter: Any) -> list[str]: ...

    async def create(self, app: str, form: str, incoming: Any) -> object: ...

    async def update(
        self, app: str, form: str, record_id: str, patch: Any, *, if_match: str | None
    ) -> object: ...


#: Why a rule did not run at all (its trigger's field filter): such runs are not logged.
NOT_RUN = ("none of the watched fields changed", "no watched field changed to the given value")
FALSE = "condition is false"
#: Locale of texts with no reader (tasks, messages to bare addresses): the app's first.
FALLBACK_LOCALE = "en"


class RuleRejected(Unprocessable):
    slug = "rule-rejected"
    title = "Refused by a rule"


class RuleCascadeTooDeep(Unprocessable):
    slug = "rule-cascade"
    title = "Rules triggered each other too deeply"


def zone_of(now: datetime) -> str:
    """The clinic's zone: the platform clock gives ``now`` in it."""
    return zones.home_zone(now)


def app_locale(installed: RuleApp) -> str:
    locales = installed.spec.locales
    return locales[0] if locales else FALLBACK_LOCALE


@dataclass(frozen=True)
class MeasuredPlan(Plan):
    """A plan with the time each of its rules took to evaluate (milliseconds, in run
    order), measured by :func:`measured_plan`: the rule log and the dry run show it."""

    durations_ms: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        timed = zip(self.runs, self.durations_ms, strict=True)
        return {**super().to_dict(), "runs": [run_dict(run, ms) for run, ms in timed]}


def measured_plan(event: Event, rules: Iterable[RuleSpec]) -> MeasuredPlan:
    """The plan of ``rules`` (in run order) for ``event``, each rule's evaluation timed."""
    evaluation = Evaluation(event)
    durations = []
    for rule in rules:
        started = time.perf_counter()
        evaluation.run(rule)
        durations.append((time.perf_counter() - started) * 1000)
    plan = evaluation.plan()
    return MeasuredPlan(plan.event, plan.runs, plan.record, plan.changed, tuple(durations))


def durations_of(plan: Plan) -> tuple[float, ...]:
    """Each rule's time in ms; 0 for a plan nobody measured."""
    if isinstance(plan, MeasuredPlan):
        return plan.durations_ms
    return (0.0,) * len(plan.runs)


def run_dict(run: RuleRun, duration_ms: float) -> dict[str, Any]:
    """A rule run as the rule log and the dry run show it, with its duration."""
    shown = run.to_dict()
    actions = shown.pop("actions")
    return {**shown, "duration_ms": round(duration_ms, 3), "actions": actions}


async def plan_write(
    records: RuleRecords,
    installed: RuleApp,
    form: str,
    kind: EventKind,
    *,
    data: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    record_id: str,
    version: int,
) -> MeasuredPlan | None:
    """The plan of the form's rules for a write, or ``None`` when no rule listens (the
    common case costs one dict lookup). The related records the rules read are loaded
    first (platform/rules/related.py; nothing when they read none), and the event is in
    the record's zone (:mod:`.zones`). A record holding a zone (a branch) must hold a
    valid one: that is checked first, whether rules listen or not."""
    if kind != "deleted":
        zones.check_zone_values(
            records.session, installed, form, record_id, data, app_locale(installed)
        )
    rules = installed.rules.for_event(form, kind)
    if not rules:
        return None
    hops = related.hops_for(installed.rules, installed.spec, rules, ("write", form, kind))
    loaded = (
        await related.load_related(records.session, installed.key, installed.spec, hops, data)
        if hops
        else {}
    )
    event = Event(
        app=installed.key,
        form=form,
        kind=kind,
        record=data,
        now=records.now,
        record_id=record_id,
        old=old,
        user=records.principal.context(installed.key),
        zone=await zones.record_zone(records.session, installed, form, data, zone_of(records.now)),
        occurrence=str(version),
        cascade=records.cascade,
        related=loaded,
    )
    return measured_plan(event, rules)


def set_values(plan: Plan, data: Mapping[str, Any]) -> dict[str, Any]:
    """The values the plan's ``set`` actions changed (to validate and store)."""
    return {key: value for key, value in plan.record.items() if data.get(key) != value}


async def check_rejections(records: RuleRecords, plan: Plan, locale: str) -> None:
    """Refuse the write (422, every rejection at its field) if a ``reject`` applies."""
    errors: list[dict[str, Any]] = []
    for action in plan.rejections:
        exists = action.exists
        if exists is not None and not await records.for_rule(action.rule).exists(
            plan.event.app, exists["form"], exists["filter"]
        ):
            continue
        field = action.field
        text = action.message
        errors.append(
            {
                "field": field or "",
                "path": f"/{field}" if field else "",
                "code": "rejected",
                "rule": action.rule,
                "message": label_text(text, locale),
                "messages": text if isinstance(text, Mapping) else {locale: text},
            }
        )
    if errors:
        first = errors[0]["message"]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise RuleRejected(f"{first}{more}", errors=errors)


async def carry_out(
    records: RuleRecords,
    installed: RuleApp,
    plan: Plan,
    *,
    form: str,
    record_id: str,
) -> None:
    """Everything but ``set``/``reject`` of a write's plan, and its log. Texts are in the
    zone of the record as stored (a rule may have set its branch)."""
    zone = await zones.record_zone(
        records.session, installed, form, plan.record, zone_of(records.now)
    )
    for action in plan.actions:
        await run_action(records, installed, action, form=form, record_id=record_id, zone=zone)
    await log_runs(records, plan, form=form, record_id=record_id, notes=_take_notes(records))


async def run_action(
    records: RuleRecords,
    installed: RuleApp,
    action: PlannedAction,
    *,
    form: str,
    record_id: str | None,
    delayed: bool = True,
    zone: str | None = None,
) -> None:
    """One planned action: sync ones now, outbound ones to the outbox, delayed ones to a
    timer (``delayed=False`` when a timer fires it). ``zone``: the record's, for the texts
    people read (none: the deployment's)."""
    session = records.session
    app = installed.key
    action = _with_links(session, action)
    if action.due is not None and delayed:
        session.add(
            Timer(
                id=new_id(),
                key=f"action:{action.idempotency_key}",
                kind="action",
                app=app,
                rule=action.rule,
                form=form,
                record_id=record_id,
                due_at=action.due,
                payload=action_timer_payload(action, records, zone),
                status="pending",
                attempts=0,
                created_at=records.now,
            )
        )
        return
    match action:
        case PlannedNotify() | PlannedWebhook():
            session.add(
                OutboxMessage(**outbox_values(app, action, records.now, form, record_id, zone))
            )
        case PlannedReject():
            pass  # decided before the write (check_rejections)
        case PlannedSet():
            # An immediate set was applied by the engine to the record being written; only
            # a delayed one, fired by its timer (delayed=False), updates the record here.
            if not delayed and record_id is not None:
                acting = records.for_rule(action.rule, form, record_id)
                await acting.update(app, form, record_id, action.values, if_match=None)
        case PlannedCreateRecord():
            acting = records.for_rule(action.rule, form, record_id)
            await acting.create(app, action.form, action.values)
        case PlannedUpdateRecords():
            acting = records.for_rule(action.rule, form, record_id)
            for target in await acting.matching_ids(app, action.form, action.filter):
                await acting.update(app, action.form, target, action.values, if_match=None)
        case PlannedStartFlow():
            starter = flow_starter()
            if starter is None:  # pragma: no cover - platform.flows registers it at import
                raise RuntimeError("no flow starter is registered")
            if action.record_id is not None:
                await starter(records, app, action.flow, action.record_id, action.vars)
        case PlannedCreateLink():
            await create_link(records, installed, action)
        case PlannedTask():
            task = task_row(installed, action, records.now, zone)
            session.add(task)
            # who may act on it, as the inbox reads it (the same table as flow tasks)
            candidates = [("role", task.role), ("user", task.assignee)]
            if action.role is not None and action.where is not None:
                people = await _role_members(session, app, action.role)
                candidates = [("user", name) for name in _narrowed(people, action.where)]
            for kind, value in candidates:
                if value is not None:
                    session.add(TaskCandidate(task_id=task.id, kind=kind, value=value, app=app))


# -- public links made by rules -------------------------------------------------------

#: ``session.info`` keys: the URLs of links made in this unit of work, per rule run (the
#: idempotency key without its action index), and notes for the rule log, per rule.
_LINKS = "formloom.rule_links"
_NOTES = "formloom.rule_notes"
NO_BASE_URL = (
    "FORMLOOM_PUBLIC_BASE_URL is not set: the link's URL is the relative {path}, which a "
    "message outside this service cannot open"
)


def _run_of(action: PlannedAction) -> str:
    return action.idempotency_key.rpartition(":")[0]


def _note(session: AsyncSession, rule: str, kind: str, value: Any) -> None:
    notes: dict[str, dict[str, list[Any]]] = session.info.setdefault(_NOTES, {})
    notes.setdefault(rule, {}).setdefault(kind, []).append(value)


def _take_notes(records: RuleRecords) -> dict[str, dict[str, list[Any]]]:
    notes: dict[str, dict[str, list[Any]]] = records.session.info.pop(_NOTES, {})
    return notes


def _with_links(session: AsyncSession, action: PlannedAction) -> PlannedAction:
    """``action`` with ``links`` (name -> URL) in its template context when an earlier
    action of the same rule run made links."""
    if not isinstance(action, PlannedNotify | PlannedWebhook | PlannedTask):
        return action
    made = session.info.get(_LINKS, {}).get(_run_of(action))
    if not made:
        return action
    return replace(action, context={**action.context, "links": dict(made)})


async def create_link(records: RuleRecords, installed: RuleApp, action: PlannedCreateLink) -> str:
    """Insert the link (checked at import: the form, the bound relation, the fields) and
    return its URL, also kept for the run's later actions. The secret is only in the URL."""
    session, now = records.session, records.now
    zone = ZoneInfo(zone_of(now))
    secret = tokens.new_secret()
    bound = action.bind is not None and action.record_id is not None
    link = PublicLink(
        id=new_id(),
        secret_hash=tokens.digest(secret),
        app=installed.key,
        form=action.form,
        label=f"rule {action.rule}"[:200],
        bind_field=action.bind if bound else None,
        bind_record=action.record_id if bound else None,
        max_submissions=1,
        submissions=0,
        created_at=now,
        created_by=f"rule:{action.rule}",
        creator_id=None,
        fields=list(action.fields) if action.fields is not None else None,
        expires_at=add_duration(now, parse_duration(action.expires), zone),
    )
    session.add(link)
    rule_actor = Principal(username=f"rule:{action.rule}", is_admin=True, via="system")
    audit(
        session,
        rule_actor,
        "public_link.created",
        at=now,
        app=installed.key,
        form=action.form,
        record_id=link.bind_record,
        detail={"link": link.id, "expires_at": format_datetime(link.expires_at),
                "fields": link.fields, "rule": action.rule},
    )  # fmt: skip
    url = tokens.public_url(f"{link.id}.{secret}")
    session.info.setdefault(_LINKS, {}).setdefault(_run_of(action), {})[action.name] = url
    _note(session, action.rule, "links", {"as": action.name, "link": link.id})
    if tokens.base_url() is None:
        _note(session, action.rule, "warnings", NO_BASE_URL.format(path="/p/<token>"))
    return url


def action_timer_payload(
    action: PlannedAction, records: RuleRecords, zone: str | None = None
) -> dict[str, Any]:
    """A delayed action's timer payload: the action in its stored format, the cascade it
    was planned in (its writes continue that chain when it fires) and the record's zone
    when it is not the deployment's (its texts are read there)."""
    payload: dict[str, Any] = {
        "action": action.to_dict(),
        "cascade": [list(link) for link in records.cascade.chain],
    }
    if zone is not None and zone != zone_of(records.now):
        payload["zone"] = zone
    return payload


def timer_action(payload: Mapping[str, Any]) -> PlannedAction:
    """The action of an ``action`` timer's payload, in any format the engine reads."""
    return action_from_dict(payload["action"])


def outbox_values(
    app: str,
    action: PlannedNotify | PlannedWebhook,
    now: datetime,
    form: str,
    record_id: str | None,
    zone: str | None = None,
) -> dict[str, Any]:
    """An outbox row for an outbound action. The payload holds the action in its stored
    format and the record it was planned for (:func:`outbox_action` reads it back), and
    the record's zone when it is not the deployment's (the texts are read there)."""
    payload: dict[str, Any] = {"action": action.to_dict(), "form": form, "record_id": record_id}
    if zone is not None and zone != zone_of(now):
        payload["zone"] = zone
    return {
        "id": new_id(),
        "app": app,
        "rule": action.rule,
        "kind": action.type,
        "channel": action.channel if isinstance(action, PlannedNotify) else None,
        "idempotency_key": action.idempotency_key,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "last_error": None,
        "created_at": now,
        "delivered_at": None,
    }


def outbox_action(
    kind: str, rule: str, key: str, payload: Mapping[str, Any]
) -> PlannedNotify | PlannedWebhook:
    """The action an outbox row delivers (``kind``, ``rule`` and ``key`` are its columns).

    Rows written before planned actions had a format hold the action's data flat, beside
    ``form`` and ``record_id``, with its rule and key in the row's columns: they are put back
    into the engine's first format, which the engine migrates.
    """
    stored = payload.get("action")
    if stored is None:
        index = key.rpartition(":")[2]  # the key ends in the action's index
        if not (index.isdecimal() and index.isascii()):
            raise PlanFormatError(f"an outbox message's key does not end in an index: {key!r}")
        stored = {
            "rule": rule,
            "index": int(index),
            "type": kind,
            "mode": "outbound",
            "due": None,
            "idempotency_key": key,
            "data": {k: v for k, v in payload.items() if k not in ("form", "record_id")},
        }
    action = action_from_dict(stored)
    if not isinstance(action, PlannedNotify | PlannedWebhook):
        raise PlanFormatError(f"an outbox message holds a {action.type!r} action")
    return action


def _render_or_raw(
    text: Any, context: Mapping[str, Any], locale: str, zone: str, named: bool = False
) -> str | None:
    """A task's title or description: rendered now (a task is for people to read: times
    in the record's ``zone``, ``named`` when it is not the deployment's). A template that
    fails keeps its raw text, so the write never fails on wording."""
    if text is None:
        return None
    try:
        return render_template(text, context, locale, zone, named=named)
    except Exception:  # noqa: BLE001 - any template failure; the task still gets made
        return label_text(text, locale)


async def _role_members(
    session: AsyncSession, app: str, role: str
) -> list[tuple[str, dict[str, Any]]]:
    """The enabled users with ``role`` in ``app``: username and attributes."""
    rows = await session.execute(
        select(User.username, User.attributes)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.app == app, UserRole.role == role, User.disabled_at.is_(None))
        .order_by(User.username)
    )
    return [(name, dict(attributes or {})) for name, attributes in rows.all()]


def _narrowed(people: list[tuple[str, dict[str, Any]]], where: Any) -> list[str]:
    """The people a task's ``where`` admits, reading each one's attributes as ``user.x``
    (and ``user.username``); one it cannot judge (an error) is left out."""
    chosen = []
    for name, attributes in people:
        try:
            if truthy(evaluate(where, {"user": {**attributes, "username": name}})):
                chosen.append(name)
        except LogicError:
            continue
    return chosen


def task_row(
    installed: RuleApp, action: PlannedTask, now: datetime, zone: str | None = None
) -> Task:
    """The task of a ``create_task`` action, its texts in ``zone`` (the record's; none:
    the deployment's), naming it when it is not the deployment's."""
    locale = app_locale(installed)
    context = action.context
    user = action.user
    home = zone_of(now)
    zone = zone or home
    named = zone != home
    title = _render_or_raw(action.title, context, locale, zone, named)
    return Task(
        id=new_id(),
        app=installed.key,
        title=(title or action.rule)[:500],
        description=_render_or_raw(action.description, context, locale, zone, named),
        role=action.role,
        assignee=str(user) if user is not None else None,
        form=action.form,
        record_id=action.record_id,
        rule=action.rule,
        source_key=action.idempotency_key,
        due=action.task_due,
        status="open",
        created_at=now,
        close_form=action.done_when["form"] if action.done_when else None,
        step={"done_when": action.done_when["filter"]} if action.done_when else None,
    )


async def close_waiting_tasks(
    records: RuleRecords,
    installed: RuleApp,
    form: str,
    record_id: str,
    data: Mapping[str, Any],
) -> None:
    """Rule tasks waiting for a record like this one (``done_when``) are done: the survey
    arrived, so the "call if not answered" task closes itself. Only forms some rule names
    pay for the query."""
    if not installed.rules.closes_tasks(form):
        return
    waiting = (
        await records.session.scalars(
            select(Task).where(
                Task.app == installed.key, Task.close_form == form, Task.status == "open"
            )
        )
    ).all()
    seen = {**data, "id": record_id}
    for task in waiting:
        wanted = (task.step or {}).get("done_when")
        try:
            matched = truthy(evaluate(wanted, seen, now=records.now))
        except LogicError:
            continue  # a filter this record cannot be judged by: the task stays open
        if matched:
            task.status, task.outcome = "done", "done_when"
            task.completed_at, task.completed_by = records.now, f"rule:{task.rule}"


async def log_runs(
    records: RuleRecords,
    plan: Plan,
    *,
    form: str,
    record_id: str | None,
    notes: Mapping[str, Mapping[str, list[Any]]] | None = None,
) -> None:
    """The event's row in the rule log (nothing when no rule ran); ``notes`` are what
    carrying the plan out adds to a rule's entry (the links it made, warnings)."""
    values = run_log_values(plan, form=form, record_id=record_id, at=records.now)
    if values is not None and notes:
        values["runs"] = [
            {**entry, **notes.get(entry["rule"], {})} if isinstance(entry, dict) else entry
            for entry in values["runs"]
        ]
    if values is not None:
        await records.session.execute(insert(RuleRunLog), [values])


def run_log_values(
    plan: Plan, *, form: str, record_id: str | None, at: datetime
) -> dict[str, Any] | None:
    runs = [
        (run, ms) for run, ms in zip(plan.runs, durations_of(plan), strict=True)
        if run.reason not in NOT_RUN
    ]  # fmt: skip
    if not runs:
        return None
    return {
        "id": new_id(),
        "app": plan.event.app,
        "form": form,
        "record_id": record_id,
        "event": plan.event.kind,
        "rules": "," + ",".join(run.rule for run, _ in runs) + ",",
        "matched": "," + ",".join(run.rule for run, _ in runs if run.matched) + ",",
        "failed": any(run.error is not None for run, _ in runs),
        # a rule whose condition was false is [key, duration] (most runs are; kept short)
        "runs": [
            [run.rule, round(ms, 3)] if run.reason == FALSE else run_dict(run, ms)
            for run, ms in runs
        ],
        "duration_ms": round(sum(ms for _, ms in runs), 3),
        "depth": plan.event.cascade.depth,
        "at": at,
    }


# -- date-relative rules: one timer per (rule, record) ---------------------------------


def date_timer_key(app: str, rule: str, record_id: str) -> str:
    return f"date:{app}:{rule}:{record_id}"


async def move_date_timers(
    records: RuleRecords,
    installed: RuleApp,
    form: str,
    record_id: str,
    data: Mapping[str, Any] | None,
    changed: Iterable[str] | None,
) -> None:
    """Arm, move or drop the record's date-relative timers after a write.

    ``changed=None`` means a new record (every date rule of the form); ``data=None`` a
    deleted one (its timers go). A due moment already past is armed anyway and fires on
    the next tick (a late entry still gets its reminder, as a past timer date in Camunda
    fires at once). Moments are on the record's clock (:mod:`.zones`): a record moved to
    another branch has every date timer of its form moved too, and a branch whose zone
    changed has the date timers of the records pointing at it moved."""
    changed = None if changed is None else list(changed)
    index = installed.rules
    source = zones.source_of(installed)
    if source is not None and changed is not None and data is not None:
        await _rezone_pointing(records, installed, source, form, record_id, changed)
    rezoned = (
        changed is not None
        and source is not None
        and source.target_of(form) is not None
        and source.relation in changed
    )
    rules = (
        index.date_rules(form)
        if changed is None or data is None or rezoned
        else index.date_rules_watching(form, changed)
    )
    if not rules:
        return
    session = records.session
    keys = [date_timer_key(installed.key, rule.key, record_id) for rule in rules]
    existing = {
        timer.key: timer
        for timer in (await session.execute(select(Timer).where(Timer.key.in_(keys)))).scalars()
    }
    # armed earlier in this unit of work and not yet flushed (a record created, then
    # written again by the same transaction): the same timer, not a second one
    existing.update(
        (pending.key, pending)
        for pending in session.new
        if isinstance(pending, Timer) and pending.key in keys
    )
    zone = ZoneInfo(await zones.record_zone(session, installed, form, data, zone_of(records.now)))
    for rule, key in zip(rules, keys, strict=True):
        due = None
        if data is not None:
            try:
                due = date_due(rule, data, now=records.now, zone=zone)
            except InvalidTiming:
                due = None
        timer = existing.get(key)
        if due is None:
            if timer is not None and timer in session.new:
                session.expunge(timer)
            elif timer is not None:
                await session.delete(timer)
            continue
        if timer is None:
            session.add(date_timer(installed.key, rule, form, record_id, due, records.now))
        else:
            if timer.due_at != due or timer.status != "pending":
                timer.created_at = records.now  # armed now: a late policy counts from here
            timer.due_at = due
            timer.status = "pending"
            timer.attempts = 0
            timer.last_error = None


async def _rezone_pointing(
    records: RuleRecords,
    installed: RuleApp,
    source: ZoneSource,
    form: str,
    record_id: str,
    changed: list[str],
) -> None:
    """The zone a record holds (a branch's ``timezone``) changed: the date timers of the
    live records whose zone relation points at it move to the new clock (one query per
    form that has date rules; the zone itself is loaded once)."""
    if form not in source.zone_forms() or source.zone_field not in changed:
        return
    zones.forget(records.session, installed, form, record_id)
    for other, target in sorted(source.targets.items()):
        if target != form or other == form or not installed.rules.date_rules(other):
            continue
        pointing = await records.session.execute(
            select(Record.id, Record.data).where(
                Record.app == installed.key,
                Record.form == other,
                Record.deleted_at.is_(None),
                Record.data[source.relation].as_string() == record_id,
            )
        )
        for pointing_id, data in pointing.all():
            await move_date_timers(
                records, installed, other, pointing_id, data or {}, [source.relation]
            )


def date_timer(
    app: str, rule: RuleSpec, form: str, record_id: str, due: datetime, now: datetime
) -> Timer:
    return Timer(**date_timer_values(app, rule, form, record_id, due, now))


def date_timer_values(
    app: str, rule: RuleSpec, form: str, record_id: str, due: datetime, now: datetime
) -> dict[str, Any]:
    assert isinstance(rule.on, DateTrigger)
    return {
        "id": new_id(),
        "key": date_timer_key(app, rule.key, record_id),
        "kind": "date",
        "app": app,
        "rule": rule.key,
        "form": form,
        "record_id": record_id,
        "due_at": due,
        "payload": {"field": rule.on.field, "due": format_datetime(due)},
        "status": "pending",
        "attempts": 0,
        "last_error": None,
        "created_at": now,
        "fired_at": None,
    }


async def drop_record_timers(records: RuleRecords, record_id: str) -> None:
    """A deleted record's pending date timers (its delayed actions still fire: they were
    planned while it lived, as a sent letter is not unsent)."""
    await records.session.execute(
        delete(Timer).where(
            Timer.record_id == record_id, Timer.kind == "date", Timer.status == "pending"
        )
    )


def cascade_problem(error: CascadeError) -> RuleCascadeTooDeep:
    return RuleCascadeTooDeep(
        f"Nothing was saved: {error}.",
        errors=[
            {
                "path": "",
                "code": "rule_cascade",
                "message": str(error),
                "chain": [list(link) for link in error.chain],
            }
        ],
    )
