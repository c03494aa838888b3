"""Advancing a flow instance: one event in, the new state and its effects out.

:func:`advance` is the whole executor. The host (the platform, or :mod:`.simulate`) loads
an instance's :class:`~.state.InstanceState`, gives it an :data:`Event` (the flow started, a
task was completed or returned, a timer fired, a message arrived, the record changed, a
subflow ended, the instance was cancelled) with a :class:`Context` (the record, the clock,
the calendar, the people), and carries out the :class:`Advance` it gets back — in one
transaction, so an instance is always before or after a step, never in between.

How tokens move (docs/flows.md, "Semantics"):

* A token entering a node that does not wait (gateways, actions, cancel, end) passes
  through at once; the advance goes on until every token waits somewhere or is gone.
* A parallel join waits for a token on every incoming edge; an inclusive join waits until
  no live token can still reach it (checked when everything else has settled); an exclusive
  join passes every token on.
* A user task, timer, wait or subflow keeps its token until the event it waits for.
  Multi-instance nodes (``multi``, or ``mode`` all / N) count what finished against what
  is needed; a ``veto`` outcome finishes the step at once.
* The instance completes when no token is left; ``terminate`` and ``cancel_when`` end it at
  once, withdrawing every open task, timer and subflow.

Related records (``record.patient.name``, a ``{"field": "doctor"}`` recipient) are read from
``Context.related``, loaded by the host for what :func:`.related.reads` says the flow reads:
every expression reads through them, a task's template context and an action node's rule
event carry them.

Invariants: the engine reads no clock (``Context.now``), does no I/O, and never mutates the
state it is given (it works on a copy). Every failure the flow's author can cause raises
:class:`FlowRuntimeError` (the host rolls the step back and shows it); bad input from a
person (an outcome the task does not offer) raises :class:`FlowInputError`.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any, Protocol, TypeAlias

from formloom.engines.logic import LogicError, evaluate
from formloom.engines.logic.coercion import truthy
from formloom.engines.logic.dates import format_datetime, parse_temporal
from formloom.engines.rules.plan import Event as RuleEvent
from formloom.engines.rules.plan import evaluate_rule
from formloom.engines.rules.related import RELATED, read_related
from formloom.engines.rules.spec import RecordTrigger, RuleSpec
from formloom.engines.rules.timing import (
    InvalidTiming,
    add_duration,
    localize,
    parse_duration,
    zone_named,
)

from .calendar import BusinessCalendar
from .spec import (
    ActionNode,
    Assignee,
    CancelNode,
    Edge,
    EndNode,
    ExclusiveGateway,
    FlowSpec,
    InclusiveGateway,
    MultiInstance,
    Node,
    ParallelGateway,
    StartNode,
    SubflowNode,
    TerminateNode,
    TimerNode,
    Timing,
    UserTaskNode,
    WaitNode,
)
from .state import (
    ActionsPlanned,
    Candidates,
    Effect,
    InstanceEnded,
    InstanceState,
    MultiState,
    NodeEntered,
    RecordSet,
    StepCompleted,
    SubflowCancelled,
    SubflowStarted,
    TaskClosed,
    TaskCompleted,
    TaskOpened,
    TaskReassigned,
    TaskRef,
    TaskReminded,
    TimerArmed,
    TimerCancelled,
    Token,
)

__all__ = [
    "Advance",
    "Cancel",
    "Context",
    "Directory",
    "Event",
    "FlowInputError",
    "FlowRuntimeError",
    "MessageSent",
    "Person",
    "RecordChanged",
    "SignerAdded",
    "Start",
    "StaticDirectory",
    "SubflowEnded",
    "TaskDone",
    "TaskReturned",
    "TimerFired",
    "advance",
    "new_instance",
]

#: Node entries in one advance before the flow is taken to loop without waiting.
MAX_ENTRIES = 10_000
#: Messages kept for waits not reached yet (the oldest go first).
MAX_MAILBOX = 100


class FlowRuntimeError(Exception):
    """The flow cannot go on (no edge holds, an expression fails, a loop never waits)."""

    def __init__(self, node: str | None, message: str) -> None:
        super().__init__(f"{node}: {message}" if node else message)
        self.node = node
        self.message = message


class FlowInputError(ValueError):
    """An event the instance cannot take (an unknown task, an outcome not offered)."""

    def __init__(self, message: str, *, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------
# People
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A user as task assignment sees one: the name and the attributes (department, ...)."""

    name: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


class Directory(Protocol):
    """Who holds a role, and which user a staff record stands for (the host's lookups)."""

    def members(self, role: str) -> Sequence[Person]: ...

    def user_of(self, staff_record_id: str) -> str | None: ...


@dataclass(frozen=True)
class StaticDirectory:
    """A :class:`Directory` from plain data (tests and ``simulate``)."""

    roles: Mapping[str, Sequence[Person]] = field(default_factory=dict)
    staff: Mapping[str, str] = field(default_factory=dict)

    def members(self, role: str) -> Sequence[Person]:
        return self.roles.get(role, ())

    def user_of(self, staff_record_id: str) -> str | None:
        return self.staff.get(staff_record_id)


# ---------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """The instance starts (by hand, a rule or the API; ``starter`` is the user)."""

    starter: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskDone:
    """A candidate finished a task with an outcome (record edits were already written)."""

    task: str
    outcome: str
    actor: str | None
    comment: str | None = None


@dataclass(frozen=True)
class TaskReturned:
    """A task was sent back to an earlier user task of this instance."""

    task: str
    to: str
    actor: str | None
    comment: str | None = None


@dataclass(frozen=True)
class SignerAdded:
    """Someone else must also do the step a task belongs to (加签): one more task, for
    ``user``, and the step waits for it too (unless a veto ends it first)."""

    task: str
    user: str
    actor: str | None


@dataclass(frozen=True)
class TimerFired:
    timer: str


@dataclass(frozen=True)
class MessageSent:
    name: str
    data: Any = None


@dataclass(frozen=True)
class RecordChanged:
    """The flow's record changed (``Context.record`` holds the new data)."""


@dataclass(frozen=True)
class SubflowEnded:
    child: str
    status: str
    vars: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cancel:
    actor: str | None = None
    reason: str | None = None


Event: TypeAlias = (
    Start
    | TaskDone
    | TaskReturned
    | SignerAdded
    | TimerFired
    | MessageSent
    | RecordChanged
    | SubflowEnded
    | Cancel
)


@dataclass(frozen=True)
class Context:
    """What an advance sees of the world: the record (its data, with ``id``), the time, the
    clinic's zone and business calendar, the people, and the related records the flow
    reads (:mod:`.related`: hop path -> entry, as the rules' ``Event.related``)."""

    app: str
    record: Mapping[str, Any]
    now: datetime
    zone: str = "UTC"
    calendar: BusinessCalendar | None = None
    directory: Directory = field(default_factory=StaticDirectory)
    related: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Advance:
    """The state after the event, and what the host must do, in order."""

    state: InstanceState
    effects: tuple[Effect, ...]
    record: dict[str, Any]  # the record's data after the step's set actions

    @property
    def record_changes(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for effect in self.effects:
            if isinstance(effect, RecordSet):
                values.update(effect.values)
        return values


def new_instance(instance_id: str, flow: FlowSpec) -> InstanceState:
    """A state for an instance that has not started (give it :class:`Start`)."""
    return InstanceState(id=instance_id, flow=flow.key)


def advance(flow: FlowSpec, state: InstanceState, event: Event, context: Context) -> Advance:
    """Apply ``event`` to a copy of ``state`` (see the module's docstring)."""
    runner = _Runner(flow, copy.deepcopy(state), context)
    runner.handle(event)
    return Advance(runner.state, tuple(runner.effects), runner.record)


# ---------------------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Graph:
    nodes: dict[str, Node]
    outgoing: dict[str, list[tuple[int, Edge]]]
    incoming: dict[str, list[tuple[int, Edge]]]
    reaches: Callable[[str, str], bool]


_GRAPHS: dict[int, tuple[FlowSpec, _Graph]] = {}


def _graph(flow: FlowSpec) -> _Graph:
    cached = _GRAPHS.get(id(flow))
    if cached is not None and cached[0] is flow:
        return cached[1]
    nodes = {node.key: node for node in flow.nodes}
    outgoing: dict[str, list[tuple[int, Edge]]] = {key: [] for key in nodes}
    incoming: dict[str, list[tuple[int, Edge]]] = {key: [] for key in nodes}
    for index, edge in enumerate(flow.edges):
        outgoing.setdefault(edge.source, []).append((index, edge))
        incoming.setdefault(edge.target, []).append((index, edge))
    # where a token can go next: its edges, and a user task's outcome jumps (``to``)
    successors: dict[str, list[str]] = {
        key: [edge.target for _, edge in outgoing.get(key, ())] for key in nodes
    }
    for node in flow.nodes:
        if isinstance(node, UserTaskNode):
            successors[node.key] += [o.to for o in node.outcomes if o.to is not None]
    memo: dict[tuple[str, str], bool] = {}

    def reaches(start: str, goal: str) -> bool:
        """Whether a token at ``start`` can arrive at ``goal`` without passing it first."""
        found = memo.get((start, goal))
        if found is not None:
            return found
        seen = {start}
        queue = deque([start])
        result = False
        while queue and not result:
            here = queue.popleft()
            for target in successors.get(here, ()):
                if target == goal:
                    result = True
                    break
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
        memo[(start, goal)] = result
        return result

    graph = _Graph(nodes, outgoing, incoming, reaches)
    if len(_GRAPHS) > 256:
        _GRAPHS.clear()
    _GRAPHS[id(flow)] = (flow, graph)
    return graph


class _Runner:
    def __init__(self, flow: FlowSpec, state: InstanceState, context: Context) -> None:
        self.flow = flow
        self.graph = _graph(flow)
        self.state = state
        self.context = context
        self.zone = zone_named(context.zone)
        self.now = context.now.astimezone(self.zone)
        self.calendar = context.calendar or BusinessCalendar.always(self.zone)
        self.record: dict[str, Any] = dict(context.record)
        self.effects: list[Effect] = []
        self.queue: deque[tuple[str, int | None]] = deque()
        self.entries = 0

    # -- events ----------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if isinstance(event, Start):
            self._start(event)
        elif self.state.status != "running":
            if isinstance(event, TaskDone | TaskReturned | SignerAdded):
                raise FlowInputError(
                    f"the flow is {self.state.status}; its tasks are closed", code="closed"
                )
            return  # a late timer, message or record change: nothing to do
        elif isinstance(event, TaskDone):
            self._task_done(event.task, event.outcome, event.actor, event.comment)
        elif isinstance(event, TaskReturned):
            self._task_returned(event)
        elif isinstance(event, SignerAdded):
            self._add_signer(event)
        elif isinstance(event, TimerFired):
            self._timer_fired(event.timer)
        elif isinstance(event, MessageSent):
            self._message(event)
        elif isinstance(event, RecordChanged):
            self._record_changed()
        elif isinstance(event, SubflowEnded):
            self._subflow_ended(event)
        elif isinstance(event, Cancel):
            self._end("cancelled", event.reason or "cancelled")
            return
        self._settle()

    def _start(self, event: Start) -> None:
        if self.state.tokens or self.state.seq or self.state.status != "running":
            raise FlowInputError("the instance has started already", code="started")
        self.state.starter = event.starter
        variables: dict[str, Any] = {}
        for name, expression in self.flow.vars.items():
            variables[name] = self._value(expression, f"vars/{name}", None)
        variables.update(event.vars)
        self.state.vars = variables
        start = next(node for node in self.flow.nodes if isinstance(node, StartNode))
        self.queue.append((start.key, None))

    def _task_done(self, task: str, outcome: str, actor: str | None, comment: str | None) -> None:
        token = self.state.token_with_task(task)
        node_key = token.node if token is not None else self.state.strays.get(task, "")
        node = self.graph.nodes.get(node_key)
        if not isinstance(node, UserTaskNode):
            raise FlowInputError(f"task {task} is not open", code="not_open")
        offered = {option.key: option for option in node.outcomes}
        chosen = offered.get(outcome)
        if chosen is None:
            raise FlowInputError(
                f"outcome {outcome!r} is not offered; choose one of {', '.join(offered)}",
                code="outcome",
            )
        if chosen.comment == "required" and not (comment or "").strip():
            raise FlowInputError(f"outcome {outcome!r} needs a comment", code="comment")
        self.effects.append(
            TaskCompleted(task=task, node=node.key, outcome=outcome, actor=actor, comment=comment)
        )
        step = self.state.steps.setdefault(node.key, {})
        if token is None:
            # a task left open when its step moved on (multi with cancel_rest false): its
            # result is recorded, the flow does not move, and the outcome that chose the
            # step's edge (what later conditions read) stands
            del self.state.strays[task]
            step.setdefault("outcomes", []).append(outcome)
            return
        step.update(
            {"outcome": outcome, "actor": actor, "comment": comment, "at": self._now_text()}
        )
        if actor is not None:
            self.state.last_actor = actor
        ref = token.tasks.pop(task)
        self._cancel_task_timers(token, task)
        del ref
        if token.multi is not None:
            token.multi.done += 1
            token.multi.outcomes.append(outcome)
            step["outcomes"] = list(token.multi.outcomes)
            if not chosen.veto and token.multi.done < token.multi.needed:
                return
        self._finish_step(token, node, outcome, jump=chosen.to)

    def _task_returned(self, event: TaskReturned) -> None:
        token = self.state.token_with_task(event.task)
        if token is None:
            raise FlowInputError(f"task {event.task} is not open", code="not_open")
        node = self.graph.nodes[token.node]
        if not isinstance(node, UserTaskNode) or not node.returnable:
            raise FlowInputError(f"step {token.node} cannot be returned", code="not_returnable")
        target = self.graph.nodes.get(event.to)
        if not isinstance(target, UserTaskNode) or event.to not in self.state.steps:
            raise FlowInputError(
                f"{event.to!r} is not an earlier step of this instance", code="return_target"
            )
        if event.actor is not None:
            self.state.last_actor = event.actor
        for key in list(token.tasks):
            self.effects.append(TaskClosed(task=key, node=node.key, reason="returned"))
        self._withdraw(token, close_tasks=False)
        self.effects.append(StepCompleted(node=node.key, outcome="returned"))
        self.state.steps.setdefault(node.key, {}).update(
            {"outcome": "returned", "actor": event.actor, "comment": event.comment}
        )
        self.queue.append((event.to, None))

    def _timer_fired(self, timer: str) -> None:
        token = self.state.token_with_timer(timer)
        if token is None:
            return  # cancelled meanwhile: a stale timer does nothing
        purpose = token.timers.pop(timer)
        node = self.graph.nodes[token.node]
        if purpose == "timer":
            self._leave_waiting(token, node, "fired", self._out(node))
        elif purpose == "timeout":
            self._leave_waiting(token, node, "timeout", self._out(node, on="timeout"))
        elif purpose.startswith("escalate:"):
            self._escalate(token, node, purpose.removeprefix("escalate:"))
        elif purpose.startswith("remind:"):
            number, _, task = purpose.removeprefix("remind:").partition(":")
            self._remind_again(token, node, task, int(number))

    def _message(self, event: MessageSent) -> None:
        for token in self.state.tokens:
            node = self.graph.nodes[token.node]
            if isinstance(node, WaitNode) and node.message == event.name:
                self.state.steps.setdefault(node.key, {})["data"] = event.data
                self._leave_waiting(token, node, "met", self._out(node, on="met"))
                return
        self.state.mailbox.append({"name": event.name, "data": event.data, "at": self._now_text()})
        del self.state.mailbox[:-MAX_MAILBOX]

    def _record_changed(self) -> None:
        if self.flow.cancel_when is not None and truthy(
            self._value(self.flow.cancel_when, "cancel_when", None)
        ):
            self._end("cancelled", "cancel_when")
            return
        for token in list(self.state.tokens):
            node = self.graph.nodes[token.node]
            if (
                isinstance(node, WaitNode)
                and node.until is not None
                and truthy(self._value(node.until, f"nodes/{node.key}/until", None))
            ):
                self._leave_waiting(token, node, "met", self._out(node, on="met"))

    def _subflow_ended(self, event: SubflowEnded) -> None:
        token = self.state.token_with_child(event.child)
        if token is None:
            stray = self.state.strays.pop(event.child, None)
            if stray is not None:
                # left running when its step moved on (multi with cancel_rest false)
                step = self.state.steps.setdefault(stray, {})
                step.setdefault("results", []).append(dict(event.vars))
            return
        token.children.remove(event.child)
        node = self.graph.nodes[token.node]
        step = self.state.steps.setdefault(node.key, {})
        step["outcome"] = event.status
        step.setdefault("results", []).append(dict(event.vars))
        if token.multi is not None:
            token.multi.done += 1
            token.multi.outcomes.append(event.status)
            if token.multi.done < token.multi.needed:
                return
        self._finish_step(token, node, event.status, jump=None)

    # -- moving tokens ---------------------------------------------------------------

    def _settle(self) -> None:
        """Move every token that can move; then fire inclusive joins nothing can still reach."""
        while self.state.status == "running":
            while self.queue and self.state.status == "running":
                node_key, via = self.queue.popleft()
                self._enter(node_key, via)
            if self.state.status != "running" or not self._fire_inclusive_join():
                break
        if self.state.status == "running" and not self.state.tokens and not self.queue:
            self._end("completed", None)

    def _enter(self, key: str, via: int | None) -> None:
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            raise FlowRuntimeError(key, "the flow loops without waiting for anything")
        node = self.graph.nodes[key]
        self.effects.append(NodeEntered(node=key, type=node.type))
        if isinstance(node, StartNode):
            self._follow(node, self._out(node))
        elif isinstance(node, EndNode):
            pass
        elif isinstance(node, TerminateNode):
            self._end("terminated", key)
        elif isinstance(node, ExclusiveGateway):
            self._follow(node, self._choose(node, exclusive=True))
        elif isinstance(node, ParallelGateway):
            self._parallel(node, via)
        elif isinstance(node, InclusiveGateway):
            if len(self.graph.incoming[key]) > 1:
                self._arrive_at_join(node, via)
            else:
                self._follow(node, self._choose(node, exclusive=False))
        elif isinstance(node, ActionNode):
            self._actions(node)
            self._follow(node, self._out(node))
        elif isinstance(node, CancelNode):
            for token in [t for t in self.state.tokens if t.node in node.region]:
                self._withdraw(token)
            self.queue = deque(entry for entry in self.queue if entry[0] not in node.region)
            self._follow(node, self._out(node))
        elif isinstance(node, UserTaskNode):
            self._open_user_task(node)
        elif isinstance(node, TimerNode):
            token = self._token(node)
            self._arm(token, node, self._due(node.wait, f"nodes/{key}/wait", None), "timer")
        elif isinstance(node, WaitNode):
            self._enter_wait(node)
        elif isinstance(node, SubflowNode):
            self._start_subflows(node)

    def _follow(self, node: Node, edges: Sequence[tuple[int, Edge]]) -> None:
        for index, edge in edges:
            self.queue.append((edge.target, index))
        if not edges and not isinstance(node, EndNode | TerminateNode):
            raise FlowRuntimeError(node.key, "no outgoing edge to follow")

    def _out(self, node: Node, *, on: str | None = None) -> list[tuple[int, Edge]]:
        edges = self.graph.outgoing[node.key]
        if on is not None:
            return [(i, e) for i, e in edges if e.on == on]
        return list(edges)

    def _choose(self, node: Node, *, exclusive: bool) -> list[tuple[int, Edge]]:
        edges = self.graph.outgoing[node.key]
        if len(edges) <= 1:
            return list(edges)
        chosen: list[tuple[int, Edge]] = []
        for index, edge in edges:
            if edge.default or edge.condition is None:
                continue
            if truthy(self._value(edge.condition, f"edges/{index}/if", None)):
                chosen.append((index, edge))
                if exclusive:
                    break
        if not chosen:
            chosen = [(i, e) for i, e in edges if e.default or e.condition is None][:1]
        if not chosen:
            raise FlowRuntimeError(node.key, "no outgoing condition holds and there is no default")
        return chosen

    def _parallel(self, node: ParallelGateway, via: int | None) -> None:
        if len(self.graph.incoming[node.key]) > 1:
            self._arrive_at_join(node, via)
        else:
            self._follow(node, self._out(node))

    def _arrive_at_join(self, node: ParallelGateway | InclusiveGateway, via: int | None) -> None:
        token = next((t for t in self.state.tokens if t.node == node.key), None)
        if token is None:
            token = self._token(node)
        edge = via if via is not None else -1
        token.arrived[edge] = token.arrived.get(edge, 0) + 1
        if isinstance(node, ParallelGateway):
            incoming = [index for index, _ in self.graph.incoming[node.key]]
            if all(token.arrived.get(index, 0) > 0 for index in incoming):
                self._fire_join(token, node, incoming)

    def _fire_join(self, token: Token, node: Node, edges: Sequence[int]) -> None:
        for index in edges:
            token.arrived[index] -= 1
            if token.arrived[index] <= 0:
                del token.arrived[index]
        if not token.arrived:
            self.state.tokens.remove(token)
        if isinstance(node, InclusiveGateway):
            self._follow(node, self._choose(node, exclusive=False))
        else:
            self._follow(node, self._out(node))

    def _fire_inclusive_join(self) -> bool:
        """Fire one inclusive join that no other live token can still reach."""
        for token in self.state.tokens:
            node = self.graph.nodes[token.node]
            if not isinstance(node, InclusiveGateway) or not token.arrived:
                continue
            if any(
                other is not token and self.graph.reaches(other.node, node.key)
                for other in self.state.tokens
            ):
                continue
            self._fire_join(token, node, [index for index in token.arrived if index >= 0] or [-1])
            return True
        return False

    def _token(self, node: Node) -> Token:
        token = Token(id=self.state.next_id(), node=node.key)
        self.state.tokens.append(token)
        return token

    def _leave_waiting(
        self, token: Token, node: Node, outcome: str, edges: Sequence[tuple[int, Edge]]
    ) -> None:
        self._withdraw(token)
        self.effects.append(StepCompleted(node=node.key, outcome=outcome))
        self.state.steps.setdefault(node.key, {}).update({"outcome": outcome})
        self._follow(node, edges)

    def _finish_step(self, token: Token, node: Node, outcome: str, *, jump: str | None) -> None:
        """A waiting user task or subflow is done: withdraw or release what is left, go on."""
        cancel_rest = True
        if isinstance(node, UserTaskNode | SubflowNode) and node.multi is not None:
            cancel_rest = node.multi.cancel_rest
        if not cancel_rest:
            for key in list(token.tasks):
                self.state.strays[key] = node.key
                self._cancel_task_timers(token, key)
            for child in token.children:
                self.state.strays[child] = node.key
            token.tasks.clear()
            token.children.clear()
        self._withdraw(token)
        self.effects.append(StepCompleted(node=node.key, outcome=outcome))
        self.state.steps.setdefault(node.key, {})["outcome"] = outcome  # also "skipped"
        if jump is not None:
            self.queue.append((jump, None))
            return
        edges = self._out(node)
        if isinstance(node, UserTaskNode):
            matching = [(i, e) for i, e in edges if e.outcome == outcome]
            edges = matching or [(i, e) for i, e in edges if e.outcome is None]
            if len(edges) > 1:
                edges = self._choose_among(node, edges)
        self._follow(node, edges)

    def _choose_among(
        self, node: Node, edges: Sequence[tuple[int, Edge]]
    ) -> list[tuple[int, Edge]]:
        """Several edges for one outcome: the first whose condition holds, else a default."""
        for index, edge in edges:
            if (
                edge.condition is not None
                and not edge.default
                and truthy(self._value(edge.condition, f"edges/{index}/if", None))
            ):
                return [(index, edge)]
        fallback = [(i, e) for i, e in edges if e.default or e.condition is None]
        if not fallback:
            raise FlowRuntimeError(node.key, "no outgoing condition holds and there is no default")
        return fallback[:1]

    def _withdraw(self, token: Token, *, close_tasks: bool = True) -> None:
        """Remove a token with everything it waits for."""
        for key in list(token.tasks):
            if close_tasks:
                self.effects.append(TaskClosed(task=key, node=token.node, reason="withdrawn"))
        for timer in token.timers:
            self.effects.append(TimerCancelled(timer=timer, node=token.node))
        for child in token.children:
            self.effects.append(SubflowCancelled(child=child, node=token.node))
        token.tasks.clear()
        token.timers.clear()
        token.children.clear()
        if token in self.state.tokens:
            self.state.tokens.remove(token)

    def _end(self, status: str, reason: str | None) -> None:
        for token in list(self.state.tokens):
            self._withdraw(token)
        for key, node in self.state.strays.items():
            if isinstance(self.graph.nodes.get(node), SubflowNode):
                self.effects.append(SubflowCancelled(child=key, node=node))
            else:
                self.effects.append(TaskClosed(task=key, node=node, reason="withdrawn"))
        self.state.strays.clear()
        self.queue.clear()
        self.state.status = status  # type: ignore[assignment]
        self.effects.append(InstanceEnded(status=self.state.status, reason=reason))

    # -- nodes that wait -------------------------------------------------------------

    def _items(self, multi: MultiInstance, node: Node) -> list[Any]:
        items = self._value(multi.over, f"nodes/{node.key}/multi/over", None)
        if items is None:
            return []
        if not isinstance(items, list):
            raise FlowRuntimeError(node.key, "multi 'over' must give a list")
        return items

    @staticmethod
    def _needed(complete: str | int, total: int) -> int:
        if complete == "all":
            return total
        if complete == "any":
            return min(1, total)
        return min(int(complete), total)

    def _open_user_task(self, node: UserTaskNode) -> None:
        token = self._token(node)
        plans: list[tuple[Any, Candidates]] = []
        if node.multi is not None:
            for item in self._items(node.multi, node):
                plans.append((item, self._candidates(node.assignee, node, item)))
            token.multi = MultiState(
                total=len(plans), needed=self._needed(node.multi.complete, len(plans))
            )
        elif node.mode == "all" or isinstance(node.mode, int):
            people = self._people(node.assignee, node, None)
            plans = [(None, Candidates(users=(person,))) for person in people]
            complete: str | int = "all" if node.mode == "all" else node.mode
            token.multi = MultiState(total=len(plans), needed=self._needed(complete, len(plans)))
        else:
            plans = [(None, self._candidates(node.assignee, node, None))]
        if token.multi is not None and token.multi.needed == 0:
            self._finish_step(token, node, "skipped", jump=None)
            return
        due = None
        for item, candidates in plans:
            due = self._due(node.due, f"nodes/{node.key}/due", item) if node.due else None
            key = self.state.next_id()
            token.tasks[key] = TaskRef(due=due, item=item, candidates=candidates)
            one = (
                candidates.users[0] if len(candidates.users) == 1 and not candidates.roles else None
            )
            self.effects.append(
                TaskOpened(
                    task=key,
                    node=node.key,
                    title=node.title,
                    description=node.description,
                    candidates=candidates,
                    assignee=one,
                    claim=node.mode == "claim" and one is None,
                    due=due,
                    item=item,
                    outcomes=tuple(option.key for option in node.outcomes),
                    edit=tuple(node.edit),
                    required=tuple(node.required),
                    hide=tuple(node.hide),
                    context=self._snapshot(item),
                )
            )
            if due is not None and node.escalations:
                self._arm_escalation(token, node, key)

    def _add_signer(self, event: SignerAdded) -> None:
        token = self.state.token_with_task(event.task)
        if token is None:
            raise FlowInputError(f"task {event.task} is not open", code="not_open")
        node = self.graph.nodes[token.node]
        if not isinstance(node, UserTaskNode):  # pragma: no cover - only user tasks have tasks
            raise FlowInputError(f"task {event.task} is not a user task", code="not_open")
        if any(ref.candidates.users == (event.user,) for ref in token.tasks.values()):
            raise FlowInputError(f"{event.user} already has this step", code="signer_exists")
        if token.multi is None:
            token.multi = MultiState(total=len(token.tasks), needed=len(token.tasks))
        token.multi.total += 1
        token.multi.needed += 1
        source = token.tasks[event.task]
        candidates = Candidates(users=(event.user,))
        key = self.state.next_id()
        token.tasks[key] = TaskRef(due=source.due, item=source.item, candidates=candidates)
        self.effects.append(
            TaskOpened(
                task=key,
                node=node.key,
                title=node.title,
                description=node.description,
                candidates=candidates,
                assignee=event.user,
                claim=False,
                due=source.due,
                item=source.item,
                outcomes=tuple(option.key for option in node.outcomes),
                edit=tuple(node.edit),
                required=tuple(node.required),
                hide=tuple(node.hide),
                context=self._snapshot(source.item),
            )
        )
        if source.due is not None and node.escalations:
            self._arm_escalation(token, node, key)

    def _arm_escalation(self, token: Token, node: UserTaskNode, task: str) -> None:
        ref = token.tasks[task]
        if ref.due is None or ref.escalation >= len(node.escalations):
            return
        escalation = node.escalations[ref.escalation]
        due = self._due(
            escalation.after,
            f"nodes/{node.key}/escalations/{ref.escalation}/after",
            ref.item,
            start=ref.due,
        )
        self._arm(token, node, due, f"escalate:{task}")

    def _escalate(self, token: Token, node: Node, task: str) -> None:
        ref = token.tasks.get(task)
        if (
            ref is None
            or not isinstance(node, UserTaskNode)
            or ref.escalation >= len(node.escalations)
        ):
            return
        escalation = node.escalations[ref.escalation]
        if escalation.action == "remind":
            self.effects.append(TaskReminded(task=task, node=node.key, candidates=ref.candidates))
            if escalation.repeat is not None:
                # a timer of its own, so that the escalations after it still come
                self._remind_again(token, node, task, ref.escalation, first=True)
        elif escalation.action == "reassign":
            assert escalation.to is not None
            ref.candidates = self._candidates(escalation.to, node, ref.item)
            one = ref.candidates.users[0] if len(ref.candidates.users) == 1 else None
            self.effects.append(
                TaskReassigned(task=task, node=node.key, candidates=ref.candidates, assignee=one)
            )
        else:
            assert escalation.outcome is not None
            ref.escalation += 1
            self._task_done(task, escalation.outcome, None, "escalation")
            return
        ref.escalation += 1
        self._arm_escalation(token, node, task)

    def _remind_again(
        self, token: Token, node: Node, task: str, number: int, *, first: bool = False
    ) -> None:
        """A repeating reminder (escalation ``number``) is due: remind, arm the next one."""
        ref = token.tasks.get(task)
        if ref is None or not isinstance(node, UserTaskNode) or number >= len(node.escalations):
            return
        repeat = node.escalations[number].repeat
        if repeat is None:
            return
        if not first:
            self.effects.append(TaskReminded(task=task, node=node.key, candidates=ref.candidates))
        try:
            due = add_duration(self.now, parse_duration(repeat), self.zone)
        except InvalidTiming as error:
            raise FlowRuntimeError(
                node.key, f"nodes/{node.key}/escalations/{number}/repeat: {error}"
            ) from error
        self._arm(token, node, due, f"remind:{number}:{task}")

    def _cancel_task_timers(self, token: Token, task: str) -> None:
        for timer, purpose in list(token.timers.items()):
            if purpose == f"escalate:{task}" or (
                purpose.startswith("remind:") and purpose.split(":", 2)[2:] == [task]
            ):
                del token.timers[timer]
                self.effects.append(TimerCancelled(timer=timer, node=token.node))

    def _enter_wait(self, node: WaitNode) -> None:
        if node.message is not None:
            for number, message in enumerate(self.state.mailbox):
                if message.get("name") == node.message:
                    del self.state.mailbox[number]
                    self.state.steps.setdefault(node.key, {}).update(
                        {"outcome": "met", "data": message.get("data")}
                    )
                    self.effects.append(StepCompleted(node=node.key, outcome="met"))
                    self._follow(node, self._out(node, on="met"))
                    return
        if node.until is not None and truthy(
            self._value(node.until, f"nodes/{node.key}/until", None)
        ):
            self.state.steps.setdefault(node.key, {})["outcome"] = "met"
            self.effects.append(StepCompleted(node=node.key, outcome="met"))
            self._follow(node, self._out(node, on="met"))
            return
        token = self._token(node)
        if node.timeout is not None:
            self._arm(
                token, node, self._due(node.timeout, f"nodes/{node.key}/timeout", None), "timeout"
            )

    def _start_subflows(self, node: SubflowNode) -> None:
        token = self._token(node)
        items: list[Any] = [None]
        if node.multi is not None:
            items = self._items(node.multi, node)
            token.multi = MultiState(
                total=len(items), needed=self._needed(node.multi.complete, len(items))
            )
            if token.multi.needed == 0:
                self._finish_step(token, node, "skipped", jump=None)
                return
        for item in items:
            child = self.state.next_id()
            token.children.append(child)
            values = {
                name: self._value(expr, f"nodes/{node.key}/vars/{name}", item)
                for name, expr in node.vars.items()
            }
            if node.multi is not None:
                values.setdefault("item", item)
            self.effects.append(
                SubflowStarted(child=child, node=node.key, flow=node.flow, vars=values)
            )

    def _arm(self, token: Token, node: Node, due: datetime, purpose: str) -> None:
        timer = self.state.next_id()
        token.timers[timer] = purpose
        self.effects.append(TimerArmed(timer=timer, node=node.key, due=due, purpose=purpose))

    # -- actions ---------------------------------------------------------------------

    def _actions(self, node: ActionNode) -> None:
        rule = _action_rule(self.flow, node)
        record_id = self.record.get("id")
        event = RuleEvent(
            app=self.context.app,
            form=self.flow.form,
            kind="updated",
            record={k: v for k, v in self.record.items() if k != "id"},
            now=self.now,
            record_id=str(record_id) if record_id is not None else None,
            changed=frozenset(),
            user={"id": self.state.starter} if self.state.starter else {},
            zone=self.context.zone,
            occurrence=f"{self.state.id}.{self.state.seq + 1}",
            extra=self._snapshot(None, record=False),
            related=self.context.related,
        )
        self.state.seq += 1
        run = evaluate_rule(rule, event).runs[0]
        if run.error is not None:
            raise FlowRuntimeError(node.key, f"actions{run.error_pointer or ''}: {run.error}")
        plan_record = dict(event.record)
        changes: dict[str, Any] = {}
        for action in run.actions:
            if action.type == "set" and action.due is None:
                values = action.data()["values"]
                plan_record.update(values)
                changes.update(values)
        self.effects.append(ActionsPlanned(node=node.key, actions=run.actions))
        if changes:
            self.record.update(changes)
            self.effects.append(RecordSet(node=node.key, values=changes))

    # -- people and time -------------------------------------------------------------

    def _candidates(self, assignee: Assignee, node: Node, item: Any) -> Candidates:
        if assignee.role is not None and assignee.where is None:
            return Candidates(roles=(assignee.role,))
        return Candidates(users=tuple(self._people(assignee, node, item)))

    def _people(self, assignee: Assignee, node: Node, item: Any) -> list[str]:
        directory = self.context.directory
        names: list[str] = []
        if assignee.role is not None:
            for person in directory.members(assignee.role):
                if assignee.where is None or truthy(
                    self._value(
                        assignee.where,
                        f"nodes/{node.key}/assignee/where",
                        item,
                        user={"name": person.name, **person.attributes},
                    )
                ):
                    names.append(person.name)
        elif assignee.user is not None:
            given = self._value(assignee.user, f"nodes/{node.key}/assignee/user", item)
            names = [str(v) for v in (given if isinstance(given, list) else [given]) if v]
        elif assignee.field is not None:
            given = self.record.get(assignee.field)
            for staff in given if isinstance(given, list) else [given]:
                user = directory.user_of(str(staff)) if staff else None
                if user:
                    names.append(user)
        elif assignee.starter:
            names = [self.state.starter] if self.state.starter else []
        elif assignee.previous:
            names = [self.state.last_actor] if self.state.last_actor else []
        return list(dict.fromkeys(names))

    def _due(
        self, timing: Timing, pointer: str, item: Any, *, start: datetime | None = None
    ) -> datetime:
        """The moment ``timing`` gives (an aware UTC datetime, as effects carry times)."""
        base = (start or self.now).astimezone(self.zone)
        try:
            if timing.after is not None:
                return add_duration(base, parse_duration(timing.after), self.zone)
            if timing.working_days is not None:
                return self.calendar.add_working_days(base, timing.working_days)
            if timing.working_hours is not None:
                return self.calendar.add_working_hours(base, timing.working_hours)
        except InvalidTiming as error:
            raise FlowRuntimeError(None, f"{pointer}: {error}") from error
        value = self._value(timing.at, f"{pointer}/at", item)
        if value is None:
            raise FlowRuntimeError(None, f"{pointer}/at: the expression gave no date or datetime")
        try:
            moment = parse_temporal(value, "at")
        except LogicError as error:
            raise FlowRuntimeError(None, f"{pointer}/at: {error}") from error
        if isinstance(moment, datetime):
            return moment.astimezone(UTC)
        return localize(datetime.combine(moment, time()), self.zone)

    # -- expressions -----------------------------------------------------------------

    def _now_text(self) -> str:
        return format_datetime(self.now)

    def _extra(self, item: Any) -> dict[str, Any]:
        return {
            "vars": self.state.vars,
            "steps": self.state.steps,
            "starter": self.state.starter,
            "item": item,
        }

    def _snapshot(self, item: Any, *, record: bool = True) -> dict[str, Any]:
        """The expression context as it is now, for an effect to carry: later steps of the
        same advance (a set action, a step completing) must not change what it holds."""
        context = copy.deepcopy(self._extra(item))
        if record:
            context.update(record=dict(self.record), now=self._now_text(), user=None)
            if self.context.related:
                # a task's title reads record.patient.name through them (related_view)
                context[RELATED] = copy.deepcopy(dict(self.context.related))
        return context

    def _expression_context(self, item: Any, user: Any = None) -> dict[str, Any]:
        context = {
            "record": self.record,
            **self._extra(item),
            "now": self._now_text(),
            "user": user,
        }
        if self.context.related:
            context[RELATED] = self.context.related
        return context

    def _value(self, expression: Any, pointer: str, item: Any, *, user: Any = None) -> Any:
        if self.context.related:
            expression = read_related(expression, self.context.related)
        try:
            return evaluate(expression, self._expression_context(item, user), now=self.now)
        except LogicError as error:
            raise FlowRuntimeError(None, f"{pointer}: {error}") from error


_RULES: dict[tuple[int, str], tuple[ActionNode, RuleSpec]] = {}


def _action_rule(flow: FlowSpec, node: ActionNode) -> RuleSpec:
    """The action node as a rule the rule engine can plan (kept per node object)."""
    cached = _RULES.get((id(node), node.key))
    if cached is not None and cached[0] is node:
        return cached[1]
    rule = RuleSpec(
        key=node.key,
        on=RecordTrigger(form=flow.form, event="updated"),
        then=list(node.actions),
    )
    if len(_RULES) > 1024:
        _RULES.clear()
    _RULES[(id(node), node.key)] = (node, rule)
    return rule
