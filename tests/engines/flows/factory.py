"""Flow builders, forms, people and a small driver shared by the flow engine tests.

Builders return plain JSON-like dicts (what an app definition holds), ``flow`` validates
them into a :class:`FlowSpec`. :class:`Run` drives :func:`advance` one event at a time the
way a host does (start, complete the open task of node X with outcome Y, fire the timer of
node Z, send a message, change the record), keeps the whole history of effects and the
clock, and offers views over it (tasks opened in order, what was withdrawn).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from formloom.engines.flows.calendar import BusinessCalendar, CalendarSpec
from formloom.engines.flows.engine import (
    Cancel,
    Context,
    Directory,
    Event,
    MessageSent,
    Person,
    RecordChanged,
    Start,
    StaticDirectory,
    SubflowEnded,
    TaskDone,
    TaskReturned,
    TimerFired,
    advance,
    new_instance,
)
from formloom.engines.flows.spec import FlowSpec
from formloom.engines.flows.state import (
    Effect,
    InstanceState,
    NodeEntered,
    StepCompleted,
    SubflowStarted,
    TaskClosed,
    TaskCompleted,
    TaskOpened,
    TimerArmed,
    TimerCancelled,
)
from formloom.engines.forms import FormSpec
from formloom.engines.rules.timing import zone_named

NOW = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)  # a Monday, 09:30 in Shanghai
SHANGHAI = "Asia/Shanghai"
#: Monday to Friday, 09:00-12:00 and 13:00-17:00 in Shanghai.
OFFICE = BusinessCalendar(
    CalendarSpec(hours=[("09:00", "12:00"), ("13:00", "17:00")], holidays=["2026-11-25"]),
    zone_named(SHANGHAI),
)

PEOPLE = StaticDirectory(
    roles={
        "nurse": [
            Person("ann", {"dept": "cardio"}),
            Person("bob", {"dept": "ortho"}),
            Person("cat", {"dept": "cardio"}),
        ],
        "doctor": [Person("dan", {"dept": "cardio"}), Person("eve", {"dept": "ortho"})],
        "manager": [Person("max", {"dept": "office"})],
    },
    staff={"s1": "sam", "s2": "sue"},
)

# -- forms (for check) -------------------------------------------------------------------

STAFF = FormSpec.model_validate(
    {
        "key": "staff",
        "label": "Staff",
        "user_field": "username",
        "fields": [
            {"key": "username", "type": "text"},
            {"key": "dept", "type": "text"},
        ],
    }
)
CUSTOMER = FormSpec.model_validate(
    {"key": "customer", "label": "Customer", "fields": [{"key": "name", "type": "text"}]}
)
COMPLAINT = FormSpec.model_validate(
    {
        "key": "complaint",
        "label": "Complaint",
        "fields": [
            {"key": "subject", "type": "text"},
            {"key": "handler", "type": "relation", "target": "staff"},
            {"key": "customer", "type": "relation", "target": "customer"},
            {"key": "severity", "type": "select",
             "options": [{"value": "low"}, {"value": "high"}]},
            {"key": "amount", "type": "number"},
            {"key": "received", "type": "date"},
            {"key": "dept", "type": "text"},
            {"key": "note", "type": "text"},
            {"key": "tags", "type": "multiselect",
             "options": [{"value": "refund"}, {"value": "legal"}]},
        ],
    }
)  # fmt: skip
FORMS = {"staff": STAFF, "customer": CUSTOMER, "complaint": COMPLAINT}
ROLES = {"nurse", "doctor", "manager"}

# -- flow builders -----------------------------------------------------------------------


def start(key: str = "start") -> dict[str, Any]:
    return {"key": key, "type": "start"}


def end(key: str = "end") -> dict[str, Any]:
    return {"key": key, "type": "end"}


def terminate(key: str = "stop") -> dict[str, Any]:
    return {"key": key, "type": "terminate"}


def task(key: str, **attrs: Any) -> dict[str, Any]:
    """A user task for the nurses (claim mode, outcome ``done``) unless ``attrs`` say else."""
    node: dict[str, Any] = {
        "key": key,
        "type": "user_task",
        "title": key.replace("_", " ").capitalize(),
        "assignee": {"role": "nurse"},
    }
    node.update(attrs)
    return node


def outcomes(*keys: str, **extra: dict[str, Any]) -> list[dict[str, Any]]:
    """Outcome list; ``extra`` adds properties to the outcome of that key."""
    return [{"key": key, **extra.get(key, {})} for key in keys]


def action(key: str, *actions: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "type": "action", "actions": list(actions)}


def set_values(**values: Any) -> dict[str, Any]:
    return {"type": "set", "values": values}


def notify(template: str = "hi") -> dict[str, Any]:
    return {
        "type": "notify",
        "channel": "in_app",
        "recipients": [{"role": "nurse"}],
        "template": template,
    }


def timer(key: str, **wait: Any) -> dict[str, Any]:
    return {"key": key, "type": "timer", "wait": wait or {"after": "P1D"}}


def gateway(key: str, kind: str) -> dict[str, Any]:
    return {"key": key, "type": kind}


def exclusive(key: str) -> dict[str, Any]:
    return gateway(key, "exclusive")


def parallel(key: str) -> dict[str, Any]:
    return gateway(key, "parallel")


def inclusive(key: str) -> dict[str, Any]:
    return gateway(key, "inclusive")


def wait(key: str, **attrs: Any) -> dict[str, Any]:
    return {"key": key, "type": "wait", **attrs}


def subflow(key: str, flow: str, **attrs: Any) -> dict[str, Any]:
    return {"key": key, "type": "subflow", "flow": flow, **attrs}


def cancel(key: str, *region: str) -> dict[str, Any]:
    return {"key": key, "type": "cancel", "region": list(region)}


def edge(source: str, target: str, **attrs: Any) -> dict[str, Any]:
    """An edge; pass the condition as ``when=`` (``if`` is a Python keyword)."""
    data: dict[str, Any] = {"from": source, "to": target}
    if "when" in attrs:
        data["if"] = attrs.pop("when")
    data.update(attrs)
    return data


def chain(*keys: str) -> list[dict[str, Any]]:
    """Edges a -> b -> c ..."""
    return [edge(a, b) for a, b in zip(keys, keys[1:], strict=False)]


def var(path: str) -> dict[str, Any]:
    return {"var": path}


def eq(path: str, value: Any) -> dict[str, Any]:
    return {"==": [var(path), value]}


def flow_data(
    nodes: Sequence[dict[str, Any]], edges: Iterable[dict[str, Any]], **attrs: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {"key": "f", "form": "complaint"}
    data.update(attrs)
    data["nodes"] = list(nodes)
    data["edges"] = list(edges)
    return data


def flow(
    nodes: Sequence[dict[str, Any]], edges: Iterable[dict[str, Any]], **attrs: Any
) -> FlowSpec:
    return FlowSpec.model_validate(flow_data(nodes, edges, **attrs))


def line(*middle: dict[str, Any], **attrs: Any) -> FlowSpec:
    """start -> middle ... -> end."""
    nodes = [start(), *middle, end()]
    return flow(nodes, chain(*(node["key"] for node in nodes)), **attrs)


# -- effects -----------------------------------------------------------------------------

E = TypeVar("E")


def of(effects: Iterable[Effect], kind: type[E]) -> list[E]:
    return [effect for effect in effects if isinstance(effect, kind)]


def kinds(effects: Iterable[Effect]) -> list[str]:
    return [effect.kind for effect in effects]


def summary(effects: Iterable[Effect]) -> list[str]:
    """Effects as short strings (``kind:node[:detail]``), for order assertions."""
    out = []
    for effect in effects:
        data = effect.to_dict()
        detail = data.get("outcome") or data.get("reason") or data.get("purpose") or ""
        node = data.get("node") or data.get("status") or ""
        out.append(":".join(part for part in (effect.kind, node, str(detail)) if part))
    return out


# -- the driver --------------------------------------------------------------------------


class Run:
    """One instance driven event by event, with its history and clock."""

    def __init__(
        self,
        spec: FlowSpec,
        record: dict[str, Any] | None = None,
        *,
        now: datetime = NOW,
        zone: str = "UTC",
        calendar: BusinessCalendar | None = None,
        directory: Directory = PEOPLE,
        instance: str = "i",
        state: InstanceState | None = None,
    ) -> None:
        self.flow = spec
        self.state = state if state is not None else new_instance(instance, spec)
        self.record: dict[str, Any] = {"id": "r1", **(record or {})}
        self.now = now
        self.zone = zone
        self.calendar = calendar
        self.directory = directory
        self.history: list[Effect] = []
        self.last: tuple[Effect, ...] = ()
        self.tasks: dict[str, TaskOpened] = {}
        self.timers: dict[str, TimerArmed] = {}

    def context(self) -> Context:
        return Context(
            app="clinic",
            record=self.record,
            now=self.now,
            zone=self.zone,
            calendar=self.calendar,
            directory=self.directory,
        )

    def send(self, event: Event) -> tuple[Effect, ...]:
        done = advance(self.flow, self.state, event, self.context())
        self.state = done.state
        self.record = done.record
        self.last = done.effects
        self.history.extend(done.effects)
        for effect in done.effects:
            if isinstance(effect, TaskOpened):
                self.tasks[effect.task] = effect
            elif isinstance(effect, TimerArmed):
                self.timers[effect.timer] = effect
        return done.effects

    # -- events --------------------------------------------------------------------------

    def start(self, starter: str | None = "sam", **values: Any) -> tuple[Effect, ...]:
        return self.send(Start(starter=starter, vars=values))

    def open_tasks(self, node: str | None = None) -> list[str]:
        """Open task keys (of ``node``), in the order they were opened."""
        live = set(self.state.open_tasks()) | set(self.state.strays)
        return [
            key
            for key, opened in self.tasks.items()
            if key in live and (node is None or opened.node == node)
        ]

    def task(self, node: str) -> str:
        found = self.open_tasks(node)
        assert len(found) == 1, f"expected one open task at {node}, found {found}"
        return found[0]

    def complete(
        self,
        node: str,
        outcome: str = "done",
        actor: str | None = "ann",
        comment: str | None = None,
        *,
        task: str | None = None,
    ) -> tuple[Effect, ...]:
        return self.send(TaskDone(task or self.task(node), outcome, actor, comment))

    def give_back(
        self, node: str, to: str, actor: str | None = "ann", comment: str | None = None
    ) -> tuple[Effect, ...]:
        return self.send(TaskReturned(self.task(node), to, actor, comment))

    def timer(self, node: str, purpose: str | None = None) -> str:
        """The live timer of ``node`` (whose purpose starts with ``purpose``)."""
        found = [
            key
            for token in self.state.tokens
            if token.node == node
            for key, why in token.timers.items()
            if purpose is None or why.startswith(purpose)
        ]
        assert len(found) == 1, f"expected one timer at {node}, found {found}"
        return found[0]

    def fire(self, node: str, purpose: str | None = None) -> tuple[Effect, ...]:
        """Fire the timer of ``node``, the clock moved to its due time."""
        key = self.timer(node, purpose)
        return self.fire_timer(key)

    def live_timers(self) -> list[str]:
        """Armed timers not fired or cancelled yet, the earliest first (ties: armed first)."""
        live = {key for token in self.state.tokens for key in token.timers}
        order = list(self.timers)
        return sorted(live, key=lambda key: (self.timers[key].due, order.index(key)))

    def fire_next(self) -> tuple[Effect, ...]:
        """Fire the earliest live timer (what a host's timer queue does)."""
        return self.fire_timer(self.live_timers()[0])

    def fire_timer(self, key: str) -> tuple[Effect, ...]:
        self.now = max(self.now, self.timers[key].due)
        return self.send(TimerFired(key))

    def message(self, name: str, data: Any = None) -> tuple[Effect, ...]:
        return self.send(MessageSent(name, data))

    def change(self, **values: Any) -> tuple[Effect, ...]:
        self.record.update(values)
        return self.send(RecordChanged())

    def ended(self, child: str, status: str = "completed", **values: Any) -> tuple[Effect, ...]:
        return self.send(SubflowEnded(child, status, values))

    def cancel(self, reason: str | None = None) -> tuple[Effect, ...]:
        return self.send(Cancel(actor="max", reason=reason))

    def later(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    # -- views ---------------------------------------------------------------------------

    @property
    def status(self) -> str:
        return self.state.status

    def opened(self) -> list[str]:
        """Nodes of the tasks opened so far, in order."""
        return [effect.node for effect in of(self.history, TaskOpened)]

    def completed(self) -> list[tuple[str, str]]:
        return [(effect.node, effect.outcome) for effect in of(self.history, TaskCompleted)]

    def entered(self) -> list[str]:
        return [effect.node for effect in of(self.history, NodeEntered)]

    def steps(self) -> list[tuple[str, str | None]]:
        return [(effect.node, effect.outcome) for effect in of(self.history, StepCompleted)]

    def withdrawn(self, effects: Iterable[Effect] | None = None) -> list[str]:
        """Nodes whose tasks were withdrawn (in ``effects``, default the whole history)."""
        return [
            effect.node
            for effect in of(self.history if effects is None else effects, TaskClosed)
            if effect.reason == "withdrawn"
        ]

    def cancelled_timers(self, effects: Iterable[Effect] | None = None) -> list[str]:
        return [
            effect.node
            for effect in of(self.history if effects is None else effects, TimerCancelled)
        ]

    def children(self) -> list[str]:
        return [effect.child for effect in of(self.history, SubflowStarted)]
