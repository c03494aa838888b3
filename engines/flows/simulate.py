"""Simulate a flow: the timeline a start would produce, with nothing written.

:func:`simulate` is a host for :func:`~.engine.advance` that keeps everything in memory: the
instance (and its subflows), the tasks it opens and the timers it arms. It plays a *script*
— which outcome each step's people choose and how long they take, messages and record
changes at given times — against a clock it moves itself, in time order: a person acting,
a timer falling due, a message arriving, whichever comes first (ties in the order they were
scheduled). Because the platform runs the same :func:`~.engine.advance` on the same inputs,
the simulated timeline is what a real run with the same choices does (a test holds the two
side by side).

Script (``Script``):

* ``choices``: node key -> a list of choices used in turn, each an outcome key or
  ``{"outcome", "after", "actor", "comment", "return_to"}`` (``after`` an ISO 8601 duration
  after the task opened; without it the person acts at once). A task with no choice left is
  left open (so escalations show); ``default_outcome`` picks the first outcome instead
  (with the comment "(simulated)", which outcomes that need a comment accept).
* ``messages``: ``{"name", "after", "data"}``; ``changes``: ``{"after", "values"}`` (record
  values to set, then every instance sees the change).

The related records the flow reads (``record.patient.name``; :mod:`.related`) are given as
``related``, loaded by the host for the record as it was at the start; the script's record
changes do not reload them.

It stops when the instance has ended and nothing is due, at ``horizon`` (default a year) or
after ``max_events`` — and says which.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from formloom.engines.logic.dates import format_datetime
from formloom.engines.rules.timing import add_duration, parse_duration, zone_named

from .calendar import BusinessCalendar
from .engine import (
    Cancel,
    Context,
    Directory,
    Event,
    MessageSent,
    RecordChanged,
    Start,
    StaticDirectory,
    SubflowEnded,
    TaskDone,
    TaskReturned,
    TimerFired,
    advance,
)
from .spec import FlowSpec
from .state import (
    InstanceEnded,
    InstanceState,
    RecordSet,
    SubflowCancelled,
    SubflowStarted,
    TaskClosed,
    TaskCompleted,
    TaskOpened,
    TaskReassigned,
    TimerArmed,
    TimerCancelled,
)

__all__ = ["Script", "Simulation", "simulate"]


@dataclass(frozen=True)
class Script:
    """What happens around the flow (see the module's docstring)."""

    choices: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    messages: Sequence[Mapping[str, Any]] = ()
    changes: Sequence[Mapping[str, Any]] = ()
    default_outcome: bool = False
    starter: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Simulation:
    """The result: the timeline (each entry an effect with ``at`` and ``instance``), the
    instance's final status, the tasks left open, the record as the flow left it, and why
    the simulation stopped (``ended``, ``idle``: nothing more will happen, ``horizon``,
    ``max_events``)."""

    timeline: list[dict[str, Any]]
    status: str
    open_tasks: list[dict[str, Any]]
    record: dict[str, Any]
    stopped: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "stopped": self.stopped,
            "timeline": self.timeline,
            "open_tasks": self.open_tasks,
            "record": self.record,
        }


@dataclass
class _Instance:
    flow: FlowSpec
    state: InstanceState
    parent: str | None


class _Host:
    def __init__(
        self,
        app: str,
        flows: Mapping[str, FlowSpec],
        record: Mapping[str, Any],
        script: Script,
        *,
        now: datetime,
        zone: str,
        calendar: BusinessCalendar | None,
        directory: Directory,
        related: Mapping[str, Any],
    ) -> None:
        self.app = app
        self.flows = flows
        self.record = dict(record)
        self.script = script
        self.now = now
        self.zone = zone
        self.calendar = calendar
        self.directory = directory
        self.related = related
        self.instances: dict[str, _Instance] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.timeline: list[dict[str, Any]] = []
        self.agenda: list[tuple[datetime, int, str, Event]] = []
        self.order = 0
        self.used: dict[str, int] = {}
        self.cancelled: set[str] = set()  # timers withdrawn before they fell due

    def schedule(self, at: datetime, instance: str, event: Event) -> None:
        self.order += 1
        heapq.heappush(self.agenda, (at, self.order, instance, event))

    def context(self) -> Context:
        return Context(
            app=self.app,
            record=self.record,
            now=self.now,
            zone=self.zone,
            calendar=self.calendar,
            directory=self.directory,
            related=self.related,
        )

    def run(self, key: str, event: Event) -> None:
        instance = self.instances[key]
        done = advance(instance.flow, instance.state, event, self.context())
        instance.state = done.state
        changed = bool(done.record_changes)
        self.record = done.record
        for effect in done.effects:
            self.timeline.append(
                {"at": format_datetime(self.now), "instance": key, **effect.to_dict()}
            )
            self.apply(key, instance, effect)
        if changed:
            for other, running in list(self.instances.items()):
                if running.state.status == "running":
                    self.run(other, RecordChanged())

    def apply(self, key: str, instance: _Instance, effect: Any) -> None:
        if isinstance(effect, TaskOpened):
            self.tasks[effect.task] = {
                "task": effect.task,
                "instance": key,
                "node": effect.node,
                "candidates": effect.candidates.to_dict(),
                "assignee": effect.assignee,
                "due": format_datetime(effect.due) if effect.due else None,
                "opened": format_datetime(self.now),
            }
            self.plan_choice(key, effect)
        elif isinstance(effect, TaskReassigned):
            if effect.task in self.tasks:
                self.tasks[effect.task]["candidates"] = effect.candidates.to_dict()
                self.tasks[effect.task]["assignee"] = effect.assignee
        elif isinstance(effect, TaskCompleted | TaskClosed):
            self.tasks.pop(effect.task, None)
        elif isinstance(effect, TimerArmed):
            self.schedule(max(effect.due, self.now), key, TimerFired(effect.timer))
        elif isinstance(effect, TimerCancelled):
            self.cancelled.add(effect.timer)  # dropped from the agenda when it comes up
        elif isinstance(effect, SubflowStarted):
            flow = self.flows.get(effect.flow)
            if flow is None:
                raise KeyError(f"no flow {effect.flow!r} in the app")
            self.instances[effect.child] = _Instance(
                flow, InstanceState(id=effect.child, flow=flow.key), key
            )
            self.run(
                effect.child,
                Start(starter=instance.state.starter, vars=dict(effect.vars)),
            )
        elif isinstance(effect, SubflowCancelled):
            child = self.instances.get(effect.child)
            if child is not None and child.state.status == "running":
                self.run(effect.child, Cancel(reason="parent withdrew it"))
        elif isinstance(effect, InstanceEnded) and instance.parent is not None:
            parent = self.instances[instance.parent]
            # however the child ended (a child cancelled by its own cancel_when too): the
            # parent ignores a child it withdrew itself, and moves on for any other
            if parent.state.status == "running":
                self.run(
                    instance.parent,
                    SubflowEnded(key, effect.status, dict(instance.state.vars)),
                )
        elif isinstance(effect, RecordSet):
            pass  # already in self.record

    def moot(self, key: str, event: Event | _Change) -> bool:
        """An agenda entry that can no longer do anything: a cancelled timer, an event for
        an instance that has ended, a person acting on a task withdrawn meanwhile."""
        if isinstance(event, _Change):
            return False
        if isinstance(event, TimerFired) and event.timer in self.cancelled:
            return True
        if self.instances[key].state.status != "running":
            return True
        return isinstance(event, TaskDone | TaskReturned) and event.task not in self.tasks

    def plan_choice(self, key: str, effect: TaskOpened) -> None:
        choices = self.script.choices.get(effect.node, ())
        used = self.used.get(effect.node, 0)
        if used < len(choices):
            choice = choices[used]
            self.used[effect.node] = used + 1
        elif self.script.default_outcome:
            # the first outcome, with a stand-in comment where the outcome needs one
            choice = {"outcome": effect.outcomes[0], "comment": "(simulated)"}
        else:
            return
        if isinstance(choice, str):
            choice = {"outcome": choice}
        at = self.now
        if choice.get("after"):
            at = add_duration(self.now, parse_duration(choice["after"]), zone_named(self.zone))
        actor = choice.get("actor") or effect.assignee or _someone(effect)
        event: Event
        if choice.get("return_to"):
            event = TaskReturned(effect.task, choice["return_to"], actor, choice.get("comment"))
        else:
            event = TaskDone(effect.task, choice["outcome"], actor, choice.get("comment"))
        self.schedule(at, key, event)


def _someone(effect: TaskOpened) -> str:
    if effect.candidates.users:
        return effect.candidates.users[0]
    roles = effect.candidates.roles
    return f"({roles[0]})" if roles else "(unassigned)"


def simulate(
    app: str,
    flow: FlowSpec,
    record: Mapping[str, Any],
    script: Script,
    *,
    now: datetime,
    zone: str = "UTC",
    flows: Mapping[str, FlowSpec] | None = None,
    calendar: BusinessCalendar | None = None,
    directory: Directory | None = None,
    related: Mapping[str, Any] | None = None,
    horizon: timedelta = timedelta(days=366),
    max_events: int = 10_000,
) -> Simulation:
    """Run ``flow`` on ``record`` in memory (see the module's docstring)."""
    host = _Host(
        app,
        {**(flows or {}), flow.key: flow},
        record,
        script,
        now=now,
        zone=zone,
        calendar=calendar,
        directory=directory or StaticDirectory(),
        related=related or {},
    )
    root = "sim"
    host.instances[root] = _Instance(flow, InstanceState(id=root, flow=flow.key), None)
    zone_info = zone_named(zone)
    for message in script.messages:
        at = add_duration(now, parse_duration(message.get("after") or "PT0S"), zone_info)
        host.schedule(at, root, MessageSent(str(message["name"]), message.get("data")))
    for change in script.changes:
        at = add_duration(now, parse_duration(change.get("after") or "PT0S"), zone_info)
        host.schedule(at, root, _Change(dict(change.get("values") or {})))  # type: ignore[arg-type]
    host.run(root, Start(starter=script.starter, vars=dict(script.vars)))
    end = now + horizon
    stopped = "idle"
    events = 0
    while host.agenda:
        at, _, key, event = heapq.heappop(host.agenda)
        if host.moot(key, event):
            continue  # neither moves the clock nor counts as an event
        if at > end:
            stopped = "horizon"
            break
        events += 1
        if events > max_events:
            stopped = "max_events"
            break
        host.now = max(host.now, at)
        if isinstance(event, _Change):
            host.record.update(event.values)
            for other, running in list(host.instances.items()):
                if running.state.status == "running":
                    host.run(other, RecordChanged())
            continue
        host.run(key, event)
    status = host.instances[root].state.status
    if stopped == "idle" and status != "running":
        stopped = "ended"
    return Simulation(
        timeline=host.timeline,
        status=status,
        open_tasks=list(host.tasks.values()),
        record=host.record,
        stopped=stopped,
    )


@dataclass(frozen=True)
class _Change:
    values: dict[str, Any]
