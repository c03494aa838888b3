"""Patient 360 in a real browser: the clinic demo's patient page shows, in one timeline, the
patient's visits, the surveys hanging off those visits and their complaints, with links, a
keyboard-usable filter, and Chinese; a survey a patient answers on a phone shows there and in
the manager dashboard's NPS tile."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.ui.conftest import LiveServer
from tests.ui.test_runtime_helpers import APP

BOARD = f"/apps/{APP}/dashboards/manager"


def _setup(live_server: LiveServer) -> dict[str, Any]:
    """A demo patient with a visit, a new survey on that visit and a new complaint."""
    with live_server.api() as api:
        visits = api.get(f"/api/records/{APP}/visit", params={"limit": 1, "sort": "-id"})
        [visit] = visits.json()["items"]
        patient = visit["data"]["patient"]
        survey = api.post(
            f"/api/records/{APP}/survey",
            json={"data": {"visit": visit["id"], "nps": 9, "satisfaction": 5,
                           "comment": "Kind nurses, short wait"}},
        )  # fmt: skip
        assert survey.status_code == 201, survey.text
        complaint = api.post(
            f"/api/records/{APP}/complaint",
            json={"data": {"summary": "Bill charged twice", "patient": patient,
                           "phone": "13800138000", "channel": "phone",
                           "description": "Charged twice for one visit."}},
        )  # fmt: skip
        assert complaint.status_code == 201, complaint.text
    return {
        "patient": patient,
        "visit": visit["id"],
        "survey": survey.json()["id"],
        "complaint": complaint.json()["id"],
    }


def test_the_patient_page_shows_visits_surveys_and_complaints_in_one_timeline(
    page: Any, live_server: LiveServer
) -> None:
    ids = _setup(live_server)
    page.goto(f"{live_server.url}/apps/{APP}/forms/patient/{ids['patient']}")
    timeline = page.get_by_test_id("timeline")
    assert timeline.get_by_role("heading", name=re.compile("Timeline")).is_visible()
    entries = timeline.get_by_test_id("timeline-entry")
    visit = timeline.locator(f"a[href$='/forms/visit/{ids['visit']}']")
    survey = timeline.locator(f"a[href$='/forms/survey/{ids['survey']}']")
    complaint = timeline.locator(f"a[href$='/forms/complaint/{ids['complaint']}']")
    assert visit.count() == 1 and survey.count() == 1
    assert complaint.inner_text() == "Bill charged twice"
    survey_entry = entries.filter(has=page.locator(f"a[href$='/forms/survey/{ids['survey']}']"))
    assert "Satisfaction survey" in survey_entry.inner_text()
    assert "Kind nurses" not in survey_entry.inner_text()  # a textarea is not summarised
    assert "9" in survey_entry.inner_text()
    # the survey is also in its own group, reached through the visit
    group = page.get_by_test_id("related-survey-via-visit")
    assert group.locator(f"a[href$='/forms/survey/{ids['survey']}']").count() == 1
    # newest first: the complaint and survey just made come before the visit
    order = [entries.nth(i).get_attribute("data-form") for i in range(entries.count())]
    assert order.index("complaint") < order.index("visit")
    assert order.index("survey") < order.index("visit")
    # the filter: only complaints, chosen with the keyboard
    only = timeline.get_by_role("button", name="Complaint", exact=True)
    only.focus()
    page.keyboard.press("Enter")
    assert only.get_attribute("aria-pressed") == "true"
    visible = [e for e in entries.all() if e.is_visible()]
    assert visible and all(e.get_attribute("data-form") == "complaint" for e in visible)
    assert not survey.is_visible()
    timeline.get_by_role("button", name="Everything").click()
    assert survey.is_visible()
    # following a link opens the survey
    survey.click()
    page.wait_for_url(re.compile(f"/forms/survey/{ids['survey']}$"))


def test_the_timeline_in_chinese(page: Any, live_server: LiveServer) -> None:
    ids = _setup(live_server)
    page.goto(f"{live_server.url}/apps/{APP}/forms/patient/{ids['patient']}?lang=zh-CN")
    timeline = page.get_by_test_id("timeline")
    assert timeline.get_by_role("heading", name=re.compile("时间线")).is_visible()
    assert timeline.get_by_role("button", name="投诉", exact=True).is_visible()
    assert "UTC" in timeline.inner_text()  # the zone the times are in is named
    entry = timeline.get_by_test_id("timeline-entry").filter(
        has=page.locator(f"a[href$='/forms/survey/{ids['survey']}']")
    )
    assert "满意度调查" in entry.inner_text()


def _nps_this_month(api: httpx.Client) -> str:
    """NPS of every survey that arrived this month (the server's zone is UTC), worked out
    from the surveys themselves and written as the KPI tile writes it (two decimals at
    most)."""
    month = datetime.now(UTC).strftime("%Y-%m")
    scores: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        found = api.get(f"/api/records/{APP}/survey", params=params)
        assert found.status_code == 200, found.text
        body = found.json()
        scores += [r["data"]["nps"] for r in body["items"] if r["created_at"].startswith(month)]
        cursor = body.get("next_cursor")
        if not cursor:
            break
    assert scores
    promoters = sum(1 for score in scores if score >= 9)
    detractors = sum(1 for score in scores if score <= 6)
    value = 100 * promoters / len(scores) - 100 * detractors / len(scores)
    return f"{round(value, 2):g}"


def _nps_tile(page: Any, live_server: LiveServer) -> str:
    page.goto(f"{live_server.url}{BOARD}")
    return str(page.locator("[data-report=nps_overall] .kpi-value").text_content()).strip()


def test_a_survey_answered_through_its_link_shows_on_the_patient_page(
    browser: Any, page: Any, live_server: LiveServer
) -> None:
    """The issue's proof: the patient answers on a phone in Chinese, with no account, and the
    answer is on their patient page and in the NPS tile of the manager's dashboard."""
    with live_server.api() as api:
        before = _nps_this_month(api)
    assert _nps_tile(page, live_server) == before
    with live_server.api() as api:
        [visit] = api.get(f"/api/records/{APP}/visit", params={"limit": 1}).json()["items"]
        made = api.post(
            f"/api/apps/{APP}/forms/survey/links",
            json={"bind": {"field": "visit", "record": visit["id"]},
                  "fields": ["nps", "satisfaction", "comment"]},
        )  # fmt: skip
        assert made.status_code == 201, made.text
    phone = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    phone.set_default_timeout(15_000)
    try:
        tab = phone.new_page()
        tab.goto(f"{live_server.url}{made.json()['url']}?lang=zh-CN")
        tab.fill("input[name=nps]", "10")
        tab.fill("input[name=satisfaction]", "4")
        tab.fill("textarea[name=comment]", "医生讲解很清楚 360")
        tab.get_by_test_id("submit").click()
        tab.get_by_test_id("thank-you").wait_for(state="visible")
    finally:
        phone.close()
    with live_server.api() as api:
        surveys = api.get(f"/api/records/{APP}/survey", params={"limit": 100, "sort": "-id"})
        [answer] = [
            r for r in surveys.json()["items"] if r["data"].get("comment") == "医生讲解很清楚 360"
        ]
    page.goto(f"{live_server.url}/apps/{APP}/forms/patient/{visit['data']['patient']}?lang=zh-CN")
    entry = (
        page.get_by_test_id("timeline")
        .get_by_test_id("timeline-entry")
        .filter(has=page.locator(f"a[href$='/forms/survey/{answer['id']}']"))
    )
    text = entry.inner_text()
    assert "满意度调查" in text and ": 10" in text and ": 4" in text
    # the NPS tile counts the answer: the value worked out from every survey of the month
    with live_server.api() as api:
        after = _nps_this_month(api)
    assert after != before  # a promoter moves NPS unless it was 100 already
    assert _nps_tile(page, live_server) == after
