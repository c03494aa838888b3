"""Rules reading related records (``record.patient.name``, two hops) and staff records as
users (``{"field": "doctor"}``), in the pure engine: what a rule reads, how it evaluates
with the related records the platform hands in, templates, filters and the import check."""

from __future__ import annotations

from typing import Any

from formloom.engines.forms import FormSpec
from formloom.engines.rules import (
    PlannedNotify,
    PlannedTask,
    PlannedUpdateRecords,
    RuleIndex,
    RuleSpec,
    check,
    evaluate_event,
    evaluate_rule,
    render_template,
    render_value,
)
from formloom.engines.rules.related import Hop, merge_hops, reads, template_paths
from tests.engines.rules.factory import event

STAFF = FormSpec.model_validate(
    {"key": "staff", "label": "Staff", "user_field": "username",
     "fields": [{"key": "name", "type": "text"}, {"key": "username", "type": "text"},
                {"key": "manager", "type": "relation", "target": "staff"}]}
)  # fmt: skip
PATIENT = FormSpec.model_validate(
    {"key": "patient", "label": "Patient",
     "fields": [{"key": "name", "type": "text"}, {"key": "age", "type": "integer"},
                {"key": "allergies", "type": "text"},
                {"key": "primary_doctor", "type": "relation", "target": "staff"}]}
)  # fmt: skip
VISIT = FormSpec.model_validate(
    {"key": "visit", "label": "Visit",
     "fields": [{"key": "patient", "type": "relation", "target": "patient"},
                {"key": "doctor", "type": "relation", "target": "staff"},
                {"key": "pain", "type": "integer"}, {"key": "note", "type": "text"}]}
)  # fmt: skip
FORMS = {"staff": STAFF, "patient": PATIENT, "visit": VISIT}

PAIN = RuleSpec.model_validate(
    {
        "key": "pain",
        "on": {"form": "visit", "event": "updated", "fields": ["pain"]},
        "if": {"and": [{">=": [{"var": "record.pain"}, 7]},
                       {"!=": [{"var": "record.patient.name"}, "Test"]}]},
        "then": [{"type": "notify", "channel": "in_app", "recipients": [{"field": "doctor"}],
                  "subject": "Pain {{ record.pain }}: {{ record.patient.name }}",
                  "template": {"en": "{{ record.patient.name }} ({{ record.patient }}), GP "
                                     "{{ record.patient.primary_doctor.name }}",
                               "zh-CN": "患者 {{ record.patient.name }}"}}],
    }
)  # fmt: skip

ANN = {"id": "p1", "form": "patient", "data": {"id": "p1", "name": "Ann", "primary_doctor": "s2"}}
LI = {"id": "s1", "form": "staff", "data": {"id": "s1"}, "user": "dr_li"}
WU = {"id": "s2", "form": "staff", "data": {"id": "s2", "name": "Dr Wu"}, "user": "dr_wu"}
RELATED: dict[str, Any] = {
    "record/patient": ANN,
    "record/doctor": LI,
    "record/patient/primary_doctor": WU,
}
VISIT_DATA = {"patient": "p1", "doctor": "s1", "pain": 9}


def rule(**fields: Any) -> RuleSpec:
    data: dict[str, Any] = {
        "key": "r",
        "on": {"form": "visit", "event": "created"},
        "then": [{"type": "notify", "channel": "in_app", "recipients": [{"role": "doctor"}],
                  "template": "hi"}],
    }  # fmt: skip
    return RuleSpec.model_validate({**data, **fields})


def painful(related: dict[str, Any] | None = None, **data: Any) -> Any:
    return event(
        {**VISIT_DATA, **data},
        kind="updated",
        old={**VISIT_DATA, "pain": 2},
        related=RELATED if related is None else related,
    )


# -- what a rule reads ------------------------------------------------------------------


def test_a_rule_reads_the_hops_its_expressions_templates_and_recipients_go_through() -> None:
    assert reads(PAIN, FORMS) == (
        Hop("record/doctor", "record", "doctor", "staff", frozenset({"username"})),
        Hop("record/patient", "record", "patient", "patient",
            frozenset({"name", "primary_doctor"})),
        Hop("record/patient/primary_doctor", "record/patient", "primary_doctor", "staff",
            frozenset({"name"})),
    )  # fmt: skip


def test_a_relation_read_whole_or_a_plain_field_reads_no_related_record() -> None:
    plain = rule(**{"if": {"==": [{"var": "record.patient"}, {"var": "record.note"}]}})
    assert reads(plain, FORMS) == ()


def test_templates_read_attribute_and_constant_key_chains_from_record() -> None:
    text = "{{ record.patient.name }} {{ record['doctor']['name'] }} {{ other.patient.x }}"
    assert template_paths(text) == {
        "record.patient", "record.patient.name", "record.doctor", "record.doctor.name"
    }  # fmt: skip


def test_the_hops_of_several_rules_merge_their_fields() -> None:
    first = reads(rule(**{"if": {"var": "record.patient.name"}}), FORMS)
    second = reads(rule(**{"if": {"var": "record.patient.age"}}), FORMS)
    [merged] = merge_hops([first, second])
    assert merged.fields == {"name", "age"}


# -- evaluation -------------------------------------------------------------------------


def test_an_update_to_pain_nine_alerts_the_treating_doctor_naming_the_patient() -> None:
    plan = evaluate_event(RuleIndex([PAIN]), painful())
    [alert] = plan.outbound
    assert isinstance(alert, PlannedNotify)
    assert alert.recipients == [{"field": "doctor", "user": "dr_li"}]
    assert render_template(alert.subject or "", alert.context) == "Pain 9: Ann"
    body = render_template(alert.template, alert.context)
    assert body == "Ann (p1), GP Dr Wu"
    assert render_template(alert.template, alert.context, "zh-CN") == "患者 Ann"


def test_the_condition_reads_the_related_record() -> None:
    plan = evaluate_rule(PAIN, painful(related={**RELATED, "record/patient": {
        **ANN, "data": {**ANN["data"], "name": "Test"}}}))  # fmt: skip
    assert plan.runs[0].reason == "condition is false"


def test_the_relation_itself_stays_the_id() -> None:
    same = rule(**{"if": {"and": [{"==": [{"var": "record.patient"}, "p1"]},
                                  {"==": [{"var": "record.patient.name"}, "Ann"]}]}})  # fmt: skip
    assert evaluate_rule(same, painful()).runs[0].matched


def test_two_hops() -> None:
    doctor = rule(**{"if": {"==": [{"var": "record.patient.primary_doctor.name"}, "Dr Wu"]}})
    assert evaluate_rule(doctor, painful()).runs[0].matched
    # and the doctor's id one hop away
    gp = rule(**{"if": {"==": [{"var": "record.patient.primary_doctor"}, "s2"]}})
    assert evaluate_rule(gp, painful()).runs[0].matched


def test_a_dangling_relation_reads_null_everywhere() -> None:
    gone = {**RELATED, "record/patient": None, "record/patient/primary_doctor": None,
            "record/doctor": None}  # fmt: skip
    check_null = rule(
        **{"if": {"and": [{"==": [{"var": "record.patient.name"}, None]},
                          {"==": [{"var": ["record.patient.name", "?"]}, "?"]}]}}
    )  # fmt: skip
    assert evaluate_rule(check_null, painful(related=gone)).runs[0].matched
    [alert] = evaluate_rule(PAIN, painful(related=gone)).outbound
    assert isinstance(alert, PlannedNotify)
    assert alert.recipients == [{"field": "doctor", "user": None}]
    assert render_template("{{ record.patient.name or '?' }}", alert.context) == "?"
    assert render_template("{{ record.patient }}", alert.context) == "p1"


def test_a_task_is_assigned_to_the_staff_record_s_user() -> None:
    task = rule(
        then=[{"type": "create_task", "field": "doctor", "title": "See {{ record.patient.name }}"}]
    )
    [planned] = evaluate_rule(task, painful()).sync
    assert isinstance(planned, PlannedTask) and planned.user == "dr_li"
    assert render_template(planned.title, planned.context) == "See Ann"


def test_values_and_filters_read_related_records() -> None:
    update = rule(
        then=[{"type": "update_records", "form": "patient",
               "filter": {"==": [{"var": "primary_doctor"},
                                 {"var": "record.patient.primary_doctor"}]},
               "values": {"name": {"cat": [{"var": "record.patient.name"}, "!"]}}}]
    )  # fmt: skip
    [planned] = evaluate_rule(update, painful()).sync
    assert isinstance(planned, PlannedUpdateRecords)
    assert planned.filter == {"==": [{"var": "primary_doctor"}, "s2"]}
    assert planned.values == {"name": "Ann!"}


def test_typed_webhook_values_through_relations() -> None:
    [alert] = evaluate_rule(PAIN, painful()).outbound
    context = {**alert.context}
    context["related"] = {**RELATED, "record/patient": {**ANN, "data": {**ANN["data"], "age": 40}}}
    assert render_value("{{ record.patient }}", context) == "p1"
    assert render_value("{{ record.patient.age }}", context) == 40
    assert render_value("{{ record.patient.primary_doctor }}", context) == "s2"


def test_a_template_cannot_reach_internals_through_a_related_value() -> None:
    [alert] = evaluate_rule(PAIN, painful()).outbound
    for text in ("{{ record.patient._data }}", "{{ record.patient.__class__ }}"):
        try:
            shown = render_template(text, alert.context)
        except Exception as error:  # noqa: BLE001 - any refusal will do
            shown = type(error).__name__
        assert "Ann" not in shown and "RelatedValue" not in shown


def test_without_related_records_the_context_is_as_before() -> None:
    plan = evaluate_rule(rule(), event({"pain": 8}))
    [alert] = plan.outbound
    assert isinstance(alert, PlannedNotify) and "related" not in alert.context


# -- import checks ----------------------------------------------------------------------


def problems(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [(pointer, code) for pointer, code, _ in check([rule(**spec)], FORMS, {"doctor"})]


def test_the_clean_rule_passes() -> None:
    assert check([PAIN], FORMS, {"doctor"}) == []


def test_an_unknown_related_field_is_refused_with_a_pointer() -> None:
    assert problems({"if": {"var": "record.patient.nmae"}}) == [("/0/if", "unknown_field")]
    text = {"en": "{{ record.patient.primary_doctor.nmae }}", "zh-CN": "x"}
    notify = {"type": "notify", "channel": "in_app", "recipients": [{"role": "doctor"}],
              "template": text}  # fmt: skip
    assert problems({"then": [notify]}) == [("/0/then/0/template/en", "unknown_field")]


def test_three_hops_are_refused() -> None:
    deep = {"if": {"var": "record.patient.primary_doctor.manager.name"}}
    assert problems(deep) == [("/0/if", "too_many_hops")]


def test_old_through_a_relation_is_refused() -> None:
    assert problems({"if": {"var": "old.patient.name"}}) == [("/0/if", "related_old")]


def test_a_recipient_field_must_be_a_relation_to_staff() -> None:
    def notify(field: str) -> dict[str, Any]:
        return {"then": [{"type": "notify", "channel": "in_app", "recipients": [{"field": field}],
                          "template": "x"}]}  # fmt: skip

    where = "/0/then/0/recipients/0/field"
    assert problems(notify("doctor")) == []
    assert problems(notify("nobody")) == [(where, "unknown_field")]
    assert problems(notify("pain")) == [(where, "not_a_relation")]
    assert problems(notify("patient")) == [(where, "not_staff")]
    both = {"then": [{"type": "notify", "channel": "in_app", "template": "x",
                      "recipients": [{"field": "doctor", "role": "doctor"}]}]}  # fmt: skip
    assert problems(both) == [("/0/then/0/recipients/0", "invalid_recipient")]


def test_a_task_field_must_be_a_relation_to_staff() -> None:
    def task(**who: Any) -> dict[str, Any]:
        return {"then": [{"type": "create_task", "title": "t", **who}]}

    assert problems(task(field="doctor")) == []
    assert problems(task(field="patient")) == [("/0/then/0/field", "not_staff")]
    assert problems(task(field="doctor", role="doctor")) == [("/0/then/0", "invalid_assignee")]
