"""The flow model: a task graph that runs on one record, as immutable data.

A :class:`FlowSpec` is part of an app definition (``"flows": [...]``). It runs on one record
of its ``form`` (the work order: a complaint, a consultation, a follow-up plan): nodes joined
by edges, tokens moving along them (docs/flows.md). pydantic checks the shape (strict, no
unknown keys, every property described); :func:`~.check.check` checks the graph and what it
refers to (forms, fields, roles, flows).

Nodes are a discriminated union on ``type``:

* ``start``, ``end`` (this path is done), ``terminate`` (the whole instance is done: every
  other path is withdrawn);
* ``user_task``: work for people (assignee, mode, outcomes, the record fields the step may
  edit or must not see, a due time and escalations), optionally once per item of a list
  (``multi``);
* ``action``: rule actions (set values, create / update records, create a task, notify,
  webhook), planned by the rule engine;
* ``timer``: wait for a duration, a moment an expression gives, or working time on the app's
  business calendar;
* ``exclusive``, ``parallel`` and ``inclusive`` gateways: a gateway with several outgoing
  edges splits, with several incoming edges joins (both at once is allowed);
* ``wait``: until a record condition holds or a message arrives, raced against a timeout
  (the deferred choice: "the patient replied" or "3 days passed");
* ``subflow``: another flow of the app on the same record, optionally once per item;
* ``cancel``: withdraw the work in a region of nodes, then go on.

Edges carry what chooses them: a JsonLogic ``if`` (exclusive and inclusive splits), ``default``
(taken when no condition holds), an ``outcome`` (a user task's result) or ``on``
(``met`` / ``timeout`` out of a wait). Expressions read ``record``, ``vars``, ``steps``
(``steps.<node>.outcome``, ``.outcomes``, ``.actor``, ``.comment``), ``item`` (inside a
multi-instance node), ``starter`` and ``now``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, model_validator

from formloom.engines.forms.labels import Label
from formloom.engines.rules.spec import Action, Template

__all__ = [
    "ActionNode",
    "Assignee",
    "CancelNode",
    "Edge",
    "EndNode",
    "Escalation",
    "ExclusiveGateway",
    "FlowSpec",
    "InclusiveGateway",
    "MultiInstance",
    "Node",
    "Outcome",
    "ParallelGateway",
    "Position",
    "StartNode",
    "StartPolicy",
    "SubflowNode",
    "TerminateNode",
    "TimerNode",
    "Timing",
    "UserTaskNode",
    "WaitNode",
]

Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]

_EXPRESSION = "JsonLogic over record, vars, steps, item, starter and now."


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class Timing(_Model):
    """A moment relative to now: exactly one of ``after``, ``at``, ``working_days``,
    ``working_hours``. Working time counts on the app's business calendar (``calendar`` in
    the app; every hour counts without one)."""

    after: str | None = Field(
        default=None,
        description="An ISO 8601 duration ('P3D', 'PT48H'): days are calendar days in the "
        "clinic's zone, hours are elapsed time.",
    )
    at: Any = Field(
        default=None,
        description="JsonLogic giving a date (its 00:00 in the clinic's zone) or a datetime.",
    )
    working_days: int | None = Field(
        default=None,
        ge=0,
        description="This many working days later, at the same clock time (from the next "
        "working moment).",
    )
    working_hours: float | None = Field(
        default=None, ge=0, description="This many hours of working time later."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Timing:
        given = [
            name
            for name in ("after", "at", "working_days", "working_hours")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of after, at, working_days, working_hours"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class Position(_Model):
    """Where the designer (and the BPMN diagram) draws a node."""

    x: float = Field(description="Left, in diagram units.")
    y: float = Field(description="Top, in diagram units.")


class Assignee(_Model):
    """Who may do a task: exactly one way of choosing people.

    ``role`` (everyone with the role, optionally narrowed by ``where`` over each ``user``'s
    attributes), ``user`` (a user name or a JsonLogic giving one or a list), ``field`` (a
    member field of the record — its people — or a relation field of the record to a staff
    record; the staff record's user), ``starter``
    (who started the flow) or ``previous`` (who completed the step before)."""

    role: str | None = Field(default=None, description="Key of an app role.")
    user: Any = Field(
        default=None, description="A user name, or JsonLogic giving one or a list of them."
    )
    field: str | None = Field(
        default=None,
        description="A member (user) field of the record, or a relation field of the "
        "record pointing at a staff record that names its user.",
    )
    starter: bool | None = Field(default=None, description="The user who started the flow.")
    previous: bool | None = Field(
        default=None, description="The user who completed the previous user task."
    )
    where: Any = Field(
        default=None,
        description="With role: JsonLogic each candidate must satisfy, over `user` (name, "
        "attributes) and the flow's variables (e.g. the user's department is the record's).",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Assignee:
        given = [
            name
            for name in ("role", "user", "field", "starter", "previous")
            if getattr(self, name) not in (None, False)
        ]
        if len(given) != 1:
            raise ValueError("give exactly one of role, user, field, starter, previous")
        if self.where is not None and self.role is None:
            raise ValueError("'where' narrows a role; give it with 'role'")
        return self


class Outcome(_Model):
    """A result a user task offers (a button in the inbox)."""

    key: Key = Field(description="Identifier; edges with this outcome are taken.")
    label: Label | None = Field(default=None, description="Text on the button.")
    to: Key | None = Field(
        default=None,
        description="Go straight to this node (a return to an earlier step) instead of "
        "following edges.",
    )
    veto: bool = Field(
        default=False,
        description="With several people on the step (multi, all, n): this outcome finishes "
        "the step at once, as its outcome (one rejection rejects).",
    )
    comment: Literal["optional", "required"] = Field(
        default="optional", description="Whether a comment must be given with this outcome."
    )


class MultiInstance(_Model):
    """The node runs once per item of a list: a multiselect, a table, a relation list, or
    any JsonLogic list (``item`` is the current one)."""

    over: Any = Field(description="JsonLogic giving the list (or a literal list).")
    complete: Literal["all", "any"] | int = Field(
        default="all",
        description="How many must finish before the flow goes on: all, any, or a number.",
    )
    cancel_rest: bool = Field(
        default=True,
        description="When enough have finished, withdraw the rest (false: they stay open and "
        "their results are recorded, but the flow has moved on).",
    )


class Escalation(_Model):
    """What happens when a task is overdue: ``after`` (from the due time) do ``action``."""

    after: Timing = Field(
        default=Timing(after="PT0S"), description="How long after the due time; default at once."
    )
    action: Literal["remind", "reassign", "complete"] = Field(
        description="remind (notify the assignees again), reassign (to `to`), or complete "
        "(with `outcome`, as the system)."
    )
    to: Assignee | None = Field(default=None, description="reassign: the new assignee.")
    outcome: Key | None = Field(default=None, description="complete: the outcome to use.")
    repeat: str | None = Field(
        default=None,
        description="An ISO 8601 duration: do it again at this interval while the task is "
        "open (remind only).",
    )

    @model_validator(mode="after")
    def _parts(self) -> Escalation:
        if self.action == "reassign" and self.to is None:
            raise ValueError("a reassign escalation needs 'to'")
        if self.action == "complete" and self.outcome is None:
            raise ValueError("a complete escalation needs 'outcome'")
        if self.repeat is not None and self.action != "remind":
            raise ValueError("only a remind escalation repeats")
        return self


class _Node(_Model):
    key: Key = Field(description="Identifier of the node within the flow.")
    label: Label | None = Field(default=None, description="Name shown in the diagram.")
    position: Position | None = Field(default=None, description="Where the diagram draws it.")


class StartNode(_Node):
    """Where every instance begins (exactly one per flow)."""

    type: Literal["start"] = Field(description="Node type.")


class EndNode(_Node):
    """This path is done; the instance ends when no path is left."""

    type: Literal["end"] = Field(description="Node type.")


class TerminateNode(_Node):
    """The instance is done: every other path is withdrawn, with its tasks and timers."""

    type: Literal["terminate"] = Field(description="Node type.")


class UserTaskNode(_Node):
    """Work for people, shown in their inbox."""

    type: Literal["user_task"] = Field(description="Node type.")
    title: Template = Field(description="Task title: Jinja2 template or locale -> template.")
    description: Template | None = Field(default=None, description="Longer text (template).")
    assignee: Assignee = Field(description="Who may do it.")
    mode: Literal["claim", "any", "all"] | int = Field(
        default="claim",
        description="claim (one candidate claims it, then completes it), any (any candidate "
        "completes it), all (every candidate must), or a number N (N of the candidates).",
    )
    outcomes: list[Outcome] = Field(
        default_factory=lambda: [Outcome(key="done")],
        min_length=1,
        description="The results the task offers.",
    )
    edit: list[str] = Field(
        default_factory=list, description="Record fields the step may edit when completing."
    )
    required: list[str] = Field(
        default_factory=list, description="Of `edit`: fields that must have a value to complete."
    )
    hide: list[str] = Field(
        default_factory=list, description="Record fields the step's people do not see."
    )
    due: Timing | None = Field(default=None, description="When the task is due.")
    escalations: list[Escalation] = Field(
        default_factory=list, description="What happens when it is overdue, in order."
    )
    returnable: bool = Field(
        default=False,
        description="The task may be returned to an earlier user task of this instance.",
    )
    multi: MultiInstance | None = Field(default=None, description="Once per item of a list.")


class ActionNode(_Node):
    """Rule actions, run when a token arrives (sync ones in the step's transaction)."""

    type: Literal["action"] = Field(description="Node type.")
    actions: list[Action] = Field(min_length=1, description="Rule actions, in order.")


class TimerNode(_Node):
    """Wait until a moment."""

    type: Literal["timer"] = Field(description="Node type.")
    wait: Timing = Field(description="How long, or until when.")


class _Gateway(_Node):
    pass


class ExclusiveGateway(_Gateway):
    """Split: the first outgoing edge whose `if` holds (else the default). Join: passes every
    token on (a simple merge)."""

    type: Literal["exclusive"] = Field(description="Node type.")


class ParallelGateway(_Gateway):
    """Split: every outgoing edge. Join: waits for a token on every incoming edge."""

    type: Literal["parallel"] = Field(description="Node type.")


class InclusiveGateway(_Gateway):
    """Split: every outgoing edge whose `if` holds (else the default). Join: waits until no
    more tokens can arrive (the tokens that are on their way)."""

    type: Literal["inclusive"] = Field(description="Node type.")


class WaitNode(_Node):
    """Wait for a record condition or a message, raced against a timeout: leaves by the edge
    `on: met` when what it waits for happens, by `on: timeout` when the time is up."""

    type: Literal["wait"] = Field(description="Node type.")
    until: Any = Field(
        default=None,
        description=f"Leave when this holds (checked on every record change). {_EXPRESSION}",
    )
    message: Key | None = Field(
        default=None,
        description="Leave when this message is sent to the instance; a message sent before "
        "the wait is reached is kept for it.",
    )
    timeout: Timing | None = Field(default=None, description="Leave by `on: timeout` then.")

    @model_validator(mode="after")
    def _something(self) -> WaitNode:
        if self.until is None and self.message is None and self.timeout is None:
            raise ValueError("a wait needs 'until', 'message' or 'timeout'")
        return self


class SubflowNode(_Node):
    """Run another flow of the app on the same record and wait for it to end."""

    type: Literal["subflow"] = Field(description="Node type.")
    flow: Key = Field(description="Key of the flow to run.")
    vars: dict[str, Any] = Field(
        default_factory=dict,
        description=f"The subflow's starting variables: name -> expression. {_EXPRESSION}",
    )
    multi: MultiInstance | None = Field(default=None, description="Once per item of a list.")


class CancelNode(_Node):
    """Withdraw the work in `region` (tokens, tasks, timers, subflows), then go on."""

    type: Literal["cancel"] = Field(description="Node type.")
    region: list[Key] = Field(min_length=1, description="Keys of the nodes to withdraw.")


Node: TypeAlias = Annotated[
    StartNode
    | EndNode
    | TerminateNode
    | UserTaskNode
    | ActionNode
    | TimerNode
    | ExclusiveGateway
    | ParallelGateway
    | InclusiveGateway
    | WaitNode
    | SubflowNode
    | CancelNode,
    Field(discriminator="type"),
]

#: Nodes that wait for something outside the engine (a person, time, a message, a subflow).
WAITING_TYPES = frozenset({"user_task", "timer", "wait", "subflow"})
GATEWAY_TYPES = frozenset({"exclusive", "parallel", "inclusive"})


class Edge(_Model):
    """A connection from one node to another, with what chooses it."""

    source: Key = Field(alias="from", description="Key of the node it leaves.")
    target: Key = Field(alias="to", description="Key of the node it enters.")
    condition: Any = Field(
        default=None,
        alias="if",
        description=f"Out of an exclusive or inclusive split: taken when this holds. {_EXPRESSION}",
    )
    default: bool = Field(
        default=False, description="Out of a split: taken when no condition holds."
    )
    outcome: Key | None = Field(
        default=None, description="Out of a user task: taken for this outcome."
    )
    on: Literal["met", "timeout"] | None = Field(
        default=None, description="Out of a wait: met (what it waits for happened) or timeout."
    )
    label: Label | None = Field(default=None, description="Text on the arrow.")


class StartPolicy(_Model):
    """Who may start the flow by hand (rules and the API's admins always may)."""

    roles: list[str] = Field(default_factory=list, description="Roles that may start it.")
    when: Any = Field(
        default=None,
        description="Only on records where this holds (JsonLogic over record).",
    )


class FlowSpec(_Model):
    """One flow of an app."""

    key: Key = Field(description="Identifier of the flow within its app.")
    label: Label | None = Field(default=None, description="Name of the flow.")
    description: Label | None = Field(default=None, description="What the flow is for.")
    form: Key = Field(description="Key of the form whose record the flow runs on.")
    start: StartPolicy = Field(default_factory=StartPolicy, description="Who may start it by hand.")
    vars: dict[str, Any] = Field(
        default_factory=dict,
        description="Starting variables: name -> JsonLogic over record and starter.",
    )
    cancel_when: Any = Field(
        default=None,
        description="Cancel the instance when this holds after a change of its record "
        "(e.g. the patient was discharged).",
    )
    single: bool = Field(
        default=True,
        description="At most one running instance of this flow per record.",
    )
    nodes: list[Node] = Field(min_length=2, description="The steps.")
    edges: list[Edge] = Field(min_length=1, description="How the steps connect.")

    def node(self, key: str) -> Node | None:
        for node in self.nodes:
            if node.key == key:
                return node
        return None
