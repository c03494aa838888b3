"""Evaluating rules: an event in, a :class:`Plan` of what should happen out.

Nothing here writes, sends or reads the clock: the platform passes the event (with ``now``
and the clinic's zone) and carries out the plan. That is what makes the dry run
(``POST /api/rules/{app}/{rule}/test``) free: it is the same call with the plan discarded.

Semantics of one record event (the peers Frappe and NocoBase do the same):

* Candidate rules come from the :class:`~.index.RuleIndex` bucket of ``(form, event)`` and
  run in descending ``priority``, then by key.
* Rules run one after another against a *working copy* of the record. A ``set`` action
  changes the working copy at once, so later actions of the same rule and later rules see
  the new values, and the fields it changed join ``changed`` (so a later rule filtered on
  those fields runs). The plan's ``record`` is the working copy to store.
* A rule's trigger filter (``fields``/``to``) and condition are checked against the working
  copy when the rule's turn comes. A rule whose condition or action values raise a
  :class:`~formloom.engines.logic.LogicError` is reported with an error and contributes no
  action at all (its ``set`` values are not applied); the other rules still run.
* Every action is classified: ``sync`` (set, reject, create/update records, create task:
  run in the write's transaction; any reject rolls the write back), ``outbound`` (notify,
  webhook: written to the outbox with the write), or ``delayed`` (any action with ``after``
  or ``at``: a durable timer due at ``due``; when it fires the platform runs it as it would
  have run then). Values of delayed actions are computed now, when the rule runs.
* Templates are not rendered here: outbound actions carry their templates and a snapshot of
  the context, rendered at delivery (:func:`~.templates.render_template`).
* Related records (``record.patient.name``) are read from ``Event.related``, loaded by the
  platform as :mod:`.related` describes; they are in the context as ``related`` only when
  some were given, and are read as they were before the event's ``set`` actions.

Cascades (an action's write triggering rules again) are bounded by :class:`Cascade`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Literal, TypeAlias
from zoneinfo import ZoneInfo

from formloom.engines.logic import LogicError, evaluate
from formloom.engines.logic.coercion import truthy
from formloom.engines.logic.dates import format_datetime, parse_temporal

from .actions import (
    Mode,
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
)
from .index import RuleIndex, watches
from .related import RELATED, read_related, related_path, staff_user
from .spec import (
    CreateLinkAction,
    CreateRecordAction,
    CreateTaskAction,
    NotifyAction,
    RecordTrigger,
    RejectAction,
    RuleSpec,
    SetAction,
    StartFlowAction,
    UpdateRecordsAction,
    WebhookAction,
)
from .timing import InvalidTiming, add_duration, localize, parse_duration, zone_named

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "Cascade",
    "CascadeError",
    "Evaluation",
    "Event",
    "EventKind",
    "Plan",
    "RuleRun",
    "evaluate_event",
    "evaluate_rule",
    "substitute_context",
]

EventKind: TypeAlias = Literal["created", "updated", "deleted", "schedule", "date"]
DEFAULT_MAX_DEPTH = 8
_CONTEXT_ROOTS = ("record.", "old.", "user.")
#: What a task's ``where`` takes from the run: its ``user.x`` are the candidates'.
_RECORD_ROOTS = ("record.", "old.")


# ---------------------------------------------------------------------------------------
# Cascades
# ---------------------------------------------------------------------------------------


class CascadeError(Exception):
    """Rules triggered each other deeper than the configured bound."""

    def __init__(self, chain: tuple[tuple[str, str, str | None], ...], max_depth: int) -> None:
        self.chain = chain
        self.max_depth = max_depth
        steps = " -> ".join(f"{rule} on {form}/{record or '?'}" for rule, form, record in chain)
        loop = _loop(chain)
        where = f"; the loop is {loop}" if loop else ""
        super().__init__(f"rule cascade deeper than {max_depth}{where}: {steps}")


def _loop(chain: tuple[tuple[str, str, str | None], ...]) -> str | None:
    seen: dict[tuple[str, str, str | None], int] = {}
    for index, link in enumerate(chain):
        if link in seen:
            cycle = chain[seen[link] : index + 1]
            return " -> ".join(f"{rule} on {form}/{record or '?'}" for rule, form, record in cycle)
        seen[link] = index
    rules: dict[str, int] = {}
    for index, (rule, _, _) in enumerate(chain):
        if rule in rules:
            return " -> ".join(rule for rule, _, _ in chain[rules[rule] : index + 1])
        rules[rule] = index
    return None


@dataclass(frozen=True)
class Cascade:
    """The chain of ``(rule, form, record id)`` that led to the current event.

    The platform starts a write with ``Cascade()``; when an action of rule R, run for record
    X of form F, writes another record, the events of that write carry
    ``cascade.enter(R, F, X)``, which raises :class:`CascadeError` past ``max_depth``.
    """

    max_depth: int = DEFAULT_MAX_DEPTH
    chain: tuple[tuple[str, str, str | None], ...] = ()

    @property
    def depth(self) -> int:
        return len(self.chain)

    def enter(self, rule: str, form: str, record: str | None) -> Cascade:
        chain = (*self.chain, (rule, form, record))
        if len(chain) > self.max_depth:
            raise CascadeError(chain, self.max_depth)
        return Cascade(self.max_depth, chain)


# ---------------------------------------------------------------------------------------
# Events and plans
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something happened to a record (or a schedule/date timer fired for it).

    ``record`` and ``old`` are the records' ``data``; ``changed`` defaults to the fields
    whose values differ between them (on create: the fields with a value). ``now`` must be
    aware; ``zone`` is the clinic's IANA zone (``today`` and wall-clock delays use it).
    ``occurrence`` tells repeated events of one record apart (the record version, or the
    timer's due time) and goes into each action's idempotency key.
    """

    app: str
    form: str
    kind: EventKind
    record: Mapping[str, Any]
    now: datetime
    record_id: str | None = None
    old: Mapping[str, Any] | None = None
    changed: frozenset[str] | None = None
    user: Mapping[str, Any] = field(default_factory=dict)
    zone: str = "UTC"
    occurrence: str | None = None
    cascade: Cascade = field(default_factory=Cascade)
    #: More variables for expressions and templates (a flow's ``vars``, ``steps``, ...).
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The related records the rules read, hop path -> entry (see :mod:`.related`).
    related: Mapping[str, Any] = field(default_factory=dict)

    def changed_fields(self) -> frozenset[str]:
        if self.changed is not None:
            return self.changed
        old = self.old or {}
        keys = set(self.record) | set(old)
        return frozenset(
            key for key in keys if self.record.get(key) != old.get(key) and key != "id"
        )


@dataclass(frozen=True)
class RuleRun:
    """What one rule did for one event: the rule log's entry (the platform adds how long
    it took; the engine reads no clock)."""

    rule: str
    matched: bool
    actions: tuple[PlannedAction, ...] = ()
    reason: str | None = None  # why it did not match
    error: str | None = None
    error_pointer: str | None = None  # JSON pointer into the rule

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "matched": self.matched,
            "reason": self.reason,
            "error": self.error,
            "error_pointer": self.error_pointer,
            "actions": [action.summary() for action in self.actions],
        }


@dataclass(frozen=True)
class Plan:
    """Everything the rules want done for one event, in run order."""

    event: Event
    runs: tuple[RuleRun, ...]
    record: dict[str, Any]  # the record data after every set action
    changed: frozenset[str]

    @property
    def actions(self) -> tuple[PlannedAction, ...]:
        return tuple(action for run in self.runs for action in run.actions)

    def _mode(self, mode: Mode) -> tuple[PlannedAction, ...]:
        return tuple(action for action in self.actions if action.mode == mode)

    @property
    def sync(self) -> tuple[PlannedAction, ...]:
        return self._mode("sync")

    @property
    def outbound(self) -> tuple[PlannedAction, ...]:
        return self._mode("outbound")

    @property
    def delayed(self) -> tuple[PlannedAction, ...]:
        return self._mode("delayed")

    @property
    def rejections(self) -> tuple[PlannedReject, ...]:
        return tuple(a for a in self.sync if isinstance(a, PlannedReject))

    @property
    def rejected(self) -> bool:
        """Some rejection is unconditional: the write is refused whatever the database holds.

        Rejections with ``exists`` are decided by the platform's query (see docs/rules.md).
        """
        return any(action.exists is None for action in self.rejections)

    @property
    def errors(self) -> tuple[RuleRun, ...]:
        return tuple(run for run in self.runs if run.error is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.event.app,
            "form": self.event.form,
            "event": self.event.kind,
            "record_id": self.event.record_id,
            "rejected": self.rejected,
            "record": self.record,
            "changed": sorted(self.changed),
            "runs": [run.to_dict() for run in self.runs],
        }


# ---------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------


class _RuleFailed(Exception):
    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer = pointer
        self.message = message


class _Run:
    """The mutable state of one event's evaluation: the working record and its changes."""

    def __init__(self, event: Event) -> None:
        self.event = event
        self.zone: ZoneInfo = zone_named(event.zone)
        self.now = event.now.astimezone(self.zone)  # so `today` is the clinic's date
        self.record: dict[str, Any] = dict(event.record)
        self.changed: set[str] = set(event.changed_fields())
        self._context: dict[str, Any] | None = None

    def set_value(self, name: str, value: Any) -> None:
        if self.record.get(name) != value:
            self.changed.add(name)
        self.record[name] = value
        self._context = None

    def restore(self, record: dict[str, Any], changed: set[str]) -> None:
        self.record, self.changed, self._context = record, changed, None

    def context(self) -> dict[str, Any]:
        """The variables expressions see; rebuilt only after a ``set`` (callers must not
        mutate it)."""
        if self._context is None:
            self._context = self._build_context()
        return self._context

    def _build_context(self) -> dict[str, Any]:
        record = dict(self.record)
        if self.event.record_id is not None:
            record["id"] = self.event.record_id
        context = {
            "record": record,
            "old": dict(self.event.old) if self.event.old is not None else None,
            "changed": sorted(self.changed),
            "user": dict(self.event.user),
            "now": format_datetime(self.now),
            **self.event.extra,
        }
        if self.event.related:
            context[RELATED] = dict(self.event.related)
        return context

    def staff_user(self, field: str) -> str | None:
        return staff_user(self.event.related, field)

    def value(self, expression: Any, pointer: str) -> Any:
        if self.event.related:
            expression = read_related(expression, self.event.related)
        try:
            return evaluate(expression, self.context(), now=self.now)
        except LogicError as error:
            raise _RuleFailed(pointer, str(error)) from error

    def substituted(self, rule: Any, pointer: str, *, roots: tuple[str, ...] | None = None) -> Any:
        """A filter over other records with this run's context made literals (``roots``:
        only variables under these prefixes)."""
        try:
            return substitute_context(rule, self.context(), now=self.now, roots=roots)
        except LogicError as error:
            raise _RuleFailed(pointer, str(error)) from error


class Evaluation:
    """One event's evaluation, one rule at a time.

    :func:`evaluate_event` and :func:`evaluate_rule` run it to the end; a host that wants
    to measure each rule (the platform's rule log) calls :meth:`run` itself and times the
    calls, since the engine reads no clock. Rules must be given in run order
    (:meth:`RuleIndex.for_event` gives them so), each at most once.
    """

    def __init__(self, event: Event) -> None:
        self._run = _Run(event)
        self._runs: list[RuleRun] = []

    def run(self, rule: RuleSpec) -> RuleRun:
        """Evaluate ``rule`` against the working copy left by the rules before it."""
        done = _evaluate(rule, self._run)
        self._runs.append(done)
        return done

    def plan(self) -> Plan:
        """The plan of the rules run so far."""
        run = self._run
        return Plan(run.event, tuple(self._runs), dict(run.record), frozenset(run.changed))


def evaluate_event(index: RuleIndex, event: Event) -> Plan:
    """The plan of every rule the index holds for ``event`` (a record event)."""
    evaluation = Evaluation(event)
    for rule in index.for_event(event.form, event.kind):
        evaluation.run(rule)
    return evaluation.plan()


def evaluate_rule(rule: RuleSpec, event: Event) -> Plan:
    """The plan of one rule for ``event``: a dry run, or a schedule/date timer firing.

    The trigger's form and event kind are not compared (the caller chose the rule); a record
    trigger's ``fields``/``to`` filter still applies.
    """
    evaluation = Evaluation(event)
    evaluation.run(rule)
    return evaluation.plan()


def _trigger_passes(rule: RuleSpec, run: _Run) -> str | None:
    trigger = rule.on
    if not isinstance(trigger, RecordTrigger) or trigger.fields is None:
        return None
    if not watches(rule, run.changed):
        return "none of the watched fields changed"
    if "to" in trigger.model_fields_set:
        wanted = trigger.to if isinstance(trigger.to, list) else [trigger.to]
        hits = [f for f in trigger.fields if f in run.changed and run.record.get(f) in wanted]
        if not hits:
            return "no watched field changed to the given value"
    return None


def _evaluate(rule: RuleSpec, run: _Run) -> RuleRun:
    reason = _trigger_passes(rule, run)
    if reason is not None:
        return RuleRun(rule.key, False, reason=reason)
    try:
        matched = truthy(run.value(rule.condition, "/if"))
    except _RuleFailed as error:
        return RuleRun(rule.key, False, error=str(error), error_pointer=error.pointer)
    if not matched:
        return RuleRun(rule.key, False, reason="condition is false")
    saved = (dict(run.record), set(run.changed))  # only a matching rule's actions can set
    try:
        actions = tuple(
            _resolve(rule, index, action, run) for index, action in enumerate(rule.then)
        )
    except (_RuleFailed, InvalidTiming) as error:
        run.restore(*saved)  # a failing rule applies none of its sets
        pointer = error.pointer if isinstance(error, _RuleFailed) else None
        return RuleRun(rule.key, False, error=str(error), error_pointer=pointer)
    return RuleRun(rule.key, True, actions)


def _resolve(rule: RuleSpec, index: int, action: Any, run: _Run) -> PlannedAction:
    pointer = f"/then/{index}"
    event = run.event
    common: dict[str, Any] = {
        "rule": rule.key,
        "index": index,
        "idempotency_key": ":".join(
            [
                event.app,
                rule.key,
                event.form,
                event.record_id or "-",
                event.occurrence or "-",
                str(index),
            ]
        ),  # fmt: skip
        "due": _due(action, pointer, run),
    }
    if isinstance(action, SetAction):
        values = _values(action.values, pointer, run)
        if common["due"] is None:
            for name, value in values.items():
                run.set_value(name, value)
        return PlannedSet(**common, values=values)
    if isinstance(action, RejectAction):
        exists = None
        if action.exists is not None:
            exists = {
                "form": action.exists.form,
                "filter": run.substituted(action.exists.filter, f"{pointer}/exists/filter"),
            }
        return PlannedReject(**common, message=action.message, field=action.field, exists=exists)
    if isinstance(action, CreateRecordAction):
        return PlannedCreateRecord(
            **common, form=action.form, values=_values(action.values, pointer, run)
        )
    if isinstance(action, UpdateRecordsAction):
        return PlannedUpdateRecords(
            **common,
            form=action.form,
            filter=run.substituted(action.filter, f"{pointer}/filter"),
            values=_values(action.values, pointer, run),
        )
    if isinstance(action, CreateTaskAction):
        user = run.value(action.user, f"{pointer}/user") if action.user is not None else None
        if action.field is not None:
            user = run.staff_user(action.field)
        return PlannedTask(
            **common,
            role=action.role,
            user=user,
            title=action.title,
            description=action.description,
            task_due=_task_due(action.due, f"{pointer}/due", run),
            form=event.form,
            record_id=event.record_id,
            context=run.context(),
            where=(
                run.substituted(action.where, f"{pointer}/where", roots=_RECORD_ROOTS)
                if action.where is not None
                else None
            ),
            done_when=(
                {
                    "form": action.done_when.form,
                    "filter": run.substituted(
                        action.done_when.filter, f"{pointer}/done_when/filter"
                    ),
                }
                if action.done_when is not None
                else None
            ),
        )
    if isinstance(action, NotifyAction):
        recipients: list[dict[str, Any]] = []
        for number, recipient in enumerate(action.recipients):
            where = f"{pointer}/recipients/{number}"
            if recipient.role is not None:
                recipients.append({"role": recipient.role})
            elif recipient.user is not None:
                recipients.append({"user": run.value(recipient.user, f"{where}/user")})
            elif recipient.field is not None:
                recipients.append(
                    {"field": recipient.field, "user": run.staff_user(recipient.field)}
                )
            else:
                recipients.append({"address": run.value(recipient.address, f"{where}/address")})
        return PlannedNotify(
            **common,
            channel=action.channel,
            recipients=recipients,
            subject=action.subject,
            template=action.template,
            context=run.context(),
        )
    if isinstance(action, WebhookAction):
        return PlannedWebhook(
            **common,
            method=action.method,
            url=action.url,
            headers=dict(action.headers),
            body=action.body,
            context=run.context(),
        )
    if isinstance(action, StartFlowAction):
        return PlannedStartFlow(
            **common,
            flow=action.flow,
            form=event.form,
            record_id=event.record_id,
            vars=_values(action.vars, pointer, run),
        )
    if isinstance(action, CreateLinkAction):
        return PlannedCreateLink(
            **common,
            form=action.form,
            bind=action.bind,
            record_id=event.record_id,
            fields=list(action.fields) if action.fields is not None else None,
            expires=action.expires,
            name=action.name,
        )
    raise TypeError(f"unknown action {action!r}")  # pragma: no cover - the union is closed


def _values(values: Mapping[str, Any], pointer: str, run: _Run) -> dict[str, Any]:
    return {name: run.value(expr, f"{pointer}/values/{name}") for name, expr in values.items()}


def _moment(value: Any, pointer: str, run: _Run) -> datetime:
    """A datetime from an expression's result; a date means its 00:00 in the clinic's zone."""
    if value is None:
        raise _RuleFailed(pointer, "the expression gave no date or datetime")
    try:
        moment = parse_temporal(value, "at")
    except LogicError as error:
        raise _RuleFailed(pointer, str(error)) from error
    if isinstance(moment, datetime):
        return moment
    return localize(datetime.combine(moment, time()), run.zone)


def _due(action: Any, pointer: str, run: _Run) -> datetime | None:
    after = getattr(action, "after", None)
    at = getattr(action, "at", None)
    if after is not None:
        return add_duration(run.now, parse_duration(after), run.zone)
    if at is not None:
        return _moment(run.value(at, f"{pointer}/at"), f"{pointer}/at", run)
    return None


def _task_due(due: Any, pointer: str, run: _Run) -> str | None:
    if due is None:
        return None
    if isinstance(due, str) and due.lstrip("-+").startswith("P"):
        return format_datetime(add_duration(run.now, parse_duration(due), run.zone))
    value = run.value(due, pointer)
    if value is None:
        return None
    try:
        moment = parse_temporal(value, "due")
    except LogicError as error:
        raise _RuleFailed(pointer, str(error)) from error
    # A due date stays a date (due at the end of that day in the inbox's eyes).
    return format_datetime(moment) if isinstance(moment, datetime) else moment.isoformat()


def substitute_context(
    rule: Any,
    context: Mapping[str, Any],
    *,
    now: datetime | None = None,
    roots: tuple[str, ...] | None = None,
) -> Any:
    """``rule`` with every dotted ``record.x``/``old.x``/``user.x`` variable made a literal.

    Filters over *other* records (``update_records``) read the target's fields with plain
    ``var``s; the triggering record's values come in through these dotted names, which
    cannot be target fields (field keys have no dots). ``now`` is the run's instant, for a
    variable's default that reads the time. A context with ``related`` records reads
    ``record.<relation>.<field>`` through them (:mod:`.related`). ``roots`` limits which
    dotted prefixes are replaced: a task's ``where`` keeps ``user.x``, which there means
    each candidate user, not the user who triggered the rule.
    """
    roots = roots or _CONTEXT_ROOTS
    if isinstance(rule, list):
        return [substitute_context(item, context, now=now, roots=roots) for item in rule]
    if isinstance(rule, dict):
        if len(rule) == 1 and "var" in rule:
            args = rule["var"]
            path = args[0] if isinstance(args, list) and args else args
            if isinstance(path, str) and path.startswith(roots):
                default = args[1] if isinstance(args, list) and len(args) > 1 else None
                related = context.get(RELATED)
                if isinstance(related, Mapping) and related:
                    path = related_path(path, related)
                value = evaluate({"var": [path, default]}, context, now=now)
                return {"preserve": value} if isinstance(value, dict | list) else value
        return {
            key: substitute_context(value, context, now=now, roots=roots)
            for key, value in rule.items()
        }
    return rule
