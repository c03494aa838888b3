"""check(): every code of check.py's docstring, each with its exact JSON pointer.

Each test starts from ``good()`` — a correct flow using every node type, with its subflow
``legal()`` — changes one thing and expects exactly the problems that change causes. The
last tests go through ``formloom.engines.apps.document.load``, which prefixes ``/flows``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from formloom.engines.apps import DefinitionInvalid
from formloom.engines.apps.document import load
from formloom.engines.flows.check import check
from formloom.engines.flows.spec import FlowSpec

from .factory import (
    FORMS,
    ROLES,
    action,
    cancel,
    chain,
    edge,
    end,
    eq,
    exclusive,
    flow_data,
    inclusive,
    notify,
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

Data = dict[str, Any]

# node and edge numbers of good(), for readable pointers
TRIAGE, QUICK, CALL, DEADLINE, DROP, INVESTIGATE, LEGAL_CHECK, COOL = 1, 2, 4, 5, 6, 8, 9, 10
JOIN, CHOOSE, REFUND, TELL_LEGAL, MERGE, REPLY, CHASE, AGAIN = 11, 12, 13, 14, 15, 16, 17, 18
E_MINOR, E_DEADLINE_DROP, E_CHOOSE_REFUND, E_CHOOSE_LEGAL, E_CHOOSE_DEFAULT = 1, 7, 16, 17, 18
E_REPLY_MET, E_REPLY_TIMEOUT, E_AGAIN_TRIAGE = 23, 24, 27


def good() -> Data:
    """A complaint: triage; a minor one gets a quick action and a call withdrawn after a
    deadline; a major one is investigated per tag, checked by legal (a subflow) and cooled
    off in parallel, then refunded and/or told to legal (inclusive), then the customer's
    reply is awaited, raced against a timeout that sends someone chasing."""
    return flow_data(
        [
            start(),  # 0
            task(
                "triage",
                assignee={"role": "nurse", "where": {"==": [var("user.dept"), var("vars.dept")]}},
                edit=["note", "severity"],
                required=["note"],
                hide=["amount"],
                outcomes=outcomes(
                    "minor", "major", "again", again={"to": "triage", "comment": "required"}
                ),
                due={"working_hours": 4},
                escalations=[
                    {"action": "remind", "repeat": "PT1H"},
                    {"after": {"after": "PT8H"}, "action": "reassign", "to": {"role": "manager"}},
                    {"after": {"working_days": 2}, "action": "complete", "outcome": "minor"},
                ],
            ),  # 1
            action(
                "quick",
                set_values(note={"cat": ["quick: ", var("record.subject")]}),
                notify("{{ vars.dept }}"),
            ),  # 2
            parallel("fork"),  # 3
            task("call", assignee={"field": "handler"}, mode="any",
                 due={"at": var("record.received")}),  # 4
            timer("deadline", after="P2D"),  # 5
            cancel("drop", "call"),  # 6
            parallel("split"),  # 7
            task("investigate", assignee={"starter": True}, returnable=True,
                 multi={"over": var("record.tags"), "complete": "any", "cancel_rest": False}),  # 8
            subflow("legal_check", "legal", vars={"amount": var("record.amount")}),  # 9
            timer("cool", working_days=1),  # 10
            parallel("join"),  # 11
            inclusive("choose"),  # 12
            task("refund", mode="all", assignee={"role": "manager"},
                 outcomes=outcomes("yes", "no", no={"veto": True})),  # 13
            action("tell_legal", {"type": "webhook", "url": "https://legal.example/hook",
                                  "body": {"id": "{{ record.id }}"}}),  # 14
            inclusive("merge"),  # 15
            wait("reply", message="customer_reply", until=eq("record.severity", "low"),
                 timeout={"after": "P3D"}),  # 16
            task("chase", assignee={"previous": True}, mode=2,
                 outcomes=outcomes("done", "give_up")),  # 17
            exclusive("again"),  # 18
            end(),  # 19
            terminate(),  # 20
            end("end_call"),  # 21
            end("end_drop"),  # 22
        ],
        [
            edge("start", "triage"),  # 0
            edge("triage", "quick", outcome="minor"),  # 1
            edge("triage", "split", outcome="major"),  # 2
            edge("quick", "fork"),  # 3
            edge("fork", "call"),  # 4
            edge("fork", "deadline"),  # 5
            edge("call", "end_call"),  # 6
            edge("deadline", "drop"),  # 7
            edge("drop", "end_drop"),  # 8
            edge("split", "investigate"),  # 9
            edge("split", "legal_check"),  # 10
            edge("split", "cool"),  # 11
            edge("investigate", "join"),  # 12
            edge("legal_check", "join"),  # 13
            edge("cool", "join"),  # 14
            edge("join", "choose"),  # 15
            edge("choose", "refund", when={">": [var("record.amount"), 100]}),  # 16
            edge("choose", "tell_legal", when={"in": ["legal", var("record.tags")]}),  # 17
            edge("choose", "merge", default=True),  # 18
            edge("refund", "merge", outcome="yes"),  # 19
            edge("refund", "merge", outcome="no"),  # 20
            edge("tell_legal", "merge"),  # 21
            edge("merge", "reply"),  # 22
            edge("reply", "again", on="met"),  # 23
            edge("reply", "chase", on="timeout"),  # 24
            edge("chase", "again", outcome="done"),  # 25
            edge("chase", "stop", outcome="give_up"),  # 26
            edge("again", "triage", when=eq("steps.chase.outcome", "again")),  # 27
            edge("again", "end", default=True),  # 28
        ],
        key="handle",
        label={"en": "Handle a complaint"},
        vars={"dept": var("record.dept")},
        cancel_when=eq("record.note", "withdrawn"),
        start={"roles": ["nurse"], "when": {"!=": [var("record.subject"), None]}},
    )  # fmt: skip


def legal() -> Data:
    return flow_data(
        [start(), task("legal_review", assignee={"user": "counsel"}), end()],
        chain("start", "legal_review", "end"),
        key="legal",
    )


def issues(*flows: Data, roles: Any = ROLES) -> list[tuple[str, str]]:
    found = check([FlowSpec.model_validate(data) for data in flows], FORMS, roles)
    assert all(message for _, _, message in found)
    return [(pointer, code) for pointer, code, _ in found]


def broken(change: Callable[[Data], Any]) -> list[tuple[str, str]]:
    """The issues of good() (with legal()) after ``change``."""
    data = good()
    change(data)
    return issues(data, legal())


def node(data: Data, number: int) -> Data:
    node: Data = data["nodes"][number]
    return node


def test_a_correct_flow_with_every_node_type_has_no_issue() -> None:
    data = good()
    types = {node["type"] for node in data["nodes"]}
    assert types == {
        "start", "end", "terminate", "user_task", "action", "timer", "exclusive", "parallel",
        "inclusive", "wait", "subflow", "cancel",
    }  # fmt: skip
    assert issues(data, legal()) == []
    assert check([FlowSpec.model_validate(data), FlowSpec.model_validate(legal())], FORMS) == []


# -- the graph ---------------------------------------------------------------------------


def test_dead_end() -> None:
    def park(data: Data) -> None:
        node(data, TRIAGE)["outcomes"].append({"key": "park"})
        data["nodes"] += [task("park"), timer("wake")]
        data["edges"] += [edge("triage", "park", outcome="park"), *chain("park", "wake", "park")]

    assert broken(park) == [("/0/nodes/23", "dead_end"), ("/0/nodes/24", "dead_end")]


def test_unreachable_node() -> None:
    def orphan(data: Data) -> None:
        data["nodes"].append(task("orphan"))
        data["edges"].append(edge("orphan", "end"))

    assert broken(orphan) == [("/0/nodes/23", "unreachable")]


@pytest.mark.parametrize(
    ("split", "join"),
    [("exclusive", "parallel"), ("exclusive", "inclusive"), ("inclusive", "parallel")],
)
def test_unmatched_join(split: str, join: str) -> None:
    data = flow_data(
        [start(), {"key": "s", "type": split}, task("a"), task("b"), {"key": "j", "type": join}]
        + [end()],
        [
            edge("start", "s"),
            edge("s", "a", when=True),
            edge("s", "b", default=True),
            edge("a", "j"),
            edge("b", "j"),
            edge("j", "end"),
        ],
    )
    assert issues(data) == [("/0/nodes/4", "unmatched_join")]


def test_a_join_fed_by_a_matching_split_through_other_gateways_is_fine() -> None:
    data = flow_data(
        [start(), parallel("s"), exclusive("x"), task("a"), task("b"), task("c")]
        + [exclusive("m"), parallel("j"), end()],
        [
            edge("start", "s"),
            edge("s", "x"),
            edge("s", "c"),
            edge("x", "a", when=True),
            edge("x", "b", default=True),
            edge("a", "m"),
            edge("b", "m"),
            edge("m", "j"),
            edge("c", "j"),
            edge("j", "end"),
        ],
    )
    assert issues(data) == []


def test_split_edge_without_condition() -> None:
    assert broken(lambda d: d["edges"][E_CHOOSE_LEGAL].pop("if")) == [
        (f"/0/edges/{E_CHOOSE_LEGAL}", "missing_condition")
    ]


def test_two_defaults() -> None:
    def second(data: Data) -> None:
        data["edges"][E_CHOOSE_LEGAL].pop("if")
        data["edges"][E_CHOOSE_LEGAL]["default"] = True

    # the second default in edge order is reported
    assert broken(second) == [(f"/0/edges/{E_CHOOSE_DEFAULT}/default", "two_defaults")]


def test_outcome_without_edge() -> None:
    assert broken(lambda d: node(d, TRIAGE)["outcomes"].append({"key": "hold"})) == [
        (f"/0/nodes/{TRIAGE}/outcomes/3", "outcome_without_edge")
    ]


def test_edge_with_an_unknown_outcome() -> None:
    assert broken(lambda d: d["edges"].append(edge("triage", "end", outcome="nope"))) == [
        ("/0/edges/29/outcome", "unknown_outcome")
    ]


def test_outcome_jump_to_an_unknown_node() -> None:
    assert broken(lambda d: node(d, TRIAGE)["outcomes"][2].update(to="nowhere")) == [
        (f"/0/nodes/{TRIAGE}/outcomes/2/to", "unknown_node")
    ]


def wait_flow(*edges: Data) -> Data:
    return flow_data(
        [start(), wait("w", message="m", timeout={"after": "P1D"}), end(), end("late")],
        [edge("start", "w"), *edges],
    )


def test_wait_without_met_or_timeout_edge() -> None:
    met = edge("w", "end", on="met")
    timeout = edge("w", "late", on="timeout")
    assert issues(wait_flow(met, timeout)) == []
    assert issues(wait_flow(met, edge("w", "late", on="met"))) == [
        ("/0/nodes/1", "wait_without_timeout")
    ]
    assert issues(wait_flow(timeout, edge("w", "end", on="timeout"))) == [
        ("/0/nodes/1", "wait_without_met")
    ]
    assert issues(wait_flow(met, edge("w", "late"))) == [
        ("/0/nodes/1", "wait_without_timeout"),
        ("/0/edges/2", "wait_edge_without_on"),
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["nodes"].append(start("start2")),
         [("/0/nodes", "start_count"), ("/0/nodes/23", "start_edges")]),
        (lambda d: d["nodes"].__setitem__(0, task("begin")),
         [("/0/edges/0/from", "unknown_node"), ("/0/nodes", "start_count"),
          ("/0/nodes/0", "no_way_out"), ("/0/nodes/0/outcomes/0", "outcome_without_edge")]),
        (lambda d: d["edges"].append(edge("drop", "start")),
         [("/0/edges/29/to", "edge_into_start"), (f"/0/nodes/{DROP}", "one_way_out")]),
        (lambda d: d["edges"].append(edge("start", "end")), [("/0/nodes/0", "start_edges")]),
        (lambda d: d["edges"].append(edge("end", "triage")),
         [("/0/edges/29/from", "edge_out_of_end")]),
        (lambda d: d["edges"].append(edge("stop", "triage")),
         [("/0/edges/29/from", "edge_out_of_end")]),
        (lambda d: d["edges"].append(edge("quick", "end")),
         [(f"/0/nodes/{QUICK}", "one_way_out")]),
        (lambda d: d["edges"].append(edge("deadline", "end")),
         [(f"/0/nodes/{DEADLINE}", "one_way_out")]),
        (lambda d: d["edges"].append(edge("legal_check", "end")),
         [(f"/0/nodes/{LEGAL_CHECK}", "one_way_out")]),
        (lambda d: d["edges"].append(edge("quick", "end", outcome="minor")),
         [(f"/0/nodes/{QUICK}", "one_way_out"), ("/0/edges/29/outcome", "outcome_not_task")]),
        (lambda d: d["edges"][9].update(on="met"), [("/0/edges/9/on", "on_not_wait")]),
        (lambda d: d["edges"][E_DEADLINE_DROP].update({"if": True}),
         [(f"/0/edges/{E_DEADLINE_DROP}", "condition_not_split")]),
        (lambda d: d["edges"].append(edge("nowhere", "end")),
         [("/0/edges/29/from", "unknown_node")]),
        (lambda d: d["nodes"].append(task("triage")),
         [("/0/nodes/23/key", "duplicate_key")]),
    ],
)  # fmt: skip
def test_shape_checks(change: Callable[[Data], Any], expected: list[tuple[str, str]]) -> None:
    assert broken(change) == expected


def test_a_gateway_without_a_way_out_and_a_flow_without_an_end() -> None:
    data = flow_data([start(), task("a"), exclusive("x")], [edge("start", "a"), edge("a", "x")])
    assert issues(data) == [
        ("/0/nodes", "no_end"),
        ("/0/nodes/2", "no_way_out"),
        ("/0/nodes/0", "dead_end"),
        ("/0/nodes/1", "dead_end"),
        ("/0/nodes/2", "dead_end"),
    ]


def test_duplicate_flow_keys() -> None:
    assert issues(good(), legal(), legal()) == [("/2/key", "duplicate_key")]


# -- references --------------------------------------------------------------------------


def test_assignee_field_must_be_a_relation_to_staff() -> None:
    pointer = f"/0/nodes/{CALL}/assignee/field"
    assert broken(lambda d: node(d, CALL)["assignee"].update(field="note")) == [
        (pointer, "assignee_not_relation")
    ]
    assert broken(lambda d: node(d, CALL)["assignee"].update(field="customer")) == [
        (pointer, "assignee_not_staff")
    ]
    assert broken(lambda d: node(d, CALL)["assignee"].update(field="nope")) == [
        (pointer, "unknown_field")
    ]


def test_unknown_roles() -> None:
    assert broken(lambda d: node(d, TRIAGE)["assignee"].update(role="janitor")) == [
        (f"/0/nodes/{TRIAGE}/assignee/role", "unknown_role")
    ]
    assert broken(lambda d: node(d, TRIAGE)["escalations"][1]["to"].update(role="boss")) == [
        (f"/0/nodes/{TRIAGE}/escalations/1/to/role", "unknown_role")
    ]
    assert broken(lambda d: d["start"]["roles"].insert(0, "janitor")) == [
        ("/0/start/roles/0", "unknown_role")
    ]
    # without the app's roles, roles are not checked
    data = good()
    node(data, TRIAGE)["assignee"]["role"] = "janitor"
    assert issues(data, legal(), roles=None) == []


@pytest.mark.parametrize(("part", "number"), [("edit", 2), ("hide", 1)])
def test_unknown_field_in_edit_and_hide(part: str, number: int) -> None:
    assert broken(lambda d: node(d, TRIAGE)[part].append("nope")) == [
        (f"/0/nodes/{TRIAGE}/{part}/{number}", "unknown_field")
    ]


def test_required_fields_must_exist_and_be_editable() -> None:
    assert broken(lambda d: node(d, TRIAGE)["required"].append("nope")) == [
        (f"/0/nodes/{TRIAGE}/required/1", "unknown_field"),
        (f"/0/nodes/{TRIAGE}/required/1", "required_not_editable"),
    ]
    assert broken(lambda d: node(d, TRIAGE)["required"].append("subject")) == [
        (f"/0/nodes/{TRIAGE}/required/1", "required_not_editable")
    ]


def test_conditions_read_existing_fields_and_nodes() -> None:
    pointer = f"/0/edges/{E_AGAIN_TRIAGE}/if"
    assert broken(lambda d: d["edges"][E_AGAIN_TRIAGE].update({"if": eq("record.nope", 1)})) == [
        (pointer, "unknown_field")
    ]
    assert broken(
        lambda d: d["edges"][E_AGAIN_TRIAGE].update({"if": eq("steps.nobody.outcome", "x")})
    ) == [(pointer, "unknown_node")]
    assert broken(lambda d: d["edges"][E_AGAIN_TRIAGE].update({"if": eq("patient.name", 1)})) == [
        (pointer, "unknown_variable")
    ]
    assert broken(lambda d: d["edges"][E_AGAIN_TRIAGE].update({"if": {"nope": [1]}})) == [
        (pointer, "invalid_expression")
    ]
    # the record's system fields may be read
    assert broken(lambda d: d["edges"][E_AGAIN_TRIAGE].update({"if": eq("record.id", "x")})) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(cancel_when=eq("record.nope", 1)),
         [("/0/cancel_when", "unknown_field")]),
        (lambda d: d["vars"].update(x=var("steps.triage.outcome")),
         [("/0/vars/x", "unknown_variable")]),
        (lambda d: d["start"].update(when=var("vars.dept")),
         [("/0/start/when", "unknown_variable")]),
        (lambda d: node(d, TRIAGE)["assignee"].update(where=var("user.dept.x.y")), []),
        (lambda d: node(d, CALL)["assignee"].update(field=None, user=var("user.name")),
         [(f"/0/nodes/{CALL}/assignee/user", "unknown_variable")]),
        (lambda d: node(d, INVESTIGATE)["multi"].update(over=var("record.nope")),
         [(f"/0/nodes/{INVESTIGATE}/multi/over", "unknown_field")]),
        (lambda d: node(d, LEGAL_CHECK)["vars"].update(amount=var("record.nope")),
         [(f"/0/nodes/{LEGAL_CHECK}/vars/amount", "unknown_field")]),
        (lambda d: node(d, REPLY).update(until=eq("record.nope", 1)),
         [(f"/0/nodes/{REPLY}/until", "unknown_field")]),
        (lambda d: node(d, CALL)["due"].update(at=var("record.nope")),
         [(f"/0/nodes/{CALL}/due/at", "unknown_field")]),
        (lambda d: node(d, TRIAGE).update(title="Hi {{ record.subject"),
         [(f"/0/nodes/{TRIAGE}/title", "invalid_template")]),
        (lambda d: node(d, TRIAGE).update(description={"en": "ok", "zh-CN": "{% if %}"}),
         [(f"/0/nodes/{TRIAGE}/description/zh-CN", "invalid_template")]),
    ],
)  # fmt: skip
def test_expressions_and_templates(
    change: Callable[[Data], Any], expected: list[tuple[str, str]]
) -> None:
    assert broken(change) == expected


def test_reject_action_in_an_action_node() -> None:
    reject = {"type": "reject", "message": "no"}
    assert broken(lambda d: node(d, QUICK)["actions"].append(reject)) == [
        (f"/0/nodes/{QUICK}/actions/2", "reject_in_flow")
    ]


def test_action_nodes_pass_the_rule_checks() -> None:
    assert broken(lambda d: node(d, QUICK)["actions"].append(set_values(nope=1))) == [
        (f"/0/nodes/{QUICK}/actions/2/values/nope", "unknown_field")
    ]
    # action expressions read the flow's variables too
    value = {"cat": [var("steps.triage.actor"), var("vars.dept"), var("starter")]}
    assert broken(lambda d: node(d, QUICK)["actions"].append(set_values(note=value))) == []
    assert broken(
        lambda d: node(d, QUICK)["actions"].append(set_values(note=var("steps.nobody.actor")))
    ) == [(f"/0/nodes/{QUICK}/actions/2/values/note", "unknown_node")]
    message = notify()
    message["recipients"] = [{"role": "nurse"}, {"user": var("steps.gone.actor")}]
    assert broken(lambda d: node(d, QUICK)["actions"].append(message)) == [
        (f"/0/nodes/{QUICK}/actions/2/recipients/1/user", "unknown_node")
    ]


def test_subflow_on_another_form() -> None:
    def staff_flow(data: Data) -> None:
        node(data, LEGAL_CHECK)["flow"] = "onboard"

    onboard = flow_data([start(), end()], [edge("start", "end")], key="onboard", form="staff")
    data = good()
    staff_flow(data)
    assert issues(data, legal(), onboard) == [(f"/0/nodes/{LEGAL_CHECK}/flow", "subflow_form")]
    assert broken(lambda d: node(d, LEGAL_CHECK).update(flow="nope")) == [
        (f"/0/nodes/{LEGAL_CHECK}/flow", "unknown_flow")
    ]


def test_subflow_cycle() -> None:
    calls_back = flow_data(
        [start(), subflow("again", "handle"), end()], chain("start", "again", "end"), key="legal"
    )
    assert issues(good(), calls_back) == [("/0", "subflow_cycle"), ("/1", "subflow_cycle")]
    itself = flow_data(
        [start(), subflow("again", "self"), end()], chain("start", "again", "end"), key="self"
    )
    assert issues(itself) == [("/0", "subflow_cycle")]


def test_bad_durations() -> None:
    assert broken(lambda d: node(d, DEADLINE)["wait"].update(after="2 days")) == [
        (f"/0/nodes/{DEADLINE}/wait/after", "invalid_duration")
    ]
    assert broken(lambda d: node(d, REPLY)["timeout"].update(after="-P1D")) == [
        (f"/0/nodes/{REPLY}/timeout/after", "negative_duration")
    ]
    assert broken(lambda d: node(d, TRIAGE)["escalations"][0].update(repeat="often")) == [
        (f"/0/nodes/{TRIAGE}/escalations/0/repeat", "invalid_duration")
    ]
    assert broken(lambda d: node(d, TRIAGE)["escalations"][0].update(repeat="PT0S")) == [
        (f"/0/nodes/{TRIAGE}/escalations/0/repeat", "invalid_duration")
    ]
    assert broken(lambda d: node(d, TRIAGE)["escalations"][1]["after"].update(after="P")) == [
        (f"/0/nodes/{TRIAGE}/escalations/1/after/after", "invalid_duration")
    ]


def test_escalation_without_due() -> None:
    assert broken(lambda d: node(d, TRIAGE).pop("due")) == [
        (f"/0/nodes/{TRIAGE}/escalations", "escalation_without_due")
    ]


def test_escalation_with_an_outcome_the_task_does_not_offer() -> None:
    assert broken(lambda d: node(d, TRIAGE)["escalations"][2].update(outcome="lost")) == [
        (f"/0/nodes/{TRIAGE}/escalations/2/outcome", "unknown_outcome")
    ]


def test_modes() -> None:
    assert broken(lambda d: node(d, INVESTIGATE).update(mode="all")) == [
        (f"/0/nodes/{INVESTIGATE}/mode", "multi_with_mode")
    ]
    assert broken(lambda d: node(d, CHASE).update(mode=0)) == [
        (f"/0/nodes/{CHASE}/mode", "invalid_mode")
    ]


def test_duplicate_outcomes() -> None:
    assert broken(lambda d: node(d, CHASE)["outcomes"].append({"key": "done"})) == [
        (f"/0/nodes/{CHASE}/outcomes/2/key", "duplicate_key")
    ]


def test_cancel_regions() -> None:
    assert broken(lambda d: node(d, DROP)["region"].append("nowhere")) == [
        (f"/0/nodes/{DROP}/region/1", "unknown_node")
    ]
    assert broken(lambda d: node(d, DROP)["region"].append("drop")) == [
        (f"/0/nodes/{DROP}/region/1", "cancels_itself")
    ]


def test_unknown_form() -> None:
    data = flow_data([start(), end()], [edge("start", "end")], form="nope")
    assert issues(data) == [("/0/form", "unknown_form")]


# -- through the app loader --------------------------------------------------------------


def app(*flows: Data) -> Data:
    forms = [form.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
             for form in FORMS.values()]  # fmt: skip
    return {
        "format": "formloom.app/v1",
        "key": "complaints",
        "version": "1.0.0",
        "label": "Complaints",
        "roles": [{"key": role, "label": role} for role in sorted(ROLES)],
        "forms": forms,
        "flows": list(flows),
    }


def test_load_accepts_the_correct_flows() -> None:
    loaded = load(json.loads(json.dumps(app(good(), legal()))))
    assert [flow.key for flow in loaded.flows] == ["handle", "legal"]


def test_load_reports_flow_problems_under_flows() -> None:
    data = good()
    node(data, TRIAGE)["assignee"]["role"] = "janitor"
    data["edges"][E_CHOOSE_LEGAL].pop("if")
    with pytest.raises(DefinitionInvalid) as error:
        load(json.loads(json.dumps(app(copy.deepcopy(legal()), data))))
    assert [(p.path, p.code) for p in error.value.problems] == [
        (f"/flows/1/edges/{E_CHOOSE_LEGAL}", "missing_condition"),
        (f"/flows/1/nodes/{TRIAGE}/assignee/role", "unknown_role"),
    ]


def test_load_reports_a_flow_shape_error_with_its_pointer() -> None:
    data = good()
    node(data, REPLY).pop("message")
    node(data, REPLY).pop("until")
    node(data, REPLY).pop("timeout")
    with pytest.raises(DefinitionInvalid) as error:
        load(json.loads(json.dumps(app(data, legal()))))
    paths = [p.path for p in error.value.problems]
    assert paths and all(path.startswith(f"/flows/0/nodes/{REPLY}") for path in paths)


def test_every_index_constant_names_the_node_it_says() -> None:
    data = good()
    keys = {number: node["key"] for number, node in enumerate(data["nodes"])}
    assert [keys[n] for n in (TRIAGE, QUICK, CALL, DEADLINE, DROP, INVESTIGATE, LEGAL_CHECK)] == [
        "triage", "quick", "call", "deadline", "drop", "investigate", "legal_check"]  # fmt: skip
    assert [keys[n] for n in (COOL, JOIN, CHOOSE, REFUND, TELL_LEGAL, MERGE, REPLY, CHASE)] == [
        "cool", "join", "choose", "refund", "tell_legal", "merge", "reply", "chase"]  # fmt: skip
    assert keys[AGAIN] == "again"
    ends = [(e["from"], e["to"]) for e in data["edges"]]
    assert ends[E_MINOR] == ("triage", "quick")
    assert ends[E_CHOOSE_REFUND] == ("choose", "refund")
    assert ends[E_CHOOSE_DEFAULT] == ("choose", "merge")
    assert ends[E_REPLY_MET] == ("reply", "again") and ends[E_REPLY_TIMEOUT] == ("reply", "chase")
