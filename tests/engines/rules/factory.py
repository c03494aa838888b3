"""Forms and rule builders shared by the rule engine tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from formloom.engines.forms import FormSpec
from formloom.engines.rules import Event, RuleSpec

NOW = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai, 20:30 the day before in NY

PATIENT = FormSpec.model_validate(
    {
        "key": "patient",
        "label": "Patient",
        "fields": [
            {"key": "name", "type": "text"},
            {"key": "phone", "type": "phone"},
            {"key": "status", "type": "select", "options": [{"value": "in"}, {"value": "out"}]},
            {"key": "tags", "type": "multiselect", "options": [{"value": "hypertension"}]},
            {"key": "birth_date", "type": "date"},
            {"key": "discharged_at", "type": "datetime"},
            {"key": "last_visit", "type": "date"},
            {"key": "age", "type": "computed", "result_type": "integer",
             "formula": {"years_between": [{"var": "birth_date"}, {"today": []}]}},
        ],
    }
)  # fmt: skip
VISIT = FormSpec.model_validate(
    {
        "key": "visit",
        "label": "Visit",
        "fields": [
            {"key": "patient", "type": "relation", "target": "patient"},
            {"key": "pain", "type": "integer"},
            {"key": "doctor", "type": "text"},
            {"key": "note", "type": "text"},
            {"key": "starts_at", "type": "datetime"},
        ],
    }
)
FORMS = {"patient": PATIENT, "visit": VISIT}
ROLES = {"doctor", "customer_service"}


def rule(key: str = "r", /, **fields: Any) -> RuleSpec:
    data: dict[str, Any] = {
        "key": key,
        "on": {"form": "visit", "event": "created"},
        "then": [
            {
                "type": "notify",
                "channel": "in_app",
                "recipients": [{"role": "doctor"}],
                "template": "hi",
            }
        ],  # fmt: skip
    }
    data.update(fields)
    return RuleSpec.model_validate(data)


def event(
    record: dict[str, Any],
    *,
    kind: Any = "created",
    form: str = "visit",
    old: dict[str, Any] | None = None,
    **extra: Any,
) -> Event:
    return Event(
        app="clinic", form=form, kind=kind, record=record, old=old, now=NOW,
        record_id=extra.pop("record_id", "r1"), **extra,
    )  # fmt: skip
