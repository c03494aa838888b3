"""Trigger index, evaluate_event / evaluate_rule plans, and the cascade bound."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from formloom.engines.rules import (
    Cascade,
    CascadeError,
    Event,
    PlannedNotify,
    PlannedSet,
    PlannedTask,
    PlannedUpdateRecords,
    PlannedWebhook,
    RuleIndex,
    evaluate_event,
    evaluate_rule,
    render_template,
)

from .factory import NOW, event, rule

SET_NOTE = [{"type": "set", "values": {"note": "x"}}]


def keys(plan: Any) -> list[str]:
    return [run.rule for run in plan.runs if run.matched]


# -- the index --------------------------------------------------------------------------


def test_index_buckets_by_form_and_event_in_priority_order() -> None:
    rules = [
        rule("low", priority=1),
        rule("high", priority=10),
        rule("same_b", priority=5),
        rule("same_a", priority=5),
        rule("updated", on={"form": "visit", "event": "updated"}),
        rule("patient", on={"form": "patient", "event": "created"}),
        rule("off", enabled=False),
    ]
    index = RuleIndex(rules)
    assert [r.key for r in index.for_event("visit", "created")] == [
        "high", "same_a", "same_b", "low",
    ]  # fmt: skip
    assert [r.key for r in index.for_event("visit", "updated")] == ["updated"]
    assert index.for_event("visit", "deleted") == ()
    assert index.rule("off") is not None


def test_index_filters_by_changed_fields() -> None:
    index = RuleIndex(
        [
            rule("pain", on={"form": "visit", "event": "updated", "fields": ["pain"]}),
            rule("any", on={"form": "visit", "event": "updated"}),
            rule("note", on={"form": "visit", "event": "updated", "fields": ["note", "doctor"]}),
        ]
    )
    assert [r.key for r in index.for_event("visit", "updated", {"doctor"})] == ["any", "note"]
    assert [r.key for r in index.for_event("visit", "updated", set())] == ["any"]


def test_index_lists_schedules_and_date_rules() -> None:
    index = RuleIndex(
        [
            rule("daily", on={"form": "patient", "at": "09:00"}),
            rule("birthday", on={"form": "patient", "field": "birth_date", "every_year": True}),
            rule("discharge", on={"form": "patient", "field": "discharged_at", "offset": "P1D"}),
        ]
    )
    assert [r.key for r in index.schedules] == ["daily"]
    assert [r.key for r in index.date_rules("patient")] == ["birthday", "discharge"]
    assert [r.key for r in index.date_rules_watching("patient", {"birth_date"})] == ["birthday"]


# -- record triggers --------------------------------------------------------------------


def test_created_event_with_condition() -> None:
    pain = rule("pain", **{"if": {">=": [{"var": "record.pain"}, 7]}})
    index = RuleIndex([pain])
    assert keys(evaluate_event(index, event({"pain": 8}))) == ["pain"]
    plan = evaluate_event(index, event({"pain": 3}))
    assert keys(plan) == [] and plan.runs[0].reason == "condition is false"


def test_updated_event_only_when_fields_change_and_to_value() -> None:
    out = rule(
        "out",
        on={"form": "patient", "event": "updated", "fields": ["status"], "to": "out"},
    )
    index = RuleIndex([out])
    old = {"status": "in", "name": "A"}
    moved = event({"status": "out", "name": "A"}, kind="updated", form="patient", old=old)
    assert keys(evaluate_event(index, moved)) == ["out"]
    renamed = event({"status": "in", "name": "B"}, kind="updated", form="patient", old=old)
    assert evaluate_event(index, renamed).runs[0].reason == "none of the watched fields changed"
    back = event({"status": "in"}, kind="updated", form="patient", old={"status": "out"})
    assert evaluate_event(index, back).runs[0].reason == (
        "no watched field changed to the given value"
    )
    any_of = rule(
        "any_of",
        on={"form": "visit", "event": "updated", "fields": ["pain"], "to": [8, 9, 10]},
    )
    plan = evaluate_event(RuleIndex([any_of]), event({"pain": 9}, kind="updated", old={"pain": 2}))
    assert keys(plan) == ["any_of"]


def test_to_null_is_a_value() -> None:
    cleared = rule("cleared", on={"form": "visit", "event": "updated", "fields": ["doctor"],
                                  "to": None})  # fmt: skip
    plan = evaluate_event(
        RuleIndex([cleared]), event({"doctor": None}, kind="updated", old={"doctor": "x"})
    )
    assert keys(plan) == ["cleared"]


def test_deleted_event_sees_old_and_changed() -> None:
    gone = rule(
        "gone",
        on={"form": "visit", "event": "deleted"},
        **{"if": {"==": [{"var": "old.doctor"}, "lee"]}},
    )
    plan = evaluate_event(
        RuleIndex([gone]), event({"doctor": "lee"}, kind="deleted", old={"doctor": "lee"})
    )
    assert keys(plan) == ["gone"]


def test_context_variables() -> None:
    seen = rule(
        "seen",
        **{"if": {"and": [
            {"==": [{"var": "record.id"}, "r1"]},
            {"==": [{"var": "user.role"}, "doctor"]},
            {"in": ["pain", {"var": "changed"}]},
            {"==": [{"var": "now"}, "2026-11-23T01:30:00Z"]},
            {"==": [{"today": []}, "2026-11-23"]},
        ]}},
    )  # fmt: skip
    plan = evaluate_event(
        RuleIndex([seen]), event({"pain": 1}, user={"role": "doctor"}, zone="Asia/Shanghai")
    )
    assert keys(plan) == ["seen"]
    # In New York it is still 22 November: `today` is the clinic's date.
    plan = evaluate_event(
        RuleIndex([seen]), event({"pain": 1}, user={"role": "doctor"}, zone="America/New_York")
    )
    assert keys(plan) == []


# -- actions ----------------------------------------------------------------------------


def test_every_action_kind_is_resolved_and_classified() -> None:
    everything = rule(
        "all",
        then=[
            {"type": "set", "values": {"note": {"cat": ["pain ", {"var": "record.pain"}]}}},
            {"type": "reject", "message": {"en": "No", "zh-CN": "不"}, "field": "pain"},
            {"type": "create_record", "form": "patient",
             "values": {"name": {"var": "record.doctor"}}},
            {"type": "update_records", "form": "patient", "values": {"status": "out"},
             "filter": {"==": [{"var": "id"}, {"var": "record.patient"}]}},
            {"type": "create_task", "user": {"var": "record.doctor"}, "title": "Call",
             "due": "P2D"},
            {"type": "notify", "channel": "sms_gateway", "template": "Hi {{ record.note }}",
             "recipients": [{"address": {"var": "record.doctor"}}, {"role": "doctor"},
                            {"user": "u7"}]},
            {"type": "webhook", "method": "PUT", "url": "https://h.example/x",
             "headers": {"X": "1"}, "body": {"n": "{{ record.note }}"}},
        ],
    )  # fmt: skip
    plan = evaluate_event(
        RuleIndex([everything]), event({"pain": 8, "doctor": "lee", "patient": "p9"})
    )
    actions = plan.actions
    assert [(a.type, a.mode) for a in actions] == [
        ("set", "sync"),
        ("reject", "sync"),
        ("create_record", "sync"),
        ("update_records", "sync"),
        ("create_task", "sync"),
        ("notify", "outbound"),
        ("webhook", "outbound"),
    ]
    assert plan.record["note"] == "pain 8" and "note" in plan.changed
    assert actions[0] == PlannedSet(
        rule="all", index=0, idempotency_key="clinic:all:visit:r1:-:0", values={"note": "pain 8"}
    )
    assert plan.rejected and plan.rejections[0].field == "pain"
    assert actions[2].data() == {"form": "patient", "values": {"name": "lee"}}
    assert isinstance(actions[3], PlannedUpdateRecords)
    assert actions[3].filter == {"==": [{"var": "id"}, "p9"]}
    task = actions[4]
    assert isinstance(task, PlannedTask)
    assert task.user == "lee" and task.task_due == "2026-11-25T01:30:00Z"
    assert task.record_id == "r1" and task.form == "visit"
    notify = actions[5]
    assert isinstance(notify, PlannedNotify)
    assert notify.recipients == [{"address": "lee"}, {"role": "doctor"}, {"user": "u7"}]
    # Outbound actions carry the context they will be rendered with (after the set).
    assert render_template(notify.template, notify.context) == "Hi pain 8"
    assert isinstance(actions[6], PlannedWebhook) and actions[6].method == "PUT"
    assert actions[6].idempotency_key == "clinic:all:visit:r1:-:6"
    assert plan.sync == actions[:5] and plan.outbound == actions[5:]
    assert plan.to_dict()["runs"][0]["actions"][4]["type"] == "create_task"


def test_task_due_expression_keeps_a_date() -> None:
    task = {"type": "create_task", "role": "doctor", "title": "t",
            "due": {"date_add": [{"today": []}, 3, "day"]}}  # fmt: skip
    plan = evaluate_event(RuleIndex([rule(then=[task])]), event({}, zone="Asia/Shanghai"))
    (task,) = plan.actions
    assert isinstance(task, PlannedTask) and task.task_due == "2026-11-26"


def test_delays_after_and_at() -> None:
    later = rule(
        "later",
        then=[
            {"type": "notify", "channel": "in_app", "recipients": [{"role": "doctor"}],
             "template": "x", "after": "PT24H"},
            {"type": "create_task", "role": "doctor", "title": "survey", "after": "P1D"},
            {"type": "set", "values": {"note": "reminded"},
             "at": {"var": "record.starts_at"}},
            {"type": "webhook", "url": "https://h.example", "at": "2026-12-01"},
        ],
    )  # fmt: skip
    plan = evaluate_event(
        RuleIndex([later]),
        event({"starts_at": "2026-11-30T08:00:00+08:00"}, zone="Asia/Shanghai"),
    )
    assert [a.mode for a in plan.actions] == ["delayed"] * 4
    assert plan.delayed == plan.actions
    dues = [a.due for a in plan.actions]
    assert dues == [
        datetime(2026, 11, 24, 1, 30, tzinfo=UTC),
        datetime(2026, 11, 24, 1, 30, tzinfo=UTC),
        datetime(2026, 11, 30, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 16, 0, tzinfo=UTC),  # a date: 00:00 in Shanghai
    ]
    # A delayed set does not change the record now.
    assert "note" not in plan.record


def test_delay_on_the_wall_clock_across_dst() -> None:
    # 2026-03-07 12:00 EST; "P1D" is 12:00 EDT next day (23 h), "PT24H" 13:00 EDT.
    now = datetime(2026, 3, 7, 17, 0, tzinfo=UTC)
    r = rule(then=[
        {"type": "webhook", "url": "https://h.example", "after": "P1D"},
        {"type": "webhook", "url": "https://h.example", "after": "PT24H"},
    ])  # fmt: skip
    plan = evaluate_rule(r, _event_at(now, "America/New_York"))
    assert [a.due for a in plan.actions] == [
        datetime(2026, 3, 8, 16, 0, tzinfo=UTC),
        datetime(2026, 3, 8, 17, 0, tzinfo=UTC),
    ]


def _event_at(now: datetime, zone: str) -> Event:
    return Event(app="clinic", form="visit", kind="created", record={}, now=now, zone=zone)


def test_set_actions_apply_in_order_and_later_rules_see_them() -> None:
    first = rule("first", priority=2, then=[
        {"type": "set", "values": {"pain": {"+": [{"var": "record.pain"}, 1]}}},
        {"type": "set", "values": {"note": {"cat": ["p=", {"var": "record.pain"}]}}},
    ])  # fmt: skip
    second = rule(
        "second",
        priority=1,
        on={"form": "visit", "event": "created", "fields": ["note"]},
        **{"if": {"==": [{"var": "record.note"}, "p=2"]}},
        then=[{"type": "set", "values": {"doctor": "on call"}}],
    )
    plan = evaluate_event(RuleIndex([second, first]), event({"pain": 1}))
    assert keys(plan) == ["first", "second"]
    assert plan.record == {"pain": 2, "note": "p=2", "doctor": "on call"}
    assert plan.changed == {"pain", "note", "doctor"}


def test_a_failing_condition_is_an_error_not_a_crash() -> None:
    broken = rule("broken", priority=5, **{"if": {"throw": "boom"}}, then=SET_NOTE)
    fine = rule("fine", then=[{"type": "set", "values": {"doctor": "x"}}])
    plan = evaluate_event(RuleIndex([broken, fine]), event({}))
    assert [(r.rule, r.matched, r.error_pointer) for r in plan.runs] == [
        ("broken", False, "/if"),
        ("fine", True, None),
    ]
    assert plan.errors[0].error and "boom" in plan.errors[0].error
    assert plan.record == {"doctor": "x"}


def test_a_failing_action_drops_the_whole_rule() -> None:
    broken = rule("broken", then=[
        {"type": "set", "values": {"note": "kept?"}},
        {"type": "set", "values": {"pain": {"/": [1, {"var": "record.note"}]}}},
    ])  # fmt: skip
    plan = evaluate_event(RuleIndex([broken]), event({}))
    run = plan.runs[0]
    assert not run.matched and run.error_pointer == "/then/1/values/pain"
    assert plan.record == {} and plan.changed == frozenset()
    bad_at = rule("at", then=[{"type": "webhook", "url": "https://x.example",
                               "at": {"var": "record.starts_at"}}])  # fmt: skip
    run = evaluate_event(RuleIndex([bad_at]), event({})).runs[0]
    assert run.error_pointer == "/then/0/at"


def test_schedule_and_date_rules_through_evaluate_rule() -> None:
    daily = rule(
        "revisit",
        on={"form": "patient", "at": "09:00", "filter": {"in": ["hypertension", {"var": "tags"}]}},
        **{"if": {">=": [{"days_between": [{"var": "record.last_visit"}, {"today": []}]}, 85]}},
    )
    record = {"tags": ["hypertension"], "last_visit": "2026-08-30"}
    fired = event(record, kind="schedule", form="patient", zone="Asia/Shanghai")
    assert keys(evaluate_rule(daily, fired)) == ["revisit"]
    birthday = rule("birthday", on={"form": "patient", "field": "birth_date", "every_year": True})
    plan = evaluate_rule(birthday, event({"birth_date": "1990-11-23"}, kind="date",
                                         form="patient", occurrence="2026"))  # fmt: skip
    assert keys(plan) == ["birthday"]
    assert plan.actions[0].idempotency_key == "clinic:birthday:patient:r1:2026:0"


def test_disabled_rules_do_not_run_but_can_be_dry_run() -> None:
    off = rule("off", enabled=False)
    assert evaluate_event(RuleIndex([off]), event({})).runs == ()
    assert keys(evaluate_rule(off, event({}))) == ["off"]


# -- cascades ---------------------------------------------------------------------------


def test_cascade_bound_names_the_loop() -> None:
    cascade = Cascade()
    for step in range(4):
        cascade = cascade.enter("a_creates_b", "visit", f"v{step}")
        cascade = cascade.enter("b_creates_a", "patient", f"p{step}")
    assert cascade.depth == 8
    with pytest.raises(CascadeError) as raised:
        cascade.enter("a_creates_b", "visit", "v9")
    message = str(raised.value)
    assert "deeper than 8" in message
    assert "the loop is a_creates_b -> b_creates_a -> a_creates_b" in message
    assert len(raised.value.chain) == 9


def test_cascade_loop_on_one_record_and_a_custom_depth() -> None:
    cascade = Cascade(max_depth=2).enter("touch", "visit", "v1").enter("touch", "visit", "v1")
    with pytest.raises(CascadeError, match="loop is touch on visit/v1 -> touch on visit/v1"):
        cascade.enter("touch", "visit", "v1")


def test_event_changed_defaults() -> None:
    created = event({"pain": 1, "note": None})
    assert created.changed_fields() == {"pain"}
    updated = event({"pain": 1, "note": "x"}, kind="updated", old={"pain": 1})
    assert updated.changed_fields() == {"note"}
    assert NOW.tzinfo is UTC


def test_a_filter_default_that_reads_the_time_uses_the_run_s_clock() -> None:
    default_today = {"==": [{"var": "last_visit"}, {"var": ["record.missing", {"today": []}]}]}
    then = [{"type": "update_records", "form": "patient", "values": {"status": "out"},
             "filter": default_today}]  # fmt: skip
    for zone, today in (("Asia/Shanghai", "2026-11-23"), ("America/New_York", "2026-11-22")):
        plan = evaluate_event(RuleIndex([rule(then=then)]), event({}, zone=zone))
        (action,) = plan.actions
        assert isinstance(action, PlannedUpdateRecords)
        assert action.filter == {"==": [{"var": "last_visit"}, today]}


def test_a_filter_whose_context_cannot_be_substituted_fails_the_rule_not_the_write() -> None:
    broken = {"==": [{"var": "id"}, {"var": ["record.missing", {"+": [{"preserve": [1]}, 1]}]}]}
    then = [{"type": "update_records", "form": "patient", "values": {"status": "out"},
             "filter": broken}]  # fmt: skip
    (run,) = evaluate_event(RuleIndex([rule(then=then)]), event({})).runs
    assert not run.matched and run.error_pointer == "/then/0/filter"
