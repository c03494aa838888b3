"""The runtime pages in a real browser: the list (sorting, columns, load more, CSV), what a
restricted role sees, Chinese, and a tablet-sized window."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import LiveServer, sign_in
from tests.ui.test_runtime_helpers import APP, PASSWORD, first_id, make_user


@pytest.fixture
def tab_as(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """``tab_as(username, locale="en-US")``: a fresh, signed-in tab for that user."""
    contexts: list[Any] = []
    errors: list[str] = []

    def open_tab(username: str, locale: str = "en-US", width: int = 1280) -> Any:
        context = browser.new_context(locale=locale, viewport={"width": width, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        tab = context.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(tab, live_server, username, PASSWORD)
        return tab

    yield open_tab
    for context in contexts:
        context.close()
    assert not errors, errors


def test_list_sorts_picks_columns_loads_more_and_exports(
    page: Any, live_server: LiveServer
) -> None:
    page.goto(f"{live_server.url}/apps/{APP}")
    page.locator("[data-form=follow_up] a.form-card-title").click()
    page.wait_for_url(re.compile(r"/forms/follow_up$"))
    with live_server.api() as api:
        total = api.get(f"/api/records/{APP}/follow_up", params={"count": "true", "limit": 1})
    count = total.json()["count"]
    assert page.get_by_test_id("count").get_attribute("data-count") == str(count)
    # sort by clicking a header, then the other way
    page.goto(f"{live_server.url}/apps/{APP}/forms/follow_up?limit=20")
    # more than a page: the page says "20+" at once, then asks the API for the exact count
    page.wait_for_function("document.querySelector('[data-testid=count]').dataset.more === 'false'")
    assert page.get_by_test_id("count").get_attribute("data-count") == str(count)
    assert page.get_by_test_id("count").inner_text() == f"{count} records"
    # (a follow-up is named by its due date: the title column sorts by it)
    titles = page.locator("tbody th.title-cell")
    page.get_by_test_id("sort-title").click()
    page.wait_for_url(re.compile(r"sort=due_date"))
    dates = titles.all_inner_texts()
    assert dates == sorted(dates) and len(dates) == 20
    page.get_by_test_id("sort-title").click()
    page.wait_for_url(re.compile(r"sort=-due_date"))
    dates = titles.all_inner_texts()
    assert dates == sorted(dates, reverse=True)
    # load more: the next keyset page is appended, in order
    rows = page.get_by_test_id("record-row")
    page.get_by_test_id("load-more").click()
    page.wait_for_function("document.querySelectorAll('[data-testid=record-row]').length === 40")
    dates = titles.all_inner_texts()
    assert dates == sorted(dates, reverse=True)
    assert len(set(rows.evaluate_all("rows => rows.map(r => r.dataset.id)"))) == 40
    # columns: hide one; the choice survives a reload and the CSV follows it
    status = page.locator("th[data-col=status]")
    assert status.is_visible()
    page.get_by_test_id("columns").locator("summary").click()
    page.get_by_test_id("columns").get_by_label("Status").uncheck()
    assert status.is_hidden() and page.locator("td[data-col=status]").first.is_hidden()
    page.reload()
    assert page.locator("th[data-col=status]").is_hidden()
    assert page.locator("th[data-col=patient]").is_visible()
    href = page.get_by_test_id("export").get_attribute("href")
    assert "fields=" in href and "status" not in href.split("fields=")[1]
    answer = page.request.get(live_server.url + href)
    assert answer.status == 200 and answer.body().startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(answer.body().decode("utf-8-sig"))))
    assert "Due" in table[0] and "Status" not in table[0]
    assert len(table) - 1 == count
    # an unusable filter is explained on the page, not a crash
    page.goto(f"{live_server.url}/apps/{APP}/forms/follow_up?filter=%7B%22map%22%3A%5B%5D%7D")
    assert page.get_by_test_id("list-error").is_visible()


def test_a_restricted_role_sees_no_hidden_field_and_no_forbidden_button(
    tab_as: Any, live_server: LiveServer
) -> None:
    # staff of the first patient's branch (the clinic's rows are limited per branch)
    patient = first_id(live_server, "patient")
    with live_server.api() as api:
        branch = api.get(f"/api/records/{APP}/patient/{patient}").json()["data"].get("branch")
    make_user(live_server, "rt_front_desk", ["front_desk"], {"branch": branch})
    make_user(live_server, "rt_nurse", ["nurse"], {"department": "general", "branch": branch})
    url = live_server.url
    desk = tab_as("rt_front_desk")
    desk.goto(f"{url}/apps/{APP}")
    assert desk.get_by_test_id("new-patient").is_visible()
    assert desk.get_by_test_id("new-visit").count() == 0  # front desk only reads visits
    assert desk.locator("text=Design").count() == 0
    desk.goto(f"{url}/apps/{APP}/forms/patient/new")
    desk.locator("input[name=name]").wait_for()
    assert desk.locator("[name=notes], [name=allergies]").count() == 0
    assert desk.locator("text=Notes").count() == 0
    desk.goto(f"{url}/apps/{APP}/forms/patient")
    picker = desk.get_by_test_id("columns")
    assert picker.locator("input[value=notes], input[value=allergies]").count() == 0
    listed = json.loads(desk.locator("#list-data").text_content())
    assert {"allergies", "notes"}.isdisjoint(f["key"] for f in listed["fields"])
    assert {"allergies", "notes"}.isdisjoint(listed["columns"])
    desk.goto(f"{url}/apps/{APP}/forms/patient/{first_id(live_server, 'patient')}")
    assert desk.get_by_test_id("edit").is_visible()
    assert desk.get_by_test_id("delete").count() == 0
    assert desk.locator("[data-field=notes]").count() == 0
    desk.goto(f"{url}/apps/{APP}/forms/visit")
    assert desk.get_by_test_id("new-record").count() == 0
    assert desk.locator("th[data-col=diagnosis]").count() == 0
    visit = first_id(live_server, "visit", filter=json.dumps({"==": [{"var": "branch"}, branch]}))
    desk.goto(f"{url}/apps/{APP}/forms/visit/{visit}")
    assert desk.get_by_test_id("edit").count() == 0 and desk.get_by_test_id("delete").count() == 0
    assert desk.locator("[data-field=diagnosis]").count() == 0
    desk.goto(f"{url}/apps/{APP}/forms/visit/{visit}/edit")
    assert desk.locator("[data-status='403']").is_visible()

    nurse = tab_as("rt_nurse")
    nurse.goto(f"{url}/apps/{APP}/forms/patient/{first_id(live_server, 'patient')}/edit")
    name = nurse.locator("input[name=name]")
    name.wait_for()
    assert name.get_attribute("readonly") is not None
    assert nurse.locator("[name=id_number]").count() == 0
    assert nurse.locator("[data-field=tags] input").first.is_disabled()


def test_the_pages_in_chinese_and_on_a_tablet(tab_as: Any, live_server: LiveServer) -> None:
    make_user(live_server, "rt_zh", ["admin"])
    tab = tab_as("rt_zh", locale="zh-CN", width=768)
    url = live_server.url
    tab.goto(f"{url}/apps/{APP}")
    assert tab.locator("h1").inner_text() == "诊所客户管理"
    assert tab.locator("[data-form=patient] .count").inner_text().endswith("条记录")
    tab.goto(f"{url}/apps/{APP}/forms/patient")
    assert tab.locator("h1").inner_text() == "患者"
    assert tab.get_by_test_id("filter-toggle").inner_text().startswith("筛选")
    assert tab.get_by_test_id("export").inner_text() == "导出表格"
    tab.get_by_test_id("filter-toggle").click()
    assert tab.get_by_test_id("filter-op").locator("option").first.inner_text() == "包含"
    assert tab.evaluate("document.documentElement.scrollWidth") <= 768
    tab.goto(f"{url}/apps/{APP}/forms/patient/new")
    assert tab.locator("label[for$='-name']").inner_text().startswith("姓名")
    assert tab.get_by_test_id("submit").inner_text() == "创建"
    assert tab.evaluate("document.documentElement.scrollWidth") <= 768
    tab.get_by_test_id("submit").click()
    error = tab.locator("[data-field=name] .fl-error")
    error.wait_for(state="visible")
    tab.goto(f"{url}/apps/{APP}/forms/patient/{first_id(live_server, 'patient')}")
    assert tab.get_by_test_id("history").locator("h2").inner_text() == "历史记录"
    assert tab.get_by_test_id("edit").inner_text() == "编辑"
