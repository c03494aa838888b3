"""advance(): user task modes and assignees, outcomes and returns, due times and escalations,
actions, subflows, joins, waits, the guards, events after the end, and determinism.

The control-flow patterns are in test_patterns.py; this file holds the rest of the semantics
the engine's docstrings state.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from formloom.engines.flows import engine as engine_module
from formloom.engines.flows.engine import (
    FlowInputError,
    FlowRuntimeError,
    Start,
    StaticDirectory,
    TaskDone,
    TaskReturned,
    TimerFired,
    advance,
)
from formloom.engines.flows.state import (
    ActionsPlanned,
    Candidates,
    InstanceEnded,
    RecordSet,
    StepCompleted,
    SubflowCancelled,
    SubflowStarted,
    TaskClosed,
    TaskCompleted,
    TaskOpened,
    TaskReassigned,
    TaskReminded,
    TimerArmed,
    TimerCancelled,
)

from .factory import (
    NOW,
    OFFICE,
    SHANGHAI,
    Run,
    action,
    chain,
    edge,
    end,
    eq,
    exclusive,
    flow,
    inclusive,
    line,
    notify,
    of,
    outcomes,
    parallel,
    set_values,
    start,
    subflow,
    summary,
    task,
    timer,
    var,
    wait,
)

H = timedelta(hours=1)


def one_task(**attrs: Any) -> Run:
    """start -> t -> end, started by sam."""
    run = Run(line(task("t", **attrs)))
    run.start()
    return run


def opened(run: Run) -> list[TaskOpened]:
    return of(run.history, TaskOpened)


# -- user task modes ---------------------------------------------------------------------


def test_claim_mode_offers_one_task_to_the_role_to_claim() -> None:
    run = one_task(
        title={"en": "Call {{ record.subject }}", "zh-CN": "回访"},
        edit=["note", "severity"],
        required=["note"],
        hide=["amount"],
        outcomes=outcomes("solved", "escalate"),
    )
    (effect,) = opened(run)
    assert effect.candidates == Candidates(roles=("nurse",))
    assert effect.assignee is None and effect.claim is True
    assert effect.title == {"en": "Call {{ record.subject }}", "zh-CN": "回访"}
    assert effect.outcomes == ("solved", "escalate")
    assert (effect.edit, effect.required, effect.hide) == (
        ("note", "severity"),
        ("note",),
        ("amount",),
    )
    assert effect.context["record"]["id"] == "r1" and effect.context["starter"] == "sam"
    assert effect.due is None and effect.item is None


def test_claim_mode_with_one_person_needs_no_claim() -> None:
    (effect,) = opened(one_task(assignee={"user": "zoe"}))
    assert effect.candidates == Candidates(users=("zoe",))
    assert effect.assignee == "zoe" and effect.claim is False


def test_any_mode_is_completed_by_any_candidate_without_claiming() -> None:
    run = one_task(mode="any")
    (effect,) = opened(run)
    assert effect.candidates == Candidates(roles=("nurse",)) and effect.claim is False
    run.complete("t", actor="bob")
    assert run.status == "completed" and run.state.last_actor == "bob"


def review(mode: Any, **attrs: Any) -> Run:
    spec = flow(
        [
            start(),
            task(
                "review",
                mode=mode,
                outcomes=outcomes("approve", "reject", reject={"veto": True}),
                **attrs,
            ),
            task("pay"),
            task("rework"),
            end(),
        ],
        [
            edge("start", "review"),
            edge("review", "pay", outcome="approve"),
            edge("review", "rework", outcome="reject"),
            edge("pay", "end"),
            edge("rework", "end"),
        ],
    )
    run = Run(spec, {"dept": "cardio"})
    run.start()
    return run


def test_all_mode_opens_one_task_per_role_member() -> None:
    run = review("all")
    tasks = opened(run)
    assert [(e.assignee, e.candidates, e.claim) for e in tasks] == [
        (name, Candidates(users=(name,)), False) for name in ("ann", "bob", "cat")
    ]
    ann, bob, cat = run.open_tasks("review")
    run.complete("review", "approve", "bob", task=bob)
    run.complete("review", "approve", "ann", task=ann)
    assert run.opened() == ["review"] * 3  # every one must
    run.complete("review", "approve", "cat", task=cat)
    assert run.opened() == ["review"] * 3 + ["pay"]
    assert run.state.steps["review"]["outcomes"] == ["approve"] * 3
    assert run.withdrawn() == []


def test_all_mode_veto_finishes_the_step_at_once_and_withdraws_the_rest() -> None:
    run = review("all")
    ann, bob, cat = run.open_tasks("review")
    run.complete("review", "approve", "ann", task=ann)
    effects = run.complete("review", "reject", "bob", comment="wrong amount", task=bob)
    assert [e.task for e in of(effects, TaskClosed)] == [cat]
    assert run.withdrawn(effects) == ["review"]
    assert of(effects, StepCompleted)[0] == StepCompleted(node="review", outcome="reject")
    assert run.opened()[-1] == "rework"
    assert run.state.steps["review"]["outcome"] == "reject"
    assert run.state.steps["review"]["outcomes"] == ["approve", "reject"]


def test_all_mode_with_where_asks_only_the_matching_members() -> None:
    run = review("all", assignee={"role": "nurse", "where": eq("user.dept", "cardio")})
    assert [e.assignee for e in opened(run)] == ["ann", "cat"]


def test_all_mode_with_nobody_to_ask_is_skipped_only_by_a_plain_edge() -> None:
    # outcome edges only: nobody approved, so no approval edge may be taken
    with pytest.raises(FlowRuntimeError, match="review: no outgoing edge"):
        review("all", assignee={"role": "nurse", "where": eq("user.dept", "nowhere")})
    spec = line(task("sign", mode="all", assignee={"role": "nobody"}), task("next"))
    run = Run(spec)
    run.start()
    assert run.steps() == [("sign", "skipped")] and run.opened() == ["next"]
    assert run.state.steps["sign"] == {"outcome": "skipped"}  # what later conditions read


def test_n_of_m_mode_moves_on_after_n_and_withdraws_the_rest() -> None:
    run = review(2)
    assert len(opened(run)) == 3
    ann, bob, cat = run.open_tasks("review")
    run.complete("review", "approve", "cat", task=cat)
    assert run.opened().count("pay") == 0
    effects = run.complete("review", "approve", "ann", task=ann)
    assert [e.task for e in of(effects, TaskClosed)] == [bob]
    assert run.opened()[-1] == "pay"


def test_n_of_m_mode_with_fewer_people_than_n_needs_them_all() -> None:
    run = review(5, assignee={"role": "doctor"})
    dan, eve = run.open_tasks("review")
    run.complete("review", "approve", "dan", task=dan)
    assert "pay" not in run.opened()
    run.complete("review", "approve", "eve", task=eve)
    assert run.opened()[-1] == "pay"


# -- assignees ---------------------------------------------------------------------------


def candidates_of(assignee: dict[str, Any], record: dict[str, Any] | None = None) -> Candidates:
    run = Run(line(task("t", assignee=assignee)), record)
    run.start(dept="ortho")
    return opened(run)[0].candidates


def test_role_with_where_over_user_attributes_the_record_and_vars() -> None:
    assert candidates_of(
        {"role": "nurse", "where": {"==": [var("user.dept"), var("record.dept")]}},
        {"dept": "cardio"},
    ) == Candidates(users=("ann", "cat"))
    assert candidates_of(
        {"role": "nurse", "where": {"==": [var("user.dept"), var("vars.dept")]}}
    ) == Candidates(users=("bob",))
    assert candidates_of(
        {"role": "nurse", "where": {"!=": [var("user.name"), "ann"]}}
    ) == Candidates(users=("bob", "cat"))
    assert candidates_of({"role": "doctor"}) == Candidates(roles=("doctor",))


def test_user_assignee_is_a_name_or_an_expression_giving_one_or_a_list() -> None:
    assert candidates_of({"user": "zoe"}) == Candidates(users=("zoe",))
    assert candidates_of({"user": var("record.owner")}, {"owner": "yan"}) == Candidates(
        users=("yan",)
    )
    assert candidates_of(
        {"user": var("record.owners")}, {"owners": ["yan", None, "zoe", "yan"]}
    ) == Candidates(users=("yan", "zoe"))


def test_field_assignee_goes_through_the_staff_record_to_its_user() -> None:
    assert candidates_of({"field": "handler"}, {"handler": "s2"}) == Candidates(users=("sue",))
    assert candidates_of({"field": "handler"}, {"handler": ["s1", "s9", "s2"]}) == Candidates(
        users=("sam", "sue")
    )
    assert candidates_of({"field": "handler"}, {"handler": None}) == Candidates()


def test_starter_and_previous_assignees() -> None:
    spec = line(
        task("draft"),
        task("check", assignee={"previous": True}),
        task("confirm", assignee={"starter": True}),
    )
    run = Run(spec)
    run.start(starter="sam")
    run.complete("draft", actor="cat")
    run.complete("check", actor="cat")
    assert [e.assignee for e in opened(run)] == [None, "cat", "sam"]
    assert run.state.starter == "sam" and run.state.last_actor == "cat"


# -- outcomes ----------------------------------------------------------------------------


def decision() -> Any:
    return flow(
        [
            start(),
            task("draft"),
            task(
                "review",
                returnable=True,
                outcomes=outcomes(
                    "approve",
                    "reject",
                    "redo",
                    reject={"comment": "required"},
                    redo={"to": "draft"},
                ),
            ),
            task("manager"),
            task("pay"),
            end(),
            end("rejected"),
        ],
        [
            edge("start", "draft"),
            edge("draft", "review"),
            edge("review", "manager", outcome="approve", when={">": [var("record.amount"), 100]}),
            edge("review", "pay", outcome="approve", default=True),
            edge("review", "rejected", outcome="reject"),
            edge("manager", "pay"),
            edge("pay", "end"),
        ],
    )


def test_outcomes_choose_the_edges_and_conditions_among_them() -> None:
    small = Run(decision(), {"amount": 50})
    small.start()
    small.complete("draft")
    small.complete("review", "approve", actor="dan")
    assert small.opened() == ["draft", "review", "pay"]
    big = Run(decision(), {"amount": 500})
    big.start()
    big.complete("draft")
    big.complete("review", "approve")
    assert big.opened() == ["draft", "review", "manager"]
    no = Run(decision(), {"amount": 500})
    no.start()
    no.complete("draft")
    no.complete("review", "reject", comment="not covered")
    assert no.status == "completed" and no.opened() == ["draft", "review"]
    assert no.state.steps["review"]["comment"] == "not covered"


def test_an_outcome_with_to_jumps_back_to_an_earlier_step() -> None:
    run = Run(decision(), {"amount": 50})
    run.start()
    run.complete("draft")
    effects = run.complete("review", "redo", actor="dan")
    assert summary(effects)[:3] == ["task_completed:review:redo", "step_completed:review:redo",
                                    "node_entered:draft"]  # fmt: skip
    run.complete("draft")
    run.complete("review", "approve")
    assert run.opened() == ["draft", "review", "draft", "review", "pay"]


def test_a_task_returned_to_an_earlier_user_task() -> None:
    run = Run(decision(), {"amount": 50})
    run.start()
    run.complete("draft", actor="ann")
    review_task = run.task("review")
    effects = run.give_back("review", "draft", actor="dan", comment="add the invoice")
    assert of(effects, TaskClosed) == [
        TaskClosed(task=review_task, node="review", reason="returned")
    ]
    assert of(effects, StepCompleted) == [StepCompleted(node="review", outcome="returned")]
    assert run.opened() == ["draft", "review", "draft"]
    assert run.state.steps["review"]["outcome"] == "returned"
    assert run.state.steps["review"]["comment"] == "add the invoice"
    assert run.state.last_actor == "dan"
    assert of(effects, TaskCompleted) == []


@pytest.mark.parametrize(
    ("node", "to", "code"),
    [
        ("draft", "draft", "not_returnable"),  # draft is not returnable
        ("review", "pay", "return_target"),  # never reached
        ("review", "start", "return_target"),  # not a user task
        ("review", "nowhere", "return_target"),
        ("review", "review", "return_target"),  # has not completed before
    ],
)
def test_returns_that_are_refused(node: str, to: str, code: str) -> None:
    run = Run(decision(), {"amount": 50})
    run.start()
    if node == "review":
        run.complete("draft")
    before = run.state.to_dict()
    with pytest.raises(FlowInputError) as error:
        run.give_back(node, to)
    assert error.value.code == code
    assert run.state.to_dict() == before


def test_a_return_of_a_task_that_is_not_open_is_refused() -> None:
    run = Run(decision(), {"amount": 50})
    run.start()
    with pytest.raises(FlowInputError) as error:
        run.send(TaskReturned("i.999", "draft", "ann"))
    assert error.value.code == "not_open"


def test_a_required_comment_must_be_given() -> None:
    run = Run(decision(), {"amount": 50})
    run.start()
    run.complete("draft")
    for comment in (None, "", "   "):
        with pytest.raises(FlowInputError) as error:
            run.complete("review", "reject", comment=comment)
        assert error.value.code == "comment"
    run.complete("review", "approve")  # optional for the others
    assert run.opened()[-1] == "pay"


def test_an_unknown_outcome_is_refused_and_the_state_is_unchanged() -> None:
    run = one_task(outcomes=outcomes("yes", "no"))
    state = run.state
    before = copy.deepcopy(state.to_dict())
    with pytest.raises(FlowInputError) as error:
        advance(run.flow, state, TaskDone(run.task("t"), "maybe", "ann"), run.context())
    assert error.value.code == "outcome"
    assert "yes, no" in str(error.value)
    assert state.to_dict() == before  # advance works on a copy
    with pytest.raises(FlowInputError) as unknown:
        run.send(TaskDone("i.999", "yes", "ann"))
    assert unknown.value.code == "not_open"


def test_advance_never_mutates_the_state_it_is_given() -> None:
    run = one_task()
    state = run.state
    before = copy.deepcopy(state.to_dict())
    done = advance(run.flow, state, TaskDone(run.task("t"), "done", "ann"), run.context())
    assert done.state.status == "completed"
    assert state.to_dict() == before and state.status == "running"


# -- due times ---------------------------------------------------------------------------


def due_of(timing: dict[str, Any], record: dict[str, Any] | None = None, **run: Any) -> datetime:
    driver = Run(line(task("t", due=timing)), record, **run)
    driver.start()
    due = opened(driver)[0].due
    assert due is not None and due.utcoffset() == timedelta(0)
    assert driver.state.tokens[0].tasks[driver.task("t")].due == due
    return due


def test_due_after_a_duration_counts_calendar_days_in_the_zone() -> None:
    assert due_of({"after": "PT48H"}) == NOW + 48 * H
    assert due_of({"after": "P2D"}, zone=SHANGHAI) == NOW + 48 * H
    # across New York's fall back (2026-11-01): a calendar day is 25 hours that day
    before = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # 12:00 in New York
    assert due_of({"after": "P1D"}, zone="America/New_York", now=before) == before + 25 * H


def test_due_at_a_moment_an_expression_gives() -> None:
    # a date is its midnight in the zone; a datetime its own instant
    assert due_of({"at": var("record.deadline")}, {"deadline": "2026-11-30"}, zone=SHANGHAI) == (
        datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
    )
    assert due_of(
        {"at": var("record.deadline")}, {"deadline": "2026-11-30T10:00:00+08:00"}
    ) == datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    assert due_of({"at": {"date_add": [var("now"), 3, "day"]}}) == NOW + 72 * H


def test_a_due_expression_giving_nothing_is_a_runtime_error() -> None:
    with pytest.raises(FlowRuntimeError, match="nodes/t/due/at"):
        due_of({"at": var("record.deadline")})
    with pytest.raises(FlowRuntimeError, match="nodes/t/due/at"):
        due_of({"at": var("record.deadline")}, {"deadline": "soon"})


def test_due_in_working_days_and_hours_on_the_business_calendar() -> None:
    # Monday 09:30 in Shanghai; Wednesday 2026-11-25 is a holiday in OFFICE
    office = {"zone": SHANGHAI, "calendar": OFFICE}
    assert due_of({"working_days": 2}, **office) == datetime(2026, 11, 26, 1, 30, tzinfo=UTC)
    # 2.5 h until lunch, 4 h after it, 1.5 h on Tuesday morning
    assert due_of({"working_hours": 8}, **office) == datetime(2026, 11, 24, 2, 30, tzinfo=UTC)
    assert due_of({"working_hours": 0.5}, **office) == NOW + 0.5 * H
    friday = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # Friday 16:00 in Shanghai
    assert due_of({"working_hours": 2}, now=friday, **office) == datetime(
        2026, 11, 30, 2, 0, tzinfo=UTC
    )  # Monday 10:00
    # without a calendar every hour counts
    assert due_of({"working_days": 2}, zone=SHANGHAI) == NOW + 48 * H
    assert due_of({"working_hours": 30}) == NOW + 30 * H


def test_a_timer_node_waits_for_its_moment() -> None:
    run = Run(line(timer("t", working_days=1), task("after")), zone=SHANGHAI, calendar=OFFICE)
    run.start()
    (armed,) = of(run.last, TimerArmed)
    assert (armed.node, armed.purpose) == ("t", "timer")
    assert armed.due == datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
    assert run.opened() == []
    run.fire("t")
    assert run.opened() == ["after"] and ("t", "fired") in run.steps()


# -- escalations -------------------------------------------------------------------------


def escalating() -> Run:
    run = one_task(
        due={"after": "PT4H"},
        outcomes=outcomes("done", "timed_out"),
        escalations=[
            {"action": "remind", "repeat": "PT3H"},
            {"after": {"after": "PT8H"}, "action": "reassign", "to": {"role": "manager"}},
            {"after": {"after": "P1D"}, "action": "complete", "outcome": "timed_out"},
        ],
    )
    return run


def test_escalations_fire_in_order_with_repeated_reminders() -> None:
    run = escalating()
    task_key = run.task("t")
    due = NOW + 4 * H
    assert opened(run)[0].due == due
    assert [(t.due, t.purpose) for t in of(run.last, TimerArmed)] == [(due, f"escalate:{task_key}")]
    log: list[tuple[timedelta, str]] = []
    for _ in range(30):  # bounded: a repeat that never stops must fail, not hang
        if run.status != "running":
            break
        effects = run.fire_next()
        for effect in effects:
            if isinstance(effect, TaskReminded | TaskReassigned | TaskCompleted):
                log.append((run.now - due, effect.kind))
    assert log == [
        (0 * H, "task_reminded"),
        (3 * H, "task_reminded"),
        (6 * H, "task_reminded"),
        (8 * H, "task_reassigned"),
        (9 * H, "task_reminded"),
        (12 * H, "task_reminded"),
        (15 * H, "task_reminded"),
        (18 * H, "task_reminded"),
        (21 * H, "task_reminded"),
        (24 * H, "task_completed"),
    ]
    reassigned = of(run.history, TaskReassigned)[0]
    assert reassigned.candidates == Candidates(roles=("manager",)) and reassigned.assignee is None
    # reminders after the reassignment go to the new people
    assert of(run.history, TaskReminded)[-1].candidates == Candidates(roles=("manager",))
    completed = of(run.history, TaskCompleted)[-1]
    assert (completed.outcome, completed.actor) == ("timed_out", None)
    assert run.state.steps["t"]["outcome"] == "timed_out"
    assert run.status == "completed"
    assert run.live_timers() == []  # the repeating reminder was cancelled with the task


def test_reassigning_to_one_person_names_the_assignee() -> None:
    run = one_task(
        due={"after": "PT1H"},
        escalations=[{"action": "reassign", "to": {"field": "handler"}}],
    )
    run.record["handler"] = "s1"
    effects = run.fire_next()
    assert of(effects, TaskReassigned)[0].assignee == "sam"
    assert run.state.tokens[0].tasks[run.task("t")].candidates == Candidates(users=("sam",))


def test_completing_a_task_cancels_its_escalation_and_a_stale_timer_does_nothing() -> None:
    run = escalating()
    timer_key = run.live_timers()[0]
    effects = run.complete("t")
    assert of(effects, TimerCancelled) == [TimerCancelled(timer=timer_key, node="t")]
    before = run.state.to_dict()
    assert run.send(TimerFired(timer_key)) == ()
    assert run.state.to_dict() == before


def test_a_stale_timer_in_a_running_instance_does_nothing() -> None:
    run = Run(line(task("a", due={"after": "PT1H"}, escalations=[{"action": "remind"}]), task("b")))
    run.start()
    stale = run.live_timers()[0]
    run.complete("a")
    before = run.state.to_dict()
    assert run.send(TimerFired(stale)) == ()
    assert run.send(TimerFired("never-armed")) == ()
    assert run.state.to_dict() == before and run.status == "running"


def test_each_task_of_a_multi_step_escalates_on_its_own() -> None:
    run = Run(
        line(
            task(
                "t",
                mode="all",
                due={"after": "PT1H"},
                escalations=[{"action": "remind"}],
            )
        )
    )
    run.start()
    assert len(run.live_timers()) == 3
    ann, bob, cat = run.open_tasks("t")
    run.complete("t", task=bob)
    assert len(run.live_timers()) == 2
    effects = run.fire_next()
    assert [e.task for e in of(effects, TaskReminded)] == [ann]


# -- actions -----------------------------------------------------------------------------


def test_set_values_change_the_record_a_later_gateway_sees() -> None:
    spec = flow(
        [
            start(),
            action("grade", set_values(severity={"if": [{">": [var("record.amount"), 100]},
                                                        "high", "low"]})),
            exclusive("route"),
            task("senior"),
            task("junior"),
            end(),
        ],
        [
            *chain("start", "grade", "route"),
            edge("route", "senior", when=eq("record.severity", "high")),
            edge("route", "junior", default=True),
            edge("senior", "end"),
            edge("junior", "end"),
        ],
    )  # fmt: skip
    run = Run(spec, {"amount": 500, "severity": "low"})
    effects = run.start()
    assert run.opened() == ["senior"]
    assert of(effects, RecordSet) == [RecordSet(node="grade", values={"severity": "high"})]
    (planned,) = of(effects, ActionsPlanned)
    assert [a.type for a in planned.actions] == ["set"]
    assert run.record == {"id": "r1", "amount": 500, "severity": "high"}
    assert opened(run)[0].context["record"]["severity"] == "high"
    assert summary(effects)[:4] == [
        "node_entered:start",
        "node_entered:grade",
        "actions_planned:grade",
        "record_set:grade",
    ]


def test_actions_are_planned_with_unique_idempotency_keys_per_pass() -> None:
    hook = {"type": "webhook", "url": "https://crm.example/hook", "body": {"n": "{{ vars.n }}"}}
    spec = flow(
        [
            start(),
            task("work", outcomes=outcomes("again", "stop")),
            action("tell", notify("{{ steps.work.outcome }}"), hook),
            exclusive("loop"),
            end(),
        ],
        [
            *chain("start", "work", "tell", "loop"),
            edge("loop", "work", when=eq("steps.work.outcome", "again")),
            edge("loop", "end", default=True),
        ],
    )
    run = Run(spec)
    run.start()
    run.complete("work", "again")
    run.complete("work", "again")
    run.complete("work", "stop")
    plans = of(run.history, ActionsPlanned)
    assert len(plans) == 3
    keys = [action.idempotency_key for plan in plans for action in plan.actions]
    assert len(keys) == 6 and len(set(keys)) == 6
    assert all(key.startswith("clinic:tell:complaint:r1:i.") for key in keys)
    assert [[a.type for a in plan.actions] for plan in plans] == [["notify", "webhook"]] * 3
    assert [plan.actions[0].data()["context"]["steps"]["work"]["outcome"] for plan in plans] == [
        "again",
        "again",
        "stop",
    ]
    assert run.status == "completed"


def test_an_action_that_fails_is_a_runtime_error() -> None:
    spec = line(action("bad", set_values(amount={"date_add": ["not a date", 1, "day"]})))
    with pytest.raises(FlowRuntimeError, match="bad: actions/"):
        Run(spec).start()


# -- subflows ----------------------------------------------------------------------------


def parent_flow(**attrs: Any) -> Any:
    return line(subflow("sub", "child", **attrs), task("after"), key="parent")


def test_a_subflow_is_started_and_its_end_moves_the_parent_on() -> None:
    run = Run(parent_flow(vars={"who": var("starter"), "n": {"+": [1, 2]}}))
    effects = run.start()
    (started,) = of(effects, SubflowStarted)
    assert (started.node, started.flow, dict(started.vars)) == (
        "sub",
        "child",
        {"who": "sam", "n": 3},
    )
    assert run.state.tokens[0].children == [started.child]
    assert run.ended("i.999") == ()  # not a child of this instance: ignored
    effects = run.ended(started.child, "completed", result="ok")
    assert of(effects, StepCompleted) == [StepCompleted(node="sub", outcome="completed")]
    assert run.opened() == ["after"]
    assert run.state.steps["sub"]["results"] == [{"result": "ok"}]
    assert run.ended(started.child) == ()  # a second end is stale


def test_multi_subflows_start_one_per_item_and_wait_for_all() -> None:
    run = Run(parent_flow(multi={"over": var("record.tags")}), {"tags": ["a", "b"]})
    run.start()
    assert [dict(e.vars) for e in of(run.history, SubflowStarted)] == [{"item": "a"}, {"item": "b"}]
    first, second = run.children()
    run.ended(second)
    assert run.opened() == []
    run.ended(first)
    assert run.opened() == ["after"]


def test_multi_subflows_any_cancels_the_rest() -> None:
    run = Run(parent_flow(multi={"over": [1, 2, 3], "complete": "any"}))
    run.start()
    first, second, third = run.children()
    effects = run.ended(second)
    assert [e.child for e in of(effects, SubflowCancelled)] == [first, third]
    assert run.opened() == ["after"]


def test_multi_subflows_without_cancel_rest_keep_the_rest_running() -> None:
    run = Run(parent_flow(multi={"over": [1, 2, 3], "complete": 1, "cancel_rest": False}))
    run.start()
    first, second, third = run.children()
    effects = run.ended(first, result=1)
    assert of(effects, SubflowCancelled) == []
    assert run.opened() == ["after"]
    effects = run.ended(third, result=3)  # recorded, the parent does not move again
    assert of(effects, StepCompleted) == [] and run.opened() == ["after"]
    assert run.state.steps["sub"]["results"] == [{"result": 1}, {"result": 3}]
    effects = run.complete("after")  # the parent ends: the child still running is cancelled
    assert [e.child for e in of(effects, SubflowCancelled)] == [second]
    assert run.status == "completed"


def test_cancelling_the_parent_cancels_its_subflow() -> None:
    run = Run(parent_flow())
    run.start()
    (child,) = run.children()
    effects = run.cancel()
    assert of(effects, SubflowCancelled) == [SubflowCancelled(child=child, node="sub")]
    assert run.status == "cancelled"


# -- joins and waits ---------------------------------------------------------------------


def test_inclusive_join_with_one_branch_not_taken_and_one_on_its_way() -> None:
    spec = flow(
        [start(), inclusive("split"), task("a"), timer("t"), task("b"), task("c")]
        + [inclusive("join"), task("last"), end()],
        [
            edge("start", "split"),
            edge("split", "a", when=True),
            edge("split", "t", when=eq("record.severity", "high")),
            edge("split", "c", when=False),  # not taken
            edge("a", "join"),
            edge("t", "b"),
            edge("b", "join"),
            edge("c", "join"),
            *chain("join", "last", "end"),
        ],
    )
    run = Run(spec, {"severity": "high"})
    run.start()
    run.complete("a")
    assert run.opened() == ["a"]  # the timer's token can still reach the join
    run.fire("t")
    assert run.opened() == ["a", "b"]
    run.complete("b")
    assert run.opened() == ["a", "b", "last"]
    run.complete("last")
    assert run.status == "completed" and run.state.tokens == []


def test_a_parallel_join_in_a_loop_fires_once_per_round() -> None:
    spec = flow(
        [start(), exclusive("again"), parallel("split"), task("a"), task("b")]
        + [parallel("join"), task("check", outcomes=outcomes("redo", "ok")), end()],
        [
            *chain("start", "again", "split"),
            edge("split", "a"),
            edge("split", "b"),
            edge("a", "join"),
            edge("b", "join"),
            edge("join", "check"),
            edge("check", "again", outcome="redo"),
            edge("check", "end", outcome="ok"),
        ],
    )
    run = Run(spec)
    run.start()
    run.complete("b")
    run.complete("a")
    run.complete("check", "redo")
    run.complete("a")
    assert run.opened() == ["a", "b", "check", "a", "b"]  # round 2 waits for b again
    run.complete("b")
    run.complete("check", "ok")
    assert run.opened() == ["a", "b", "check", "a", "b", "check"]
    assert run.status == "completed" and run.state.tokens == []


def test_a_wait_until_a_record_condition_holds() -> None:
    spec = flow(
        [start(), wait("paid", until=eq("record.status", "paid"), timeout={"after": "P7D"})]
        + [task("ship"), task("chase"), end("e1"), end("e2")],
        [
            edge("start", "paid"),
            edge("paid", "ship", on="met"),
            edge("paid", "chase", on="timeout"),
            edge("ship", "e1"),
            edge("chase", "e2"),
        ],
    )
    run = Run(spec, {"status": "open"})
    run.start()
    assert run.change(note="x") == ()
    effects = run.change(status="paid")
    assert run.cancelled_timers(effects) == ["paid"] and run.opened() == ["ship"]
    already = Run(spec, {"status": "paid"})  # holds on arrival: no timer at all
    already.start()
    assert already.opened() == ["ship"] and already.timers == {}


# -- guards ------------------------------------------------------------------------------


def test_a_loop_that_never_waits_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "MAX_ENTRIES", 500)
    spec = flow(
        [start(), exclusive("spin"), exclusive("back"), end()],
        [
            edge("start", "spin"),
            edge("spin", "back", when={"==": [1, 1]}),
            edge("spin", "end", default=True),
            edge("back", "spin"),
        ],
    )
    with pytest.raises(FlowRuntimeError, match="loops without waiting"):
        Run(spec).start()


def test_the_loop_guard_default_allows_long_but_finite_passes() -> None:
    assert engine_module.MAX_ENTRIES == 10_000
    spec = flow(
        [start(), exclusive("spin"),
         action("count", set_values(amount={"+": [var("record.amount"), 1]})), end()],
        [
            edge("start", "spin"),
            edge("spin", "count", when={"<": [var("record.amount"), 50]}),
            edge("spin", "end", default=True),
            edge("count", "spin"),
        ],
    )  # fmt: skip
    run = Run(spec, {"amount": 0})
    run.start()
    assert run.record["amount"] == 50 and run.status == "completed"


def test_an_exclusive_split_with_no_true_condition_and_no_default() -> None:
    spec = flow(
        [start(), exclusive("route"), task("a"), task("b"), end()],
        [
            edge("start", "route"),
            edge("route", "a", when=eq("record.severity", "high")),
            edge("route", "b", when=eq("record.severity", "low")),
            edge("a", "end"),
            edge("b", "end"),
        ],
    )
    with pytest.raises(FlowRuntimeError) as error:
        Run(spec, {"severity": "unknown"}).start()
    assert error.value.node == "route" and "no default" in error.value.message


def test_an_outcome_without_an_edge_is_a_runtime_error() -> None:
    spec = flow(
        [start(), task("t", outcomes=outcomes("yes", "no")), end()],
        [edge("start", "t"), edge("t", "end", outcome="yes")],
    )
    run = Run(spec)
    run.start()
    with pytest.raises(FlowRuntimeError, match="no outgoing edge"):
        run.complete("t", "no")


# -- after the end -----------------------------------------------------------------------


def test_events_after_the_instance_ended() -> None:
    run = escalating()
    stale_timer = run.live_timers()[0]
    task_key = run.task("t")
    run.cancel()
    before = run.state.to_dict()
    with pytest.raises(FlowInputError) as done:
        run.send(TaskDone(task_key, "done", "ann"))
    assert done.value.code == "closed"
    with pytest.raises(FlowInputError) as returned:
        run.send(TaskReturned(task_key, "t", "ann"))
    assert returned.value.code == "closed"
    assert run.send(TimerFired(stale_timer)) == ()
    assert run.message("anything") == ()
    assert run.change(status="x") == ()
    with pytest.raises(FlowInputError) as again:
        run.send(Start())
    assert again.value.code == "started"
    assert run.state.to_dict() == before


def test_an_instance_that_ended_at_once_cannot_be_started_again() -> None:
    run = Run(flow([start(), end()], [edge("start", "end")]))
    effects = run.start()
    assert of(effects, InstanceEnded) == [InstanceEnded(status="completed")]
    with pytest.raises(FlowInputError) as error:
        run.start()
    assert error.value.code == "started"
    assert of(run.history, InstanceEnded) == [InstanceEnded(status="completed")]


def test_start_evaluates_the_flow_vars_and_takes_given_ones() -> None:
    spec = line(task("t"), vars={"who": var("starter"), "amount": var("record.amount")})
    run = Run(spec, {"amount": 7})
    run.start(starter="sue", extra=1)
    assert run.state.vars == {"who": "sue", "amount": 7, "extra": 1}


# -- determinism -------------------------------------------------------------------------


def busy_flow() -> Any:
    return flow(
        [
            start(),
            action("mark", set_values(note="started"), notify()),
            parallel("split"),
            task("a", mode="all", due={"working_hours": 3}, escalations=[{"action": "remind"}]),
            task("b", multi={"over": var("record.tags")}),
            wait("w", message="m", timeout={"after": "P1D"}),
            parallel("join"),
            end(),
            end("late"),
        ],
        [
            *chain("start", "mark", "split"),
            edge("split", "a"),
            edge("split", "b"),
            edge("split", "w"),
            edge("a", "join"),
            edge("b", "join"),
            edge("w", "join", on="met"),
            edge("w", "late", on="timeout"),
            edge("join", "end"),
        ],
    )


def play(run: Run) -> list[Any]:
    run.start()
    run.fire_next()
    for key in run.open_tasks():
        run.complete(run.tasks[key].node, task=key)
    run.message("m")
    return list(run.history)


def test_the_same_inputs_give_the_same_effects() -> None:
    one = Run(busy_flow(), {"tags": ["x", "y"]}, zone=SHANGHAI, calendar=OFFICE)
    two = Run(busy_flow(), {"tags": ["x", "y"]}, zone=SHANGHAI, calendar=OFFICE)
    first, second = play(one), play(two)
    assert first == second
    assert [effect.to_dict() for effect in first] == [effect.to_dict() for effect in second]
    assert one.state.to_dict() == two.state.to_dict()
    assert one.status == "completed"
    # and the same state and event give the same advance, however often
    state = Run(busy_flow(), {"tags": ["x"]})
    state.start()
    results = {
        tuple(summary(advance(state.flow, state.state, TimerFired(key), state.context()).effects))
        for key in [state.live_timers()[0]] * 3
    }
    assert len(results) == 1


def test_identifiers_come_from_the_instance_counter() -> None:
    run = Run(busy_flow(), {"tags": ["x"]}, instance="case-7")
    run.start()
    ids = [e.task for e in opened(run)] + [t.timer for t in of(run.history, TimerArmed)]
    assert all(key.startswith("case-7.") for key in ids)
    assert len(set(ids)) == len(ids)
    assert all(int(key.rsplit(".", 1)[1]) <= run.state.seq for key in ids)


def test_an_empty_directory_leaves_a_role_task_to_the_role() -> None:
    run = Run(
        line(task("t", assignee={"role": "nurse", "where": True})), directory=StaticDirectory()
    )
    run.start()
    assert opened(run)[0].candidates == Candidates()  # the host shows it to the app's admins
    assert opened(run)[0].claim is True


def test_an_inclusive_join_waits_for_a_token_that_can_reach_it_by_an_outcome_jump() -> None:
    spec = flow(
        [start(), inclusive("split"), task("a")]
        + [task("b", outcomes=outcomes("stop", "more", more={"to": "x"})), task("x")]
        + [inclusive("join"), task("last"), end(), end("stopped")],
        [
            edge("start", "split"),
            edge("split", "a", when=True),
            edge("split", "b", when=True),
            edge("a", "join"),
            edge("b", "stopped", outcome="stop"),
            edge("x", "join"),
            *chain("join", "last", "end"),
        ],
    )
    more = Run(spec)
    more.start()
    more.complete("a")
    assert more.opened() == ["a", "b"]  # b may still jump to x, which leads to the join
    more.complete("b", "more")
    more.complete("x")
    assert more.opened() == ["a", "b", "x", "last"]
    stop = Run(spec)
    stop.start()
    stop.complete("a")
    stop.complete("b", "stop")  # b's token is gone: nothing can reach the join any more
    assert stop.opened() == ["a", "b", "last"]


def test_effects_keep_what_they_saw_when_later_steps_of_the_advance_change_things() -> None:
    # a task opened before a set action of the same advance; an action planned before a
    # wait of the same advance consumed its message
    spec = flow(
        [start(), parallel("split"), task("a"), action("mark", set_values(severity="high"))]
        + [task("b"), end("e1"), end("e2")],
        [
            edge("start", "split"),
            edge("split", "a"),
            edge("split", "mark"),
            edge("a", "e1"),
            *chain("mark", "b", "e2"),
        ],
    )
    run = Run(spec, {"severity": "low"})
    run.start()
    assert [e.context["record"]["severity"] for e in opened(run)] == ["low", "high"]
    spec = flow(
        [start(), task("a"), action("tell", notify("{{ steps.a.outcome }}"))]
        + [wait("w", message="m"), end()],
        [*chain("start", "a", "tell", "w"), edge("w", "end", on="met")],
    )
    run = Run(spec)
    run.start()
    run.message("m", 1)
    run.complete("a")
    (plan,) = of(run.last, ActionsPlanned)
    assert set(plan.actions[0].data()["context"]["steps"]) == {"a"}
    assert set(run.state.steps) == {"a", "w"}
