"""The clinic manager's dashboard in a real browser: every chart drawn from the demo data, a
bar and a table cell opening the records they count (an hour x weekday bar included), and
the shared filters."""

from __future__ import annotations

import re
from typing import Any

from tests.ui.conftest import LiveServer

BOARD = "/apps/clinic_crm/dashboards/manager"


def _bar_with_records(page: Any, middle: bool = False) -> tuple[Any, str, int]:
    """A bar of "Appointments by hour and weekday" that counts some appointments: the bar,
    its hover text and its count."""
    bars = page.locator("[data-report=appointments_by_hour] .chart a rect.bar")
    tips = [t.rsplit(": ", 1) for t in bars.locator("title").all_text_contents()]
    assert len(tips) > 7
    counted = [i for i, (_, count) in enumerate(tips) if int(count) > 0]
    index = counted[len(counted) // 2] if middle else counted[0]
    return bars.nth(index), tips[index][0], int(tips[index][1])


def _count_on(page: Any) -> int:
    page.wait_for_url(re.compile(r"/records/\w+\?drill="))
    return int(page.get_by_test_id("count").get_attribute("data-count"))


def test_every_chart_draws_and_a_bar_opens_its_records(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}{BOARD}")
    tiles = page.locator("section.tile")
    with live_server.api() as api:
        items = api.get("/api/dashboards/clinic_crm/manager").json()["items"]
    assert len(items) >= 12  # the board's tiles, however many the clinic adds
    assert tiles.count() == len(items)
    assert page.locator(".chart svg[role=img]").count() == len(items)
    # "Appointments by hour and weekday": a stacked bar segment says its count on hover
    bar, weekday_hour, count = _bar_with_records(page, middle=True)
    assert re.fullmatch(r"\w+day · \d\d:00", weekday_hour), weekday_hour
    bar.click()
    assert _count_on(page) == count
    assert page.locator("[data-testid=record-row]").count() == count
    assert len(page.url) < 1_000  # a short link: weekday_of / hour_of, not a list of windows


def test_a_table_cell_opens_its_records(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}{BOARD}")
    tile = page.locator("[data-report=nps_by_doctor]")
    tile.locator("summary").click()  # the table under the chart
    cell = tile.locator("td[data-drill] a").first
    responses = int(cell.text_content())
    cell.click()
    assert _count_on(page) == responses


def test_the_department_filter_narrows_every_report(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}{BOARD}")
    everyone = page.locator("[data-report=appointments_by_hour] svg desc").first.text_content()
    # the filter offers the department's options by their labels, not the stored codes
    choice = page.get_by_test_id("filter-department")
    offered = choice.locator("option").all_inner_texts()
    assert offered[0] == "All" and "Surgery" in offered and "General practice" in offered
    assert "surgery" not in offered
    # nothing asked for: no tile says it is not narrowed
    assert page.get_by_test_id("filter-not-applied").count() == 0
    choice.select_option(label="Surgery")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"department=surgery"))
    assert page.get_by_test_id("filter-department").locator("option:checked").inner_text() == (
        "Surgery"
    )
    # patients have no department: their tiles say the filter does not narrow them
    note = page.locator("[data-report=new_patients_kpi] [data-testid=filter-not-applied]")
    assert note.inner_text() == "Not narrowed by Department"
    assert (
        page.locator("[data-report=appointments_by_hour] [data-testid=filter-not-applied]").count()
        == 0
    )
    surgery = page.locator("[data-report=appointments_by_hour] svg desc").first.text_content()
    assert surgery != everyone  # the chart's description reads out different data
    bar, _, count = _bar_with_records(page)
    bar.click()
    assert _count_on(page) == count
    shown = set(page.locator("[data-testid=record-row] td").all_text_contents())
    assert "Surgery" in shown
    assert not shown & {"Dental", "Dermatology", "General practice", "Pediatrics"}


def _kpi_words(page: Any, locale: str) -> str:
    """What the new-patients KPI should compare today, on the server's clock."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from formloom.platform.reports.periods import compared, windows

    zone = ZoneInfo(page.locator("html").get_attribute("data-timezone") or "UTC")
    found = windows("created_at", is_date=False, period="month", now=datetime.now(UTC), zone=zone)
    return compared(found, locale)


def test_a_kpi_compares_like_with_like_and_says_so(browser: Any, live_server: LiveServer) -> None:
    """Month to date against the same days of last month, in words, in a neutral colour."""
    from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, sign_in

    for locale, joiner in [("en-US", " vs "), ("zh-CN", " 对比 ")]:
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        try:
            page = context.new_page()
            sign_in(page, live_server, ADMIN, ADMIN_PASSWORD)
            page.goto(f"{live_server.url}{BOARD}")
            tile = page.locator("[data-report=new_patients_kpi]")
            words = tile.get_by_test_id("kpi-words").inner_text()
            expected = _kpi_words(page, "zh-CN" if locale == "zh-CN" else "en")
            assert words.startswith(expected + " ("), (words, expected)
            assert joiner in words
            # the chart draws the number alone; no red or green judgement of the change
            assert tile.locator(".kpi-change").count() == 0
            delta = tile.get_by_test_id("kpi-compare")
            colour = delta.evaluate("node => getComputedStyle(node).color")
            assert colour not in ("rgb(176, 0, 32)", "rgb(0, 122, 61)"), colour
        finally:
            context.close()


def test_the_branch_filter_picks_a_branch_by_name(page: Any, live_server: LiveServer) -> None:
    """A filter on a link to another form offers its records by title (a picker), never ids."""
    page.goto(f"{live_server.url}{BOARD}")
    everyone = page.locator("[data-report=new_patients_kpi] .kpi-value").text_content()
    picker = page.get_by_test_id("relation-branch")
    picker.fill("Pud")
    option = page.locator("[data-testid=filter-branch] [role=option]", has_text="Pudong")
    option.wait_for()
    option.click()
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"branch=[0-9a-f]{32}"))
    # the chosen branch is named after the reload, and the board is narrowed to it
    assert "Pudong" in page.get_by_test_id("relation-branch-chosen").inner_text()
    pudong = page.locator("[data-report=new_patients_kpi] .kpi-value").text_content()
    assert int(pudong or "0") < int(everyone or "0")
    assert (
        page.locator("[data-report=new_patients_kpi] [data-testid=filter-not-applied]").count() == 0
    )


def test_filters_in_chinese(browser: Any, live_server: LiveServer) -> None:
    from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, sign_in

    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        sign_in(page, live_server, ADMIN, ADMIN_PASSWORD)
        page.goto(f"{live_server.url}{BOARD}?department=surgery")
        choice = page.get_by_test_id("filter-department")
        offered = choice.locator("option").all_inner_texts()
        assert offered[0] == "全部" and "外科" in offered
        assert choice.locator("option:checked").inner_text() == "外科"
        note = page.locator("[data-report=new_patients_kpi] [data-testid=filter-not-applied]")
        assert note.inner_text() == "未按科室筛选"
    finally:
        context.close()
