"""Checking flows against an app's forms, roles and other flows: every problem, with a
JSON pointer (relative to the flows list; the app check prefixes ``/flows``).

pydantic has already checked each flow's shape. :func:`check` checks the graph and what it
names:

* keys: flow keys and node keys unique; edges name existing nodes;
* shape: exactly one start, with one way out and no way in; nothing leaves an end or a
  terminate; every node reachable from the start and able to reach an end; every gateway
  has a way out; a split's outgoing edges have conditions and at most one default; a user
  task has an edge for every outcome (or one without an outcome), and edges name only
  outcomes it offers; a wait has a ``met`` edge when it waits for something and a
  ``timeout`` edge when it has a timeout; nodes that are not gateways have one way out;
* joins: every parallel (inclusive) join with several incoming edges has a parallel
  (parallel or inclusive) split upstream that feeds all of them — a join fed by an
  exclusive choice alone would wait forever;
* references: the form, fields (``edit``, ``required``, ``hide``, assignee ``field`` — a
  relation to a form whose records stand for users, ``user_field``), roles, subflows (same
  form, no flow running itself through subflows), cancel regions, escalation outcomes;
* expressions: JsonLogic well formed, reading ``record.<field>`` of the flow's form (or
  ``record.<relation>.<field>`` through at most two relations, as the rules do: the
  related form must have the field; the same for templates' ``record.…`` paths),
  ``vars``, ``steps.<node>`` of this flow, ``item``, ``starter``, ``now`` (and ``user`` in
  an assignee's ``where``); durations parse; templates parse; action nodes pass the rule
  checks (``reject`` has no write to refuse in a flow).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from formloom.engines.forms import FormSpec, field_types
from formloom.engines.forms.fields import RelationField, UserField
from formloom.engines.logic import check_expression, variables
from formloom.engines.rules.check import CONTEXT_ROOTS, Issue, check_rule
from formloom.engines.rules.related import path_problems, template_paths
from formloom.engines.rules.spec import (
    CreateRecordAction,
    CreateTaskAction,
    NotifyAction,
    RecordTrigger,
    RejectAction,
    RuleSpec,
    SetAction,
    UpdateRecordsAction,
)
from formloom.engines.rules.templates import locale_texts, template_problems
from formloom.engines.rules.timing import InvalidTiming, parse_duration

from .spec import (
    ActionNode,
    Assignee,
    CancelNode,
    EndNode,
    FlowSpec,
    InclusiveGateway,
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

__all__ = ["FLOW_ROOTS", "check"]

#: The variables a flow expression may read.
FLOW_ROOTS = frozenset({"record", "vars", "steps", "item", "starter", "now"})
_SYSTEM_FIELDS = frozenset({"id", "created_at", "updated_at", "created_by", "updated_by"})


def check(
    flows: Sequence[FlowSpec],
    forms: Mapping[str, FormSpec],
    roles: Collection[str] | None = None,
) -> list[Issue]:
    """Every problem of ``flows`` against the app's ``forms`` (and ``roles``, when given)."""
    issues: list[Issue] = []
    by_key: dict[str, FlowSpec] = {}
    for number, flow in enumerate(flows):
        if flow.key in by_key:
            issues.append(
                (f"/{number}/key", "duplicate_key", f"flow key {flow.key!r} is used twice")
            )
        by_key.setdefault(flow.key, flow)
    for number, flow in enumerate(flows):
        issues += _Checker(flow, f"/{number}", forms, roles, by_key).issues()
    issues += _subflow_cycles(flows)
    return issues


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class _Checker:
    def __init__(
        self,
        flow: FlowSpec,
        here: str,
        forms: Mapping[str, FormSpec],
        roles: Collection[str] | None,
        flows: Mapping[str, FlowSpec],
    ) -> None:
        self.flow = flow
        self.here = here
        self.forms = forms
        self.roles = roles
        self.flows = flows
        self.form = forms.get(flow.form)
        self.fields = field_types(self.form) if self.form is not None else {}
        self.found: list[Issue] = []
        self.index: dict[str, int] = {}
        for number, node in enumerate(flow.nodes):
            self.index.setdefault(node.key, number)  # a duplicate key is reported, not used
        self.outgoing: dict[str, list[int]] = {node.key: [] for node in flow.nodes}
        self.incoming: dict[str, list[int]] = {node.key: [] for node in flow.nodes}

    def add(self, pointer: str, code: str, message: str) -> None:
        self.found.append((self.here + pointer, code, message))

    def node_pointer(self, key: str) -> str:
        return f"/nodes/{self.index[key]}"

    def issues(self) -> list[Issue]:
        flow = self.flow
        if self.form is None:
            self.add("/form", "unknown_form", f"there is no form {flow.form!r}")
        seen: set[str] = set()
        for number, node in enumerate(flow.nodes):
            if node.key in seen:
                self.add(
                    f"/nodes/{number}/key", "duplicate_key", f"node key {node.key!r} is used twice"
                )
            seen.add(node.key)
        for number, edge in enumerate(flow.edges):
            for end, key in (("from", edge.source), ("to", edge.target)):
                if key not in self.index:
                    self.add(f"/edges/{number}/{end}", "unknown_node", f"there is no node {key!r}")
            if edge.source in self.index and edge.target in self.index:
                self.outgoing[edge.source].append(number)
                self.incoming[edge.target].append(number)
        for number, role in enumerate(flow.start.roles):
            self.role(role, f"/start/roles/{number}")
        self.expression(flow.start.when, "/start/when", roots={"record", "now"})
        for name, expression in flow.vars.items():
            self.expression(
                expression, f"/vars/{_escape(name)}", roots={"record", "starter", "now"}
            )
        self.expression(flow.cancel_when, "/cancel_when")
        self.shape()
        for number, node in enumerate(flow.nodes):
            self.node(node, f"/nodes/{number}")
        for number, edge in enumerate(flow.edges):
            self.expression(edge.condition, f"/edges/{number}/if")
        return self.found

    # -- the graph -------------------------------------------------------------------

    def shape(self) -> None:
        starts = [node for node in self.flow.nodes if isinstance(node, StartNode)]
        if len(starts) != 1:
            self.add(
                "/nodes", "start_count", f"a flow has exactly one start node (found {len(starts)})"
            )
        if not any(isinstance(node, EndNode | TerminateNode) for node in self.flow.nodes):
            self.add("/nodes", "no_end", "a flow needs an end or terminate node")
        for node in self.flow.nodes:
            if node.key not in self.index or self.flow.nodes[self.index[node.key]] is not node:
                continue  # a duplicate key: reported already
            where = self.node_pointer(node.key)
            out = self.outgoing[node.key]
            if isinstance(node, StartNode):
                if self.incoming[node.key]:
                    self.add(
                        f"/edges/{self.incoming[node.key][0]}/to",
                        "edge_into_start",
                        "no edge may enter the start node",
                    )
                if len(out) != 1:
                    self.add(where, "start_edges", "the start node needs exactly one outgoing edge")
            elif isinstance(node, EndNode | TerminateNode):
                if out:
                    self.add(
                        f"/edges/{out[0]}/from",
                        "edge_out_of_end",
                        f"nothing leaves the {node.type} node {node.key!r}",
                    )
            elif isinstance(node, ActionNode | TimerNode | CancelNode | SubflowNode):
                if len(out) != 1:
                    self.add(
                        where,
                        "one_way_out",
                        f"a {node.type} node needs exactly one outgoing edge (has {len(out)})",
                    )
            elif not out:
                self.add(where, "no_way_out", f"{node.type} node {node.key!r} has no outgoing edge")
            for number in out:
                edge = self.flow.edges[number]
                if edge.outcome is not None and not isinstance(node, UserTaskNode):
                    self.add(
                        f"/edges/{number}/outcome",
                        "outcome_not_task",
                        "only edges out of a user task choose by outcome",
                    )
                if edge.on is not None and not isinstance(node, WaitNode):
                    self.add(
                        f"/edges/{number}/on",
                        "on_not_wait",
                        "only edges out of a wait choose by 'on'",
                    )
                gateway = node.type in ("exclusive", "inclusive") and len(out) > 1
                if (
                    (edge.condition is not None or edge.default)
                    and not gateway
                    and not (isinstance(node, UserTaskNode))
                ):
                    self.add(
                        f"/edges/{number}",
                        "condition_not_split",
                        "conditions and defaults belong on edges out of an exclusive or "
                        "inclusive split",
                    )
            if node.type in ("exclusive", "inclusive") and len(out) > 1:
                self.split(node, out)
            if isinstance(node, UserTaskNode):
                self.task_edges(node, out)
            if isinstance(node, WaitNode):
                self.wait_edges(node, out)
        self.reachability()
        self.joins()

    def split(self, node: Node, out: list[int]) -> None:
        defaults = [n for n in out if self.flow.edges[n].default]
        if len(defaults) > 1:
            self.add(
                f"/edges/{defaults[1]}/default",
                "two_defaults",
                f"split {node.key!r} has more than one default edge",
            )
        for number in out:
            edge = self.flow.edges[number]
            if edge.condition is None and not edge.default:
                self.add(
                    f"/edges/{number}",
                    "missing_condition",
                    f"an edge out of split {node.key!r} needs 'if' or 'default'",
                )

    def task_edges(self, node: UserTaskNode, out: list[int]) -> None:
        offered = {option.key for option in node.outcomes}
        chosen: dict[str, int] = {}
        plain = False
        for number in out:
            edge = self.flow.edges[number]
            if edge.outcome is None:
                plain = True
            elif edge.outcome not in offered:
                self.add(
                    f"/edges/{number}/outcome",
                    "unknown_outcome",
                    f"user task {node.key!r} offers no outcome {edge.outcome!r}",
                )
            else:
                chosen[edge.outcome] = number
        where = self.node_pointer(node.key)
        for number, option in enumerate(node.outcomes):
            if option.to is not None:
                if option.to not in self.index:
                    self.add(
                        f"{where}/outcomes/{number}/to",
                        "unknown_node",
                        f"there is no node {option.to!r}",
                    )
                continue
            if option.key not in chosen and not plain:
                self.add(
                    f"{where}/outcomes/{number}",
                    "outcome_without_edge",
                    f"no edge leaves {node.key!r} for outcome {option.key!r}",
                )

    def wait_edges(self, node: WaitNode, out: list[int]) -> None:
        kinds = [self.flow.edges[number].on for number in out]
        where = self.node_pointer(node.key)
        if (node.until is not None or node.message is not None) and "met" not in kinds:
            self.add(where, "wait_without_met", f"wait {node.key!r} needs an edge with on: met")
        if node.timeout is not None and "timeout" not in kinds:
            self.add(
                where,
                "wait_without_timeout",
                f"wait {node.key!r} has a timeout and needs an edge with on: timeout",
            )
        for number in out:
            if self.flow.edges[number].on is None:
                self.add(
                    f"/edges/{number}",
                    "wait_edge_without_on",
                    "an edge out of a wait says when it is taken: on met or on timeout",
                )

    def jumps(self, key: str) -> list[str]:
        """Where a node's tokens can go: its edges and its outcomes' jumps."""
        targets = [self.flow.edges[number].target for number in self.outgoing.get(key, ())]
        node = self.flow.nodes[self.index[key]]
        if isinstance(node, UserTaskNode):
            targets += [o.to for o in node.outcomes if o.to is not None and o.to in self.index]
        return targets

    def reachability(self) -> None:
        starts = [node.key for node in self.flow.nodes if isinstance(node, StartNode)]
        if len(starts) != 1:
            return
        reached = self.closure(starts, forward=True)
        ends = [n.key for n in self.flow.nodes if isinstance(n, EndNode | TerminateNode)]
        finishing = self.closure(ends, forward=False)
        for key, number in self.index.items():
            if key not in reached:
                self.add(
                    f"/nodes/{number}",
                    "unreachable",
                    f"node {key!r} cannot be reached from the start",
                )
            elif key not in finishing:
                self.add(
                    f"/nodes/{number}", "dead_end", f"no path leads from node {key!r} to an end"
                )

    def closure(self, seeds: list[str], *, forward: bool) -> set[str]:
        back: dict[str, list[str]] = {key: [] for key in self.index}
        if not forward:
            for key in self.index:
                for target in self.jumps(key):
                    back[target].append(key)
        seen = set(seeds)
        queue = deque(seeds)
        while queue:
            here = queue.popleft()
            for there in self.jumps(here) if forward else back[here]:
                if there not in seen:
                    seen.add(there)
                    queue.append(there)
        return seen

    def joins(self) -> None:
        for node in self.flow.nodes:
            if not isinstance(node, ParallelGateway | InclusiveGateway):
                continue
            incoming = self.incoming.get(node.key, [])
            if len(incoming) < 2:
                continue
            kinds = (
                ("parallel",) if isinstance(node, ParallelGateway) else ("parallel", "inclusive")
            )
            feeding: set[str] | None = None
            for number in incoming:
                splits = self.splits_before(self.flow.edges[number].source, node.key, kinds)
                feeding = splits if feeding is None else feeding & splits
            if not feeding:
                self.add(
                    self.node_pointer(node.key),
                    "unmatched_join",
                    f"{node.type} join {node.key!r}: no {' or '.join(kinds)} split feeds all "
                    "its incoming edges, so it could wait forever",
                )

    def splits_before(self, start: str, join: str, kinds: tuple[str, ...]) -> set[str]:
        """The splits of ``kinds`` upstream of ``start`` (not through ``join``)."""
        back: dict[str, list[str]] = {key: [] for key in self.index}
        for number, edge in enumerate(self.flow.edges):
            if number in self.incoming.get(edge.target, ()):
                back[edge.target].append(edge.source)
        found: set[str] = set()
        seen = {start}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            node = self.flow.nodes[self.index[here]]
            if node.type in kinds and len(self.outgoing[here]) > 1:
                found.add(here)
            for there in back[here]:
                if there != join and there not in seen:
                    seen.add(there)
                    queue.append(there)
        return found

    # -- nodes -----------------------------------------------------------------------

    def node(self, node: Node, where: str) -> None:
        if isinstance(node, UserTaskNode):
            self.user_task(node, where)
        elif isinstance(node, ActionNode):
            self.actions(node, where)
        elif isinstance(node, TimerNode):
            self.timing(node.wait, f"{where}/wait")
        elif isinstance(node, WaitNode):
            self.expression(node.until, f"{where}/until")
            if node.timeout is not None:
                self.timing(node.timeout, f"{where}/timeout")
        elif isinstance(node, SubflowNode):
            target = self.flows.get(node.flow)
            if target is None:
                self.add(f"{where}/flow", "unknown_flow", f"there is no flow {node.flow!r}")
            elif target.form != self.flow.form:
                self.add(
                    f"{where}/flow",
                    "subflow_form",
                    f"flow {node.flow!r} runs on {target.form!r} records, not {self.flow.form!r}",
                )
            for name, expression in node.vars.items():
                self.expression(expression, f"{where}/vars/{_escape(name)}")
            if node.multi is not None:
                self.expression(node.multi.over, f"{where}/multi/over")
        elif isinstance(node, CancelNode):
            for number, key in enumerate(node.region):
                if key not in self.index:
                    self.add(
                        f"{where}/region/{number}", "unknown_node", f"there is no node {key!r}"
                    )
                elif key == node.key:
                    self.add(
                        f"{where}/region/{number}",
                        "cancels_itself",
                        "a cancel node cannot cancel itself",
                    )

    def user_task(self, node: UserTaskNode, where: str) -> None:
        self.template(node.title, f"{where}/title")
        if node.description is not None:
            self.template(node.description, f"{where}/description")
        self.assignee(node.assignee, f"{where}/assignee")
        keys = [option.key for option in node.outcomes]
        for number, key in enumerate(keys):
            if key in keys[:number]:
                self.add(
                    f"{where}/outcomes/{number}/key",
                    "duplicate_key",
                    f"outcome {key!r} is offered twice",
                )
        for part in ("edit", "required", "hide"):
            for number, name in enumerate(getattr(node, part)):
                self.field(name, f"{where}/{part}/{number}")
        for number, name in enumerate(node.required):
            if name not in node.edit:
                self.add(
                    f"{where}/required/{number}",
                    "required_not_editable",
                    f"{name!r} is required but not in 'edit'",
                )
        if node.multi is not None:
            self.expression(node.multi.over, f"{where}/multi/over")
            if node.mode == "all" or isinstance(node.mode, int):
                self.add(
                    f"{where}/mode",
                    "multi_with_mode",
                    "a multi-instance task has one person per item: use mode claim or any",
                )
        if isinstance(node.mode, int) and node.mode < 1:
            self.add(f"{where}/mode", "invalid_mode", "N of M needs N of at least 1")
        if node.due is not None:
            self.timing(node.due, f"{where}/due")
        if node.escalations and node.due is None:
            self.add(
                f"{where}/escalations",
                "escalation_without_due",
                "escalations start from the due time: give the task a 'due'",
            )
        for number, escalation in enumerate(node.escalations):
            here = f"{where}/escalations/{number}"
            self.timing(escalation.after, f"{here}/after")
            if escalation.to is not None:
                self.assignee(escalation.to, f"{here}/to")
            if escalation.outcome is not None and escalation.outcome not in keys:
                self.add(
                    f"{here}/outcome",
                    "unknown_outcome",
                    f"user task {node.key!r} offers no outcome {escalation.outcome!r}",
                )
            if escalation.repeat is not None:
                self.duration(escalation.repeat, f"{here}/repeat", positive=True)

    def assignee(self, assignee: Assignee, where: str) -> None:
        self.role(assignee.role, f"{where}/role")
        self.expression(assignee.user, f"{where}/user")
        self.expression(assignee.where, f"{where}/where", roots=FLOW_ROOTS | {"user"})
        if assignee.field is None or self.form is None:
            return
        if not self.field(assignee.field, f"{where}/field"):
            return
        field = self.form.field(assignee.field)
        if isinstance(field, UserField):
            return  # a member field names the users themselves
        target = self.forms.get(field.target) if isinstance(field, RelationField) else None
        if not isinstance(field, RelationField):
            self.add(
                f"{where}/field",
                "assignee_not_relation",
                f"{assignee.field!r} is neither a member field nor a relation to staff: it "
                "cannot name a user",
            )
        elif target is None or target.user_field is None:
            self.add(
                f"{where}/field",
                "assignee_not_staff",
                f"{assignee.field!r} points at {field.target!r} records, which do not stand "
                "for users (the form has no 'user_field')",
            )

    def actions(self, node: ActionNode, where: str) -> None:
        for number, action in enumerate(node.actions):
            if isinstance(action, RejectAction):
                self.add(
                    f"{where}/actions/{number}",
                    "reject_in_flow",
                    "a flow has no write to reject; use an exclusive gateway",
                )
            # the rule checks know nothing of this flow's nodes: steps.<node> is checked here
            for sub, expression in _action_expressions(action):
                self.steps_read(expression, f"{where}/actions/{number}{sub}")
        if self.form is None:
            return
        rule = RuleSpec(
            key=node.key,
            on=RecordTrigger(form=self.flow.form, event="updated"),
            then=list(node.actions),
        )
        for pointer, code, message in check_rule(
            rule, self.forms, self.roles, roots=CONTEXT_ROOTS | FLOW_ROOTS
        ):
            if code == "reject_needs_write":
                continue
            self.add(where + pointer.replace("/then/", "/actions/", 1), code, message)

    # -- pieces ----------------------------------------------------------------------

    def field(self, name: str, pointer: str) -> bool:
        if self.form is None:
            return False
        if name not in self.fields:
            self.add(pointer, "unknown_field", f"form {self.flow.form!r} has no field {name!r}")
            return False
        return True

    def role(self, role: str | None, pointer: str) -> None:
        if role is not None and self.roles is not None and role not in self.roles:
            self.add(pointer, "unknown_role", f"there is no role {role!r}")

    def duration(self, text: str, pointer: str, *, positive: bool = False) -> None:
        try:
            duration = parse_duration(text)
        except InvalidTiming as error:
            self.add(pointer, "invalid_duration", str(error))
            return
        if duration.months < 0 or duration.days < 0 or duration.seconds < 0:
            self.add(pointer, "negative_duration", "a duration here cannot be negative")
        elif positive and not (duration.months or duration.days or duration.seconds):
            self.add(pointer, "invalid_duration", "a repeat interval must be longer than zero")

    def timing(self, timing: Timing, pointer: str) -> None:
        if timing.after is not None:
            self.duration(timing.after, f"{pointer}/after")
        self.expression(timing.at, f"{pointer}/at")

    def template(self, text: Any, pointer: str) -> None:
        for locale, body in locale_texts(text):
            problem = template_problems(body)
            where = pointer if locale is None else f"{pointer}/{_escape(locale)}"
            if problem is not None:
                self.add(where, "invalid_template", problem)
                continue
            for path in sorted(template_paths(body)):
                self.related_path(path, where)

    def expression(
        self, expression: Any, pointer: str, *, roots: Collection[str] = FLOW_ROOTS
    ) -> None:
        if expression is None:
            return
        for sub, message in check_expression(expression):
            self.add(pointer + sub, "invalid_expression", message)
        for path in sorted(variables(expression)):
            if path == "*":
                continue
            root, _, rest = path.partition(".")
            if root not in roots:
                self.add(
                    pointer,
                    "unknown_variable",
                    f"{path!r}: here an expression reads {', '.join(sorted(roots))}",
                )
            elif root == "record" and rest and self.form is not None:
                name = rest.partition(".")[0]
                if name not in self.fields and name not in _SYSTEM_FIELDS:
                    self.add(
                        pointer,
                        "unknown_field",
                        f"{path!r}: form {self.flow.form!r} has no field {name!r}",
                    )
                else:
                    self.related_path(path, pointer)
        if "steps" in roots:
            self.steps_read(expression, pointer)

    def related_path(self, path: str, pointer: str) -> None:
        """A path through relations reads fields the related forms have, through at most
        two of them (the rules' check: :func:`~formloom.engines.rules.related.path_problems`)."""
        for code, message in path_problems(path, self.form, self.forms):
            self.add(pointer, code, message)

    def steps_read(self, expression: Any, pointer: str) -> None:
        """``steps.<node>`` must name a node of this flow."""
        if expression is None:
            return
        for path in sorted(variables(expression)):
            root, _, rest = path.partition(".")
            name = rest.partition(".")[0]
            if root == "steps" and name and name not in self.index:
                self.add(pointer, "unknown_node", f"{path!r}: the flow has no node {name!r}")


def _action_expressions(action: Any) -> list[tuple[str, Any]]:
    """The JsonLogic parts of a rule action, with their pointers below the action."""
    found: list[tuple[str, Any]] = [("/at", action.at)]
    if isinstance(action, SetAction | CreateRecordAction | UpdateRecordsAction):
        found += [(f"/values/{_escape(k)}", v) for k, v in action.values.items()]
    if isinstance(action, UpdateRecordsAction):
        found.append(("/filter", action.filter))
    if isinstance(action, CreateTaskAction):
        found += [("/user", action.user), ("/due", action.due)]
    if isinstance(action, NotifyAction):
        for number, recipient in enumerate(action.recipients):
            found += [
                (f"/recipients/{number}/user", recipient.user),
                (f"/recipients/{number}/address", recipient.address),
            ]
    return found


def _subflow_cycles(flows: Sequence[FlowSpec]) -> list[Issue]:
    """A flow that runs itself through its subflows would never end."""
    calls = {
        flow.key: {node.flow for node in flow.nodes if isinstance(node, SubflowNode)}
        for flow in flows
    }
    issues: list[Issue] = []
    for number, flow in enumerate(flows):
        seen: set[str] = set()
        queue = deque(calls.get(flow.key, ()))
        while queue:
            key = queue.popleft()
            if key == flow.key:
                issues.append(
                    (
                        f"/{number}",
                        "subflow_cycle",
                        f"flow {flow.key!r} runs itself through its subflows",
                    )
                )
                break
            if key not in seen:
                seen.add(key)
                queue.extend(calls.get(key, ()))
    return issues
