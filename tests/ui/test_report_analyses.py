"""The report builder offers the analyses managers ask for (issue 20) in Chromium: a saved
report's moving average, cumulative percent, period-over-period change (month to date), its
condition on the values (having), top per group, sort by the options' order, week start,
fiscal year and its own time zone show as their controls; the preview equals the report
API; changing them in the builder saves the JSON the spec takes; and the controls are in
Chinese for a Chinese reader."""

from __future__ import annotations

from typing import Any

import pytest

from formloom.engines.reports import PivotResult
from formloom.engines.reports.render import to_html
from formloom.platform.reports.service import chart_text
from tests.ui.conftest import LiveServer
from tests.ui.test_report_builder import (  # noqa: F401 (fixtures)
    APP,
    HEAD_OFFICE,
    _cells,
    people,
    saved_report,
    tab_as,
    wait_preview,
    wait_saved,
)

KEY = "visits_compared"
REPORT = {
    "label": {"en": "Visits compared", "zh-CN": "就诊对比"},
    "form": "visit",
    "rows": [{"field": "department"}, {"field": "visit_date", "bucket": "month"}],
    "measures": [
        {"key": "n", "op": "count"},
        {"key": "pain", "op": "avg", "field": "pain_score"},
        {"key": "avg3", "op": "moving_average", "of": "n", "window": 3},
        {"key": "cum", "op": "cumulative_percent", "of": "n", "scale": 100},
        {
            "key": "mtd",
            "op": "period_over_period",
            "of": "n",
            "compare": "difference",
            "to_date": True,
        },
    ],  # fmt: skip
    "having": {">=": [{"var": "n"}, 1]},
    "top_per_group": {"n": 2, "by": "n"},
    "sort": {"by": "options"},
    "week_start": "sunday",
    "fiscal_year_start": 4,
    "time_zone": "Asia/Shanghai",
}


@pytest.fixture
def compared(live_server: LiveServer, people: None) -> Any:  # noqa: F811
    with live_server.api() as api:
        made = api.put(f"/api/apps/{APP}/reports/{KEY}", json=REPORT)
        assert made.status_code in (200, 201), made.text
        ran = api.get(f"/api/reports/{APP}/{KEY}", params={"locale": "en"})
        assert ran.status_code == 200, ran.text
    yield ran.json()
    with live_server.api() as api:
        api.delete(f"/api/apps/{APP}/reports/{KEY}")


def test_the_builder_shows_and_saves_the_analyses(
    tab_as: Any,  # noqa: F811
    live_server: LiveServer,
    compared: dict[str, Any],
) -> None:
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}/reports/{KEY}")
    tab.wait_for_selector("[data-testid=report-builder][data-ready]")
    wait_preview(tab)
    value = lambda testid: tab.get_by_test_id(testid).input_value()  # noqa: E731
    assert value("measures-2-op") == "moving_average" and value("measures-2-window") == "3"
    assert value("measures-3-op") == "cumulative_percent" and value("measures-3-scale") == "100"
    assert value("measures-4-op") == "period_over_period"
    assert value("measures-4-compare") == "difference" and value("measures-4-offset") == "period"
    assert tab.get_by_test_id("measures-4-to-date").is_checked()
    assert (value("having-measure-0"), value("having-op-0"), value("having-value-0")) == (
        "n", ">=", "1"
    )  # fmt: skip
    assert tab.get_by_test_id("group-top-on").is_checked() and value("group-top-n") == "2"
    assert value("sort-by") == "options"
    assert (value("week-start"), value("fiscal-year-start"), value("time-zone")) == (
        "sunday", "4", "Asia/Shanghai"
    )  # fmt: skip
    # the running values are offered nowhere they cannot be read
    ranks = tab.get_by_test_id("sort-by").locator("option").all_inner_texts()
    assert "avg3" not in ranks and "cum" not in ranks and "mtd" in ranks
    result = PivotResult.model_validate(compared["result"])
    text = chart_text("en")
    expected = _cells(to_html(result, caption=compared["label"], total=text.total, text=text))
    assert _cells(tab.get_by_test_id("preview-table").inner_html()) == expected
    if result.rows_left_out:
        assert "left out" in tab.get_by_test_id("preview-state").inner_text()

    # change them: a year-on-year change, a stricter condition, Saturday weeks, the
    # calendar year, another zone, no top per group, columns sorted by a value
    tab.get_by_test_id("measures-4-offset").select_option("year")
    tab.get_by_test_id("measures-4-to-date").uncheck()
    tab.get_by_test_id("having-value-0").fill("2")
    tab.get_by_test_id("having-value-0").blur()
    tab.get_by_test_id("having-add").click()
    tab.get_by_test_id("having-measure-1").select_option("pain")
    tab.get_by_test_id("having-op-1").select_option("<")
    tab.get_by_test_id("having-value-1").fill("8")
    tab.get_by_test_id("having-value-1").blur()
    tab.get_by_test_id("group-top-on").uncheck()
    tab.get_by_test_id("week-start").select_option("saturday")
    tab.get_by_test_id("fiscal-year-start").select_option("1")
    tab.get_by_test_id("time-zone").fill("America/New_York")
    tab.get_by_test_id("time-zone").blur()
    tab.get_by_test_id("measures-2-window").fill("6")
    tab.get_by_test_id("measures-2-window").blur()
    wait_preview(tab)
    tab.get_by_test_id("report-save").click()
    tab.get_by_test_id("report-confirm").click()
    wait_saved(tab)
    saved = saved_report(live_server, KEY)
    assert saved["measures"][4] == {"key": "mtd", "op": "period_over_period", "of": "n",
                                    "compare": "difference", "offset": "year"}  # fmt: skip
    assert saved["measures"][2]["window"] == 6
    assert saved["having"] == {"and": [{">=": [{"var": "n"}, 2]}, {"<": [{"var": "pain"}, 8]}]}
    assert "top_per_group" not in saved and "fiscal_year_start" not in saved
    assert saved["week_start"] == "saturday" and saved["time_zone"] == "America/New_York"


def test_a_bad_zone_is_shown_at_its_box_and_the_words_are_chinese(
    tab_as: Any,  # noqa: F811
    live_server: LiveServer,
    compared: dict[str, Any],
) -> None:
    tab = tab_as(HEAD_OFFICE, locale="zh-CN")
    tab.goto(f"{live_server.url}/designer/{APP}/reports/{KEY}")
    tab.wait_for_selector("[data-testid=report-builder][data-ready]")
    wait_preview(tab)
    ops = tab.get_by_test_id("measures-2-op").locator("option").all_inner_texts()
    assert {"移动平均（按行向下）", "累计百分比（按行向下）", "与之前的时期比较"} <= set(ops)
    assert "每周开始于" in tab.get_by_test_id("report-time").inner_text()
    assert "表单中选项的顺序" in tab.get_by_test_id("sort-by").inner_text()
    tab.get_by_test_id("time-zone").fill("Mars/Olympus")
    tab.get_by_test_id("time-zone").blur()
    wait_preview(tab, "error")
    assert "Mars/Olympus" in tab.get_by_test_id("preview-state").inner_text()
    # the problem is placed at the box it is about
    assert tab.get_by_test_id("time-zone").get_attribute("aria-invalid") == "true"


def test_each_groups_other_row_can_be_left_out(
    tab_as: Any,  # noqa: F811
    live_server: LiveServer,
    compared: dict[str, Any],
) -> None:
    """top_per_group's "Other" of each group is on as the spec's default; unticked, the
    preview drops those rows and the saved report says ``other: false``."""
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}/reports/{KEY}")
    tab.wait_for_selector("[data-testid=report-builder][data-ready]")
    wait_preview(tab)
    box = tab.get_by_test_id("group-top-other")
    assert box.is_checked()
    result = PivotResult.model_validate(compared["result"])
    others = [h for h in result.rows if h.other]
    assert others  # the data leaves more than two months in some department
    table = tab.get_by_test_id("preview-table")
    before = table.locator("tbody tr").count()
    box.uncheck()
    wait_preview(tab)
    assert table.locator("tbody tr").count() == before - len(others)
    tab.get_by_test_id("report-save").click()
    tab.get_by_test_id("report-confirm").click()
    wait_saved(tab)
    assert saved_report(live_server, KEY)["top_per_group"] == {"n": 2, "by": "n", "other": False}
