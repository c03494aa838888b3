"""The clinic's five rules from issue 6, checked and evaluated end to end (no platform)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from formloom.engines.forms import FormSpec
from formloom.engines.rules import (
    Event,
    PlannedNotify,
    RuleIndex,
    RuleSpec,
    check,
    date_due,
    evaluate_event,
    evaluate_rule,
    next_schedule_run,
    render_template,
)

from .factory import FORMS, ROLES

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
APPOINTMENT = FormSpec.model_validate(
    {
        "key": "appointment",
        "label": "Appointment",
        "fields": [
            {"key": "patient", "type": "relation", "target": "patient"},
            {"key": "doctor", "type": "text"},
            {"key": "starts_at", "type": "datetime"},
            {"key": "ends_at", "type": "datetime"},
        ],
    }
)
CLINIC_FORMS = {**FORMS, "appointment": APPOINTMENT}
SMS = {"type": "notify", "channel": "sms_gateway",
       "recipients": [{"address": {"var": "record.phone"}}]}  # fmt: skip
RULES: list[dict[str, Any]] = [
    {
        "key": "discharge_survey",
        "on": {"form": "patient", "event": "updated", "fields": ["status"], "to": "out"},
        "then": [
            {"type": "create_task", "role": "customer_service", "after": "PT24H",
             "title": {"en": "Survey {{ record.name }}", "zh-CN": "回访 {{ record.name }}"},
             "due": "P2D"},
            {**SMS, "after": "PT24H",
             "template": {"en": "Dear {{ record.name }}, please rate us: https://s.example",
                          "zh-CN": "{{ record.name }}，请评价：https://s.example"}},
        ],
    },
    {
        "key": "revisit_reminder",
        "on": {"form": "patient", "at": "09:00",
               "filter": {"in": ["hypertension", {"var": "tags"}]}},
        "if": {"==": [{"days_between": [{"var": "record.last_visit"}, {"today": []}]}, 85]},
        "then": [{**SMS, "template": {"en": "Time for your check-up, {{ record.name }}",
                                      "zh-CN": "{{ record.name }}，该复诊了"}}],
    },
    {
        "key": "birthday",
        "on": {"form": "patient", "field": "birth_date", "every_year": True, "at": "09:00"},
        "then": [{**SMS, "template": {"en": "Happy birthday, {{ record.name }}!",
                                      "zh-CN": "{{ record.name }}，生日快乐！"}}],
    },
    {
        "key": "pain_alert",
        "priority": 10,
        "on": {"form": "visit", "event": "created"},
        "if": {">=": [{"var": "record.pain"}, 7]},
        "then": [{"type": "notify", "channel": "in_app",
                  "recipients": [{"user": {"var": "record.doctor"}}],
                  "template": "Pain score {{ record.pain }}"}],
    },
    {
        "key": "appointment_overlap",
        "on": {"form": "appointment", "event": "created"},
        "then": [{
            "type": "reject", "field": "starts_at",
            "message": {"en": "The doctor is busy then", "zh-CN": "该时段医生已有预约"},
            "exists": {"form": "appointment", "filter": {"and": [
                {"==": [{"var": "doctor"}, {"var": "record.doctor"}]},
                {"<": [{"var": "starts_at"}, {"var": "record.ends_at"}]},
                {">": [{"var": "ends_at"}, {"var": "record.starts_at"}]},
            ]}},
        }],
    },
]  # fmt: skip
SPECS = [RuleSpec.model_validate(rule) for rule in RULES]
INDEX = RuleIndex(SPECS)


def event(form: str, kind: Any, record: dict[str, Any], **extra: Any) -> Event:
    return Event(app="clinic_crm", form=form, kind=kind, record=record, now=NOW,
                 record_id="x1", zone="Asia/Shanghai", **extra)  # fmt: skip


def test_the_clinic_rules_check_clean() -> None:
    assert check(SPECS, CLINIC_FORMS, ROLES) == []


def test_discharge_survey_is_delayed_24_hours() -> None:
    plan = evaluate_event(
        INDEX,
        event("patient", "updated", {"name": "王芳", "status": "out", "phone": "138"},
              old={"name": "王芳", "status": "in", "phone": "138"}),
    )  # fmt: skip
    assert [(a.type, a.mode) for a in plan.actions] == [
        ("create_task", "delayed"),
        ("notify", "delayed"),
    ]
    assert {a.due for a in plan.actions} == {datetime(2026, 11, 24, 1, 30, tzinfo=UTC)}
    sms = plan.actions[1]
    assert isinstance(sms, PlannedNotify)
    assert sms.recipients == [{"address": "138"}]
    assert render_template(sms.template, sms.context, "zh-CN") == (
        "王芳，请评价：https://s.example"
    )


def test_revisit_reminder_runs_daily_for_85_days() -> None:
    rule = INDEX.schedules[0]
    assert next_schedule_run(rule, NOW, SHANGHAI) == datetime(2026, 11, 24, 1, tzinfo=UTC)
    due = event("patient", "schedule", {"tags": ["hypertension"], "last_visit": "2026-08-30"})
    assert evaluate_rule(rule, due).runs[0].matched
    early = event("patient", "schedule", {"tags": ["hypertension"], "last_visit": "2026-09-30"})
    assert not evaluate_rule(rule, early).runs[0].matched


def test_birthday_timer() -> None:
    (rule,) = INDEX.date_rules("patient")
    due = date_due(rule, {"birth_date": "1980-12-01"}, now=NOW, zone=SHANGHAI)
    assert due == datetime(2026, 12, 1, 1, tzinfo=UTC)


def test_pain_alert() -> None:
    plan = evaluate_event(INDEX, event("visit", "created", {"pain": 8, "doctor": "u-lee"}))
    (alert,) = plan.outbound
    assert isinstance(alert, PlannedNotify) and alert.recipients == [{"user": "u-lee"}]
    assert evaluate_event(INDEX, event("visit", "created", {"pain": 2})).actions == ()


def test_appointment_overlap_is_a_conditional_rejection() -> None:
    record = {"doctor": "lee", "starts_at": "2026-11-24T01:00:00Z",
              "ends_at": "2026-11-24T01:30:00Z"}  # fmt: skip
    plan = evaluate_event(INDEX, event("appointment", "created", record))
    (reject,) = plan.rejections
    assert not plan.rejected  # the platform decides with one SQL query
    assert reject.exists is not None
    assert reject.exists["filter"]["and"][0] == {"==": [{"var": "doctor"}, "lee"]}
    assert reject.field == "starts_at"
