"""Seeded clinic-like records for the report tests and benchmark: patients and visits.

The data is built to hit the edges: absent keys (old records), JSON nulls, datetimes a few
minutes either side of midnight and of month ends in Asia/Shanghai, multiselects with
none/one/several options, relations to missing and deleted patients, deleted visits.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from formloom.engines.forms import FormSpec

APP = "clinic"
DEPARTMENTS = ["cardiology", "dermatology", "pediatrics", "oncology", "general"]
CHANNELS = ["walk_in", "wechat", "referral", "web"]
SYMPTOMS = ["fever", "cough", "rash", "pain"]
GENDERS = ["female", "male", "other"]


def _options(values: list[str]) -> list[dict[str, Any]]:
    return [{"value": v, "label": {"en": v.title()}} for v in values]


PATIENT = FormSpec.model_validate(
    {
        "key": "patient",
        "label": "Patient",
        "fields": [
            {"key": "name", "type": "text"},
            {"key": "gender", "type": "select", "options": _options(GENDERS)},
            {"key": "channel", "type": "select", "options": _options(CHANNELS)},
            {"key": "age", "type": "integer"},
            {"key": "tags", "type": "multiselect", "options": _options(["vip", "chronic"])},
        ],
    }
)
VISIT = FormSpec.model_validate(
    {
        "key": "visit",
        "label": "Visit",
        "fields": [
            {"key": "patient", "type": "relation", "target": "patient"},
            {"key": "department", "type": "select", "options": _options(DEPARTMENTS)},
            {"key": "channel", "type": "select", "options": _options(CHANNELS)},
            {"key": "satisfaction", "type": "integer"},
            {"key": "nps", "type": "integer"},
            {"key": "weight", "type": "number"},
            {"key": "visit_date", "type": "date"},
            {"key": "seen_at", "type": "datetime"},
            {"key": "symptoms", "type": "multiselect", "options": _options(SYMPTOMS)},
            {"key": "note", "type": "text"},
            {"key": "completed", "type": "boolean"},
        ],
    }
)
FORMS: Mapping[str, FormSpec] = {"patient": PATIENT, "visit": VISIT}
BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)


def _maybe(rng: random.Random, value: Any, *, missing: float = 0.08, null: float = 0.05) -> Any:
    """``value``, or the marker ``...`` (key left out), or ``None``."""
    roll = rng.random()
    if roll < missing:
        return ...
    if roll < missing + null:
        return None
    return value


def _edge_datetime(rng: random.Random) -> datetime:
    """Mostly near local midnight / month ends in Asia/Shanghai (UTC+8)."""
    day = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(0, 420))
    kind = rng.random()
    if kind < 0.4:  # around 16:00 UTC = local midnight
        return day.replace(hour=16) + timedelta(
            minutes=rng.randint(-3, 3), seconds=rng.randint(0, 59)
        )
    if kind < 0.6:  # around a local month end
        first = datetime(day.year, day.month, 1, 16, tzinfo=UTC) - timedelta(days=1)
        return first + timedelta(minutes=rng.randint(-30, 30))
    return day + timedelta(seconds=rng.randrange(0, 86400))


def generate(seed: int = 7, *, patients: int = 80, visits: int = 450) -> list[dict[str, Any]]:
    """Rows for the records table (``deleted_at`` set on some)."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    patient_ids = [f"p{n:05d}" for n in range(patients)]
    for n, pid in enumerate(patient_ids):
        data = {
            "name": f"Patient {n}",
            "gender": _maybe(rng, rng.choice(GENDERS)),
            "channel": _maybe(rng, rng.choice(CHANNELS)),
            "age": _maybe(rng, rng.randint(0, 95)),
            "tags": _maybe(rng, rng.sample(["vip", "chronic"], rng.randint(0, 2))),
        }
        rows.append(_row(pid, "patient", data, rng, deleted=n % 23 == 5))
    for n in range(visits):
        seen = _edge_datetime(rng)
        data = {
            "patient": _maybe(
                rng, rng.choice(patient_ids) if rng.random() < 0.95 else "p99999", null=0.03
            ),
            "department": _maybe(rng, rng.choice(DEPARTMENTS)),
            "channel": _maybe(rng, rng.choice(CHANNELS)),
            "satisfaction": _maybe(rng, rng.randint(1, 10)),
            "nps": _maybe(rng, rng.randint(0, 10)),
            "weight": _maybe(
                rng, rng.choice([rng.randint(-5, 120), round(rng.uniform(3, 110), 1)])
            ),
            "visit_date": _maybe(rng, (seen + timedelta(hours=8)).date().isoformat()),
            "seen_at": _maybe(rng, seen.strftime("%Y-%m-%dT%H:%M:%SZ")),
            "symptoms": _maybe(rng, rng.sample(SYMPTOMS, rng.choice([0, 1, 1, 2, 3]))),
            "note": _maybe(rng, rng.choice(["", "ok", "follow up"])),
            "completed": _maybe(rng, rng.random() < 0.6),
        }
        rows.append(_row(f"v{n:06d}", "visit", data, rng, deleted=n % 37 == 3))
    return rows


def _row(
    record_id: str, form: str, data: dict[str, Any], rng: random.Random, *, deleted: bool
) -> dict[str, Any]:
    created = _edge_datetime(rng)
    return {
        "id": record_id,
        "app": APP,
        "form": form,
        "form_version": 1,
        "data": {k: v for k, v in data.items() if v is not ...},
        "version": 1,
        "created_at": created,
        "created_by": rng.choice(["alice", "bob"]),
        "updated_at": created,
        "updated_by": "alice",
        "deleted_at": BASE_TIME if deleted else None,
    }
