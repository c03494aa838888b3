"""The rule model: "on <trigger> if <condition> then <actions>", as immutable data.

A :class:`RuleSpec` is part of an app definition (``"rules": [...]``). pydantic checks its
shape (strict, no unknown keys, every property described); :func:`~.check.check` checks it
against the app's forms and roles. Three kinds of trigger, told apart by their keys so the
JSON stays short (``{"form": "visit", "event": "created"}``):

* :class:`RecordTrigger` (has ``event``): a record of ``form`` is created, updated or deleted,
  optionally only when one of ``fields`` changes (and, with ``to``, changes to given values);
* :class:`ScheduleTrigger` (has ``cron`` or ``at``): on a schedule in the clinic's zone, for
  every record of ``form`` matching ``filter`` (compiled to SQL by the platform);
* :class:`DateTrigger` (has ``field``): a moment relative to a date field of each record
  ("3 days after discharged_at at 09:00", "every year on birth_date"), kept by the platform
  as one durable timer per record.

Actions are a discriminated union on ``type``. Any action may be delayed by ``after`` (an
ISO 8601 duration) or ``at`` (a JsonLogic expression giving a datetime); except ``reject``,
which only makes sense inside the write.

Expressions (``if``, action values) are JsonLogic over ``record``, ``old``, ``changed``,
``user`` and ``now`` (see docs/rules.md).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

__all__ = [
    "Action",
    "CreateRecordAction",
    "CreateTaskAction",
    "DateTrigger",
    "NotifyAction",
    "Recipient",
    "RecordQuery",
    "RecordTrigger",
    "RejectAction",
    "RuleSpec",
    "ScheduleTrigger",
    "SetAction",
    "StartFlowAction",
    "CreateLinkAction",
    "Trigger",
    "UpdateRecordsAction",
    "WebhookAction",
]

Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
#: A template (Jinja2 text) or a map locale -> template.
Template: TypeAlias = str | dict[str, str]
RecordEvent: TypeAlias = Literal["created", "updated", "deleted"]

_DELAY_AFTER = "Delay the action by this ISO 8601 duration after the rule runs ('P1D', 'PT2H')."
_DELAY_AT = "Delay the action until the datetime this JsonLogic expression gives."


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


# ---------------------------------------------------------------------------------------
# Triggers
# ---------------------------------------------------------------------------------------


class RecordTrigger(_Model):
    """A record of ``form`` was created, updated or deleted."""

    form: Key = Field(description="Key of the form whose records trigger the rule.")
    event: RecordEvent = Field(description="created, updated or deleted.")
    fields: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Only when at least one of these fields changed (created: has a value).",
    )
    to: Any = Field(
        default=None,
        description=(
            "With 'fields': only when one of them changed to this value, or to one of these "
            "values when a list is given."
        ),
    )


class ScheduleTrigger(_Model):
    """On a schedule in the clinic's time zone, for each record of ``form`` matching ``filter``."""

    form: Key = Field(description="Key of the form whose records the schedule visits.")
    cron: str | None = Field(
        default=None, description="Five-field cron expression ('0 9 * * mon-fri')."
    )
    at: str | None = Field(default=None, description="Every day at this time ('09:00').")
    filter: Any = Field(
        default=None,
        description="JsonLogic over the form's fields selecting the records (compiled to SQL).",
    )
    late: str = Field(
        default="run",
        description=(
            "When the worker comes late (after downtime): 'run' fires however late; 'skip' "
            "fires only within 15 minutes of the moment; an ISO 8601 duration ('PT6H', 'P1D') "
            "fires only within that much of it. A skipped moment is not made up (a yearly "
            "one waits for next year)."
        ),
    )


class DateTrigger(_Model):
    """A moment relative to a date or datetime field of each record of ``form``."""

    form: Key = Field(description="Key of the form whose records carry the date.")
    field: str = Field(description="The date or datetime field the moment is relative to.")
    offset: str = Field(
        default="P0D", description="ISO 8601 duration from the date ('P3D', '-P1D', 'PT24H')."
    )
    at: str | None = Field(
        default=None,
        description=(
            "Time of day in the clinic's zone ('09:00'); without it a date field means "
            "00:00 and a datetime field its own moment."
        ),
    )
    every_year: bool = Field(
        default=False, description="Repeat every year on the date's anniversary (birthdays)."
    )
    late: str = Field(
        default="run",
        description=(
            "When the worker comes late (after downtime): 'run' fires however late; 'skip' "
            "fires only within 15 minutes of the moment; an ISO 8601 duration ('PT6H', 'P1D') "
            "fires only within that much of it. A skipped moment is not made up (a yearly "
            "one waits for next year)."
        ),
    )


def _trigger_kind(value: Any) -> str:
    keys = value if isinstance(value, dict) else vars(value) if isinstance(value, _Model) else {}
    if "event" in keys:
        return "record"
    if "field" in keys:
        return "date"
    return "schedule"


Trigger: TypeAlias = Annotated[
    Annotated[RecordTrigger, Tag("record")]
    | Annotated[ScheduleTrigger, Tag("schedule")]
    | Annotated[DateTrigger, Tag("date")],
    Discriminator(_trigger_kind),
]


# ---------------------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------------------


class _Action(_Model):
    after: str | None = Field(default=None, description=_DELAY_AFTER)
    at: Any = Field(default=None, description=_DELAY_AT)


class SetAction(_Action):
    """Set fields of the triggering record (before it is stored)."""

    type: Literal["set"] = Field(description="Action type.")
    values: dict[str, Any] = Field(
        min_length=1, description="Field key -> JsonLogic expression giving the new value."
    )


class RecordQuery(_Model):
    """Records of another (or the same) form selected by a filter, run by the platform in SQL."""

    form: Key = Field(description="Key of the form whose records are searched.")
    filter: Any = Field(
        description=(
            "JsonLogic over that form's fields (compiled to SQL); dotted variables "
            "'record.x', 'old.x', 'user.x' are replaced by the triggering values first."
        )
    )


class RejectAction(_Model):
    """Refuse the write with a message (a validation rule); the platform answers 422.

    With ``exists`` the rejection is conditional on a query the engine cannot run: the
    platform rejects only if a record matches (e.g. an overlapping appointment).
    """

    type: Literal["reject"] = Field(description="Action type.")
    message: Template = Field(description="Why the write is refused; text or locale -> text.")
    field: str | None = Field(
        default=None, description="The field the message is about (the 422 points at it)."
    )
    exists: RecordQuery | None = Field(
        default=None,
        description="Reject only if a record matches this query (run in the write's transaction).",
    )
    after: None = Field(default=None, description="Not allowed: a rejection cannot wait.")
    at: None = Field(default=None, description="Not allowed: a rejection cannot wait.")


class CreateRecordAction(_Action):
    """Create a record of ``form``."""

    type: Literal["create_record"] = Field(description="Action type.")
    form: Key = Field(description="Key of the form of the new record.")
    values: dict[str, Any] = Field(
        default={}, description="Field key -> JsonLogic expression giving its value."
    )


class UpdateRecordsAction(_Action):
    """Set fields of every record of ``form`` matching ``filter``."""

    type: Literal["update_records"] = Field(description="Action type.")
    form: Key = Field(description="Key of the form whose records are updated.")
    filter: Any = Field(
        description=(
            "JsonLogic over the target form's fields (compiled to SQL); dotted variables "
            "'record.x', 'old.x', 'user.x' are replaced by the triggering values first."
        )
    )
    values: dict[str, Any] = Field(
        min_length=1, description="Field key -> JsonLogic expression giving the new value."
    )


class CreateTaskAction(_Action):
    """Put a task in a role's or a user's inbox, linked to the triggering record."""

    type: Literal["create_task"] = Field(description="Action type.")
    role: str | None = Field(default=None, description="Assign to anyone with this role.")
    user: Any = Field(default=None, description="JsonLogic giving the assigned user's id.")
    field: str | None = Field(
        default=None,
        description=(
            "Assign to the user of the staff record this relation field of the record points "
            "at (its form has a 'user_field')."
        ),
    )
    where: Any = Field(
        default=None,
        description=(
            "With 'role': only the role's users for whom this JsonLogic is true. It reads "
            "the candidate user's attributes as 'user.<attribute>' ('user.username' too) and "
            "the triggering record as 'record.<field>' (e.g. the user's branch is the "
            "record's branch). Nobody matching: the task waits, unassigned, for an admin."
        ),
    )
    title: Template = Field(description="Task title (Jinja2 template, or locale -> template).")
    description: Template | None = Field(default=None, description="Longer text (template).")
    due: Any = Field(
        default=None,
        description=(
            "When the task is due: an ISO 8601 duration from now ('P2D') or a JsonLogic "
            "expression giving a date or datetime."
        ),
    )
    done_when: RecordQuery | None = Field(
        default=None,
        description=(
            "The task closes itself when a record of this form matching the filter is "
            "created or updated (e.g. the survey arrives): the filter's 'record.x' are the "
            "triggering record's values."
        ),
    )


class Recipient(_Model):
    """Who a notification goes to: exactly one of role, user, address, field."""

    role: str | None = Field(default=None, description="Everyone with this role.")
    user: Any = Field(default=None, description="JsonLogic giving a user id.")
    address: Any = Field(
        default=None,
        description="JsonLogic giving an e-mail address or phone number (e.g. record.phone).",
    )
    field: str | None = Field(
        default=None,
        description=(
            "A relation field of the record pointing at a staff record (a form with a "
            "'user_field'): that staff member's user (e.g. the visit's 'doctor')."
        ),
    )


class NotifyAction(_Action):
    """Send a message through a channel; delivered by the outbox with retries."""

    type: Literal["notify"] = Field(description="Action type.")
    channel: Literal["in_app", "email", "sms_gateway"] = Field(
        description="in_app (the inbox), email (SMTP) or sms_gateway (the configured HTTP gateway)."
    )
    recipients: list[Recipient] = Field(min_length=1, description="Who receives it.")
    subject: Template | None = Field(
        default=None, description="Subject (e-mail, in-app title): template or locale map."
    )
    template: Template = Field(
        description="Message body: Jinja2 template, or locale -> template ('zh-CN', 'en')."
    )


class WebhookAction(_Action):
    """Call an HTTP endpoint; delivered by the outbox with retries."""

    type: Literal["webhook"] = Field(description="Action type.")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(
        default="POST", description="HTTP method."
    )
    url: str = Field(description="http:// or https:// URL.")
    headers: dict[str, str] = Field(
        default={}, description="Header name -> value (each value a Jinja2 template)."
    )
    body: Any = Field(
        default=None,
        description="JSON body; every string in it is a Jinja2 template rendered at delivery.",
    )


class StartFlowAction(_Action):
    """Start one of the app's flows on the triggering record (docs/flows.md)."""

    type: Literal["start_flow"] = Field(description="Action type.")
    flow: Key = Field(description="Key of the flow; it must run on the trigger's form.")
    vars: dict[str, Any] = Field(
        default={}, description="Starting variables: name -> JsonLogic over the rule's context."
    )


class CreateLinkAction(_Action):
    """Publish a form as a one-submission public link (docs/rules.md): its URL is
    ``{{ links.<as> }}`` in the templates of the same rule's later actions."""

    type: Literal["create_link"] = Field(description="Action type.")
    form: Key = Field(description="Key of the form the link's holder fills in.")
    bind: str | None = Field(
        default=None,
        description="A relation field of that form pointing at the trigger's form: set by the "
        "link to the triggering record.",
    )
    fields: list[str] | None = Field(
        default=None,
        min_length=1,
        description="The fields the holder fills in (default: every fillable field).",
    )
    expires: str = Field(
        default="P7D", description="ISO 8601 duration until the link expires (at most 90 days)."
    )
    name: Key = Field(alias="as", description="Name of the URL in later templates: links.<as>.")


Action: TypeAlias = Annotated[
    SetAction
    | RejectAction
    | CreateRecordAction
    | UpdateRecordsAction
    | CreateTaskAction
    | NotifyAction
    | WebhookAction
    | StartFlowAction
    | CreateLinkAction,
    Field(discriminator="type"),
]


class RuleSpec(_Model):
    """One automation rule of an app."""

    key: Key = Field(description="Identifier of the rule within its app.")
    label: str | dict[str, str] | None = Field(default=None, description="Name of the rule.")
    enabled: bool = Field(default=True, description="A disabled rule never runs.")
    priority: int = Field(
        default=0,
        description="Rules on the same event run in descending priority, then by key.",
    )
    on: Trigger = Field(description="What makes the rule run.")
    condition: Any = Field(
        default=True,
        alias="if",
        description="JsonLogic over record, old, changed, user, now; actions run when truthy.",
    )
    then: list[Action] = Field(min_length=1, description="Actions, in order.")
