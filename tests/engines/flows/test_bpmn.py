"""BPMN 2.0 export (engines/flows/bpmn.py): schema-valid, drawn, and run on SpiffWorkflow.

* Schema: exports of flows using every node type, laid out by the exporter and placed by
  hand (``position``), validate against the OMG BPMN 2.0 XSD that SpiffWorkflow ships
  (``SpiffWorkflow/bpmn/parser/schema/BPMN20.xsd``, with its BPMNDI / DC / DI imports).
* Drawn: every flow node has a ``BPMNShape`` with bounds, every ``sequenceFlow`` a
  ``BPMNEdge`` with two waypoints or more, and no two shapes of a computed layout overlap.
* Oracle: SpiffWorkflow 3.2 (test-only dependency; nothing under engines/ or platform/
  imports it) parses the export with its plain BPMN parser and runs it with a script engine
  that evaluates every expression with Formloom's JsonLogic evaluator
  (:func:`formloom.engines.logic.evaluate`, not ``eval``) over the context the engine uses:
  the record, the ``steps`` (each user task's last outcome, set by the harness when it
  completes a task) and ``vars``. Action nodes are script tasks; the harness "runs" their
  ``set`` actions on the record. The same choices are played on :func:`simulate` (each
  person acting one hour after the task opened, so the tasks opened by one round of
  completions form one *wave*) and on SpiffWorkflow (complete every ready user task of a
  snapshot, in the order simulate opened them, then take the next snapshot). Compared: the
  user tasks reached, wave by wave, as multisets of node keys (parallel branches make the
  order inside a wave meaningless), the end / terminate events reached, and whether the
  instance finished.

  Covered (37 cases): sequence; parallel split and join (branches of different length,
  nested blocks, a loop around a block); exclusive choice and merge (by record and by
  outcome, overlapping conditions in edge order, a merge passing two tokens, two tokens
  into one task); inclusive split and join (one, several, no condition holding, a branch
  leaving before the join, a branch looping while the join waits, a block in a loop); an
  arbitrary cycle through an exclusive gateway and a loop by an outcome's ``to``; several
  edges for one outcome told apart by ``if``, two outcomes to one target; multi-instance
  user tasks (several items, none, sent back by ``to``); call activities (terminate in the
  called flow ends only that flow); an action that sets a field a later split reads;
  terminate; a task left open.

  Left out of the oracle: timers and waits (SpiffWorkflow needs a wall clock and message
  plumbing; the export of both is still schema-checked and parsed), cancel regions (the
  export keeps the graph valid with a signal nobody catches, it does not withdraw in
  BPMN), ``complete`` any / N and ``veto`` (the completion condition reads Camunda's
  ``nrOfCompletedInstances``, which SpiffWorkflow does not provide) and returns.
  SpiffWorkflow orders an exclusive gateway's conditions by the targets' height in the
  diagram, not by document order; the computed layout puts split targets in edge order, so
  the two agree there.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from formloom.engines.flows.bpmn import BPMN_NS, FORMLOOM_NS, JSONLOGIC, process_id, to_bpmn
from formloom.engines.flows.check import check
from formloom.engines.flows.simulate import Script, simulate
from formloom.engines.flows.spec import FlowSpec
from formloom.engines.logic import evaluate
from tests.engines.flows.factory import (
    FORMS,
    NOW,
    ROLES,
    action,
    cancel,
    chain,
    edge,
    end,
    eq,
    exclusive,
    flow,
    inclusive,
    outcomes,
    parallel,
    set_values,
    start,
    subflow,
    task,
    terminate,
    timer,
    var,
    wait,
)

spiff = pytest.importorskip("SpiffWorkflow")

from SpiffWorkflow.bpmn.parser.BpmnParser import XSD_PATH, BpmnParser, BpmnValidator  # noqa: E402
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine  # noqa: E402
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402

APP = "clinic"
NS = {
    "bpmn": BPMN_NS,
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "formloom": FORMLOOM_NS,
}
NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
NOT_FLOW_NODES = {"sequenceFlow", "documentation", "extensionElements"}


# ---------------------------------------------------------------------------------------
# Flows
# ---------------------------------------------------------------------------------------


def every_type() -> FlowSpec:
    """One flow with every node type (and every kind of timing), valid for check()."""
    nodes = [
        start(),
        task(
            "triage",
            label={"en": "Triage", "zh-CN": "分诊"},
            outcomes=outcomes("ok", "urgent", "again", again={"to": "triage"}),
            due={"after": "PT4H"},
            escalations=[{"action": "remind", "repeat": "PT1H"}],
            edit=["note"],
            required=["note"],
            hide=["amount"],
        ),
        action("mark", set_values(note="triaged")),
        timer("pause", working_days=2),
        exclusive("route"),
        parallel("fork"),
        inclusive("pick"),
        wait(
            "reply", until=eq("record.severity", "low"), message="replied", timeout={"after": "P3D"}
        ),
        wait("ping", message="pinged"),
        wait("nap", timeout={"working_hours": 1.5}),
        subflow("sub", "child", multi={"over": var("record.tags"), "complete": "any"}),
        task(
            "review",
            title={"en": "Review", "zh-CN": "审核"},
            multi={"over": var("record.tags")},
            outcomes=outcomes("yes", "no", no={"veto": True}),
        ),
        cancel("withdraw", "review"),
        timer("until", at=var("record.received")),
        parallel("join"),
        inclusive("merge"),
        end(),
        terminate(),
    ]
    edges = [
        edge("start", "triage"),
        edge("triage", "mark", outcome="ok"),
        edge("triage", "stop", outcome="urgent"),
        *chain("mark", "pause", "route"),
        edge("route", "fork", when={">": [var("record.amount"), 100]}),
        edge("route", "pick", default=True),
        edge("fork", "reply"),
        edge("fork", "sub"),
        edge("reply", "ping", on="met"),
        edge("reply", "until", on="timeout"),
        edge("ping", "join", on="met"),
        edge("until", "join"),
        edge("sub", "nap"),
        edge("nap", "join", on="timeout"),
        edge("pick", "review", when=eq("record.severity", "high")),
        edge("pick", "withdraw", default=True),
        edge("review", "merge"),
        edge("withdraw", "merge"),
        edge("join", "end"),
        edge("merge", "end"),
    ]
    return flow(nodes, edges, key="everything", label="Every node type")


def child() -> FlowSpec:
    return flow([start(), task("check"), end()], chain("start", "check", "end"), key="child")


def placed(spec: FlowSpec) -> FlowSpec:
    """The flow with every node placed by hand (a diagonal, 150 apart)."""
    data = spec.model_dump(by_alias=True, exclude_none=True)
    for number, node in enumerate(data["nodes"]):
        node["position"] = {"x": 40.0 + 150 * number, "y": 30.0 + 110 * number}
    return FlowSpec.model_validate(data)


@dataclass(frozen=True)
class Case:
    name: str
    flow: FlowSpec
    choices: Mapping[str, Sequence[str]]
    record: Mapping[str, Any]
    waves: Sequence[Mapping[str, int]]  # what both must give (a guard against vacuity)
    ends: Mapping[str, int]
    finished: bool = True
    called: FlowSpec | None = None  # the flow "child" a call activity runs (default child())

    @property
    def child(self) -> FlowSpec:
        return self.called or child()


SEQUENCE = flow(
    [start(), task("a"), task("b"), task("c"), end()], chain("start", "a", "b", "c", "end")
)
PARALLEL = flow(
    [start(), task("a"), parallel("split"), task("b"), task("b2"), task("c"), task("d"),
     parallel("join"), task("e"), end()],
    [*chain("start", "a", "split"), *chain("split", "b", "b2", "join"), edge("split", "c"),
     edge("split", "d"), edge("c", "join"), edge("d", "join"), *chain("join", "e", "end")],
)  # fmt: skip
EXCLUSIVE = flow(
    [start(), task("triage", outcomes=outcomes("low", "high")), exclusive("route"),
     task("nurse"), task("doctor"), task("refund"), exclusive("merge"), task("close"), end()],
    [edge("start", "triage"), edge("triage", "route"),
     edge("route", "doctor", when=eq("steps.triage.outcome", "high")),
     edge("route", "refund", when={"in": ["refund", var("record.tags")]}),
     edge("route", "nurse", default=True),
     edge("nurse", "merge"), edge("doctor", "merge"), edge("refund", "merge"),
     *chain("merge", "close", "end")],
)  # fmt: skip
OVERLAPPING = flow(
    [start(), exclusive("size"), task("big"), task("medium"), task("small"), end()],
    [edge("start", "size"),
     edge("size", "big", when={">": [var("record.amount"), 1000]}),
     edge("size", "medium", when={">": [var("record.amount"), 100]}),
     edge("size", "small", default=True),
     edge("big", "end"), edge("medium", "end"), edge("small", "end")],
)  # fmt: skip
INCLUSIVE = flow(
    [start(), inclusive("split"), task("legal"), task("legal2"), task("refund"), task("plain"),
     inclusive("join"), task("close"), end()],
    [edge("start", "split"),
     edge("split", "legal", when={"in": ["legal", var("record.tags")]}),
     edge("split", "refund", when={"in": ["refund", var("record.tags")]}),
     edge("split", "plain", default=True),
     *chain("legal", "legal2", "join"), edge("refund", "join"), edge("plain", "join"),
     *chain("join", "close", "end")],
)  # fmt: skip
CYCLE = flow(
    [start(), exclusive("again"), task("draft"), task("review", outcomes=outcomes("ok", "redo")),
     exclusive("decide"), end()],
    [*chain("start", "again", "draft", "review", "decide"),
     edge("decide", "again", when=eq("steps.review.outcome", "redo")),
     edge("decide", "end", default=True)],
)  # fmt: skip
JUMP = flow(
    [start(), task("draft"),
     task("review", outcomes=outcomes("approve", "rework", rework={"to": "draft"})),
     task("sign"), end()],
    [*chain("start", "draft", "review"), edge("review", "sign", outcome="approve"),
     edge("sign", "end")],
)  # fmt: skip
GROUPS = flow(
    [start(), task("review", outcomes=outcomes("approve", "reject", "ask")), task("cfo"),
     task("pay"), task("explain"), task("more"), end()],
    [edge("start", "review"),
     edge("review", "cfo", outcome="approve", when={">": [var("record.amount"), 1000]}),
     edge("review", "pay", outcome="approve"),
     edge("review", "explain", outcome="reject"),
     edge("review", "more"),
     *chain("cfo", "pay", "end"), edge("explain", "end"), edge("more", "end")],
)  # fmt: skip
SAME_TARGET = flow(
    [start(), task("review", outcomes=outcomes("approve", "reject", "escalate")), task("file"),
     task("boss"), end()],
    [edge("start", "review"), edge("review", "file", outcome="approve"),
     edge("review", "file", outcome="reject"), edge("review", "boss", outcome="escalate"),
     edge("boss", "file"), edge("file", "end")],
)  # fmt: skip
MULTI = flow(
    [start(), task("opinion", multi={"over": var("record.tags")},
                   outcomes=outcomes("agree", "object")),
     task("decide"), task("escalate"), end()],
    [edge("start", "opinion"), edge("opinion", "decide", outcome="agree"),
     edge("opinion", "escalate", outcome="object"), edge("decide", "end"),
     edge("escalate", "end")],
)  # fmt: skip
MULTI_PLAIN = flow(
    [start(), task("sign", multi={"over": var("record.tags")}), task("file"), end()],
    chain("start", "sign", "file", "end"),
)
CALL = flow(
    [start(), task("a"), subflow("sub", "child"), task("b"), end()],
    chain("start", "a", "sub", "b", "end"),
)
ACTION = flow(
    [start(), action("flag", set_values(severity="high")), exclusive("route"), task("urgent"),
     task("normal"), end()],
    [*chain("start", "flag", "route"),
     edge("route", "urgent", when=eq("record.severity", "high")),
     edge("route", "normal", default=True), edge("urgent", "end"), edge("normal", "end")],
)  # fmt: skip
TERMINATE = flow(
    [start(), parallel("split"), task("watch", outcomes=outcomes("fine", "stop")), task("work"),
     task("more"), terminate(), end()],
    [*chain("start", "split"), edge("split", "watch"), edge("split", "work"),
     edge("watch", "stop", outcome="stop"), edge("watch", "end", outcome="fine"),
     *chain("work", "more", "end")],
)  # fmt: skip

OR_JOIN = flow(
    [start(), inclusive("split"), task("a"), task("b"), exclusive("x"), inclusive("join"),
     task("c"), end(), end("end2")],
    [edge("start", "split"), edge("split", "a", when=True), edge("split", "b", when=True),
     edge("a", "join"), edge("b", "x"),
     edge("x", "join", when=eq("record.severity", "high")), edge("x", "end2", default=True),
     *chain("join", "c", "end")],
)  # fmt: skip
PARALLEL_LOOP = flow(
    [start(), exclusive("again"), parallel("split"), task("a"), task("b"), parallel("join"),
     task("review", outcomes=outcomes("redo", "ok")), exclusive("decide"), end()],
    [*chain("start", "again", "split"), edge("split", "a"), edge("split", "b"),
     edge("a", "join"), edge("b", "join"), *chain("join", "review", "decide"),
     edge("decide", "again", when=eq("steps.review.outcome", "redo")),
     edge("decide", "end", default=True)],
)  # fmt: skip
INCLUSIVE_LOOP = flow(
    [start(), exclusive("again"), inclusive("split"), task("a"), task("b"), inclusive("join"),
     task("review", outcomes=outcomes("redo", "ok")), exclusive("decide"), end()],
    [*chain("start", "again", "split"), edge("split", "a", when=True),
     edge("split", "b", when=eq("steps.review.outcome", "redo")),
     edge("a", "join"), edge("b", "join"), *chain("join", "review", "decide"),
     edge("decide", "again", when=eq("steps.review.outcome", "redo")),
     edge("decide", "end", default=True)],
)  # fmt: skip
LOOPING_BRANCH = flow(
    [start(), inclusive("split"), task("a", outcomes=outcomes("again", "ok")), task("b"),
     inclusive("join"), end()],
    [*chain("start", "split"), edge("split", "a", when=True), edge("split", "b", when=True),
     edge("a", "a", outcome="again"), edge("a", "join", outcome="ok"), edge("b", "join"),
     edge("join", "end")],
)  # fmt: skip
MERGE_TWO = flow(
    [start(), parallel("split"), task("a"), task("b"), exclusive("merge"), task("c"), end()],
    [*chain("start", "split"), edge("split", "a"), edge("split", "b"), edge("a", "merge"),
     edge("b", "merge"), *chain("merge", "c", "end")],
)  # fmt: skip
INTO_TASK = flow(
    [start(), parallel("split"), task("a"), task("b"), task("c"), end()],
    [*chain("start", "split"), edge("split", "a"), edge("split", "b"), edge("a", "c"),
     edge("b", "c"), edge("c", "end")],
)  # fmt: skip
NESTED = flow(
    [start(), parallel("outer"), parallel("inner"), task("a"), task("b"), task("c"),
     parallel("inner_join"), parallel("outer_join"), end()],
    [*chain("start", "outer"), edge("outer", "inner"), edge("outer", "c"),
     edge("inner", "a"), edge("inner", "b"), edge("a", "inner_join"), edge("b", "inner_join"),
     edge("inner_join", "outer_join"), edge("c", "outer_join"), edge("outer_join", "end")],
)  # fmt: skip
MULTI_JUMP = flow(
    [start(), task("draft"),
     task("review", multi={"over": var("record.tags")},
          outcomes=outcomes("ok", "back", back={"to": "draft"})),
     end()],
    [*chain("start", "draft", "review"), edge("review", "end", outcome="ok")],
)  # fmt: skip
STOPPING_CHILD = flow(
    [start(), task("check", outcomes=outcomes("stop", "go")), terminate(), end()],
    [edge("start", "check"), edge("check", "stop", outcome="stop"),
     edge("check", "end", outcome="go")],
    key="child",
)  # fmt: skip
CALL_BESIDE = flow(
    [start(), parallel("split"), subflow("sub", "child"), task("other"), parallel("join"),
     task("after"), end()],
    [*chain("start", "split"), edge("split", "sub"), edge("split", "other"),
     edge("sub", "join"), edge("other", "join"), *chain("join", "after", "end")],
)  # fmt: skip


def waves(*steps: str | Sequence[str]) -> list[dict[str, int]]:
    return [dict(Counter([step] if isinstance(step, str) else step)) for step in steps]


CASES = [
    Case("sequence", SEQUENCE, {}, {}, waves("a", "b", "c"), {"end": 1}),
    Case(
        "parallel split and join",
        PARALLEL,
        {},
        {},
        waves("a", ["b", "c", "d"], "b2", "e"),
        {"end": 1},
    ),
    Case(
        "exclusive by outcome",
        EXCLUSIVE,
        {"triage": ["high"]},
        {"tags": ["refund"]},
        waves("triage", "doctor", "close"),
        {"end": 1},
    ),
    Case(
        "exclusive by record",
        EXCLUSIVE,
        {"triage": ["low"]},
        {"tags": ["refund"]},
        waves("triage", "refund", "close"),
        {"end": 1},
    ),
    Case(
        "exclusive default",
        EXCLUSIVE,
        {"triage": ["low"]},
        {"tags": []},
        waves("triage", "nurse", "close"),
        {"end": 1},
    ),
    Case(
        "overlapping conditions, first in edge order",
        OVERLAPPING,
        {},
        {"amount": 5000},
        waves("big"),
        {"end": 1},
    ),
    Case("second condition", OVERLAPPING, {}, {"amount": 500}, waves("medium"), {"end": 1}),
    Case("no condition holds", OVERLAPPING, {}, {"amount": 5}, waves("small"), {"end": 1}),
    Case(
        "inclusive, two of three",
        INCLUSIVE,
        {},
        {"tags": ["legal", "refund"]},
        waves(["legal", "refund"], "legal2", "close"),
        {"end": 1},
    ),
    Case(
        "inclusive, one",
        INCLUSIVE,
        {},
        {"tags": ["refund"]},
        waves("refund", "close"),
        {"end": 1},
    ),
    Case(
        "inclusive default",
        INCLUSIVE,
        {},
        {"tags": []},
        waves("plain", "close"),
        {"end": 1},
    ),
    Case(
        "cycle through an exclusive gateway",
        CYCLE,
        {"review": ["redo", "redo", "ok"]},
        {},
        waves("draft", "review", "draft", "review", "draft", "review"),
        {"end": 1},
    ),
    Case(
        "loop by an outcome's to",
        JUMP,
        {"review": ["rework", "approve"]},
        {},
        waves("draft", "review", "draft", "review", "sign"),
        {"end": 1},
    ),
    Case(
        "several edges for one outcome (if holds)",
        GROUPS,
        {"review": ["approve"]},
        {"amount": 5000},
        waves("review", "cfo", "pay"),
        {"end": 1},
    ),
    Case(
        "several edges for one outcome (fallback)",
        GROUPS,
        {"review": ["approve"]},
        {"amount": 5},
        waves("review", "pay"),
        {"end": 1},
    ),
    Case(
        "outcome edge",
        GROUPS,
        {"review": ["reject"]},
        {"amount": 5000},
        waves("review", "explain"),
        {"end": 1},
    ),
    Case(
        "edge without an outcome",
        GROUPS,
        {"review": ["ask"]},
        {"amount": 5000},
        waves("review", "more"),
        {"end": 1},
    ),
    Case(
        "two outcomes, one target",
        SAME_TARGET,
        {"review": ["reject"]},
        {},
        waves("review", "file"),
        {"end": 1},
    ),
    Case(
        "two outcomes, one target (the other way)",
        SAME_TARGET,
        {"review": ["escalate"]},
        {},
        waves("review", "boss", "file"),
        {"end": 1},
    ),
    Case(
        "multi-instance, the last outcome decides",
        MULTI,
        {"opinion": ["agree", "agree", "object"]},
        {"tags": ["refund", "legal", "other"]},
        waves(["opinion"] * 3, "escalate"),
        {"end": 1},
    ),
    Case(
        "multi-instance over nothing",
        MULTI_PLAIN,
        {},
        {"tags": []},
        waves("file"),
        {"end": 1},
    ),
    Case(
        "multi-instance",
        MULTI_PLAIN,
        {},
        {"tags": ["a", "b"]},
        waves(["sign", "sign"], "file"),
        {"end": 1},
    ),
    Case("call activity", CALL, {}, {}, waves("a", "check", "b"), {"end": 1}),
    Case(
        "an action sets what a split reads",
        ACTION,
        {},
        {"severity": "low"},
        waves("urgent"),
        {"end": 1},
    ),
    Case(
        "terminate withdraws the other branch",
        TERMINATE,
        {"watch": ["stop"]},
        {},
        waves(["watch", "work"]),
        {"stop": 1},
    ),
    Case(
        "both branches end",
        TERMINATE,
        {"watch": ["fine"]},
        {},
        waves(["watch", "work"], "more"),
        {"end": 2},
    ),
    Case(
        "inclusive join, a branch leaves before it",
        OR_JOIN,
        {},
        {"severity": "low"},
        waves(["a", "b"], "c"),
        {"end": 1, "end2": 1},
    ),
    Case(
        "inclusive join, both branches arrive",
        OR_JOIN,
        {},
        {"severity": "high"},
        waves(["a", "b"], "c"),
        {"end": 1},
    ),
    Case(
        "a loop around a parallel block",
        PARALLEL_LOOP,
        {"review": ["redo", "redo", "ok"]},
        {},
        waves(["a", "b"], "review", ["a", "b"], "review", ["a", "b"], "review"),
        {"end": 1},
    ),
    Case(
        "an inclusive block in a loop",
        INCLUSIVE_LOOP,
        {"review": ["redo", "ok"]},
        {},
        waves("a", "review", ["a", "b"], "review"),
        {"end": 1},
    ),
    Case(
        "inclusive join while a branch loops",
        LOOPING_BRANCH,
        {"a": ["again", "again", "ok"]},
        {},
        waves(["a", "b"], "a", "a"),
        {"end": 1},
    ),
    Case(
        "an exclusive merge passes both tokens",
        MERGE_TWO,
        {},
        {},
        waves(["a", "b"], ["c", "c"]),
        {"end": 2},
    ),
    Case(
        "two tokens into one task",
        INTO_TASK,
        {},
        {},
        waves(["a", "b"], ["c", "c"]),
        {"end": 2},
    ),
    Case("nested parallel blocks", NESTED, {}, {}, waves(["a", "b", "c"]), {"end": 1}),
    Case(
        "multi-instance step sent back by an outcome's to",
        MULTI_JUMP,
        {"review": ["ok", "back", "ok", "ok"]},
        {"tags": ["x", "y"]},
        waves("draft", ["review", "review"], "draft", ["review", "review"]),
        {"end": 1},
    ),
    Case(
        "terminate in a called flow ends only that flow",
        CALL_BESIDE,
        {"check": ["stop"]},
        {},
        waves(["check", "other"], "after"),
        {"end": 1},
        called=STOPPING_CHILD,
    ),
    Case(
        "a task left open",
        SEQUENCE,
        {"a": ["done"], "b": []},
        {},
        waves("a", "b"),
        {},
        finished=False,
    ),
]


# ---------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(XSD_PATH))


def document(spec: FlowSpec, **kwargs: Any) -> etree._Element:
    return etree.fromstring(to_bpmn(spec, app=kwargs.pop("app", APP), **kwargs).encode())


SCHEMA_FLOWS = [every_type(), child(), *{id(c.flow): c.flow for c in CASES}.values()]


def test_the_flows_are_valid() -> None:
    """The export is for flows check() accepts: the test flows are such flows."""
    assert check([every_type(), child()], FORMS, ROLES) == []
    for case in CASES:
        assert check([case.flow, case.child], FORMS, ROLES) == [], case.name


@pytest.mark.parametrize("layout", ["computed", "placed"])
@pytest.mark.parametrize("number", range(len(SCHEMA_FLOWS)))
def test_valid_against_the_omg_schema(schema: etree.XMLSchema, number: int, layout: str) -> None:
    spec = SCHEMA_FLOWS[number]
    root = document(placed(spec) if layout == "placed" else spec)
    schema.assertValid(root)
    BpmnValidator().validate(root)  # SpiffWorkflow's own check, the same XSD


def test_every_node_type_maps_as_documented(schema: etree.XMLSchema) -> None:
    root = document(every_type())
    process = root.find("bpmn:process", NS)
    assert process is not None
    assert process.get("id") == "clinic__everything"
    assert process.get("name") == "Every node type"
    assert process.get("isExecutable") == "true"

    def tag(ident: str) -> str:
        found = process.find(f"*[@id='{ident}']")
        assert found is not None, ident
        return etree.QName(found).localname

    assert tag("node_start") == "startEvent"
    assert tag("node_end") == "endEvent"
    assert (
        process.find("bpmn:endEvent[@id='node_stop']/bpmn:terminateEventDefinition", NS) is not None
    )
    assert tag("node_triage") == "userTask"
    assert tag("node_triage-outcome") == "exclusiveGateway"
    assert tag("node_mark") == "scriptTask"
    assert tag("node_pause") == "intermediateCatchEvent"
    assert tag("node_route") == "exclusiveGateway"
    assert tag("node_fork") == "parallelGateway"
    assert tag("node_pick") == "inclusiveGateway"
    assert tag("node_reply") == "eventBasedGateway"
    assert tag("node_reply-met") == "intermediateCatchEvent"
    assert tag("node_reply-timeout") == "intermediateCatchEvent"
    assert tag("node_ping") == "intermediateCatchEvent"
    assert tag("node_nap") == "intermediateCatchEvent"
    assert tag("node_sub") == "callActivity"
    assert tag("node_withdraw") == "intermediateThrowEvent"

    def one(path: str) -> etree._Element:
        found = process.findall(path, NS)
        assert len(found) == 1, path
        return found[0]

    # names by locale
    assert one("bpmn:userTask[@id='node_triage']").get("name") == "Triage"
    zh = document(every_type(), locale="zh-CN").find("bpmn:process", NS)
    assert zh is not None
    assert zh.find("bpmn:userTask[@id='node_triage']", NS).get("name") == "分诊"  # type: ignore[union-attr]
    assert zh.find("bpmn:userTask[@id='node_review']", NS).get("name") == "审核"  # type: ignore[union-attr]
    # multi-instance keeps `over`
    loop = one("bpmn:userTask[@id='node_review']/bpmn:multiInstanceLoopCharacteristics")
    assert loop.get("isSequential") == "false"
    cardinality = one(
        "bpmn:userTask[@id='node_review']/bpmn:multiInstanceLoopCharacteristics/bpmn:loopCardinality"
    )
    assert cardinality.get("language") == JSONLOGIC
    assert json.loads(cardinality.text or "")["reduce"][0] == {"var": "record.tags"}
    assert evaluate(json.loads(cardinality.text or ""), {"record": {"tags": ["x", "y"]}}) == 2
    completion = one(
        "bpmn:userTask[@id='node_review']/bpmn:multiInstanceLoopCharacteristics"
        "/bpmn:completionCondition"
    )
    assert json.loads(completion.text or "") == {"in": [var("steps.review.outcome"), ["no"]]}
    # timers
    duration = one("bpmn:intermediateCatchEvent[@id='node_reply-timeout']//bpmn:timeDuration")
    assert duration.text == "P3D"
    date = one("bpmn:intermediateCatchEvent[@id='node_until']//bpmn:timeDate")
    assert json.loads(date.text or "") == var("record.received")
    working = one("bpmn:intermediateCatchEvent[@id='node_pause']//bpmn:timeDuration")
    assert json.loads(working.text or "") == {"working_days": 2}
    assert "working days" in (
        one("bpmn:intermediateCatchEvent[@id='node_pause']/bpmn:documentation").text or ""
    )
    # the wait: message and condition on the met event, the timer on the other
    met = "bpmn:intermediateCatchEvent[@id='node_reply-met']"
    assert one(f"{met}/bpmn:messageEventDefinition").get("messageRef") == "message_replied"
    assert root.find("bpmn:message[@id='message_replied']", NS).get("name") == "replied"  # type: ignore[union-attr]
    until = one(f"{met}/bpmn:conditionalEventDefinition/bpmn:condition")
    assert json.loads(until.text or "") == eq("record.severity", "low")
    assert one("bpmn:sequenceFlow[@sourceRef='node_reply-met']").get("targetRef") == "node_ping"
    assert (
        one("bpmn:sequenceFlow[@sourceRef='node_reply-timeout']").get("targetRef") == "node_until"
    )
    # subflow and cancel
    assert one("bpmn:callActivity").get("calledElement") == "clinic__child"
    signal = one("bpmn:intermediateThrowEvent/bpmn:signalEventDefinition").get("signalRef")
    assert root.find(f"bpmn:signal[@id='{signal}']", NS) is not None
    assert "review" in (one("bpmn:intermediateThrowEvent/bpmn:documentation").text or "")
    # gateways: conditions verbatim, the default edge as `default`
    assert one("bpmn:exclusiveGateway[@id='node_route']").get("default") == "edge_6"
    condition = one("bpmn:sequenceFlow[@id='edge_5']/bpmn:conditionExpression")
    assert condition.get("language") == JSONLOGIC
    assert (
        condition.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "bpmn:tFormalExpression"
    )
    assert json.loads(condition.text or "") == {">": [var("record.amount"), 100]}
    assert one("bpmn:inclusiveGateway[@id='node_pick']").get("default") == "edge_16"
    # outcome edges test the outcome; `to` is a jump flow
    ok = one("bpmn:sequenceFlow[@id='edge_1']")
    assert ok.get("sourceRef") == "node_triage-outcome"
    assert json.loads(
        one("bpmn:sequenceFlow[@id='edge_1']/bpmn:conditionExpression").text or ""
    ) == eq("steps.triage.outcome", "ok")
    jump = one("bpmn:sequenceFlow[@id='jump_triage-again']")
    assert jump.get("targetRef") == "node_triage"
    # Formloom's own data in extension elements
    data = one("bpmn:userTask[@id='node_triage']/bpmn:extensionElements/formloom:node")
    props = {etree.QName(child).localname: json.loads(child.text or "") for child in data}
    assert props["assignee"] == {"role": "nurse"}
    assert props["due"] == {"after": "PT4H"}
    assert props["edit"] == ["note"] and props["hide"] == ["amount"]
    assert props["escalations"][0]["action"] == "remind"
    assert [o["key"] for o in props["outcomes"]] == ["ok", "urgent", "again"]
    assert props["label"] == {"en": "Triage", "zh-CN": "分诊"}
    edge_data = one("bpmn:sequenceFlow[@id='edge_9']/bpmn:extensionElements/formloom:edge")
    assert edge_data.get("index") == "9"
    assert json.loads(edge_data.find("formloom:on", NS).text or "") == "met"  # type: ignore[union-attr]
    script = one("bpmn:scriptTask/bpmn:script")
    assert json.loads(script.text or "") == [{"type": "set", "values": {"note": "triaged"}}]


def test_ids_are_ncnames_and_unique() -> None:
    for spec in SCHEMA_FLOWS:
        root = document(spec, app="my app/2")
        ids = [element.get("id") for element in root.iter() if element.get("id") is not None]
        assert len(ids) == len(set(ids))
        assert all(NCNAME.match(ident or "") for ident in ids), ids
    assert process_id("my app/2", "intake") == "my_app_2__intake"
    assert process_id("1st", "intake") == "_1st__intake"


def test_every_edge_is_one_sequence_flow_and_no_task_splits_implicitly() -> None:
    for spec in SCHEMA_FLOWS:
        process = document(spec).find("bpmn:process", NS)
        assert process is not None
        flows = process.findall("bpmn:sequenceFlow", NS)
        edge_ids = sorted(
            f.get("id") or "" for f in flows if (f.get("id") or "").startswith("edge_")
        )
        assert edge_ids == sorted(f"edge_{n}" for n in range(len(spec.edges)))
        sources = Counter(f.get("sourceRef") for f in flows)
        for element in process:
            kind = etree.QName(element).localname
            if kind not in NOT_FLOW_NODES and not kind.endswith("Gateway"):
                assert sources[element.get("id")] <= 1, element.get("id")


def test_deterministic() -> None:
    assert to_bpmn(every_type(), app=APP) == to_bpmn(every_type(), app=APP)


# ---------------------------------------------------------------------------------------
# Drawn
# ---------------------------------------------------------------------------------------


def shapes(root: etree._Element) -> dict[str, tuple[float, float, float, float]]:
    found = {}
    for shape in root.iterfind(".//bpmndi:BPMNShape", NS):
        bounds = shape.find("dc:Bounds", NS)
        assert bounds is not None
        found[shape.get("bpmnElement") or ""] = tuple(
            float(bounds.get(name) or "nan") for name in ("x", "y", "width", "height")
        )
    return found  # type: ignore[return-value]


@pytest.mark.parametrize("layout", ["computed", "placed"])
@pytest.mark.parametrize("number", range(len(SCHEMA_FLOWS)))
def test_drawn(number: int, layout: str) -> None:
    spec = SCHEMA_FLOWS[number]
    root = document(placed(spec) if layout == "placed" else spec)
    process = root.find("bpmn:process", NS)
    assert process is not None
    plane = root.find("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)
    assert plane is not None and plane.get("bpmnElement") == process.get("id")
    boxes = shapes(root)
    nodes = [e.get("id") for e in process if etree.QName(e).localname not in NOT_FLOW_NODES]
    assert sorted(boxes) == sorted(nodes)
    assert all(w > 0 and h > 0 for _, _, w, h in boxes.values())
    edges = {e.get("bpmnElement"): e for e in plane.iterfind("bpmndi:BPMNEdge", NS)}
    for sequence_flow in process.iterfind("bpmn:sequenceFlow", NS):
        points = edges[sequence_flow.get("id")].findall("di:waypoint", NS)
        assert len(points) >= 2
    if layout == "computed":
        for (a, (ax, ay, aw, ah)), (b, (bx, by, bw, bh)) in combinations(boxes.items(), 2):
            apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
            assert apart, f"{a} overlaps {b}"
    else:
        for node in placed(spec).nodes:
            assert node.position is not None
            x, y, _, _ = boxes[f"node_{node.key}"]
            assert (x, y) == (node.position.x, node.position.y)


def test_layout_goes_left_to_right_with_split_targets_in_edge_order() -> None:
    boxes = shapes(document(PARALLEL))
    xs = [boxes[f"node_{key}"][0] for key in ("start", "a", "split", "b", "b2", "join", "e", "end")]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    assert boxes["node_b"][1] < boxes["node_c"][1] < boxes["node_d"][1]
    # a back edge does not push its target right: the loop's start stays left
    loop = shapes(document(CYCLE))
    assert loop["node_again"][0] < loop["node_draft"][0] < loop["node_decide"][0]


@st.composite
def random_flows(draw: st.DrawFn) -> FlowSpec:
    """Any graph of tasks, actions, timers and gateways (loops included), not only those
    check() accepts: the export must stay valid and drawn whatever the flow."""
    kinds = draw(
        st.lists(
            st.sampled_from(["user_task", "action", "timer", "exclusive", "parallel", "inclusive"]),
            min_size=1,
            max_size=9,
        )
    )
    keys = [f"n{number}" for number in range(len(kinds))]
    nodes: list[dict[str, Any]] = [start()]
    edges = [edge("start", keys[0])]
    for key, kind in zip(keys, kinds, strict=True):
        if kind == "user_task":
            nodes.append(task(key))
        elif kind == "action":
            nodes.append(action(key, set_values(note=key)))
        elif kind == "timer":
            nodes.append(timer(key))
        else:
            nodes.append({"key": key, "type": kind})
        many = kind in ("user_task", "exclusive", "parallel", "inclusive")
        targets = draw(
            st.lists(st.sampled_from([*keys, "end"]), min_size=1, max_size=3 if many else 1)
        )
        for number, target in enumerate(targets):
            if kind in ("exclusive", "inclusive") and len(targets) > 1:
                condition = eq("record.severity", f"s{number}")
                edges.append(edge(key, target, when=condition, default=number == 2))
            else:
                edges.append(edge(key, target))
    nodes.append(end())
    return flow(nodes, edges)


@settings(max_examples=60, deadline=None)
@given(random_flows())
def test_any_flow_exports_valid_drawn_and_parseable(spec: FlowSpec) -> None:
    xml = to_bpmn(spec, app=APP)
    root = etree.fromstring(xml.encode())
    etree.XMLSchema(etree.parse(XSD_PATH)).assertValid(root)
    boxes = shapes(root)
    for (a, (ax, ay, aw, ah)), (b, (bx, by, bw, bh)) in combinations(boxes.items(), 2):
        assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, (a, b)
    waypoints = [len(e.findall("di:waypoint", NS)) for e in root.iterfind(".//bpmndi:BPMNEdge", NS)]
    assert len(waypoints) == len(root.findall("bpmn:process/bpmn:sequenceFlow", NS))
    assert min(waypoints) >= 2
    parser = BpmnParser()
    parser.add_bpmn_str(xml.encode())
    parser.get_spec(process_id(APP, spec.key))  # SpiffWorkflow accepts its structure


# ---------------------------------------------------------------------------------------
# SpiffWorkflow as an oracle
# ---------------------------------------------------------------------------------------


class JsonLogicScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    """Expressions are Formloom's JsonLogic over the harness's context; scripts are rule
    actions (``set`` is applied to the record)."""

    def __init__(self, context: dict[str, Any]) -> None:
        super().__init__()
        self.context = context
        self.evaluations = 0

    def validate(self, expression: str) -> None:
        json.loads(expression)

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        self.evaluations += 1
        return evaluate(json.loads(expression), self.context, now=NOW)

    def execute(self, task: Any, script: str, external_context: Any = None) -> bool:
        for planned in json.loads(script):
            if planned["type"] == "set":
                for name, expression in planned["values"].items():
                    self.context["record"][name] = evaluate(expression, self.context, now=NOW)
        return True


@dataclass
class Outcome:
    waves: list[dict[str, int]]
    ends: dict[str, int]
    finished: bool
    order: list[list[str]]  # node keys in the order their tasks opened, per wave
    evaluations: int = 0  # expressions SpiffWorkflow had Formloom's evaluator compute


def key_of(bpmn_id: str) -> str:
    assert bpmn_id.startswith("node_")
    return bpmn_id.removeprefix("node_")


def run_simulate(case: Case) -> Outcome:
    chosen = {node.key: [node.outcomes[0].key] * 20 for node in _user_tasks(case.flow, case.child)}
    chosen.update(case.choices)
    choices = {
        key: [{"outcome": outcome, "after": "PT1H"} for outcome in keys]
        for key, keys in chosen.items()
    }
    result = simulate(
        APP,
        case.flow,
        dict(case.record),
        Script(choices=choices),
        now=NOW,
        flows={"child": case.child},
    )
    if case.finished:
        assert result.stopped == "ended", result.stopped
    order: dict[int, list[str]] = {}
    ends: Counter[str] = Counter()
    for entry in result.timeline:
        if entry["kind"] == "task_opened":
            at = datetime.fromisoformat(entry["at"])
            wave = round((at - NOW) / timedelta(hours=1))
            order.setdefault(wave, []).append(entry["node"])
        if (
            entry["kind"] == "node_entered"
            and entry["instance"] == "sim"
            and entry["type"] in ("end", "terminate")
        ):
            ends[entry["node"]] += 1
    ordered = [order.get(n, []) for n in range(max(order, default=-1) + 1)]
    return Outcome(
        waves=[dict(Counter(keys)) for keys in ordered],
        ends=dict(ends),
        finished=result.status in ("completed", "terminated"),
        order=ordered,
    )


def run_spiff(case: Case, order: Sequence[Sequence[str]]) -> Outcome:
    """Play the case on SpiffWorkflow: snapshot the ready user tasks, complete them (in
    simulate's order within the wave) with the script's outcomes, repeat."""
    parser = BpmnParser()
    parser.add_bpmn_str(to_bpmn(case.flow, app=APP).encode())
    parser.add_bpmn_str(to_bpmn(case.child, app=APP).encode())
    pid = process_id(APP, case.flow.key)
    context: dict[str, Any] = {
        "record": dict(case.record),
        "steps": {},
        "vars": {},
        "item": None,
        "starter": None,
        "now": NOW.isoformat(),
    }
    engine = JsonLogicScriptEngine(context)
    workflow = BpmnWorkflow(
        parser.get_spec(pid),
        subprocess_specs=parser.get_subprocess_specs(pid),
        script_engine=engine,
    )
    workflow.do_engine_steps()
    used: Counter[str] = Counter()
    seen: set[Any] = set()
    result: list[dict[str, int]] = []
    default = {node.key: node.outcomes[0].key for node in _user_tasks(case.flow, case.child)}
    for number in range(50):
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        new = [t for t in ready if t.id not in seen]
        seen.update(t.id for t in new)
        if new:
            result.append(dict(Counter(key_of(t.task_spec.bpmn_id) for t in new)))
        rank = list(order[number]) if number < len(order) else []

        def position(item: Any, rank: list[str] = rank) -> int:
            key = key_of(item.task_spec.bpmn_id)
            return rank.index(key) if key in rank else len(rank)

        ran = False
        for ready_task in sorted(new, key=position):
            key = key_of(ready_task.task_spec.bpmn_id)
            if key in rank:
                rank.remove(key)
            if ready_task.state != TaskState.READY:
                continue  # withdrawn by an earlier completion
            chosen = case.choices.get(key)
            if chosen is None:
                outcome = default[key]
            elif used[key] < len(chosen):
                outcome = chosen[used[key]]
            else:
                continue  # no choice left: the task stays open
            used[key] += 1
            context["steps"].setdefault(key, {})["outcome"] = outcome
            ready_task.run()
            workflow.do_engine_steps()
            ran = True
        if not ran:
            break
    ends: Counter[str] = Counter()
    end_ids = {f"node_{n.key}" for n in case.flow.nodes if n.type in ("end", "terminate")}
    for done in workflow.get_tasks(state=TaskState.COMPLETED, skip_subprocesses=True):
        bpmn_id = getattr(done.task_spec, "bpmn_id", None)
        if done.workflow is workflow and bpmn_id in end_ids:
            ends[key_of(bpmn_id)] += 1
    return Outcome(result, dict(ends), workflow.is_completed(), [], engine.evaluations)


def _user_tasks(*flows: FlowSpec) -> list[Any]:
    return [node for spec in flows for node in spec.nodes if node.type == "user_task"]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_spiffworkflow_agrees_with_simulate(case: Case) -> None:
    expected = run_simulate(case)
    assert expected.waves == [dict(w) for w in case.waves]
    assert expected.ends == dict(case.ends)
    assert expected.finished is case.finished
    oracle = run_spiff(case, expected.order)
    assert oracle.waves == expected.waves
    assert oracle.ends == expected.ends
    assert oracle.finished is expected.finished
    xml = to_bpmn(case.flow, app=APP) + to_bpmn(case.child, app=APP)
    choosing = "conditionExpression" in xml or "loopCardinality" in xml
    assert oracle.evaluations > 0 or not choosing
