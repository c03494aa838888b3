"""The ``late`` policy of date and schedule triggers: how late after downtime a moment still
fires (engines/rules/timing.py ``too_late``), and the import check of the policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from formloom.engines.rules import InvalidTiming, check
from formloom.engines.rules.timing import SKIP_GRACE, late_limit, too_late

from .factory import FORMS, ROLES, rule

DUE = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def test_run_fires_however_late() -> None:
    assert late_limit("run") is None
    assert not too_late("run", DUE, DUE + timedelta(days=40))


@pytest.mark.parametrize(
    ("policy", "late", "skipped"),
    [
        ("skip", SKIP_GRACE, False),
        ("skip", SKIP_GRACE + timedelta(seconds=1), True),
        ("PT6H", timedelta(hours=6), False),
        ("PT6H", timedelta(hours=6, seconds=1), True),
        ("P1D", timedelta(hours=23), False),
        ("P1D", timedelta(days=3), True),
    ],
)
def test_a_limit_skips_what_is_later_than_it(policy: str, late: timedelta, skipped: bool) -> None:
    assert too_late(policy, DUE, DUE + late) is skipped


def test_lateness_counts_from_arming_when_the_record_came_late() -> None:
    """A discharge typed in two days after it happened is not late; a worker down is."""
    armed = DUE + timedelta(days=2)
    assert not too_late("P1D", DUE, armed + timedelta(minutes=1), armed=armed)
    assert too_late("P1D", DUE, armed + timedelta(days=2), armed=armed)
    # armed before the moment: lateness counts from the moment
    assert too_late("PT1H", DUE, DUE + timedelta(hours=2), armed=DUE - timedelta(days=1))


@pytest.mark.parametrize("policy", ["sometimes", "P1M", "-PT1H", "P1Y", ""])
def test_bad_policies_are_refused(policy: str) -> None:
    with pytest.raises(InvalidTiming):
        late_limit(policy)


def test_the_import_check_points_at_a_bad_policy() -> None:
    schedule = rule("a", on={"form": "patient", "at": "09:00", "late": "whenever"})
    date = rule("b", on={"form": "patient", "field": "birth_date", "late": "P1M"})
    good = rule("c", on={"form": "patient", "field": "birth_date", "every_year": True,
                         "late": "P1D"})  # fmt: skip
    found = [(p, c) for p, c, _ in check([schedule, date, good], FORMS, ROLES)]
    assert ("/0/on/late", "invalid_late") in found
    assert ("/1/on/late", "invalid_late") in found
    assert not [pointer for pointer, _ in found if pointer.startswith("/2/")]
