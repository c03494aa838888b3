"""Planned actions: what a rule wants done, resolved to data, one class per kind.

Evaluating a rule turns each action of its ``then`` into a planned action: its expressions
evaluated, its filters' ``record.x`` made literals, its templates left for delivery. The
platform carries them out and, for delayed and outbound ones, *stores* them first (a timer's
payload, an outbox message), so a planned action is state that must load again after an
upgrade — the reason it goes through :meth:`~PlannedActionBase.to_dict` and
:func:`action_from_dict` with a version key, as SpiffWorkflow's serializer does.

* Every kind shares the common part: ``rule``, ``index`` (its position in the rule's
  ``then``), ``idempotency_key`` and ``due`` (delayed actions only). ``mode`` follows from
  the kind and ``due``: ``delayed`` with a due moment, else ``sync`` (set, reject, create and
  update records, create task) or ``outbound`` (notify, webhook).
* :data:`PlannedAction` is the closed union of the nine classes; hosts dispatch on the class.
* The stored form is ``{"format": "formloom.plan-action/3", "rule", "index", "type", "mode",
  "due", "idempotency_key", "data": {...}}`` (``due`` in whole UTC seconds, ``mode`` written
  for readers and recomputed on load). Format 1 is the same without ``format``: what the
  engine wrote before formats had versions. Format 2 is format 3 without a webhook's
  ``typed`` flag: its body's strings were all rendered as text, so a format-2 webhook loads
  with ``typed`` false and is delivered as it would have been. :func:`action_from_dict`
  reads every format up to the current one, migrating one version step at a time; an
  unknown or newer format raises :class:`PlanFormatError`.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeAlias, TypeVar

from formloom.engines.logic import LogicError
from formloom.engines.logic.dates import format_datetime, parse_temporal

__all__ = [
    "PLAN_ACTION_FORMAT",
    "Mode",
    "PlanFormatError",
    "PlannedAction",
    "PlannedActionBase",
    "PlannedCreateLink",
    "PlannedCreateRecord",
    "PlannedNotify",
    "PlannedReject",
    "PlannedSet",
    "PlannedStartFlow",
    "PlannedTask",
    "PlannedUpdateRecords",
    "PlannedWebhook",
    "action_from_dict",
]

Mode: TypeAlias = Literal["sync", "outbound", "delayed"]

_FORMAT_NAME = "formloom.plan-action"
_VERSION = 3
PLAN_ACTION_FORMAT = f"{_FORMAT_NAME}/{_VERSION}"


class PlanFormatError(ValueError):
    """A stored planned action that this version cannot read (unknown, newer or damaged)."""


_A = TypeVar("_A", bound="PlannedActionBase")


@dataclass(frozen=True, kw_only=True)
class PlannedActionBase:
    """The part every planned action has; a concrete action is one of :data:`PlannedAction`."""

    type: ClassVar[str]
    #: The mode of the kind when it is not delayed.
    immediate: ClassVar[Mode]

    rule: str
    index: int  # position in the rule's ``then``
    idempotency_key: str
    due: datetime | None = None  # delayed actions only

    @property
    def mode(self) -> Mode:
        return "delayed" if self.due is not None else self.immediate

    def data(self) -> dict[str, Any]:
        """The kind's own fields, as stored under ``"data"``."""
        raise NotImplementedError  # pragma: no cover - every kind defines it

    def summary(self) -> dict[str, Any]:
        """The action as the rule log and the dry run show it: the stored form without its
        format key (so these reports read as they always have)."""
        return {
            "rule": self.rule,
            "index": self.index,
            "type": self.type,
            "mode": self.mode,
            "due": format_datetime(self.due) if self.due is not None else None,
            "idempotency_key": self.idempotency_key,
            "data": self.data(),
        }

    def to_dict(self) -> dict[str, Any]:
        """The stored form, in the current format (see the module's docstring)."""
        return {"format": PLAN_ACTION_FORMAT, **self.summary()}

    @classmethod
    def from_dict(cls: builtins.type[_A], data: Mapping[str, Any]) -> _A:
        """A stored action of this class, in any format this version reads."""
        action = action_from_dict(data)
        if not isinstance(action, cls):
            raise PlanFormatError(f"expected a planned {cls.__name__} action, got {action.type!r}")
        return action


@dataclass(frozen=True, kw_only=True)
class PlannedSet(PlannedActionBase):
    """Set fields of the record: applied by the engine unless delayed."""

    type: ClassVar[str] = "set"
    immediate: ClassVar[Mode] = "sync"

    values: dict[str, Any]

    def data(self) -> dict[str, Any]:
        return {"values": self.values}


@dataclass(frozen=True, kw_only=True)
class PlannedReject(PlannedActionBase):
    """Refuse the write; with ``exists`` (``{"form", "filter"}``, the filter's ``record.x``
    already literals) only if the platform's query finds such a record."""

    type: ClassVar[str] = "reject"
    immediate: ClassVar[Mode] = "sync"

    message: str | dict[str, str]
    field: str | None = None
    exists: dict[str, Any] | None = None

    def data(self) -> dict[str, Any]:
        return {"message": self.message, "field": self.field, "exists": self.exists}


@dataclass(frozen=True, kw_only=True)
class PlannedCreateRecord(PlannedActionBase):
    type: ClassVar[str] = "create_record"
    immediate: ClassVar[Mode] = "sync"

    form: str
    values: dict[str, Any]

    def data(self) -> dict[str, Any]:
        return {"form": self.form, "values": self.values}


@dataclass(frozen=True, kw_only=True)
class PlannedUpdateRecords(PlannedActionBase):
    """Update the records of ``form`` that ``filter`` (``record.x`` already literals)
    selects."""

    type: ClassVar[str] = "update_records"
    immediate: ClassVar[Mode] = "sync"

    form: str
    filter: Any
    values: dict[str, Any]

    def data(self) -> dict[str, Any]:
        return {"form": self.form, "filter": self.filter, "values": self.values}


@dataclass(frozen=True, kw_only=True)
class PlannedTask(PlannedActionBase):
    """Create a task. ``title``/``description`` are templates rendered with ``context``;
    ``task_due`` is the task's own due date or datetime (stored as ``data["due"]``), not
    the moment a delayed action fires; ``form``/``record_id`` name the triggering record."""

    type: ClassVar[str] = "create_task"
    immediate: ClassVar[Mode] = "sync"

    role: str | None
    user: Any
    title: str | dict[str, str]
    description: str | dict[str, str] | None
    task_due: str | None
    form: str
    record_id: str | None
    context: dict[str, Any]
    #: ``{"form", "filter"}`` (the filter's ``record.x`` already literals): the task closes
    #: itself when such a record is written.
    done_when: dict[str, Any] | None = None
    #: With ``role``: which of the role's users, JsonLogic over ``user.x`` (the candidate's
    #: attributes) with the triggering record's ``record.x`` already literals.
    where: Any = None

    def data(self) -> dict[str, Any]:
        closing = {"done_when": self.done_when} if self.done_when is not None else {}
        narrowed = {"where": self.where} if self.where is not None else {}
        return {
            **closing,
            **narrowed,
            "role": self.role,
            "user": self.user,
            "title": self.title,
            "description": self.description,
            "due": self.task_due,
            "form": self.form,
            "record_id": self.record_id,
            "context": self.context,
        }


@dataclass(frozen=True, kw_only=True)
class PlannedNotify(PlannedActionBase):
    """Send a message; each recipient is ``{"role"}``, ``{"user"}`` or ``{"address"}``.
    Templates are rendered at delivery with ``context``."""

    type: ClassVar[str] = "notify"
    immediate: ClassVar[Mode] = "outbound"

    channel: str
    recipients: list[dict[str, Any]]
    subject: str | dict[str, str] | None
    template: str | dict[str, str]
    context: dict[str, Any]

    def data(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "recipients": self.recipients,
            "subject": self.subject,
            "template": self.template,
            "context": self.context,
        }


@dataclass(frozen=True, kw_only=True)
class PlannedWebhook(PlannedActionBase):
    """Call a URL; header values and every string in ``body`` are templates. With
    ``typed`` (every webhook planned since format 3), a body string that is exactly one
    expression, ``"{{ record.pain }}"``, gives the value with its JSON type (number,
    boolean, null, object, list); without it (format 2 and before), every string is text."""

    type: ClassVar[str] = "webhook"
    immediate: ClassVar[Mode] = "outbound"

    method: str
    url: str
    headers: dict[str, str]
    body: Any
    context: dict[str, Any]
    typed: bool = True

    def data(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "headers": self.headers,
            "body": self.body,
            "context": self.context,
            "typed": self.typed,
        }


@dataclass(frozen=True, kw_only=True)
class PlannedStartFlow(PlannedActionBase):
    """Start the app's flow ``flow`` on the triggering record (``form``/``record_id``) with
    the starting variables ``vars`` (already evaluated)."""

    type: ClassVar[str] = "start_flow"
    immediate: ClassVar[Mode] = "sync"

    flow: str
    form: str
    record_id: str | None
    vars: dict[str, Any]

    def data(self) -> dict[str, Any]:
        return {"flow": self.flow, "form": self.form, "record_id": self.record_id,
                "vars": self.vars}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class PlannedCreateLink(PlannedActionBase):
    """Create a one-submission public link to ``form``, bound (``bind``, a relation field)
    to the triggering record ``record_id``, for ``fields`` (``None``: every fillable one),
    expiring ``expires`` (ISO 8601 duration) after it is made; its URL is ``links.<name>``
    in the same rule run's later templates. The plan holds no token: the platform makes
    the secret when it carries the action out (the secret is never in a plan)."""

    type: ClassVar[str] = "create_link"
    immediate: ClassVar[Mode] = "sync"

    form: str
    bind: str | None
    record_id: str | None
    fields: list[str] | None
    expires: str
    name: str

    def data(self) -> dict[str, Any]:
        return {"form": self.form, "bind": self.bind, "record_id": self.record_id,
                "fields": self.fields, "expires": self.expires, "as": self.name}  # fmt: skip


PlannedAction: TypeAlias = (
    PlannedSet
    | PlannedReject
    | PlannedCreateRecord
    | PlannedUpdateRecords
    | PlannedTask
    | PlannedNotify
    | PlannedWebhook
    | PlannedStartFlow
    | PlannedCreateLink
)

# ---------------------------------------------------------------------------------------
# Loading: versions and their migrations
# ---------------------------------------------------------------------------------------


def _from_1(data: dict[str, Any]) -> dict[str, Any]:
    """Format 1 (no ``format`` key) to 2: the layout is unchanged, the version is added."""
    return {**data, "format": f"{_FORMAT_NAME}/2"}


def _from_2(data: dict[str, Any]) -> dict[str, Any]:
    """Format 2 to 3: a webhook's body strings were all text (``typed`` false)."""
    moved = {**data, "format": f"{_FORMAT_NAME}/3"}
    if moved.get("type") == "webhook" and isinstance(moved.get("data"), dict):
        moved["data"] = {**moved["data"], "typed": False}
    return moved


#: ``version -> step to version + 1``; a new format adds one step, and never edits one.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _from_1, 2: _from_2}


def _version(data: Mapping[str, Any]) -> int:
    if "format" not in data:
        return 1  # written before planned actions had a format
    name = data["format"]
    if isinstance(name, str) and name.startswith(f"{_FORMAT_NAME}/"):
        number = name[len(_FORMAT_NAME) + 1 :]
        if number.isdecimal() and number.isascii() and len(number) < 6:
            version = int(number)
            if version > _VERSION:
                raise PlanFormatError(
                    f"the planned action has format {name!r}, newer than this version of "
                    f"Formloom reads ({PLAN_ACTION_FORMAT})"
                )
            if version >= 1:
                return version
    raise PlanFormatError(f"not a planned action format: {name!r}")


def action_from_dict(data: Mapping[str, Any]) -> PlannedAction:
    """The planned action stored as ``data``, in the current format or any earlier one."""
    if not isinstance(data, Mapping):
        raise PlanFormatError(f"a planned action is an object, not {type(data).__name__}")
    current = dict(data)
    version = _version(current)
    while version < _VERSION:
        current = _MIGRATIONS[version](current)
        version += 1
    try:
        return _load(current)
    except (KeyError, TypeError) as error:
        problem = f"{type(error).__name__}: {error}"
        raise PlanFormatError(f"a damaged planned action: {problem}") from None


def _load(stored: dict[str, Any]) -> PlannedAction:
    kind = stored["type"]
    load = _LOADERS.get(kind) if isinstance(kind, str) else None
    if load is None:
        raise PlanFormatError(f"unknown planned action type {kind!r}")
    data = stored["data"]
    if not isinstance(data, dict):
        raise PlanFormatError(f"the {kind!r} action's data is not an object")
    index = stored["index"]
    if type(index) is not int:
        raise PlanFormatError(f"the action's index is not an integer: {index!r}")
    common: dict[str, Any] = {
        "rule": _text(stored, "rule"),
        "index": index,
        "idempotency_key": _text(stored, "idempotency_key"),
        "due": _moment(stored.get("due")),
    }
    return load(common, data)


def _text(stored: Mapping[str, Any], key: str) -> str:
    value = stored[key]
    if not isinstance(value, str):
        raise PlanFormatError(f"the action's {key} is not text: {value!r}")
    return value


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        moment = parse_temporal(value, "due")
    except LogicError as error:
        raise PlanFormatError(f"the action's due moment is not a datetime: {error}") from None
    if not isinstance(moment, datetime):
        raise PlanFormatError(f"the action's due moment is a date, not a datetime: {value!r}")
    return moment


_Loader: TypeAlias = Callable[[dict[str, Any], dict[str, Any]], PlannedAction]
_LOADERS: dict[str, _Loader] = {
    "set": lambda common, d: PlannedSet(**common, values=d["values"]),
    "reject": lambda common, d: PlannedReject(
        **common, message=d["message"], field=d.get("field"), exists=d.get("exists")
    ),
    "create_record": lambda common, d: PlannedCreateRecord(
        **common, form=d["form"], values=d["values"]
    ),
    "update_records": lambda common, d: PlannedUpdateRecords(
        **common, form=d["form"], filter=d["filter"], values=d["values"]
    ),
    "create_task": lambda common, d: PlannedTask(
        **common,
        role=d.get("role"),
        user=d.get("user"),
        title=d["title"],
        description=d.get("description"),
        task_due=d.get("due"),
        form=d["form"],
        record_id=d.get("record_id"),
        context=d.get("context") or {},
        done_when=d.get("done_when"),
        where=d.get("where"),
    ),
    "notify": lambda common, d: PlannedNotify(
        **common,
        channel=d["channel"],
        recipients=d["recipients"],
        subject=d.get("subject"),
        template=d["template"],
        context=d.get("context") or {},
    ),
    "start_flow": lambda common, d: PlannedStartFlow(
        **common,
        flow=d["flow"],
        form=d["form"],
        record_id=d.get("record_id"),
        vars=d.get("vars") or {},
    ),  # fmt: skip
    "create_link": lambda common, d: PlannedCreateLink(
        **common,
        form=d["form"],
        bind=d.get("bind"),
        record_id=d.get("record_id"),
        fields=d.get("fields"),
        expires=d.get("expires", "P7D"),
        name=d["as"],
    ),  # fmt: skip
    "webhook": lambda common, d: PlannedWebhook(
        **common,
        method=d.get("method", "POST"),
        url=d["url"],
        headers=d.get("headers") or {},
        body=d.get("body"),
        context=d.get("context") or {},
        typed=d.get("typed") is True,
    ),
}
