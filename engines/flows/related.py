"""Related records in flows: what a flow reads through its record's relations.

A flow reads related records as the rules do (docs/rules.md, "Related records";
:mod:`formloom.engines.rules.related`): ``record.patient.name`` in an edge's condition, a
wait's ``until``, ``cancel_when``, an assignee's ``user`` or ``where``, a task's title or
description, a timing's ``at``, a variable or a subflow's variables, and everywhere in an
action node's rule actions (with a recipient or task assignee ``{"field": "doctor"}``: the
user of that staff record).

:func:`reads` works out, once per flow spec (kept beside the spec object, as the graph
is), the :class:`~formloom.engines.rules.related.Hop` s the flow goes through and the
fields it reads on each: the rules' own analysis for the action nodes
(:func:`~formloom.engines.rules.related.reads` of the node's rule) and for every other
expression and template (:func:`~formloom.engines.rules.related.path_hops`). The host loads
them for the instance's record and hands them in as :attr:`.engine.Context.related`;
the engine evaluates every expression, snapshots every task's template context and plans
every action node with them, so a flow reads ``record.patient.name`` exactly where a rule
would. A flow that reads no related record has no hops, and its host loads nothing.

Related records are read as they were when the advance began: a ``set`` in an action node
that changes a relation field is seen through the relation from the next advance on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from formloom.engines.forms import FormSpec
from formloom.engines.logic import variables
from formloom.engines.rules.related import Hop, merge_hops, path_hops, template_paths
from formloom.engines.rules.related import reads as rule_reads
from formloom.engines.rules.templates import locale_texts

from .engine import _action_rule
from .spec import (
    ActionNode,
    Assignee,
    FlowSpec,
    Node,
    SubflowNode,
    TimerNode,
    Timing,
    UserTaskNode,
    WaitNode,
)

__all__ = ["expressions", "reads", "start_reads", "templates"]

_READS: dict[int, tuple[FlowSpec, tuple[Hop, ...]]] = {}
_START_READS: dict[int, tuple[FlowSpec, tuple[Hop, ...]]] = {}


def reads(flow: FlowSpec, forms: Mapping[str, FormSpec]) -> tuple[Hop, ...]:
    """The hops ``flow`` goes through and the fields it reads on each, parents first;
    worked out once per spec object (``forms`` are its app's forms)."""
    cached = _READS.get(id(flow))
    if cached is not None and cached[0] is flow:
        return cached[1]
    form = forms.get(flow.form)
    paths: set[str] = set()
    for _, expression in expressions(flow):
        paths |= variables(expression)
    for _, text in templates(flow):
        paths |= template_paths(text)
    groups = [path_hops(paths, form, forms)]
    for node in flow.nodes:
        if isinstance(node, ActionNode):
            groups.append(rule_reads(_action_rule(flow, node), forms))
    found = merge_hops(groups)
    if len(_READS) > 256:
        _READS.clear()
    _READS[id(flow)] = (flow, found)
    return found


def start_reads(flow: FlowSpec, forms: Mapping[str, FormSpec]) -> tuple[Hop, ...]:
    """The hops the start's ``when`` reads (the host checks it before any instance
    exists, on the record alone); worked out once per spec object."""
    cached = _START_READS.get(id(flow))
    if cached is not None and cached[0] is flow:
        return cached[1]
    when = flow.start.when
    found = path_hops(variables(when), forms.get(flow.form), forms) if when is not None else ()
    if len(_START_READS) > 256:
        _START_READS.clear()
    _START_READS[id(flow)] = (flow, found)
    return found


def expressions(flow: FlowSpec) -> Iterator[tuple[str, Any]]:
    """The flow's own JsonLogic expressions (not its action nodes'), with their pointers
    below the flow; the start's ``when`` is apart (:func:`start_reads`): it is checked
    before any instance exists."""
    for name, expression in flow.vars.items():
        yield f"/vars/{_escape(name)}", expression
    if flow.cancel_when is not None:
        yield "/cancel_when", flow.cancel_when
    for number, edge in enumerate(flow.edges):
        if edge.condition is not None:
            yield f"/edges/{number}/if", edge.condition
    for number, node in enumerate(flow.nodes):
        for pointer, expression in _node_expressions(node):
            if expression is not None:
                yield f"/nodes/{number}{pointer}", expression


def templates(flow: FlowSpec) -> Iterator[tuple[str, str]]:
    """Every task title and description text of the flow, with its pointer (a locale's
    text: ``…/title/zh-CN``)."""
    for number, node in enumerate(flow.nodes):
        if not isinstance(node, UserTaskNode):
            continue
        for part, text in (("title", node.title), ("description", node.description)):
            if text is None:
                continue
            for locale, body in locale_texts(text):
                where = f"/nodes/{number}/{part}"
                yield (where if locale is None else f"{where}/{_escape(locale)}"), body


def _node_expressions(node: Node) -> Iterator[tuple[str, Any]]:
    if isinstance(node, UserTaskNode):
        yield from _assignee(node.assignee, "/assignee")
        if node.multi is not None:
            yield "/multi/over", node.multi.over
        if node.due is not None:
            yield from _timing(node.due, "/due")
        for number, escalation in enumerate(node.escalations):
            yield from _timing(escalation.after, f"/escalations/{number}/after")
            if escalation.to is not None:
                yield from _assignee(escalation.to, f"/escalations/{number}/to")
    elif isinstance(node, TimerNode):
        yield from _timing(node.wait, "/wait")
    elif isinstance(node, WaitNode):
        yield "/until", node.until
        if node.timeout is not None:
            yield from _timing(node.timeout, "/timeout")
    elif isinstance(node, SubflowNode):
        for name, expression in node.vars.items():
            yield f"/vars/{_escape(name)}", expression
        if node.multi is not None:
            yield "/multi/over", node.multi.over


def _assignee(assignee: Assignee, where: str) -> Iterator[tuple[str, Any]]:
    yield f"{where}/user", assignee.user
    yield f"{where}/where", assignee.where


def _timing(timing: Timing, where: str) -> Iterator[tuple[str, Any]]:
    yield f"{where}/at", timing.at


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")
