"""RuleSpec shape (pydantic) and check(): codes and pointers against the app's forms."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from formloom.engines.rules import (
    DateTrigger,
    RecordTrigger,
    RuleSpec,
    ScheduleTrigger,
    check,
)

from .factory import FORMS, ROLES, rule


def codes(*rules: RuleSpec) -> list[tuple[str, str]]:
    return [(pointer, code) for pointer, code, _ in check(list(rules), FORMS, ROLES)]


def test_trigger_kind_follows_from_the_keys() -> None:
    assert isinstance(rule(on={"form": "visit", "event": "updated"}).on, RecordTrigger)
    assert isinstance(rule(on={"form": "visit", "cron": "0 9 * * *"}).on, ScheduleTrigger)
    assert isinstance(rule(on={"form": "patient", "field": "birth_date"}).on, DateTrigger)


def test_shape_is_strict() -> None:
    with pytest.raises(pydantic.ValidationError):
        rule(colour="red")
    with pytest.raises(pydantic.ValidationError):
        rule(then=[{"type": "explode"}])
    with pytest.raises(pydantic.ValidationError):
        rule(then=[])
    with pytest.raises(pydantic.ValidationError):  # a rejection cannot wait
        rule(then=[{"type": "reject", "message": "no", "after": "P1D"}])
    with pytest.raises(pydantic.ValidationError):
        rule(on={"form": "visit", "event": "touched"})


def test_every_property_is_described() -> None:
    from formloom.engines.rules import spec

    for model in (
        spec.RuleSpec, spec.RecordTrigger, spec.ScheduleTrigger, spec.DateTrigger,
        spec.SetAction, spec.RejectAction, spec.CreateRecordAction, spec.UpdateRecordsAction,
        spec.CreateTaskAction, spec.NotifyAction, spec.WebhookAction, spec.Recipient,
        spec.RecordQuery,
    ):  # fmt: skip
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name}"


def test_round_trip_uses_if() -> None:
    r = rule(**{"if": {">": [{"var": "record.pain"}, 6]}})
    dumped = r.model_dump(by_alias=True, exclude_defaults=True)
    assert dumped["if"] == {">": [{"var": "record.pain"}, 6]}
    assert RuleSpec.model_validate(dumped) == r


def test_a_good_rule_has_no_issues() -> None:
    good = rule(
        on={"form": "visit", "event": "updated", "fields": ["pain"], "to": [7, 8, 9, 10]},
        **{"if": {">=": [{"var": "record.pain"}, 7]}},
        then=[
            {"type": "set", "values": {"note": {"cat": ["pain ", {"var": "record.pain"}]}}},
            {"type": "notify", "channel": "in_app", "recipients": [{"role": "doctor"}],
             "template": {"en": "Pain {{ record.pain }}", "zh-CN": "疼痛 {{ record.pain }}"}},
            {"type": "create_task", "role": "customer_service", "title": "Call back",
             "due": "P1D", "after": "PT1H"},
            {"type": "webhook", "url": "https://example.org/hook",
             "headers": {"X-Pain": "{{ record.pain }}"}, "body": {"pain": "{{ record.pain }}"}},
        ],
    )  # fmt: skip
    assert check([good], FORMS, ROLES) == []


def test_duplicate_keys() -> None:
    assert codes(rule("a"), rule("a")) == [("/1/key", "duplicate_key")]


def test_unknown_forms_and_fields() -> None:
    assert codes(rule(on={"form": "nope", "event": "created"})) == [("/0/on/form", "unknown_form")]
    assert codes(rule(on={"form": "visit", "event": "updated", "fields": ["pain", "x"]})) == [
        ("/0/on/fields/1", "unknown_field")
    ]
    assert codes(rule(then=[{"type": "set", "values": {"nope": 1}}])) == [
        ("/0/then/0/values/nope", "unknown_field")
    ]
    assert codes(rule(then=[{"type": "create_record", "form": "ghost"}])) == [
        ("/0/then/0/form", "unknown_form")
    ]
    assert codes(
        rule(then=[{"type": "create_record", "form": "patient", "values": {"pain": 1}}])
    ) == [("/0/then/0/values/pain", "unknown_field")]
    assert codes(rule(then=[{"type": "reject", "message": "no", "field": "x"}])) == [
        ("/0/then/0/field", "unknown_field")
    ]


def test_computed_fields_cannot_be_set() -> None:
    r = rule(
        on={"form": "patient", "event": "updated"},
        then=[{"type": "set", "values": {"age": 3}}],
    )
    assert codes(r) == [("/0/then/0/values/age", "computed_field")]


def test_expressions() -> None:
    assert codes(rule(**{"if": {"frobnicate": [1]}})) == [("/0/if", "invalid_expression")]
    assert codes(rule(**{"if": {"==": [{"var": "record.nope"}, 1]}})) == [
        ("/0/if", "unknown_field")
    ]
    assert codes(rule(**{"if": {"==": [{"var": "pain"}, 1]}})) == [("/0/if", "unknown_variable")]
    ok = {"and": [{"var": "record.id"}, {"var": "old.pain"}, {"var": "user.id"},
                  {"in": ["pain", {"var": "changed"}]}, {"var": "now"}]}  # fmt: skip
    assert codes(rule(**{"if": ok})) == []
    assert codes(rule(then=[{"type": "set", "values": {"note": {"if": "x"}}}])) == [
        ("/0/then/0/values/note", "invalid_expression")
    ]


def test_timing_strings() -> None:
    assert codes(rule(on={"form": "visit", "cron": "61 * * * *"})) == [
        ("/0/on/cron", "invalid_cron")
    ]
    assert codes(rule(on={"form": "visit", "at": "9am"})) == [("/0/on/at", "invalid_time")]
    assert codes(rule(on={"form": "visit"})) == [("/0/on", "missing_schedule")]
    assert codes(rule(on={"form": "visit", "cron": "@daily", "at": "09:00"})) == [
        ("/0/on", "conflicting_schedule")
    ]
    assert codes(rule(on={"form": "patient", "field": "birth_date", "offset": "3 days"})) == [
        ("/0/on/offset", "invalid_duration")
    ]
    assert codes(rule(on={"form": "patient", "field": "name"})) == [
        ("/0/on/field", "not_a_date_field")
    ]
    assert codes(rule(on={"form": "patient", "field": "ghost"})) == [
        ("/0/on/field", "unknown_field")
    ]
    assert codes(rule(then=[{"type": "set", "values": {"note": 1}, "after": "tomorrow"}])) == [
        ("/0/then/0/after", "invalid_duration")
    ]
    assert codes(rule(then=[{"type": "set", "values": {"note": 1}, "after": "-P1D"}])) == [
        ("/0/then/0/after", "negative_delay")
    ]
    both: dict[str, Any] = {"type": "set", "values": {"note": 1}, "after": "P1D",
                            "at": {"var": "record.starts_at"}}  # fmt: skip
    assert codes(rule(then=[both])) == [("/0/then/0", "conflicting_delay")]
    task = {"type": "create_task", "role": "doctor", "title": "t", "due": "P2X"}
    assert codes(rule(then=[task])) == [("/0/then/0/due", "invalid_duration")]


def test_schedule_filter_is_compiled() -> None:
    good = {"form": "patient", "at": "09:00",
            "filter": {"in": ["hypertension", {"var": "tags"}]}}  # fmt: skip
    assert codes(rule(on=good)) == []
    bad = {"form": "patient", "at": "09:00", "filter": {"==": [{"var": "ghost"}, 1]}}
    assert [code for _, code in codes(rule(on=bad))] == ["invalid_filter"]


def test_update_records_filter() -> None:
    action = {"type": "update_records", "form": "patient", "values": {"status": "out"},
              "filter": {"==": [{"var": "id"}, {"var": "record.patient"}]}}  # fmt: skip
    assert codes(rule(then=[action])) == []
    action["filter"] = {"==": [{"var": "id"}, {"var": "record.ghost"}]}
    assert codes(rule(then=[action])) == [("/0/then/0/filter", "unknown_field")]
    action["filter"] = {"==": [{"var": "ghost"}, 1]}
    assert [code for _, code in codes(rule(then=[action]))] == ["invalid_filter"]


def test_templates_urls_roles_recipients() -> None:
    notify = {"type": "notify", "channel": "email", "recipients": [{"role": "nurse"}],
              "subject": "{{ oops", "template": {"en": "ok", "zh-CN": "{% if %}"}}  # fmt: skip
    assert codes(rule(then=[notify])) == [
        ("/0/then/0/recipients/0/role", "unknown_role"),
        ("/0/then/0/subject", "invalid_template"),
        ("/0/then/0/template/zh-CN", "invalid_template"),
    ]
    two = {"type": "notify", "channel": "sms_gateway", "template": "hi",
           "recipients": [{"role": "doctor", "address": {"var": "record.doctor"}}]}  # fmt: skip
    assert codes(rule(then=[two])) == [("/0/then/0/recipients/0", "invalid_recipient")]
    hook = {"type": "webhook", "url": "ftp://example.org/x", "body": {"a": ["{{ x"]}}
    assert codes(rule(then=[hook])) == [
        ("/0/then/0/url", "invalid_url"),
        ("/0/then/0/body/a/0", "invalid_template"),
    ]
    task = {"type": "create_task", "title": "{{ }}"}
    assert codes(rule(then=[task])) == [
        ("/0/then/0", "invalid_assignee"),
        ("/0/then/0/title", "invalid_template"),
    ]


def test_trigger_and_action_combinations() -> None:
    assert codes(rule(on={"form": "visit", "event": "updated", "to": 3})) == [
        ("/0/on/to", "to_needs_fields")
    ]
    set_note = [{"type": "set", "values": {"note": "x"}}]
    assert codes(rule(on={"form": "visit", "event": "deleted"}, then=set_note)) == [
        ("/0/then/0", "set_on_delete")
    ]
    reject = {"type": "reject", "message": "no"}
    assert codes(rule(on={"form": "visit", "cron": "@daily"}, then=[reject])) == [
        ("/0/then/0", "reject_needs_write")
    ]


def test_conditional_reject_query() -> None:
    query = {"form": "ghost", "filter": {"==": [{"var": "doctor"}, {"var": "record.doctor"}]}}
    reject = {"type": "reject", "message": "busy", "exists": query}
    assert codes(rule(then=[reject])) == [("/0/then/0/exists/form", "unknown_form")]
    query["form"] = "visit"
    assert codes(rule(then=[reject])) == []
    query["filter"] = {"==": [{"var": "doctor"}, {"var": "record.ghost"}]}
    assert codes(rule(then=[reject])) == [("/0/then/0/exists/filter", "unknown_field")]
