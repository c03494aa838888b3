"""Export a flow as a BPMN 2.0 document (bpmn.io, Camunda Modeler), drawn and schema-valid.

:func:`to_bpmn` turns a :class:`~.spec.FlowSpec` into one ``bpmn:definitions`` document with
one executable ``bpmn:process`` (id ``<app>__<flow key>`` made a valid NCName, name the flow's
label) and a ``bpmndi:BPMNDiagram`` that draws every element. It is pure (the standard
library's ``xml.etree.ElementTree``, no I/O) and deterministic: the same flow gives the same
bytes. The document validates against the OMG BPMN 2.0 XSD (the tests check it, and run the
export on SpiffWorkflow against :func:`~.simulate.simulate`).

Mapping (node type -> BPMN):

============  ===================================================================================
start         ``startEvent``
end           ``endEvent``
terminate     ``endEvent`` with ``terminateEventDefinition``
user_task     ``userTask`` named by the label, else the title (for ``locale``); ``multi`` adds
              ``multiInstanceLoopCharacteristics isSequential="false"`` whose
              ``loopCardinality`` counts the items of ``over`` (the expression kept verbatim
              inside ``{"reduce": [over, +1, 0]}`` and in ``formloom:multi``); ``complete``
              any / N and ``veto`` outcomes become a ``completionCondition`` over
              ``nrOfCompletedInstances`` (as Camunda names it) and ``steps.<key>.outcome``;
              ``mode`` all / N (one task per candidate, known only at run time) is kept in
              ``formloom:mode`` alone
action        ``scriptTask`` (``scriptFormat="application/vnd.formloom.actions+json"``, the
              script is the JSON list of rule actions): an activity a BPMN engine runs itself
timer         ``intermediateCatchEvent`` with ``timerEventDefinition``: ``timeDuration`` for
              ``after``; ``timeDate`` with the JsonLogic of ``at``; working time as a
              ``timeDuration`` in the language ``https://formloom.dev/schema/bpmn/working-time``
              (body ``{"working_days": n}`` / ``{"working_hours": h}``) — each with a
              ``documentation`` saying what it means
exclusive     ``exclusiveGateway`` (the default edge -> the gateway's ``default``)
parallel      ``parallelGateway``
inclusive     ``inclusiveGateway`` (the default edge -> the gateway's ``default``)
wait          the deferred choice: an ``eventBasedGateway`` (``node_<key>``) to two
              ``intermediateCatchEvent`` s, ``node_<key>-met`` (``messageEventDefinition`` for
              ``message``, ``conditionalEventDefinition`` with the JsonLogic of ``until``; both
              at once make a Multiple event: whichever comes first) and ``node_<key>-timeout``
              (``timerEventDefinition``); the wait's ``on: met`` / ``on: timeout`` edges leave
              those events. A wait with only one of the two is that one catch event alone
              (an event-based gateway needs two ways out)
subflow       ``callActivity`` with ``calledElement`` = the process id the subflow's own export
              has (``<app>__<subflow key>``, so the two documents link up); ``multi`` as above
cancel        ``intermediateThrowEvent`` with a ``signalEventDefinition`` (signal
              ``formloom.cancel.<key>``) whose ``documentation`` names the withdrawn region;
              the region's keys are in ``formloom:region``. The graph stays a plain sequence
              (BPMN would need a sub-process and a boundary event for a real region)
============  ===================================================================================

Every element is named by its node's label for ``locale`` (else a user task's title, a
call activity's subflow key, any other node's key; the outcome gateway is "<task name>?").
Edges are ``sequenceFlow`` s named by their label (else, out of a user task, the outcome's
label or key). A condition is a ``conditionExpression``
``xsi:type="bpmn:tFormalExpression" language="https://jsonlogic.com"`` whose body is the
JSON of the JsonLogic, read over the same variables as in Formloom (``record``, ``vars``,
``steps``, ``item``, ``starter``, ``now``):

* out of an exclusive / inclusive split, the edge's ``if`` verbatim; the default edge (or
  the first edge without a condition, which the engine takes as the default) is the
  gateway's ``default``; further condition-less edges, which the engine never takes, get
  the condition ``false``. BPMN evaluates an exclusive gateway's conditions in document
  order, which is the flow's edge order, as the engine does. Edges out of any other node
  carry no condition (the engine does not read one there);
* out of a user task (the convention): when the task's result chooses among several ways
  (more than one edge, or an outcome with ``to``), the task is followed by an
  ``exclusiveGateway`` ``node_<key>-outcome`` whose outgoing flows test the outcome just
  chosen, ``{"==": [{"var": "steps.<key>.outcome"}, "<outcome>"]}`` — the engine's own
  ``steps`` variable. Edges without an outcome test ``{"in": [..., [outcomes no edge
  names]]}``; an outcome's ``to`` is a flow ``jump_<key>-<outcome>`` to that node. Several
  edges for one outcome are told apart by their ``if`` as the engine does (the first that
  holds, else the one without a condition), written so that exactly one holds
  (``and`` of the outcome test, the edge's ``if`` and ``!`` of the earlier ``if`` s) and the
  order of evaluation does not matter. Edges the engine can never take get ``false``. A
  task with one way out is joined to it directly.

Several edges into an activity or event are BPMN's implicit (uncontrolled) merge, which
is what the engine does with them: each token that arrives goes on.

Invariants: every id is an NCName (``node_<key>``, ``edge_<index in flow.edges>``, and for
elements the mapping adds ``node_<key>-<part>``, ``flow_<key>-<part>`` and
``jump_<key>-<outcome>``, which no node key can produce since keys have no ``-``); every
edge of the flow is exactly one ``sequenceFlow`` ``edge_<n>``; no non-gateway element has
two outgoing flows (several edges out of one, which only a wait may have, leave through a
``parallelGateway`` ``node_<key>-split``, the engine's "follow every edge"); every flow
node has a ``BPMNShape`` with ``dc:Bounds`` and every flow a ``BPMNEdge`` with at least two
``di:waypoint`` s. Formloom's own data (assignee, mode, outcomes, due, escalations,
edit / required / hide, vars, the flow's start policy and ``cancel_when``, edge outcomes
and ``on``) is kept in ``extensionElements`` as ``formloom:node`` / ``formloom:edge`` /
``formloom:flow`` with one child per property holding its JSON (namespace
``https://formloom.dev/schema/bpmn``), so nothing of the flow is lost.

Layout: a node's ``position`` is the top-left corner of its shape. Without one, nodes are
placed left to right in layers (the longest path from the start, back edges — those
closing a loop in a depth-first walk from the start — ignored), each node in the row
nearest the mean row of its predecessors that is still free, split targets in edge order;
an element the mapping adds sits just right of its node, inside the node's cell, so no two
shapes of the computed layout overlap. Forward flows run right-angled from the right side
of the source to the left side of the target; flows going back run below both shapes.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from formloom.engines.forms.labels import label_text

from .spec import (
    ActionNode,
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

__all__ = [
    "ACTIONS_FORMAT",
    "BPMNDI_NS",
    "BPMN_NS",
    "DC_NS",
    "DI_NS",
    "FORMLOOM_NS",
    "JSONLOGIC",
    "WORKING_TIME",
    "process_id",
    "to_bpmn",
]

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
FORMLOOM_NS = "https://formloom.dev/schema/bpmn"
#: The expression language of every condition and expression the export writes.
JSONLOGIC = "https://jsonlogic.com"
#: The language of a timer on the app's business calendar (body: JSON of the timing).
WORKING_TIME = "https://formloom.dev/schema/bpmn/working-time"
#: The script format of an action node's script task (body: JSON list of rule actions).
ACTIONS_FORMAT = "application/vnd.formloom.actions+json"

# Shape sizes (bpmn.io's defaults) and the cell of the computed layout.
_SIZES = {"task": (100.0, 80.0), "event": (36.0, 36.0), "gateway": (50.0, 50.0)}
_COLUMN = 240.0
_ROW = 160.0
_MARGIN = 60.0
_GAP = 30.0  # between a node's shape and the elements the mapping adds after it
_BELOW = 30.0  # how far below the shapes a flow going back runs

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NOT_NCNAME = re.compile(r"[^A-Za-z0-9_.-]")

Kind = Literal["task", "event", "gateway"]


def process_id(app: str, flow_key: str) -> str:
    """The id of a flow's process: ``<app>__<flow key>`` made a valid NCName."""
    text = _NOT_NCNAME.sub("_", f"{app}__{flow_key}")
    return text if text[:1].isalpha() or text[:1] == "_" else f"_{text}"


# ---------------------------------------------------------------------------------------
# The model the mapping builds before writing XML
# ---------------------------------------------------------------------------------------


@dataclass
class _Element:
    id: str
    tag: str  # without the bpmn: prefix
    kind: Kind
    owner: str  # the node key it belongs to
    name: str = ""
    attrs: dict[str, str] = field(default_factory=dict)
    documentation: str = ""
    extension: ET.Element | None = None
    tail: list[ET.Element] = field(default_factory=list)  # after incoming / outgoing
    offset: tuple[float, float] = (0.0, 0.0)  # left and centre line, from the node's shape


@dataclass
class _Flow:
    id: str
    source: str
    target: str
    name: str = ""
    condition: Any = None
    has_condition: bool = False
    extension: ET.Element | None = None


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def cy(self) -> float:
        return self.y + self.height / 2


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def _el(parent: ET.Element | None, tag: str, attrs: Mapping[str, str] | None = None) -> ET.Element:
    clean = {key: _clean(value) for key, value in (attrs or {}).items()}
    if parent is None:
        return ET.Element(tag, clean)
    return ET.SubElement(parent, tag, clean)


def _text(element: ET.Element, text: str) -> ET.Element:
    element.text = _clean(text)
    return element


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _expression(tag: str, body: Any, *, language: str | None = JSONLOGIC) -> ET.Element:
    """A ``tFormalExpression`` (not attached yet); ``body`` is JSON unless it is text."""
    attrs = {"xsi:type": "bpmn:tFormalExpression"}
    if language is not None:
        attrs["language"] = language
    element = _el(None, f"bpmn:{tag}", attrs)
    return _text(element, body if isinstance(body, str) else _json(body))


def _properties(tag: str, attrs: Mapping[str, str], values: Mapping[str, Any]) -> ET.Element:
    """``<formloom:tag ...>`` with one ``<formloom:<name>>`` child of JSON per value."""
    element = _el(None, f"formloom:{tag}", attrs)
    for name, value in values.items():
        if value is None or value == [] or value == {}:
            continue
        _text(_el(element, f"formloom:{name}"), _json(value))
    return element


def _outcome_var(key: str) -> dict[str, str]:
    return {"var": f"steps.{key}.outcome"}


# ---------------------------------------------------------------------------------------
# Mapping
# ---------------------------------------------------------------------------------------


class _Exporter:
    def __init__(self, flow: FlowSpec, app: str, locale: str) -> None:
        self.flow = flow
        self.app = app
        self.locale = locale
        self.nodes = {node.key: node for node in flow.nodes}
        self.elements: list[_Element] = []
        self.by_id: dict[str, _Element] = {}
        self.flows: list[_Flow] = []
        self.messages: dict[str, str] = {}  # id -> name
        self.signals: dict[str, str] = {}
        self.main: dict[str, str] = {}  # node key -> the id of its first element
        self.outgoing: dict[str, list[tuple[int, Edge]]] = {key: [] for key in self.nodes}
        for index, edge in enumerate(flow.edges):
            self.outgoing.setdefault(edge.source, []).append((index, edge))

    # -- elements --------------------------------------------------------------------

    def add(self, element: _Element) -> _Element:
        self.elements.append(element)
        self.by_id[element.id] = element
        return element

    def connect(
        self,
        flow_id: str,
        source: str,
        target: str,
        *,
        name: str = "",
        condition: Any = None,
        has_condition: bool = False,
        extension: ET.Element | None = None,
    ) -> _Flow:
        flow = _Flow(flow_id, source, target, name, condition, has_condition, extension)
        self.flows.append(flow)
        return flow

    def text(self, label: Any) -> str:
        return label_text(label, self.locale) if label is not None else ""

    def node_extension(self, node: Node, skip: Sequence[str] = ()) -> ET.Element:
        data = node.model_dump(mode="json", by_alias=True, exclude_none=True)
        for name in ("key", "type", "position", *skip):
            data.pop(name, None)
        if isinstance(data.get("label"), str):
            del data["label"]  # it is the element's name
        holder = _el(None, "bpmn:extensionElements")
        holder.append(_properties("node", {"key": node.key, "type": node.type}, data))
        return holder

    def helper_extension(self, node: Node, role: str) -> ET.Element:
        holder = _el(None, "bpmn:extensionElements")
        _el(holder, "formloom:part", {"node": node.key, "role": role})
        return holder

    def build(self) -> None:
        for node in self.flow.nodes:
            self.map_node(node)
        for node in self.flow.nodes:
            self.map_edges(node)

    def map_node(self, node: Node) -> None:
        key = node.key
        ident = f"node_{key}"
        self.main[key] = ident
        name = self.text(node.label)
        if not isinstance(node, UserTaskNode | SubflowNode):
            name = name or key  # every element has a name (bpmnlint's label-required)
        if isinstance(node, StartNode):
            self.add(_Element(ident, "startEvent", "event", key, name))
        elif isinstance(node, EndNode):
            self.add(_Element(ident, "endEvent", "event", key, name))
        elif isinstance(node, TerminateNode):
            element = self.add(_Element(ident, "endEvent", "event", key, name))
            element.tail.append(_el(None, "bpmn:terminateEventDefinition"))
        elif isinstance(node, UserTaskNode):
            element = self.add(
                _Element(ident, "userTask", "task", key, name or self.text(node.title))
            )
            element.documentation = self.text(node.description)
            if node.multi is not None:
                veto = [option.key for option in node.outcomes if option.veto]
                element.tail.append(self.loop(node, node.multi, veto))
        elif isinstance(node, ActionNode):
            element = self.add(
                _Element(
                    ident,
                    "scriptTask",
                    "task",
                    key,
                    name or key,
                    attrs={"scriptFormat": ACTIONS_FORMAT},
                )
            )
            script = _el(None, "bpmn:script")
            _text(
                script,
                _json(
                    [
                        action.model_dump(mode="json", by_alias=True, exclude_none=True)
                        for action in node.actions
                    ]
                ),
            )
            element.tail.append(script)
            element.extension = self.node_extension(node, skip=("actions",))
        elif isinstance(node, TimerNode):
            element = self.add(_Element(ident, "intermediateCatchEvent", "event", key, name))
            definition, meaning = self.timer(node.wait)
            element.tail.append(definition)
            element.documentation = meaning
        elif isinstance(node, ExclusiveGateway | ParallelGateway | InclusiveGateway):
            tag = f"{node.type}Gateway"
            self.add(_Element(ident, tag, "gateway", key, name))
        elif isinstance(node, WaitNode):
            self.map_wait(node, ident, name)
        elif isinstance(node, SubflowNode):
            called = process_id(self.app, node.flow)
            element = self.add(
                _Element(
                    ident, "callActivity", "task", key, name or node.flow, {"calledElement": called}
                )
            )
            if node.multi is not None:
                element.tail.append(self.loop(node, node.multi, []))
        elif isinstance(node, CancelNode):
            signal = f"signal_cancel_{key}"
            self.signals[signal] = f"formloom.cancel.{key}"
            element = self.add(_Element(ident, "intermediateThrowEvent", "event", key, name))
            element.documentation = "Withdraws the work (tokens, tasks, timers, subflows) in: " + (
                ", ".join(node.region)
            )
            element.tail.append(_el(None, "bpmn:signalEventDefinition", {"signalRef": signal}))
        element_ = self.by_id[ident]
        if element_.extension is None:
            element_.extension = self.node_extension(node)

    def loop(self, node: Node, multi: MultiInstance, veto: Sequence[str]) -> ET.Element:
        loop = _el(None, "bpmn:multiInstanceLoopCharacteristics", {"isSequential": "false"})
        count = {"reduce": [multi.over, {"+": [{"var": "accumulator"}, 1]}, 0]}
        loop.append(_expression("loopCardinality", count))
        enough: list[Any] = []
        if multi.complete != "all":
            needed = 1 if multi.complete == "any" else multi.complete
            enough.append({">=": [{"var": "nrOfCompletedInstances"}, needed]})
        if veto:
            enough.append({"in": [_outcome_var(node.key), list(veto)]})
        if enough:
            condition = enough[0] if len(enough) == 1 else {"or": enough}
            loop.append(_expression("completionCondition", condition))
        return loop

    def timer(self, timing: Timing) -> tuple[ET.Element, str]:
        definition = _el(None, "bpmn:timerEventDefinition")
        if timing.after is not None:
            definition.append(_expression("timeDuration", timing.after, language=None))
            meaning = f"After {timing.after} (ISO 8601; days are calendar days in the zone)."
        elif timing.at is not None:
            definition.append(_expression("timeDate", timing.at))
            meaning = (
                "At the moment the JsonLogic expression gives (a date means its 00:00 in "
                "the clinic's zone)."
            )
        else:
            if timing.working_days is not None:
                body: dict[str, Any] = {"working_days": timing.working_days}
                amount = f"{timing.working_days} working days"
            else:
                body = {"working_hours": timing.working_hours}
                amount = f"{timing.working_hours:g} working hours"
            definition.append(_expression("timeDuration", body, language=WORKING_TIME))
            meaning = (
                f"After {amount} on the app's business calendar (working time: the calendar's "
                "hours, weekdays and holidays; every hour counts without a calendar)."
            )
        return definition, meaning

    def map_wait(self, node: WaitNode, ident: str, name: str) -> None:
        key = node.key
        met = node.until is not None or node.message is not None
        definitions: list[ET.Element] = []
        if node.message is not None:
            message = f"message_{node.message}"
            self.messages[message] = node.message
            definitions.append(_el(None, "bpmn:messageEventDefinition", {"messageRef": message}))
        if node.until is not None:
            conditional = _el(None, "bpmn:conditionalEventDefinition")
            conditional.append(_expression("condition", node.until))
            definitions.append(conditional)
        if met and node.timeout is not None:
            self.add(_Element(ident, "eventBasedGateway", "gateway", node.key, name))
            x = _SIZES["gateway"][0] + _GAP
            met_event = self.add(
                _Element(
                    f"{ident}-met",
                    "intermediateCatchEvent",
                    "event",
                    key,
                    "met",
                    offset=(x, -_ROW * 0.3),
                    extension=self.helper_extension(node, "met"),
                )
            )
            met_event.tail += definitions
            timeout = self.add(
                _Element(
                    f"{ident}-timeout",
                    "intermediateCatchEvent",
                    "event",
                    key,
                    "timeout",
                    offset=(x, _ROW * 0.3),
                    extension=self.helper_extension(node, "timeout"),
                )
            )
            definition, timeout.documentation = self.timer(node.timeout)
            timeout.tail.append(definition)
            self.connect(f"flow_{key}-met", ident, met_event.id)
            self.connect(f"flow_{key}-timeout", ident, timeout.id)
            return
        element = self.add(_Element(ident, "intermediateCatchEvent", "event", key, name))
        if met:
            element.tail += definitions
        elif node.timeout is not None:
            definition, element.documentation = self.timer(node.timeout)
            element.tail.append(definition)

    # -- edges -----------------------------------------------------------------------

    def edge_extension(self, index: int, edge: Edge) -> ET.Element:
        data = edge.model_dump(mode="json", by_alias=True, exclude_none=True)
        for name in ("from", "to"):
            data.pop(name)
        if not data.get("default"):
            data.pop("default", None)
        if isinstance(data.get("label"), str):
            del data["label"]
        holder = _el(None, "bpmn:extensionElements")
        holder.append(_properties("edge", {"index": str(index)}, data))
        return holder

    def edge_flow(
        self, index: int, edge: Edge, source: str, *, condition: Any = None, has: bool = False
    ) -> _Flow:
        target = self.main.get(edge.target, f"node_{edge.target}")
        name = self.text(edge.label)
        node = self.nodes.get(edge.source)
        if not name and edge.outcome is not None and isinstance(node, UserTaskNode):
            name = self.outcome_name(node, edge.outcome)
        return self.connect(
            f"edge_{index}",
            source,
            target,
            name=name,
            condition=condition,
            has_condition=has,
            extension=self.edge_extension(index, edge),
        )

    def outcome_name(self, node: UserTaskNode, outcome: str) -> str:
        for option in node.outcomes:
            if option.key == outcome:
                return self.text(option.label) or outcome
        return outcome

    def fan_out(
        self, node: Node, source: str, part: str, edges: Sequence[tuple[int, Edge]]
    ) -> None:
        """``edges`` all leave ``source`` (the engine follows every one): through a parallel
        split when there are several."""
        if len(edges) > 1:
            owner = self.by_id[source]
            width = _SIZES[owner.kind][0]
            split = self.add(
                _Element(
                    f"node_{node.key}-{part}split" if part else f"node_{node.key}-split",
                    "parallelGateway",
                    "gateway",
                    node.key,
                    offset=(owner.offset[0] + width + _GAP, owner.offset[1]),
                    extension=self.helper_extension(node, f"{part}split" if part else "split"),
                )
            )
            self.connect(
                f"flow_{node.key}-{part}split" if part else f"flow_{node.key}-split",
                source,
                split.id,
            )
            source = split.id
        for index, edge in edges:
            self.edge_flow(index, edge, source)

    def map_edges(self, node: Node) -> None:
        out = self.outgoing.get(node.key, [])
        ident = self.main[node.key]
        if isinstance(node, ExclusiveGateway | InclusiveGateway):
            self.split_edges(ident, out)
        elif isinstance(node, ParallelGateway):
            for index, edge in out:
                self.edge_flow(index, edge, ident)
        elif isinstance(node, UserTaskNode):
            self.task_edges(node, ident, out)
        elif isinstance(node, WaitNode):
            met = node.until is not None or node.message is not None
            both = met and node.timeout is not None
            met_edges = [(i, e) for i, e in out if e.on != "timeout"]
            timeout_edges = [(i, e) for i, e in out if e.on == "timeout"]
            if both:
                self.fan_out(node, f"{ident}-met", "met-", met_edges)
                self.fan_out(node, f"{ident}-timeout", "timeout-", timeout_edges)
            else:
                self.fan_out(node, ident, "", met_edges + timeout_edges)
        else:
            self.fan_out(node, ident, "", out)

    def split_edges(self, ident: str, out: Sequence[tuple[int, Edge]]) -> None:
        if len(out) <= 1:
            for index, edge in out:
                self.edge_flow(index, edge, ident)
            return
        default: int | None = None
        for index, edge in out:
            if edge.default or edge.condition is None:
                if default is None:
                    default = index
                    self.edge_flow(index, edge, ident)
                else:
                    self.edge_flow(index, edge, ident, condition=False, has=True)
            else:
                self.edge_flow(index, edge, ident, condition=edge.condition, has=True)
        if default is not None:
            self.by_id[ident].attrs["default"] = f"edge_{default}"

    def task_edges(self, node: UserTaskNode, ident: str, out: Sequence[tuple[int, Edge]]) -> None:
        jumps = [option for option in node.outcomes if option.to is not None]
        if not jumps and len(out) <= 1:
            for index, edge in out:
                self.edge_flow(index, edge, ident)
            return
        choice = self.add(
            _Element(
                f"{ident}-outcome",
                "exclusiveGateway",
                "gateway",
                node.key,
                f"{self.by_id[ident].name}?",
                offset=(_SIZES["task"][0] + _GAP, 0.0),
                extension=self.helper_extension(node, "outcome"),
            )
        )
        self.connect(f"flow_{node.key}-outcome", ident, choice.id)
        outcome = _outcome_var(node.key)
        offered = [option.key for option in node.outcomes]
        jumped = {option.key for option in jumps}
        for option in jumps:
            assert option.to is not None
            self.connect(
                f"jump_{node.key}-{option.key}",
                choice.id,
                self.main.get(option.to, f"node_{option.to}"),
                name=self.text(option.label) or option.key,
                condition={"==": [outcome, option.key]},
                has_condition=True,
            )
        named = {edge.outcome for _, edge in out if edge.outcome is not None}
        rest = [key for key in offered if key not in named and key not in jumped]
        groups: dict[str | None, list[tuple[int, Edge]]] = {}
        for index, edge in out:
            groups.setdefault(edge.outcome, []).append((index, edge))
        for group, edges in groups.items():
            if group is None:
                test: Any = (
                    {"==": [outcome, rest[0]]} if len(rest) == 1 else {"in": [outcome, rest]}
                )
                reachable = bool(rest)
            else:
                test = {"==": [outcome, group]}
                reachable = group not in jumped
            conditions = _group_conditions(test, [edge for _, edge in edges], reachable)
            for (index, edge), condition in zip(edges, conditions, strict=True):
                self.edge_flow(index, edge, choice.id, condition=condition, has=True)

    # -- layout ----------------------------------------------------------------------

    def boxes(self) -> dict[str, _Box]:
        anchors = _layout(self.flow)
        boxes: dict[str, _Box] = {}
        for element in self.elements:
            node = self.nodes[element.owner]
            owner = self.by_id[self.main[element.owner]]
            owner_width, owner_height = _SIZES[owner.kind]
            if node.position is not None:
                left, centre = node.position.x, node.position.y + owner_height / 2
            else:
                column, row = anchors[element.owner]
                left = _MARGIN + column * _COLUMN
                centre = _MARGIN + row * _ROW + _SIZES["task"][1] / 2
            width, height = _SIZES[element.kind]
            x = left + element.offset[0]
            y = centre + element.offset[1] - height / 2
            boxes[element.id] = _Box(x, y, width, height)
        return boxes

    # -- XML -------------------------------------------------------------------------

    def document(self) -> ET.Element:
        self.build()
        pid = process_id(self.app, self.flow.key)
        root = _el(
            None,
            "bpmn:definitions",
            {
                "xmlns:bpmn": BPMN_NS,
                "xmlns:bpmndi": BPMNDI_NS,
                "xmlns:dc": DC_NS,
                "xmlns:di": DI_NS,
                "xmlns:xsi": XSI_NS,
                "xmlns:formloom": FORMLOOM_NS,
                "id": f"definitions_{pid}",
                "targetNamespace": f"https://formloom.dev/apps/{quote(self.app, safe='')}",
                "expressionLanguage": JSONLOGIC,
                "exporter": "Formloom",
                "exporterVersion": "1",
            },
        )
        for ident, name in sorted(self.messages.items()):
            _el(root, "bpmn:message", {"id": ident, "name": name})
        for ident, name in sorted(self.signals.items()):
            _el(root, "bpmn:signal", {"id": ident, "name": name})
        process = _el(
            root,
            "bpmn:process",
            {
                "id": pid,
                "name": self.text(self.flow.label) or self.flow.key,
                "isExecutable": "true",
            },
        )
        description = self.text(self.flow.description)
        if description:
            _text(_el(process, "bpmn:documentation"), description)
        data = self.flow.model_dump(mode="json", by_alias=True, exclude_none=True)
        for name in ("key", "form", "nodes", "edges"):
            data.pop(name, None)
        for name in ("label", "description"):
            if isinstance(data.get(name), str):
                del data[name]
        extension = _el(process, "bpmn:extensionElements")
        extension.append(
            _properties(
                "flow", {"key": self.flow.key, "form": self.flow.form, "app": self.app}, data
            )
        )
        incoming: dict[str, list[str]] = {}
        outgoing: dict[str, list[str]] = {}
        for flow in self.flows:
            outgoing.setdefault(flow.source, []).append(flow.id)
            incoming.setdefault(flow.target, []).append(flow.id)
        place = {node.key: number for number, node in enumerate(self.flow.nodes)}
        self.elements.sort(key=lambda element: place[element.owner])  # stable: main first
        for element in self.elements:
            attrs = {"id": element.id}
            if element.name:
                attrs["name"] = element.name
            attrs.update(element.attrs)
            xml = _el(process, f"bpmn:{element.tag}", attrs)
            if element.documentation:
                _text(_el(xml, "bpmn:documentation"), element.documentation)
            if element.extension is not None:
                xml.append(element.extension)
            for ident in incoming.get(element.id, ()):
                _text(_el(xml, "bpmn:incoming"), ident)
            for ident in outgoing.get(element.id, ()):
                _text(_el(xml, "bpmn:outgoing"), ident)
            for child in element.tail:
                xml.append(child)
        for flow in self.flows:
            attrs = {"id": flow.id}
            if flow.name:
                attrs["name"] = flow.name
            attrs.update({"sourceRef": flow.source, "targetRef": flow.target})
            xml = _el(process, "bpmn:sequenceFlow", attrs)
            if flow.extension is not None:
                xml.append(flow.extension)
            if flow.has_condition:
                xml.append(_expression("conditionExpression", flow.condition))
        self.diagram(root, pid)
        return root

    def diagram(self, root: ET.Element, pid: str) -> None:
        boxes = self.boxes()
        diagram = _el(root, "bpmndi:BPMNDiagram", {"id": f"diagram_{pid}"})
        plane = _el(diagram, "bpmndi:BPMNPlane", {"id": f"plane_{pid}", "bpmnElement": pid})
        for element in self.elements:
            attrs = {"id": f"{element.id}_di", "bpmnElement": element.id}
            if element.tag == "exclusiveGateway":
                attrs["isMarkerVisible"] = "true"
            shape = _el(plane, "bpmndi:BPMNShape", attrs)
            box = boxes[element.id]
            _el(
                shape,
                "dc:Bounds",
                {
                    "x": _number(box.x),
                    "y": _number(box.y),
                    "width": _number(box.width),
                    "height": _number(box.height),
                },
            )
        for flow in self.flows:
            edge = _el(plane, "bpmndi:BPMNEdge", {"id": f"{flow.id}_di", "bpmnElement": flow.id})
            source = boxes.get(flow.source)
            target = boxes.get(flow.target)
            for x, y in _waypoints(source, target):
                _el(edge, "di:waypoint", {"x": _number(x), "y": _number(y)})


def _group_conditions(test: Any, edges: Sequence[Edge], reachable: bool) -> list[Any]:
    """The conditions of the flows for one outcome (``test``): exactly one holds, the one
    the engine takes (the first edge whose ``if`` holds, else the first without one)."""
    if not reachable:
        return [False for _ in edges]
    if len(edges) == 1:
        return [test]
    conditional = [e.condition for e in edges if e.condition is not None and not e.default]
    conditions: list[Any] = []
    earlier: list[Any] = []
    fallback_given = False
    for edge in edges:
        if edge.condition is not None and not edge.default:
            conditions.append({"and": [test, *({"!": c} for c in earlier), edge.condition]})
            earlier.append(edge.condition)
        elif not fallback_given:
            fallback_given = True
            conditions.append({"and": [test, *({"!": c} for c in conditional)]})
        else:
            conditions.append(False)
    return conditions


def _number(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


def _waypoints(source: _Box | None, target: _Box | None) -> list[tuple[float, float]]:
    if source is None or target is None:  # an edge to a node that does not exist
        box = source or target or _Box(0, 0, 0, 0)
        return [(box.right, box.cy), (box.right + _GAP, box.cy)]
    if target.x >= source.right:
        start, end = (source.right, source.cy), (target.x, target.cy)
        if math.isclose(source.cy, target.cy):
            return [start, end]
        middle = (source.right + target.x) / 2
        return [start, (middle, source.cy), (middle, target.cy), end]
    below = max(source.bottom, target.bottom) + _BELOW
    start = (source.cx + 5, source.bottom)
    end = (target.cx - 5, target.bottom)
    return [start, (start[0], below), (end[0], below), end]


def _layout(flow: FlowSpec) -> dict[str, tuple[int, int]]:
    """Column and row of every node: longest-path layers from the start, back edges
    ignored; in a layer, the free row nearest the mean row of the node's predecessors."""
    keys = [node.key for node in flow.nodes]
    order = {key: number for number, key in enumerate(keys)}
    successors: dict[str, list[str]] = {key: [] for key in keys}
    for edge in flow.edges:
        if edge.source in successors and edge.target in successors:
            successors[edge.source].append(edge.target)
    for node in flow.nodes:
        if isinstance(node, UserTaskNode):
            successors[node.key] += [o.to for o in node.outcomes if o.to in successors]
    # depth-first from the start (then from any node not reached), marking back edges
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}
    roots = [node.key for node in flow.nodes if isinstance(node, StartNode)] + keys
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            here, position = stack[-1]
            if position < len(successors[here]):
                stack[-1] = (here, position + 1)
                there = successors[here][position]
                if state.get(there) == 1:
                    back.add((here, there))
                elif there not in state:
                    state[there] = 1
                    stack.append((there, 0))
            else:
                state[here] = 2
                stack.pop()
    predecessors: dict[str, list[tuple[str, int]]] = {key: [] for key in keys}
    for source in keys:
        for number, target in enumerate(successors[source]):
            if (source, target) not in back:
                predecessors[target].append((source, number))
    # longest path over the forward edges, in a topological order (ties: spec order)
    waiting = {key: len({s for s, _ in predecessors[key]}) for key in keys}
    ready = sorted((key for key in keys if waiting[key] == 0), key=order.__getitem__)
    layer: dict[str, int] = {}
    done: set[str] = set()
    while ready:
        here = ready.pop(0)
        done.add(here)
        layer[here] = max((layer[s] + 1 for s, _ in predecessors[here]), default=0)
        released = []
        for there in dict.fromkeys(successors[here]):
            if (here, there) in back or there in done:
                continue
            waiting[there] -= 1
            if waiting[there] == 0:
                released.append(there)
        ready = sorted(ready + released, key=order.__getitem__)
    for key in keys:  # not reached (cannot happen without a cycle of forward edges)
        layer.setdefault(key, 0)
    rows: dict[str, int] = {}
    for column in sorted(set(layer.values())):
        members = [key for key in keys if layer[key] == column]

        def preference(key: str) -> tuple[float, float, float, int]:
            placed = [(rows[s], n) for s, n in predecessors[key] if s in rows]
            if not placed:
                return (0.0, 0.0, 0.0, order[key])
            mean = sum(row for row, _ in placed) / len(placed)
            first = min(placed)
            return (mean, first[0], first[1], order[key])

        free = 0
        for key in sorted(members, key=preference):
            wanted = int(math.floor(preference(key)[0] + 0.5))
            rows[key] = max(wanted, free)
            free = rows[key] + 1
    return {key: (layer[key], rows[key]) for key in keys}


def to_bpmn(flow: FlowSpec, *, app: str, locale: str = "en") -> str:
    """The flow as a BPMN 2.0 XML document (see the module's docstring)."""
    root = _Exporter(flow, app, locale).document()
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
