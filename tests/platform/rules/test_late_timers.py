"""The ``late`` policy of date and schedule rules when the worker comes late (downtime), on
SQLite and PostgreSQL: a birthday greeting is not sent days late, a day-after text is sent
within its window and skipped after it, a record typed in late is not "late", a daily run
missed by hours is skipped and the next one fires, and ``run`` (the default) fires however
late. The worker's report counts skips apart from firings; the timer says why."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from formloom.platform.clock import FixedClock
from formloom.platform.models.automation import Task, Timer
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings

from .test_rules_run import ZONE, count, create, install, rows, ward

BIRTHDAY = {
    "key": "birthday",
    "on": {"form": "patient", "field": "birth_date", "every_year": True, "at": "09:00",
           "late": "P1D"},
    "then": [{"type": "create_task", "role": "front_desk", "title": "Birthday {{ record.name }}"}],
}  # fmt: skip
DAY_AFTER = {
    "key": "day_after",
    "on": {"form": "patient", "field": "discharged_at", "offset": "PT24H", "late": "PT6H"},
    "then": [{"type": "create_task", "role": "doctor", "title": "Call {{ record.name }}"}],
}  # fmt: skip
MORNING = {
    "key": "morning",
    "on": {"form": "patient", "at": "09:00", "late": "skip",
           "filter": {"==": [{"var": "status"}, "admitted"]}},
    "then": [{"type": "create_task", "role": "doctor", "title": "Round {{ record.name }}"}],
}  # fmt: skip
ANYWAY = {**DAY_AFTER, "key": "anyway", "on": {**DAY_AFTER["on"], "late": "run"}}


async def _titles(settings: Settings) -> list[str]:
    return sorted(task.title for task in await rows(settings, Task))


async def test_a_birthday_is_not_greeted_days_late_and_waits_for_next_year(
    client: httpx.AsyncClient,
    settings: Settings,
    worker: Worker,
) -> None:
    await install(client, BIRTHDAY)
    await create(client, "patient", {"name": "Ma", "birth_date": "1980-11-25"})
    # the worker was down from the 24th to the 28th: three days late
    report = await worker.run_once(datetime(2026, 11, 28, 9, 0, tzinfo=ZONE))
    assert (report.timers_fired, report.timers_skipped) == (0, 1), report.to_dict()
    assert await _titles(settings) == []
    [timer] = await rows(settings, Timer)
    assert timer.status == "pending" and timer.due_at.isoformat() == "2027-11-25T01:00:00+00:00"
    assert "skipped: 3.0 days late" in (timer.last_error or "")
    # next year, on time
    report = await worker.run_once(datetime(2027, 11, 25, 9, 5, tzinfo=ZONE))
    assert (report.timers_fired, report.timers_skipped) == (1, 0)
    assert await _titles(settings) == ["Birthday Ma"]


async def test_a_window_fires_inside_it_and_skips_after_it(
    client: httpx.AsyncClient,
    settings: Settings,
    worker: Worker,
) -> None:
    await install(client, DAY_AFTER, ANYWAY)
    # discharged 23 Nov 09:00 Shanghai (01:00 UTC): due 24 Nov 09:00
    await create(client, "patient", {"name": "Early", "discharged_at": "2026-11-23T01:00:00Z"})
    report = await worker.run_once(datetime(2026, 11, 24, 14, 0, tzinfo=ZONE))  # 5 h late
    assert (report.timers_fired, report.timers_skipped) == (2, 0), report.to_dict()
    await create(client, "patient", {"name": "Late", "discharged_at": "2026-11-24T01:00:00Z"})
    # due 25 Nov 09:00; the worker comes back on the 27th
    report = await worker.run_once(datetime(2026, 11, 27, 9, 0, tzinfo=ZONE))
    assert (report.timers_fired, report.timers_skipped) == (1, 1), report.to_dict()
    assert await _titles(settings) == ["Call Early", "Call Early", "Call Late"]  # "anyway"
    skipped = await rows(settings, Timer, Timer.status == "skipped")
    assert [t.rule for t in skipped] == ["day_after"]


async def test_a_record_typed_in_late_is_not_late(
    client: httpx.AsyncClient,
    settings: Settings,
    worker: Worker,
    clock: FixedClock,
) -> None:
    await install(client, DAY_AFTER)
    # entered now, discharged three days ago: its day-after moment is long past when armed
    discharged = clock.now() - timedelta(days=3)
    await create(client, "patient", {"name": "Typed", "discharged_at": discharged.isoformat()})
    report = await worker.run_once(clock.now() + timedelta(minutes=1))
    assert (report.timers_fired, report.timers_skipped) == (1, 0), report.to_dict()
    assert await _titles(settings) == ["Call Typed"]


async def test_a_daily_run_missed_by_hours_is_skipped_and_the_next_fires(
    client: httpx.AsyncClient,
    settings: Settings,
    worker: Worker,
    clock: FixedClock,
) -> None:
    await install(client, MORNING)
    await create(client, "patient", {"name": "Bed 3", "status": "admitted"})
    [timer] = await rows(settings, Timer)
    first = timer.due_at
    report = await worker.run_once(first + timedelta(hours=6))
    assert (report.timers_fired, report.timers_skipped) == (0, 1), report.to_dict()
    assert await count(settings, Task) == 0
    [timer] = await rows(settings, Timer)
    assert timer.status == "pending" and timer.due_at == first + timedelta(days=1)
    report = await worker.run_once(first + timedelta(days=1, minutes=5))
    assert (report.timers_fired, report.timers_skipped) == (1, 0), report.to_dict()
    assert await _titles(settings) == ["Round Bed 3"]


async def test_a_bad_policy_is_refused_at_import_with_its_pointer(
    client: httpx.AsyncClient,
) -> None:
    bad = {**DAY_AFTER, "on": {**DAY_AFTER["on"], "late": "whenever"}}
    answer = await client.post("/api/apps/import", json=ward(bad))
    assert answer.status_code == 422, answer.text
    pointers = [error["path"] for error in answer.json()["errors"]]
    assert "/rules/0/on/late" in pointers, pointers
