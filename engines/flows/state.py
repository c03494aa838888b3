"""A flow instance's runtime state, and what one advance of it wants done.

The state is small on purpose: the *live* tokens (each waiting at a node for a person, a
timer, a message, a subflow or the other branches of a join), the variables, the last
result of each step, and the messages nobody waited for yet. Finished work is not kept
here; it is in the effects each advance returns, which the platform appends to the
instance's history. So an advance costs what the step costs, however long the instance has
lived, and history can be pruned without touching the state.

* :class:`InstanceState` goes through :meth:`~InstanceState.to_dict` /
  :func:`state_from_dict` with a format key (``formloom.flow-state/1``), as SpiffWorkflow's
  serializer does; an unknown or newer format raises :class:`StateFormatError`.
* Identifiers of tokens, tasks, timers and subflows are ``<instance id>.<n>`` from the
  state's counter: an advance is deterministic, so the same state, event and context give
  the same effects (what makes ``simulate`` the real run without writes).
* Effects are frozen dataclasses, one class per kind (:data:`Effect`); each has ``kind`` and
  ``to_dict``. Times are aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeAlias

from formloom.engines.logic import LogicError
from formloom.engines.logic.dates import format_datetime, parse_temporal
from formloom.engines.rules.actions import PlannedAction
from formloom.engines.rules.related import RELATED

__all__ = [
    "STATE_FORMAT",
    "ActionsPlanned",
    "Candidates",
    "Effect",
    "InstanceEnded",
    "InstanceState",
    "MultiState",
    "NodeEntered",
    "RecordSet",
    "StateFormatError",
    "Status",
    "StepCompleted",
    "SubflowCancelled",
    "SubflowStarted",
    "TaskClosed",
    "TaskCompleted",
    "TaskOpened",
    "TaskReassigned",
    "TaskReminded",
    "TimerArmed",
    "TimerCancelled",
    "Token",
    "state_from_dict",
]

_FORMAT_NAME = "formloom.flow-state"
_VERSION = 1
STATE_FORMAT = f"{_FORMAT_NAME}/{_VERSION}"

Status: TypeAlias = Literal["running", "completed", "terminated", "cancelled"]
_STATUSES = frozenset({"running", "completed", "terminated", "cancelled"})


class StateFormatError(ValueError):
    """A stored instance state that this version cannot read."""


def _time(value: datetime | None) -> str | None:
    return format_datetime(value) if value is not None else None


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        moment = parse_temporal(value, "state")
    except LogicError as error:
        raise ValueError(str(error)) from None
    if not isinstance(moment, datetime):
        raise ValueError(f"expected a datetime, got {value!r}")
    return moment


# A damaged state must fail as StateFormatError, not load as something else: a JSON array
# where an object belongs (or the reverse) is refused, not converted.
def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be an object, not {type(value).__name__}")
    return value


def _array(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"{what} must be an array, not {type(value).__name__}")
    return list(value)


@dataclass(frozen=True)
class Candidates:
    """Who may act on a task: anyone with one of ``roles`` or named in ``users``."""

    roles: tuple[str, ...] = ()
    users: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.roles and not self.users

    def to_dict(self) -> dict[str, Any]:
        return {"roles": list(self.roles), "users": list(self.users)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidates:
        data = _object(data, "candidates")
        return cls(
            tuple(_array(data.get("roles", ()), "candidates.roles")),
            tuple(_array(data.get("users", ()), "candidates.users")),
        )


@dataclass
class TaskRef:
    """An open task as its token knows it: enough to escalate it and to count it."""

    due: datetime | None = None
    escalation: int = 0  # the next escalation to fire
    item: Any = None
    candidates: Candidates = field(default_factory=Candidates)

    def to_dict(self) -> dict[str, Any]:
        return {
            "due": _time(self.due),
            "escalation": self.escalation,
            "item": self.item,
            "candidates": self.candidates.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskRef:
        data = _object(data, "a task")
        return cls(
            due=_parse_time(data.get("due")),
            escalation=int(data.get("escalation", 0)),
            item=data.get("item"),
            candidates=Candidates.from_dict(data.get("candidates", {})),
        )


@dataclass
class MultiState:
    """A node doing several things at once (one per item, or per person): how many there
    are, how many must finish, and what came back."""

    total: int
    needed: int
    done: int = 0
    outcomes: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "needed": self.needed,
            "done": self.done,
            "outcomes": list(self.outcomes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MultiState:
        data = _object(data, "multi")
        return cls(
            total=int(data["total"]),
            needed=int(data["needed"]),
            done=int(data.get("done", 0)),
            outcomes=_array(data.get("outcomes", []), "multi.outcomes"),
        )


@dataclass
class Token:
    """A live token: at ``node``, waiting. A join's token remembers by which incoming edges
    tokens arrived (``arrived``: edge index -> count)."""

    id: str
    node: str
    tasks: dict[str, TaskRef] = field(default_factory=dict)
    timers: dict[str, str] = field(default_factory=dict)  # timer key -> purpose
    children: list[str] = field(default_factory=list)  # subflow instance keys
    arrived: dict[int, int] = field(default_factory=dict)
    multi: MultiState | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "node": self.node,
            "tasks": {key: ref.to_dict() for key, ref in self.tasks.items()},
            "timers": dict(self.timers),
            "children": list(self.children),
            "arrived": {str(edge): count for edge, count in self.arrived.items()},
            "multi": self.multi.to_dict() if self.multi is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Token:
        data = _object(data, "a token")
        multi = data.get("multi")
        tasks = _object(data.get("tasks", {}), "token.tasks")
        arrived = _object(data.get("arrived", {}), "token.arrived")
        return cls(
            id=str(data["id"]),
            node=str(data["node"]),
            tasks={key: TaskRef.from_dict(ref) for key, ref in tasks.items()},
            timers={
                key: str(purpose)
                for key, purpose in _object(data.get("timers", {}), "token.timers").items()
            },
            children=_array(data.get("children", []), "token.children"),
            arrived={int(edge): int(count) for edge, count in arrived.items()},
            multi=MultiState.from_dict(multi) if multi is not None else None,
        )


@dataclass
class InstanceState:
    """Everything an advance needs of an instance (see the module's docstring)."""

    id: str
    flow: str
    status: Status = "running"
    vars: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: list[Token] = field(default_factory=list)
    mailbox: list[dict[str, Any]] = field(default_factory=list)
    #: Tasks and subflows left open when their step moved on (multi with cancel_rest
    #: false): task or subflow instance -> node
    strays: dict[str, str] = field(default_factory=dict)
    starter: str | None = None
    last_actor: str | None = None
    seq: int = 0

    def next_id(self) -> str:
        self.seq += 1
        return f"{self.id}.{self.seq}"

    def token_with_task(self, task: str) -> Token | None:
        for token in self.tokens:
            if task in token.tasks:
                return token
        return None

    def token_with_timer(self, timer: str) -> Token | None:
        for token in self.tokens:
            if timer in token.timers:
                return token
        return None

    def token_with_child(self, child: str) -> Token | None:
        for token in self.tokens:
            if child in token.children:
                return token
        return None

    def open_tasks(self) -> list[str]:
        return [key for token in self.tokens for key in token.tasks]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "id": self.id,
            "flow": self.flow,
            "status": self.status,
            "vars": self.vars,
            "steps": self.steps,
            "tokens": [token.to_dict() for token in self.tokens],
            "mailbox": self.mailbox,
            "strays": self.strays,
            "starter": self.starter,
            "last_actor": self.last_actor,
            "seq": self.seq,
        }


def state_from_dict(data: Mapping[str, Any]) -> InstanceState:
    """A stored state, in any format this version reads."""
    if not isinstance(data, Mapping):
        raise StateFormatError("a flow state is a JSON object")
    name, _, version = str(data.get("format", "")).partition("/")
    if name != _FORMAT_NAME or not version.isdigit():
        raise StateFormatError(f"not a flow state: format {data.get('format')!r}")
    if int(version) < 1:
        raise StateFormatError(f"not a flow state: format {data.get('format')!r}")
    if int(version) > _VERSION:
        raise StateFormatError(
            f"flow state format {version} is newer than this version reads ({_VERSION})"
        )
    try:
        status = data["status"]
        if status not in _STATUSES:
            raise ValueError(f"unknown status {status!r}")
        steps = _object(data.get("steps", {}), "steps")
        return InstanceState(
            id=str(data["id"]),
            flow=str(data["flow"]),
            status=status,
            vars=dict(_object(data.get("vars", {}), "vars")),
            steps={key: dict(_object(value, f"step {key}")) for key, value in steps.items()},
            tokens=[Token.from_dict(token) for token in _array(data.get("tokens", []), "tokens")],
            mailbox=[
                dict(_object(message, "a message"))
                for message in _array(data.get("mailbox", []), "mailbox")
            ],
            strays={
                key: str(node) for key, node in _object(data.get("strays", {}), "strays").items()
            },
            starter=data.get("starter"),
            last_actor=data.get("last_actor"),
            seq=int(data.get("seq", 0)),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise StateFormatError(f"damaged flow state: {error}") from error


# ---------------------------------------------------------------------------------------
# Effects: what an advance wants done, in order (also the instance's history)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Effect:
    kind: ClassVar[str]

    def data(self) -> dict[str, Any]:
        return {}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.data()}


@dataclass(frozen=True, kw_only=True)
class NodeEntered(_Effect):
    """A token reached a node."""

    kind: ClassVar[str] = "node_entered"
    node: str
    type: str

    def data(self) -> dict[str, Any]:
        return {"node": self.node, "type": self.type}


@dataclass(frozen=True, kw_only=True)
class TaskOpened(_Effect):
    """Put a task in the inbox of its candidates (``assignee`` when it is one person)."""

    kind: ClassVar[str] = "task_opened"
    task: str
    node: str
    title: Any  # a template (text or locale -> text), rendered by the host
    description: Any
    candidates: Candidates
    assignee: str | None
    claim: bool  # must be claimed before it can be completed
    due: datetime | None
    item: Any
    outcomes: tuple[str, ...]
    edit: tuple[str, ...]
    required: tuple[str, ...]
    hide: tuple[str, ...]
    context: Mapping[str, Any]

    def data(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "node": self.node,
            "title": self.title,
            "candidates": self.candidates.to_dict(),
            "assignee": self.assignee,
            "claim": self.claim,
            "due": _time(self.due),
            "item": self.item,
            "outcomes": list(self.outcomes),
        }


@dataclass(frozen=True, kw_only=True)
class TaskCompleted(_Effect):
    """Someone (or an escalation: ``actor`` None) finished a task with an outcome."""

    kind: ClassVar[str] = "task_completed"
    task: str
    node: str
    outcome: str
    actor: str | None
    comment: str | None

    def data(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "node": self.node,
            "outcome": self.outcome,
            "actor": self.actor,
            "comment": self.comment,
        }


@dataclass(frozen=True, kw_only=True)
class TaskClosed(_Effect):
    """A task is no longer needed (``withdrawn``), or was returned to an earlier step."""

    kind: ClassVar[str] = "task_closed"
    task: str
    node: str
    reason: Literal["withdrawn", "returned"]

    def data(self) -> dict[str, Any]:
        return {"task": self.task, "node": self.node, "reason": self.reason}


@dataclass(frozen=True, kw_only=True)
class TaskReassigned(_Effect):
    """An escalation moved an overdue task to other people."""

    kind: ClassVar[str] = "task_reassigned"
    task: str
    node: str
    candidates: Candidates
    assignee: str | None

    def data(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "node": self.node,
            "candidates": self.candidates.to_dict(),
            "assignee": self.assignee,
        }


@dataclass(frozen=True, kw_only=True)
class TaskReminded(_Effect):
    """An escalation reminds the people of an overdue task."""

    kind: ClassVar[str] = "task_reminded"
    task: str
    node: str
    candidates: Candidates

    def data(self) -> dict[str, Any]:
        return {"task": self.task, "node": self.node, "candidates": self.candidates.to_dict()}


@dataclass(frozen=True, kw_only=True)
class TimerArmed(_Effect):
    """Call back with :class:`~.engine.TimerFired` at ``due``."""

    kind: ClassVar[str] = "timer_armed"
    timer: str
    node: str
    due: datetime
    purpose: str

    def data(self) -> dict[str, Any]:
        return {
            "timer": self.timer,
            "node": self.node,
            "due": format_datetime(self.due),
            "purpose": self.purpose,
        }


@dataclass(frozen=True, kw_only=True)
class TimerCancelled(_Effect):
    """A timer that is no longer needed."""

    kind: ClassVar[str] = "timer_cancelled"
    timer: str
    node: str

    def data(self) -> dict[str, Any]:
        return {"timer": self.timer, "node": self.node}


@dataclass(frozen=True, kw_only=True)
class ActionsPlanned(_Effect):
    """An action node's rule actions, planned by the rule engine (set actions already
    applied to the record the flow sees; :class:`RecordSet` says which values).

    The timeline entry leaves out the related records an action's template context
    holds (``context.related``): the actions carry them to delivery, but a reader of the
    instance may not be allowed to read those records."""

    kind: ClassVar[str] = "actions_planned"
    node: str
    actions: tuple[PlannedAction, ...]

    def data(self) -> dict[str, Any]:
        return {"node": self.node, "actions": [_unrelated(a.summary()) for a in self.actions]}


def _unrelated(summary: dict[str, Any]) -> dict[str, Any]:
    """A planned action's summary without the related records of its context."""
    data = summary.get("data")
    if not isinstance(data, Mapping):
        return summary
    context = data.get("context")
    if not isinstance(context, Mapping) or RELATED not in context:
        return summary
    trimmed = {k: v for k, v in context.items() if k != RELATED}
    return {**summary, "data": {**data, "context": trimmed}}


@dataclass(frozen=True, kw_only=True)
class RecordSet(_Effect):
    """Write these values to the flow's record."""

    kind: ClassVar[str] = "record_set"
    node: str
    values: Mapping[str, Any]

    def data(self) -> dict[str, Any]:
        return {"node": self.node, "values": dict(self.values)}


@dataclass(frozen=True, kw_only=True)
class SubflowStarted(_Effect):
    """Start ``flow`` on the same record as instance ``child``; when it ends, advance this
    instance with :class:`~.engine.SubflowEnded`."""

    kind: ClassVar[str] = "subflow_started"
    child: str
    node: str
    flow: str
    vars: Mapping[str, Any]

    def data(self) -> dict[str, Any]:
        return {"child": self.child, "node": self.node, "flow": self.flow, "vars": dict(self.vars)}


@dataclass(frozen=True, kw_only=True)
class SubflowCancelled(_Effect):
    """Cancel the subflow instance ``child`` (its work was withdrawn)."""

    kind: ClassVar[str] = "subflow_cancelled"
    child: str
    node: str

    def data(self) -> dict[str, Any]:
        return {"child": self.child, "node": self.node}


@dataclass(frozen=True, kw_only=True)
class StepCompleted(_Effect):
    """A waiting node finished and its token moved on (``outcome``: the task outcome, or
    ``met`` / ``timeout`` / ``fired`` / ``ended``)."""

    kind: ClassVar[str] = "step_completed"
    node: str
    outcome: str | None

    def data(self) -> dict[str, Any]:
        return {"node": self.node, "outcome": self.outcome}


@dataclass(frozen=True, kw_only=True)
class InstanceEnded(_Effect):
    """The instance is over."""

    kind: ClassVar[str] = "instance_ended"
    status: Status
    reason: str | None = None

    def data(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason}


Effect: TypeAlias = (
    NodeEntered
    | TaskOpened
    | TaskCompleted
    | TaskClosed
    | TaskReassigned
    | TaskReminded
    | TimerArmed
    | TimerCancelled
    | ActionsPlanned
    | RecordSet
    | SubflowStarted
    | SubflowCancelled
    | StepCompleted
    | InstanceEnded
)
