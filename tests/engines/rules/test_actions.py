"""Planned actions: typed, stored with a format version, and loaded from every format the
engine ever wrote (fixtures/plan-actions-v1.json holds actions as the engine wrote them
before formats had versions)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from formloom.engines.rules import (
    PLAN_ACTION_FORMAT,
    PlanFormatError,
    PlannedAction,
    PlannedCreateRecord,
    PlannedNotify,
    PlannedReject,
    PlannedSet,
    PlannedStartFlow,
    PlannedTask,
    PlannedUpdateRecords,
    PlannedWebhook,
    RuleIndex,
    action_from_dict,
    evaluate_event,
)

from .factory import event, rule

V1 = json.loads((Path(__file__).parent / "fixtures" / "plan-actions-v1.json").read_text("utf-8"))
COMMON: dict[str, Any] = {"rule": "r", "index": 2, "idempotency_key": "app:r:visit:x:3:2"}
DUE = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
CONTEXT = {"record": {"name": "Wang", "id": "x"}, "old": None, "changed": ["name"],
           "user": {"id": "u1"}, "now": "2026-11-23T01:30:00Z"}  # fmt: skip

EVERY_KIND: list[PlannedAction] = [
    PlannedSet(**COMMON, values={"note": "x", "n": 2}),
    PlannedSet(**COMMON, due=DUE, values={"note": None}),
    PlannedReject(**COMMON, message={"en": "No", "zh-CN": "不"}, field="pain"),
    PlannedReject(**COMMON, message="Booked", exists={"form": "visit", "filter": {"==": [1, 1]}}),
    PlannedCreateRecord(**COMMON, form="patient", values={"name": "Li"}),
    PlannedUpdateRecords(**COMMON, due=DUE, form="patient",
                         filter={"==": [{"var": "id"}, "p9"]}, values={"status": "out"}),
    PlannedTask(**COMMON, role="doctor", user=None, title="Call {{ record.name }}",
                description={"en": "d"}, task_due="2026-11-26", form="visit",
                record_id="x", context=CONTEXT),
    PlannedTask(**COMMON, due=DUE, role=None, user="u7", title="t", description=None,
                task_due=None, form="visit", record_id=None, context={}),
    PlannedNotify(**COMMON, channel="sms_gateway",
                  recipients=[{"address": "138"}, {"role": "doctor"}, {"user": "u7"}],
                  subject=None, template={"en": "Hi {{ record.name }}"}, context=CONTEXT),
    PlannedNotify(**COMMON, due=DUE, channel="in_app", recipients=[{"role": "doctor"}],
                  subject="S", template="T", context=CONTEXT),
    PlannedWebhook(**COMMON, method="PUT", url="https://h.example/x", headers={"X": "1"},
                   body={"n": "{{ record.name }}", "k": [1, True, None]}, context=CONTEXT),
    PlannedStartFlow(**COMMON, flow="follow_up", form="visit", record_id="v1",
                     vars={"day": 3, "who": ["a", "b"]}),
]  # fmt: skip


def stored(action: PlannedAction) -> Any:
    """The action as it lands in a JSON column."""
    return json.loads(json.dumps(action.to_dict()))


@pytest.mark.parametrize("action", EVERY_KIND, ids=lambda a: f"{a.type}-{a.mode}")
def test_every_kind_round_trips_through_its_stored_form(action: PlannedAction) -> None:
    data = stored(action)
    assert data["format"] == PLAN_ACTION_FORMAT == "formloom.plan-action/3"
    assert data["type"] == action.type and data["mode"] == action.mode
    loaded = action_from_dict(data)
    assert loaded == action and type(loaded) is type(action)
    assert stored(loaded) == data
    assert type(action).from_dict(data) == action


def test_mode_follows_from_the_kind_and_the_due_moment() -> None:
    assert [a.mode for a in EVERY_KIND] == [
        "sync", "delayed", "sync", "sync", "sync", "delayed", "sync", "delayed",
        "outbound", "delayed", "outbound", "sync",
    ]  # fmt: skip


def test_a_plan_round_trips_action_by_action() -> None:
    every = rule(
        "all",
        then=[
            {"type": "set", "values": {"note": "x"}},
            {"type": "create_record", "form": "patient", "values": {"name": "n"}},
            {"type": "create_task", "role": "doctor", "title": "t", "after": "P1D"},
            {"type": "notify", "channel": "in_app", "recipients": [{"role": "doctor"}],
             "template": "x"},
            {"type": "webhook", "url": "https://h.example", "at": "2026-12-01"},
        ],
    )  # fmt: skip
    plan = evaluate_event(RuleIndex([every]), event({"pain": 1}))
    assert [action_from_dict(stored(a)) for a in plan.actions] == list(plan.actions)


# -- the previous format ---------------------------------------------------------------


def test_the_fixture_holds_every_kind_of_the_previous_format() -> None:
    assert {a["type"] for a in V1["actions"]} == {
        "set", "reject", "create_record", "update_records", "create_task", "notify", "webhook",
    }  # fmt: skip
    assert all("format" not in a for a in V1["actions"])


@pytest.mark.parametrize("old", V1["actions"], ids=lambda a: f"{a['index']}-{a['type']}")
def test_an_action_of_the_previous_format_loads_as_it_was(old: dict[str, Any]) -> None:
    action = action_from_dict(old)
    assert action.type == old["type"] and action.mode == old["mode"]
    assert action.rule == old["rule"] and action.index == old["index"]
    assert action.idempotency_key == old["idempotency_key"]
    # Nothing is lost: written again, it is the old dict plus its format (and a webhook's
    # ``typed`` false: its body's strings stay text, as they were delivered then).
    now = _as_format_3(old)
    assert action.to_dict() == {"format": PLAN_ACTION_FORMAT, **now}
    assert action.summary() == now


def _as_format_3(old: dict[str, Any]) -> dict[str, Any]:
    if old["type"] != "webhook":
        return old
    return {**old, "data": {**old["data"], "typed": False}}


def test_previous_format_fields_land_on_the_typed_attributes() -> None:
    by_index = {a["index"]: action_from_dict(a) for a in V1["actions"]}
    delayed_set = by_index[0]
    assert isinstance(delayed_set, PlannedSet) and delayed_set.values == {"note": "pain 8"}
    assert delayed_set.due == datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
    overlap = by_index[2]
    assert isinstance(overlap, PlannedReject) and overlap.exists == {
        "form": "visit", "filter": {"==": [{"var": "doctor"}, "lee"]}
    }  # fmt: skip
    task = by_index[5]
    assert isinstance(task, PlannedTask)
    assert (task.user, task.task_due, task.form, task.record_id) == (
        "lee", "2026-11-25T01:30:00Z", "visit", "r1"
    )  # fmt: skip
    assert task.due == datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
    sms = by_index[6]
    assert isinstance(sms, PlannedNotify) and sms.channel == "sms_gateway"
    assert sms.recipients == [{"address": "lee"}, {"role": "doctor"}, {"user": "u7"}]
    hook = by_index[7]
    assert isinstance(hook, PlannedWebhook) and (hook.method, hook.headers) == (
        "PUT", {"X": "{{ record.doctor }}"}
    )  # fmt: skip


def test_today_s_engine_plans_what_the_previous_format_held() -> None:
    """The fixture was made by the previous engine from this rule and event: the current
    engine's plan, stored, is the same apart from the format key and a webhook's ``typed``
    flag (true now: a body string that is one expression keeps its value's type)."""
    planned = [action.to_dict() for action in _fixture_plan().actions]
    for action in planned:
        if action["type"] == "webhook":
            assert action["data"].pop("typed") is True
    assert V1["actions"] == [
        {key: value for key, value in action.items() if key != "format"} for action in planned
    ]


def _fixture_plan() -> Any:
    notify = {
        "type": "notify",
        "channel": "sms_gateway",
        "template": "Hi {{ record.note }}",
        "subject": "S",
        "recipients": [{"address": {"var": "record.doctor"}}, {"role": "doctor"}, {"user": "u7"}],
        "after": "P1D",
    }
    every = rule("all", then=[
        {"type": "set", "values": {"note": {"cat": ["pain ", {"var": "record.pain"}]}},
         "after": "PT1H"},
        {"type": "reject", "message": {"en": "No", "zh-CN": "不"}, "field": "pain"},
        {"type": "reject", "message": "Booked", "field": "starts_at",
         "exists": {"form": "visit",
                    "filter": {"==": [{"var": "doctor"}, {"var": "record.doctor"}]}}},
        {"type": "create_record", "form": "patient",
         "values": {"name": {"var": "record.doctor"}}, "after": "P1D"},
        {"type": "update_records", "form": "patient", "values": {"status": "out"},
         "filter": {"==": [{"var": "id"}, {"var": "record.patient"}]}, "after": "P1D"},
        {"type": "create_task", "user": {"var": "record.doctor"},
         "title": "Call {{ record.doctor }}", "due": "P2D", "after": "P1D",
         "description": {"en": "Pain {{ record.pain }}", "zh-CN": "疼痛 {{ record.pain }}"}},
        notify,
        {"type": "webhook", "method": "PUT", "url": "https://h.example/x",
         "headers": {"X": "{{ record.doctor }}"},
         "body": {"n": "{{ record.note }}", "k": [1, True, None]}, "after": "P1D"},
        {"type": "notify", "channel": "in_app", "template": "Now {{ record.pain }}",
         "recipients": [{"role": "doctor"}]},
        {"type": "webhook", "url": "https://h.example/y", "body": {"n": "{{ record.pain }}"}},
    ])  # fmt: skip
    record = {"pain": 8, "doctor": "lee", "patient": "p9"}
    return evaluate_event(RuleIndex([every]), event(record, occurrence="2"))


# -- what cannot be read ---------------------------------------------------------------


def _current() -> dict[str, Any]:
    return stored(EVERY_KIND[0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "formloom.plan-action/4"}, "newer than this version of Formloom reads"),
        ({"format": "formloom.plan-action/99999"}, "newer than this version"),
        ({"format": "formloom.plan-action/0"}, "not a planned action format"),
        ({"format": "formloom.plan-action/two"}, "not a planned action format"),
        ({"format": "formloom.flow/1"}, "not a planned action format"),
        ({"format": None}, "not a planned action format"),
        ({"type": "start_process"}, "unknown planned action type 'start_process'"),
        ({"data": ["x"]}, "data is not an object"),
        ({"index": "2"}, "index is not an integer"),
        ({"rule": None}, "rule is not text"),
        ({"due": "2026-11-24"}, "a date, not a datetime"),
        ({"due": "tomorrow"}, "due moment is not a datetime"),
        ({"data": {}}, "a damaged planned action: KeyError: 'values'"),
    ],
)
def test_unknown_newer_or_damaged_formats_raise_a_clear_error(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(PlanFormatError, match=message):
        action_from_dict({**_current(), **change})


def test_missing_keys_and_other_values_raise_the_same_error() -> None:
    without = {key: value for key, value in _current().items() if key != "idempotency_key"}
    with pytest.raises(PlanFormatError, match="KeyError: 'idempotency_key'"):
        action_from_dict(without)
    with pytest.raises(PlanFormatError, match="an object, not list"):
        action_from_dict([])  # type: ignore[arg-type]
    assert issubclass(PlanFormatError, ValueError)  # hosts treat it as a bad value


def test_from_dict_on_a_class_insists_on_that_kind() -> None:
    with pytest.raises(PlanFormatError, match="expected a planned PlannedNotify action, got 'set'"):
        PlannedNotify.from_dict(_current())
