"""Related records in flows (engines/flows/related.py): which hops a flow reads, and that
the engine reads them wherever it evaluates an expression, snapshots a task's template
context or plans an action node; the import check refuses bad related paths.

The related entries are handed in as a host loads them (hop path -> ``{"id", "form",
"data", "user"?}``); without them the same flows read ``null`` through the relation, which
is what each test shows first or beside.
"""

from __future__ import annotations

from typing import Any

from formloom.engines.flows import check
from formloom.engines.flows.engine import Context, Start, StaticDirectory, advance, new_instance
from formloom.engines.flows.related import reads, start_reads
from formloom.engines.flows.simulate import Script, simulate
from formloom.engines.flows.spec import FlowSpec
from formloom.engines.flows.state import ActionsPlanned, TaskOpened
from formloom.engines.forms import FormSpec
from formloom.engines.rules import PlannedNotify, render_template

from .factory import NOW, Person, action, chain, edge, end, exclusive, of, start, task

STAFF = FormSpec.model_validate(
    {
        "key": "staff",
        "label": "Staff",
        "user_field": "username",
        "fields": [{"key": "username", "type": "text"}, {"key": "dept", "type": "text"}],
    }
)
PATIENT = FormSpec.model_validate(
    {
        "key": "patient",
        "label": "Patient",
        "fields": [
            {"key": "name", "type": "text"},
            {"key": "dept", "type": "text"},
            {"key": "tags", "type": "multiselect",
             "options": [{"value": "vip"}, {"value": "chronic"}]},
            {"key": "primary_doctor", "type": "relation", "target": "staff"},
        ],
    }
)  # fmt: skip
VISIT = FormSpec.model_validate(
    {
        "key": "visit",
        "label": "Visit",
        "fields": [
            {"key": "patient", "type": "relation", "target": "patient"},
            {"key": "doctor", "type": "relation", "target": "staff"},
            {"key": "note", "type": "text"},
        ],
    }
)
FORMS = {"staff": STAFF, "patient": PATIENT, "visit": VISIT}

RECORD = {"id": "v1", "patient": "p1", "doctor": "s1", "note": "x"}
RELATED: dict[str, Any] = {
    "record/patient": {
        "id": "p1",
        "form": "patient",
        "data": {"id": "p1", "name": "Li Lei", "dept": "cardio", "tags": ["vip"]},
    },
    "record/doctor": {
        "id": "s1",
        "form": "staff",
        "data": {"id": "s1", "username": "dr_wang"},
        "user": "dr_wang",
    },
}
PEOPLE = StaticDirectory(
    roles={"nurse": [Person("ann", {"dept": "ortho"}), Person("cat", {"dept": "cardio"})]}
)


def spec(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], **attrs: Any) -> FlowSpec:
    return FlowSpec.model_validate({"key": "f", "form": "visit", **attrs, "nodes": nodes,
                                    "edges": edges})  # fmt: skip


def notify_doctor() -> dict[str, Any]:
    return {
        "type": "notify",
        "channel": "in_app",
        "recipients": [{"field": "doctor"}],
        "template": "Please call {{ record.patient.name }}",
    }


def routed() -> FlowSpec:
    """start -> gateway: a VIP patient's visit goes to ``vip_call``, any other to ``call``."""
    return spec(
        [start(), exclusive("route"),
         task("vip_call", title="Call {{ record.patient.name }} (VIP)"),
         task("call", title="Call"), end()],
        [edge("start", "route"),
         edge("route", "vip_call", when={"in": ["vip", {"var": "record.patient.tags"}]}),
         edge("route", "call", default=True),
         edge("vip_call", "end"), edge("call", "end")],
    )  # fmt: skip


def run(flow: FlowSpec, related: dict[str, Any] | None = None) -> tuple[Any, ...]:
    context = Context(app="clinic", record=RECORD, now=NOW, directory=PEOPLE,
                      related=related or {})  # fmt: skip
    return advance(flow, new_instance("i", flow), Start(starter="max"), context).effects


# -- which hops a flow reads ---------------------------------------------------------------


def test_a_flow_reads_the_hops_of_its_conditions_titles_and_action_nodes() -> None:
    flow = spec(
        [start(), exclusive("route"), task("vip_call", title="Call {{ record.patient.name }}"),
         action("tell", notify_doctor()), end()],
        [edge("start", "route"),
         edge("route", "vip_call", when={"in": ["vip", {"var": "record.patient.tags"}]}),
         edge("route", "tell", default=True), edge("vip_call", "end"), edge("tell", "end")],
        cancel_when={"==": [{"var": "record.patient.primary_doctor.dept"}, "gone"]},
    )  # fmt: skip
    hops = reads(flow, FORMS)
    assert [(hop.path, sorted(hop.fields)) for hop in hops] == [
        ("record/doctor", ["username"]),
        ("record/patient", ["name", "primary_doctor", "tags"]),
        ("record/patient/primary_doctor", ["dept"]),
    ]
    assert reads(flow, FORMS) is hops  # worked out once per spec


def test_the_start_condition_is_read_apart() -> None:
    flow = spec([start(), task("call"), end()], chain("start", "call", "end"),
                start={"when": {"==": [{"var": "record.patient.name"}, "Li Lei"]}})  # fmt: skip
    assert reads(flow, FORMS) == ()  # an instance never reads it
    assert [(hop.path, sorted(hop.fields)) for hop in start_reads(flow, FORMS)] == [
        ("record/patient", ["name"])
    ]


def test_a_flow_that_reads_no_related_record_has_no_hops() -> None:
    flow = spec([start(), task("call", title="Call {{ record.note }}"), end()],
                chain("start", "call", "end"))  # fmt: skip
    assert reads(flow, FORMS) == ()


# -- the engine reads them -----------------------------------------------------------------


def test_an_exclusive_gateway_reads_a_related_records_tags() -> None:
    opened = of(run(routed(), RELATED), TaskOpened)
    assert [effect.node for effect in opened] == ["vip_call"]
    # without the related records the relation reads null: the default branch
    assert [effect.node for effect in of(run(routed()), TaskOpened)] == ["call"]


def test_a_task_title_renders_a_related_name() -> None:
    (opened,) = of(run(routed(), RELATED), TaskOpened)
    assert render_template(opened.title, opened.context, "en") == "Call Li Lei (VIP)"


def test_an_action_node_notifies_the_staff_records_user_with_the_related_name() -> None:
    flow = spec([start(), action("tell", notify_doctor()), end()],
                chain("start", "tell", "end"))  # fmt: skip
    (planned,) = of(run(flow, RELATED), ActionsPlanned)
    (notice,) = planned.actions
    assert isinstance(notice, PlannedNotify)
    assert notice.recipients == [{"field": "doctor", "user": "dr_wang"}]
    assert render_template(notice.template, notice.context, "en") == "Please call Li Lei"
    # the timeline entry leaves the related records out (its readers may not read them)
    assert "related" not in planned.to_dict()["actions"][0]["data"]["context"]
    (planned,) = of(run(flow), ActionsPlanned)
    # without the staff record the recipient is no one
    assert planned.actions[0].data()["recipients"] == [{"field": "doctor", "user": None}]


def test_an_assignee_where_reads_the_related_record() -> None:
    flow = spec(
        [start(), task("call", assignee={
            "role": "nurse",
            "where": {"==": [{"var": "user.dept"}, {"var": "record.patient.dept"}]}}), end()],
        chain("start", "call", "end"),
    )  # fmt: skip
    (opened,) = of(run(flow, RELATED), TaskOpened)
    assert opened.candidates.users == ("cat",)


def test_simulate_reads_the_related_records_it_is_given() -> None:
    result = simulate("clinic", routed(), RECORD, Script(), now=NOW, related=RELATED)
    assert [task["node"] for task in result.open_tasks] == ["vip_call"]
    result = simulate("clinic", routed(), RECORD, Script(), now=NOW)
    assert [task["node"] for task in result.open_tasks] == ["call"]


# -- the import check ----------------------------------------------------------------------


def test_the_check_refuses_bad_related_paths_with_pointers() -> None:
    flow = spec(
        [start(), exclusive("route"),
         task("vip_call", title={"en": "Call {{ record.patient.nickname }}", "zh-CN": "致电"}),
         task("call", title="Call", assignee={
             "role": "nurse", "where": {"var": "record.patient.primary_doctor.nickname"}}),
         end()],
        [edge("start", "route"),
         edge("route", "vip_call", when={"in": ["vip", {"var": "record.patient.labels"}]}),
         edge("route", "call", default=True),
         edge("vip_call", "end"), edge("call", "end")],
    )  # fmt: skip
    found = [(pointer, code) for pointer, code, _ in check([flow], FORMS, {"nurse"})]
    assert sorted(found) == [
        ("/0/edges/1/if", "unknown_field"),
        ("/0/nodes/2/title/en", "unknown_field"),
        ("/0/nodes/3/assignee/where", "unknown_field"),
    ]
    assert check([routed()], FORMS, {"nurse"}) == []
