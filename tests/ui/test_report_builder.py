"""The report builder in Chromium (issue 15's proof for reports): the clinic's ``nps_by_doctor``
rebuilt from an empty start by the head office (a designer, not a platform admin) — by mouse
with drag and drop in English, by keyboard alone in Chinese — saves the very JSON the clinic
ships (under another key); the preview shows the numbers ``GET /api/reports/{app}/{key}``
gives; errors from the preview and the save show at their element; undo, redo, a stale
save (412) and the unsaved-changes guard; a branch manager (no design) gets no edit links,
a 403 page and 403 from the save API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import lxml.html
import pytest

from formloom.engines.reports import PivotResult
from formloom.engines.reports.render import to_html
from formloom.platform.reports.service import chart_text
from tests.ui.conftest import ROOT, LiveServer, sign_in

APP = "clinic_crm"
PASSWORD = "report-builder-tests-pw"
HEAD_OFFICE, MANAGER = "demo_head_office", "demo_manager"
SHIPPED = json.loads((ROOT / "builtin_apps" / APP / "app.json").read_text(encoding="utf-8"))
NPS = next(report for report in SHIPPED["reports"] if report["key"] == "nps_by_doctor")
#: The two shares of nps_by_doctor: (index among the values, key, numerator).
DERIVED = ((3, "promoter_pct", "promoters"), (4, "detractor_pct", "detractors"))
MADE = ("nps_mouse", "nps_keys", "nps_stale", "nps_copy")


def normalised(value: Any) -> Any:
    """A JSON value with its objects' keys in order (lists keep theirs: order means
    something in rows, measures...)."""
    if isinstance(value, dict):
        return {key: normalised(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [normalised(item) for item in value]
    return value


def same_report(saved: dict[str, Any], shipped: dict[str, Any]) -> None:
    """Equal modulo key order, the key aside."""
    mine = {k: v for k, v in saved.items() if k != "key"}
    theirs = {k: v for k, v in shipped.items() if k != "key"}
    assert normalised(mine) == normalised(theirs)


@pytest.fixture(scope="module")
def people(live_server: LiveServer) -> Iterator[None]:
    """The head office and a branch manager with a known password; the reports the tests
    make are removed afterwards (other browser tests share the server)."""
    for name in (HEAD_OFFICE, MANAGER):
        done = live_server.cli("user", "set-password", name, "--password-stdin", stdin=PASSWORD)
        assert done.returncode == 0, done.stderr
    yield
    with live_server.api() as api:
        for key in MADE:
            api.delete(f"/api/apps/{APP}/reports/{key}")


@pytest.fixture
def tab_as(browser: Any, live_server: LiveServer, people: None) -> Iterator[Any]:
    contexts: list[Any] = []
    errors: list[str] = []

    def open_tab(username: str, locale: str = "en-US") -> Any:
        context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(45_000)  # a save re-plans the whole clinic app
        contexts.append(context)
        tab = context.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(tab, live_server, username, PASSWORD)
        return tab

    yield open_tab
    for context in contexts:
        context.close()
    assert not errors, errors


def saved_report(server: LiveServer, key: str) -> dict[str, Any]:
    with server.api() as api:
        answer = api.get(f"/api/apps/{APP}/reports/{key}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["report"])


def wait_saved(tab: Any) -> None:
    tab.wait_for_function(
        "document.querySelector('[data-testid=report-status]').dataset.kind === 'ok'"
    )
    assert tab.get_by_test_id("report-dirty").is_hidden()


def wait_preview(tab: Any, outcome: str = "ok") -> None:
    """The preview of the report as it stands now has come back (``ok`` or ``error``)."""
    time.sleep(0.5)  # past the debounce: a preview of the latest edit is on its way
    tab.wait_for_function(
        "['ok', 'error', 'empty'].includes("
        "document.querySelector('[data-testid=report-builder]').dataset.preview)"
    )
    state = tab.get_by_test_id("report-builder").get_attribute("data-preview")
    assert state == outcome, (
        tab.get_by_test_id("preview-state").inner_text(),
        tab.get_by_test_id("report-json").text_content(),
    )


def drag(tab: Any, chip: str, zone: str) -> None:
    """Drag a field by its name onto a zone's heading (HTML5 drag and drop)."""
    before = tab.get_by_test_id(zone).locator(".rb-item").count()
    tab.get_by_test_id(chip).locator(".rb-chip-name").drag_to(
        tab.get_by_test_id(zone).locator("h2")
    )
    assert tab.get_by_test_id(zone).locator(".rb-item").count() == before + 1


def test_the_head_office_rebuilds_nps_by_doctor_by_mouse(
    tab_as: Any, live_server: LiveServer
) -> None:
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}")
    tab.get_by_test_id("designer-reports").click()  # a link: wait for its page
    tab.get_by_test_id("report-edit-nps_by_doctor").wait_for(state="visible")
    tab.get_by_test_id("reports-new").click()
    tab.wait_for_selector("[data-testid=report-builder][data-ready]")
    by = tab.get_by_test_id

    def fill(testid: str, text: str) -> None:
        by(testid).fill(text)
        by(testid).blur()

    fill("report-key", "nps_mouse")
    fill("report-label-en", NPS["label"]["en"])
    fill("report-label-zh-CN", NPS["label"]["zh-CN"])
    by("report-form").select_option("survey")

    drag(tab, "chip-doctor", "zone-rows")
    fill("rows-0-label-en", "Doctor")
    fill("rows-0-label-zh-CN", "医生")
    for _ in range(3):
        drag(tab, "chip-records", "zone-measures")
    assert by("measures-2").is_visible()
    fill("measures-0-key", "responses")
    fill("measures-0-label-en", "Responses")
    fill("measures-0-label-zh-CN", "回复数")
    for index, key, op, value in ((1, "promoters", ">=", "9"), (2, "detractors", "<=", "6")):
        fill(f"measures-{index}-key", key)
        by(f"measures-{index}-filter-add").click()
        by(f"measures-{index}-filter-field-0").select_option("nps")
        by(f"measures-{index}-filter-op-0").select_option(op)
        fill(f"measures-{index}-filter-value-0", value)
    for index, key, numerator in DERIVED:
        by("measures-add-derived").click()
        fill(f"measures-{index}-key", key)
        by(f"measures-{index}-numerator").select_option(numerator)
        by(f"measures-{index}-denominator").select_option("responses")
        fill(f"measures-{index}-scale", "100")
    by("measures-add-derived").click()
    fill("measures-5-key", "nps")
    by("measures-5-op").select_option("difference")
    by("measures-5-minuend").select_option("promoter_pct")
    by("measures-5-subtrahend").select_option("detractor_pct")
    fill("measures-5-label-en", "NPS")
    fill("measures-5-label-zh-CN", "净推荐值")

    by("sort-by").select_option("nps")
    by("sort-direction").select_option("desc")
    by("chart-type").select_option("bar")
    by("chart-measure").select_option("nps")
    fill("chart-y-label-en", "NPS")
    fill("chart-y-label-zh-CN", "净推荐值")
    wait_preview(tab)
    assert by("preview-chart").locator("svg").count() == 1
    assert by("report-dirty").is_visible()

    by("report-save").click()
    assert "nps_mouse" in by("report-plan-lines").inner_text()
    by("report-confirm").click()
    wait_saved(tab)
    assert tab.url.endswith(f"/designer/{APP}/reports/nps_mouse")
    same_report(saved_report(live_server, "nps_mouse"), NPS)

    # undo and redo walk the edits back and forth; nothing is saved by them
    by("report-undo").click()
    assert by("report-dirty").is_visible()
    tab.keyboard.press("Control+Shift+Z")
    assert by("report-dirty").is_hidden()
    same_report(saved_report(live_server, "nps_mouse"), NPS)


def focused(tab: Any) -> str:
    return str(tab.evaluate("document.activeElement?.dataset?.testid || ''"))


def tab_to(tab: Any, testid: str, limit: int = 300) -> None:
    """Press Tab until the element with ``testid`` has the focus."""
    for _ in range(limit):
        if focused(tab) == testid:
            return
        tab.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {testid} (stuck at {focused(tab)!r})")


def choose(tab: Any, testid: str, value: str) -> None:
    """Pick an option of a select with the arrow keys (each step redraws the builder,
    which keeps the focus on the select)."""
    tab_to(tab, testid)
    options = tab.evaluate("[...document.activeElement.options].map((o) => o.value)")
    current = tab.evaluate("document.activeElement.value")
    steps = options.index(value) - options.index(current)
    for _ in range(abs(steps)):
        tab.keyboard.press("ArrowDown" if steps > 0 else "ArrowUp")
    assert focused(tab) == testid
    assert tab.evaluate("document.activeElement.value") == value


def type_into(tab: Any, testid: str, text: str) -> None:
    """Tab to a text box, replace what it holds with ``text`` and leave it."""
    tab_to(tab, testid)
    tab.keyboard.press("Control+A")
    tab.keyboard.type(text)
    tab.keyboard.press("Tab")


def test_nps_by_doctor_rebuilt_with_the_keyboard_only_in_chinese(
    tab_as: Any, live_server: LiveServer
) -> None:
    tab = tab_as(HEAD_OFFICE, locale="zh-CN")
    tab.goto(f"{live_server.url}/designer/{APP}/reports/new")
    tab.wait_for_selector("[data-testid=report-builder][data-ready]")
    assert "字段" in tab.get_by_test_id("report-palette").inner_text()
    keys = tab.keyboard

    type_into(tab, "report-key", "nps_keys")
    type_into(tab, "report-label-en", NPS["label"]["en"])
    type_into(tab, "report-label-zh-CN", NPS["label"]["zh-CN"])
    choose(tab, "report-form", "survey")
    tab_to(tab, "chip-records-measures")
    for _ in range(3):
        keys.press("Enter")
    assert "记录数" in tab.get_by_test_id("report-status").inner_text()
    tab_to(tab, "chip-doctor-rows")
    keys.press("Enter")
    type_into(tab, "rows-0-label-en", "Doctor")
    type_into(tab, "rows-0-label-zh-CN", "医生")
    type_into(tab, "measures-0-key", "responses")
    type_into(tab, "measures-0-label-en", "Responses")
    type_into(tab, "measures-0-label-zh-CN", "回复数")
    for index, key, op, value in ((1, "promoters", ">=", "9"), (2, "detractors", "<=", "6")):
        type_into(tab, f"measures-{index}-key", key)
        tab_to(tab, f"measures-{index}-filter-add")
        keys.press("Enter")
        choose(tab, f"measures-{index}-filter-field-0", "nps")
        choose(tab, f"measures-{index}-filter-op-0", op)
        type_into(tab, f"measures-{index}-filter-value-0", value)
    for index, key, numerator in DERIVED:
        tab_to(tab, "measures-add-derived")
        keys.press("Enter")
        assert focused(tab) == f"measures-{index}-key"
        keys.press("Control+A")
        keys.type(key)
        keys.press("Tab")
        choose(tab, f"measures-{index}-numerator", numerator)
        choose(tab, f"measures-{index}-denominator", "responses")
        type_into(tab, f"measures-{index}-scale", "100")
    tab_to(tab, "measures-add-derived")
    keys.press("Enter")
    keys.press("Control+A")
    keys.type("nps")
    keys.press("Tab")
    choose(tab, "measures-5-op", "difference")
    choose(tab, "measures-5-minuend", "promoter_pct")
    choose(tab, "measures-5-subtrahend", "detractor_pct")
    type_into(tab, "measures-5-label-en", "NPS")
    type_into(tab, "measures-5-label-zh-CN", "净推荐值")
    choose(tab, "sort-by", "nps")
    choose(tab, "sort-direction", "desc")
    choose(tab, "chart-type", "bar")
    choose(tab, "chart-measure", "nps")
    type_into(tab, "chart-y-label-en", "NPS")
    type_into(tab, "chart-y-label-zh-CN", "净推荐值")

    keys.press("Control+s")
    tab.get_by_test_id("report-confirm").wait_for()
    assert focused(tab) == "report-confirm"
    keys.press("Enter")
    wait_saved(tab)
    same_report(saved_report(live_server, "nps_keys"), NPS)


def test_items_in_a_zone_move_and_go_with_keys(tab_as: Any, live_server: LiveServer) -> None:
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}/reports/nps_by_doctor")
    tab.wait_for_selector("[data-testid=report-builder][data-ready]")
    wait_preview(tab)
    key = lambda index: tab.get_by_test_id(f"measures-{index}-key").input_value()  # noqa: E731
    assert (key(0), key(1)) == ("responses", "promoters")
    tab.get_by_test_id("measures-0").focus()
    tab.keyboard.press("Alt+ArrowDown")
    assert focused(tab) == "measures-1"
    assert (key(0), key(1)) == ("promoters", "responses")
    tab.keyboard.press("Alt+ArrowUp")
    assert focused(tab) == "measures-0"
    assert (key(0), key(1)) == ("responses", "promoters")
    tab.get_by_test_id("rows-0").focus()
    tab.keyboard.press("Delete")
    assert tab.get_by_test_id("rows-0").count() == 0
    assert tab.get_by_test_id("report-dirty").is_visible()
    tab.keyboard.press("Control+z")
    assert tab.get_by_test_id("rows-0").count() == 1
    assert tab.get_by_test_id("report-dirty").is_hidden()  # as read: the moves cancel out
    tab.keyboard.press("Control+z")  # the move up undone: the move down is left
    assert (key(0), key(1)) == ("promoters", "responses")
    tab.keyboard.press("Control+Shift+Z")
    assert (key(0), key(1)) == ("responses", "promoters")


def _cells(html: str) -> list[list[str]]:
    table = lxml.html.fromstring(html)
    return [
        [cell.text_content().strip() for cell in row.xpath("./th|./td")]
        for row in table.xpath(".//tr")
    ]


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_the_preview_shows_the_numbers_of_the_report_api(
    tab_as: Any, live_server: LiveServer, locale: str
) -> None:
    tab = tab_as(HEAD_OFFICE, locale=locale)
    tab.goto(f"{live_server.url}/designer/{APP}/reports/nps_by_doctor")
    tab.wait_for_selector("[data-testid=report-builder][data-ready]")
    wait_preview(tab)
    shown = _cells(tab.get_by_test_id("preview-table").inner_html())
    lang = "zh-CN" if locale == "zh-CN" else "en"
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        token = client.post(
            "/api/auth/token", json={"username": HEAD_OFFICE, "password": PASSWORD}
        ).json()["access_token"]
        ran = client.get(
            f"/api/reports/{APP}/nps_by_doctor",
            params={"locale": lang},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert ran.status_code == 200, ran.text
    result = PivotResult.model_validate(ran.json()["result"])
    text = chart_text(lang)
    expected = _cells(to_html(result, caption=ran.json()["label"], total=text.total, text=text))
    assert len(shown) > 2  # doctors, a header and the totals
    assert shown == expected
    # the chart draws the report's own measure with its axis label
    assert NPS["chart"]["y_label"][lang] in tab.get_by_test_id("preview-chart").inner_text()


def test_errors_show_at_their_element_and_a_stale_save_asks_for_a_reload(
    tab_as: Any, live_server: LiveServer
) -> None:
    with live_server.api() as api:
        made = api.put(
            f"/api/apps/{APP}/reports/nps_stale", json={k: v for k, v in NPS.items() if k != "key"}
        )
        assert made.status_code in (200, 201), made.text
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}/reports/nps_stale")
    tab.wait_for_selector("[data-testid=report-builder][data-ready]")
    wait_preview(tab)

    # a preview that cannot run: the problem shows at the measure's element
    tab.get_by_test_id("measures-3-numerator").select_option("")
    wait_preview(tab, "error")
    error = tab.locator("[data-error-for^='/measures/3']")
    error.first.wait_for()
    assert tab.get_by_test_id("measures-3").get_attribute("class").count("has-error") == 1
    tab.keyboard.press("Control+z")
    wait_preview(tab)
    assert tab.locator("[data-error-for^='/measures/3']").count() == 0

    # a save the server refuses (a label must be given): shown at the label's boxes
    for locale in ("en", "zh-CN"):
        tab.get_by_test_id(f"report-label-{locale}").fill("")
    tab.get_by_test_id("report-label-zh-CN").blur()
    tab.keyboard.press("Control+s")
    tab.locator("[data-error-for^='/label']").first.wait_for()
    assert tab.get_by_test_id("report-problems").is_visible()
    tab.get_by_test_id("report-label-en").fill("NPS (stale)")
    tab.get_by_test_id("report-label-en").blur()

    # someone else saves the app meanwhile: a clear message to reload, nothing overwritten
    with live_server.api() as api:
        body = {k: v for k, v in NPS.items() if k != "key"} | {"label": "Changed elsewhere"}
        assert api.put(f"/api/apps/{APP}/reports/nps_stale", json=body).status_code == 200
    tab.get_by_test_id("report-save").click()
    status = tab.get_by_test_id("report-status")
    tab.wait_for_function(
        "document.querySelector('[data-testid=report-status]').dataset.kind === 'error'"
    )
    assert "reload" in status.inner_text()
    assert saved_report(live_server, "nps_stale")["label"] == "Changed elsewhere"

    # the unsaved-changes guard asks before leaving
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    tab.get_by_role("link", name="Reports", exact=False).first.click()
    time.sleep(0.5)
    assert dialogs == ["beforeunload"]


def test_a_report_is_deleted_from_the_builder(tab_as: Any, live_server: LiveServer) -> None:
    with live_server.api() as api:
        body = {k: v for k, v in NPS.items() if k != "key"}
        assert api.put(f"/api/apps/{APP}/reports/nps_copy", json=body).status_code == 201
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}/reports")
    tab.get_by_test_id("report-edit-nps_copy").click()
    tab.wait_for_selector("[data-testid=report-builder][data-ready]")
    tab.once("dialog", lambda dialog: dialog.accept())
    tab.get_by_test_id("report-delete").click()
    tab.wait_for_url(f"{live_server.url}/designer/{APP}/reports")
    assert tab.get_by_test_id("report-edit-nps_copy").count() == 0
    with live_server.api() as api:
        assert api.get(f"/api/apps/{APP}/reports/nps_copy").status_code == 404


def test_a_branch_manager_reads_reports_but_cannot_design_them(
    tab_as: Any, live_server: LiveServer
) -> None:
    tab = tab_as(MANAGER)
    page = tab.goto(f"{live_server.url}/designer/{APP}/reports")
    assert page is not None and page.status == 200
    assert tab.get_by_test_id("report-table-nps_by_doctor").is_visible()
    assert tab.locator("[data-testid^=report-edit-]").count() == 0
    assert tab.get_by_test_id("reports-new").count() == 0
    page = tab.goto(f"{live_server.url}/designer/{APP}/reports/nps_by_doctor")
    assert page is not None and page.status == 403
    page = tab.goto(f"{live_server.url}/designer/{APP}/reports/new")
    assert page is not None and page.status == 403
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        token = client.post(
            "/api/auth/token", json={"username": MANAGER, "password": PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = {k: v for k, v in NPS.items() if k != "key"}
        put = client.put(f"/api/apps/{APP}/reports/nps_by_doctor", json=body, headers=headers)
        delete = client.delete(f"/api/apps/{APP}/reports/nps_by_doctor", headers=headers)
    assert (put.status_code, delete.status_code) == (403, 403)


def test_the_analyses_managers_ask_for_are_set_in_the_builder(
    tab_as: Any, live_server: LiveServer
) -> None:
    """A percentile, a running total, empty months filled and a bottom-N show as their
    controls, the preview equals the report API, and changing them in the builder saves."""
    report = {
        "label": {"en": "Visits by month", "zh-CN": "每月就诊"},
        "form": "visit",
        "rows": [{"field": "visit_date", "bucket": "month", "fill": True}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "p90", "op": "percentile", "p": 0.9, "field": "pain_score"},
            {"key": "run", "op": "running_total", "of": "n"},
        ],
        "chart": {"type": "line"},
    }
    with live_server.api() as api:
        made = api.put(f"/api/apps/{APP}/reports/visits_analysed", json=report)
        assert made.status_code in (200, 201), made.text
        ran = api.get(f"/api/reports/{APP}/visits_analysed", params={"locale": "en"})
        assert ran.status_code == 200, ran.text
    tab = tab_as(HEAD_OFFICE)
    tab.goto(f"{live_server.url}/designer/{APP}/reports/visits_analysed")
    tab.wait_for_selector("[data-testid=report-builder][data-ready]")
    wait_preview(tab)
    assert tab.get_by_test_id("measures-1-op").input_value() == "percentile"
    assert tab.get_by_test_id("measures-1-p").input_value() == "0.9"
    assert tab.get_by_test_id("measures-2-op").input_value() == "running_total"
    assert tab.get_by_test_id("rows-0-fill").is_checked()
    result = PivotResult.model_validate(ran.json()["result"])
    text = chart_text("en")
    expected = _cells(to_html(result, caption=ran.json()["label"], total=text.total, text=text))
    assert _cells(tab.get_by_test_id("preview-table").inner_html()) == expected

    tab.get_by_test_id("rows-0-fill").uncheck()
    tab.get_by_test_id("measures-2-op").select_option("rank")
    tab.get_by_test_id("measures-1-p").fill("0.5")
    tab.get_by_test_id("measures-1-p").blur()
    wait_preview(tab)
    tab.get_by_test_id("report-save").click()
    tab.get_by_test_id("report-confirm").click()
    wait_saved(tab)
    saved = saved_report(live_server, "visits_analysed")
    assert "fill" not in saved["rows"][0]
    assert saved["measures"][1] == {"key": "p90", "op": "percentile", "p": 0.5,
                                    "field": "pain_score"}  # fmt: skip
    assert saved["measures"][2] == {"key": "run", "op": "rank", "of": "n"}
    with live_server.api() as api:
        api.delete(f"/api/apps/{APP}/reports/visits_analysed")
