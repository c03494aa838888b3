"""Times on the clinic's clock in a real browser whose own zone is another one: the clinic is
in Asia/Shanghai (``FORMLOOM_TIMEZONE``), the receptionist's laptop in New York. Booking
10:00 stores 02:00 UTC and shows 10:00 in the heading, the list and the edit form; and the
browser's conversions (form-values.js, Intl) agree with the server's (zoneinfo) across
zones and daylight-saving changes."""

from __future__ import annotations

import json
import os
import random
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from formloom.engines.forms.localtime import local_text
from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, LiveServer, serving, sign_in
from tests.ui.test_runtime_helpers import APP, unique_phone

CLINIC = "Asia/Shanghai"
BROWSER = "America/New_York"


@pytest.fixture(scope="module")
def shanghai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The demo clinic served with its zone set (the shared server runs in UTC)."""
    before = os.environ.get("FORMLOOM_TIMEZONE")
    os.environ["FORMLOOM_TIMEZONE"] = CLINIC
    try:
        with serving(tmp_path_factory.mktemp("ui-shanghai")) as server:
            os.environ.pop("FORMLOOM_TIMEZONE")
            if before is not None:
                os.environ["FORMLOOM_TIMEZONE"] = before
            yield server
    finally:
        if before is None:
            os.environ.pop("FORMLOOM_TIMEZONE", None)
        else:
            os.environ["FORMLOOM_TIMEZONE"] = before


@pytest.fixture
def new_york_tab(browser: Any, shanghai_server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(
        locale="en-US", timezone_id=BROWSER, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(tab, shanghai_server, ADMIN, ADMIN_PASSWORD)
    yield tab
    context.close()
    assert not errors, f"uncaught script errors on the page: {errors}"


def test_booking_ten_oclock_shows_ten_oclock(
    new_york_tab: Any, shanghai_server: LiveServer
) -> None:
    page, url = new_york_tab, shanghai_server.url
    # the browser really is in New York
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == BROWSER
    with shanghai_server.api() as api:
        made = api.post(
            f"/api/records/{APP}/patient",
            json={"data": {"name": "Zhou Min", "phone": unique_phone()}},
        )
        assert made.status_code == 201, made.text
        patient = made.json()["id"]
    day = f"2031-{secrets.randbelow(12) + 1:02d}-{secrets.randbelow(28) + 1:02d}"
    page.goto(f"{url}/apps/{APP}/forms/appointment/new?patient={patient}")
    assert page.get_by_test_id("zone-legend").inner_text() == f"Times in {CLINIC}"
    starts = page.locator("input[name=starts_at]")
    assert starts.get_attribute("title") == f"{CLINIC} time"
    page.get_by_test_id("relation-doctor").fill("Dr")
    page.locator("[role=listbox]:visible [role=option]").first.click()
    page.select_option("select[name=department]", "general")
    starts.fill(f"{day}T10:00")
    page.get_by_test_id("submit").click()
    page.wait_for_url(re.compile(rf"/apps/{APP}/forms/appointment/[0-9a-f]{{32}}$"))
    record_id = page.url.rsplit("/", 1)[1]

    # stored as the instant 10:00 in Shanghai is (New York's 10:00 would be 14:00 or 15:00 UTC)
    with shanghai_server.api() as api:
        stored = api.get(f"/api/records/{APP}/appointment/{record_id}").json()
    assert stored["data"]["starts_at"] == f"{day}T02:00:00Z"
    # the heading
    assert page.get_by_test_id("record-title").inner_text() == f"{day} 10:00"
    # the list: the title and the starts_at cell, after the page's script has run
    page.goto(f"{url}/apps/{APP}/forms/appointment?sort=-starts_at")
    row = page.locator(f"tr[data-id='{record_id}']")
    assert row.locator("th.title-cell").inner_text() == f"{day} 10:00"
    cell = row.locator("td[data-col=starts_at] time")
    assert cell.inner_text() == f"{day} 10:00"
    assert cell.get_attribute("title") == f"{day} 10:00 ({CLINIC})"
    # the filter bar: "on or after 10:00" is 10:00 clinic time, sent as the UTC instant
    page.get_by_test_id("filter-toggle").click()
    page.get_by_test_id("filter-field").select_option("starts_at")
    page.get_by_test_id("filter-op").select_option(">=")
    page.get_by_test_id("filter-value").fill(f"{day}T10:00")
    page.get_by_test_id("filter-apply").click()
    page.wait_for_url(re.compile(r"filter="))
    sent = json.loads(page.evaluate("new URL(location.href).searchParams.get('filter')"))
    assert sent == {">=": [{"var": "starts_at"}, f"{day}T02:00:00Z"]}
    assert page.locator(f"tr[data-id='{record_id}']").count() == 1
    assert page.get_by_test_id("filter-value").input_value() == f"{day}T10:00"
    # the edit form reads it back on the clinic's clock
    page.goto(f"{url}/apps/{APP}/forms/appointment/{record_id}/edit")
    assert page.locator("input[name=starts_at]").input_value() == f"{day}T10:00"


def instants() -> list[str]:
    """Instants around daylight-saving changes, midnights and year ends, and random ones."""
    fixed = [
        "2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z",
        "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z",
        "2026-03-29T00:59:00Z", "2026-03-29T01:00:00Z", "2026-10-25T00:30:00Z",
        "2026-12-31T16:00:00Z", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z",
        "2026-12-04T02:00:00Z",
    ]  # fmt: skip
    start = datetime(2020, 1, 1, tzinfo=UTC)
    rng = random.Random(14)  # the same cases on every run
    randoms = [
        (start + timedelta(minutes=rng.randrange(0, 10 * 365 * 24 * 60))).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        for _ in range(40)
    ]
    return fixed + randoms


ZONES = ("Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Sydney", "UTC")


def test_the_browser_converts_as_the_server_does(
    new_york_tab: Any, shanghai_server: LiveServer
) -> None:
    page = new_york_tab
    page.goto(f"{shanghai_server.url}/apps/{APP}")
    cases = instants()
    found = page.evaluate(
        """async ([cases, zones]) => {
          const values = await import("/static/form-values.js");
          const out = {};
          for (const zone of zones) {
            out[zone] = cases.map((value) => {
              const wall = values.toLocalInput(value, zone);
              return [values.localText(value, zone), wall, values.fromLocalInput(wall, zone)];
            });
          }
          out.page = [values.clinicZone(), values.showDateTime("2026-12-04T02:00:00Z")];
          return out;
        }""",
        [cases, list(ZONES)],
    )
    assert found["page"] == [CLINIC, "2026-12-04 10:00"]
    for zone in ZONES:
        clock = ZoneInfo(zone)
        for value, (text, wall, back) in zip(cases, found[zone], strict=True):
            assert text == local_text(value, clock), (zone, value)
            assert wall == text.replace(" ", "T"), (zone, value)
            # typed back, a wall time gives the instant it came from — but for the hour
            # that happens twice when clocks go back, which reads as its first occurrence
            local = datetime.fromisoformat(wall).replace(tzinfo=clock)
            expected = local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            assert back == expected, (zone, value, wall)
