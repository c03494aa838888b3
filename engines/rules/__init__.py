"""The rule engine: "on <trigger> if <condition> then <actions>" as data, evaluated to plans.

A rule (:class:`RuleSpec`) is part of an app definition. :func:`check` validates rules
against the app's forms and roles (every problem with a JSON pointer). A
:class:`RuleIndex`, built once per app version, finds the rules of a record event in one
lookup; :func:`evaluate_event` (a record write) and :func:`evaluate_rule` (a dry run, a
schedule or date timer firing) return a :class:`Plan`: per rule, matched or not, the
actions resolved to typed planned actions (:data:`PlannedAction`, stored through a
versioned ``to_dict``/:func:`action_from_dict`) and classified sync / outbound / delayed,
and errors. :class:`Evaluation` runs the same one rule at a time for a host that times
each rule.
:func:`next_schedule_run` and :func:`date_due` say when schedule and date-relative rules
are due; :class:`Cascade` bounds rules triggering rules. :mod:`.related` says which related
records a rule reads (``record.patient.name``), which the platform loads into
``Event.related``.

The engine is pure: no web, no database, no clock (``now`` and the clinic's zone are
passed in, and no timings are reported), nothing sent. Semantics in docs/rules.md.
"""

from formloom.engines.rules.actions import (
    PLAN_ACTION_FORMAT,
    Mode,
    PlanFormatError,
    PlannedAction,
    PlannedActionBase,
    PlannedCreateLink,
    PlannedCreateRecord,
    PlannedNotify,
    PlannedReject,
    PlannedSet,
    PlannedStartFlow,
    PlannedTask,
    PlannedUpdateRecords,
    PlannedWebhook,
    action_from_dict,
)
from formloom.engines.rules.check import CONTEXT_ROOTS, Issue, check
from formloom.engines.rules.cron import CronSchedule, next_run, parse_cron
from formloom.engines.rules.index import RuleIndex, run_order
from formloom.engines.rules.plan import (
    DEFAULT_MAX_DEPTH,
    Cascade,
    CascadeError,
    Evaluation,
    Event,
    EventKind,
    Plan,
    RuleRun,
    evaluate_event,
    evaluate_rule,
    substitute_context,
)
from formloom.engines.rules.schedule import anniversary, date_due, next_schedule_run
from formloom.engines.rules.spec import (
    Action,
    CreateLinkAction,
    CreateRecordAction,
    CreateTaskAction,
    DateTrigger,
    NotifyAction,
    Recipient,
    RecordQuery,
    RecordTrigger,
    RejectAction,
    RuleSpec,
    ScheduleTrigger,
    SetAction,
    StartFlowAction,
    Trigger,
    UpdateRecordsAction,
    WebhookAction,
)
from formloom.engines.rules.templates import render_template, render_value, template_problems
from formloom.engines.rules.timing import (
    Duration,
    InvalidTiming,
    add_duration,
    parse_duration,
    parse_time_of_day,
    zone_named,
)

__all__ = [
    "CONTEXT_ROOTS",
    "DEFAULT_MAX_DEPTH",
    "PLAN_ACTION_FORMAT",
    "Action",
    "Cascade",
    "CascadeError",
    "CreateLinkAction",
    "CreateRecordAction",
    "CreateTaskAction",
    "CronSchedule",
    "DateTrigger",
    "Duration",
    "Evaluation",
    "Event",
    "EventKind",
    "InvalidTiming",
    "Issue",
    "Mode",
    "NotifyAction",
    "Plan",
    "PlanFormatError",
    "PlannedAction",
    "PlannedActionBase",
    "PlannedCreateLink",
    "PlannedCreateRecord",
    "PlannedNotify",
    "PlannedReject",
    "PlannedSet",
    "PlannedTask",
    "PlannedUpdateRecords",
    "PlannedStartFlow",
    "PlannedWebhook",
    "Recipient",
    "RecordQuery",
    "RecordTrigger",
    "RejectAction",
    "RuleIndex",
    "RuleRun",
    "RuleSpec",
    "ScheduleTrigger",
    "SetAction",
    "Trigger",
    "UpdateRecordsAction",
    "StartFlowAction",
    "WebhookAction",
    "action_from_dict",
    "add_duration",
    "anniversary",
    "check",
    "date_due",
    "evaluate_event",
    "evaluate_rule",
    "next_run",
    "next_schedule_run",
    "parse_cron",
    "parse_duration",
    "parse_time_of_day",
    "render_template",
    "render_value",
    "run_order",
    "substitute_context",
    "template_problems",
    "zone_named",
]
