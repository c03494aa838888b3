"""The top-N "Other" drill-down of scattered datetime days (pure: the evaluator). Its
filter names a local day by the record's UTC date and its local weekday; this checks, for
zones with fractional, large and changing offsets (DST both ways, a zone that crossed the
date line), that it selects exactly the instants whose local day is not kept — and stays
within the record API's 300 operations for n up to 1,000."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from formloom.engines.forms import FormSpec
from formloom.engines.logic import evaluate
from formloom.engines.logic.coercion import truthy
from formloom.engines.reports import PivotSpec, ReportTarget, compile_pivot
from formloom.engines.reports.result import _operations, drill

NOW = datetime(2026, 3, 1, tzinfo=UTC)
VISIT = FormSpec.model_validate(
    {"key": "visit", "label": "Visit", "fields": [{"key": "seen", "type": "datetime"}]}
)
TABLE = sa.table(
    "records",
    *[sa.column(name) for name in ("id", "app", "form", "deleted_at")],
    sa.column("data", sa.JSON()),
)


@pytest.mark.parametrize(
    "zone",
    ["America/New_York", "Asia/Kathmandu", "Pacific/Kiritimati", "Pacific/Apia", "UTC",
     "America/St_Johns", "Australia/Lord_Howe"],
)  # fmt: skip
def test_other_selects_exactly_the_days_not_kept(zone: str) -> None:
    rng = random.Random(zone)
    first = date(2011, 6, 1)  # Apia moved across the date line on 2011-12-29
    days = [first + timedelta(days=n) for n in range(1_500)]
    kept = sorted(rng.sample(days, 1_000))  # scattered: no range merging helps
    spec = PivotSpec.model_validate(
        {
            "form": "visit",
            "rows": [{"field": "seen", "bucket": "day"}],
            "measures": [{"key": "n", "op": "count"}],
            "top": {"n": 1000, "by": "n"},
            "time_zone": zone,
        }
    )
    query = compile_pivot(
        spec, {"visit": VISIT}, ReportTarget(TABLE, "a"), dialect="sqlite", time_zone="UTC",
        now=NOW,
    )  # fmt: skip
    keys = [day.isoformat() for day in kept]
    other = drill(query, [None], [], other=True, kept=keys)
    assert _operations(other.filter) <= 60
    inside = drill(query, [keys[0]], [], kept=keys)
    local = ZoneInfo(zone)
    wanted = set(keys)
    for _ in range(3_000):
        moment = datetime(2011, 5, 30, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(0, 1_510 * 86_400)
        )
        record = {"seen": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
        day = moment.astimezone(local).date().isoformat()
        assert truthy(evaluate(other.filter, record, now=NOW)) == (day not in wanted), (
            moment,
            day,
        )
        assert truthy(evaluate(inside.filter, record, now=NOW)) == (day == keys[0])
    assert truthy(evaluate(other.filter, {}, now=NOW))  # the empty group is not kept
