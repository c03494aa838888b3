"""Quick search in a real browser (issue 17, item 1): the list's search box finds patients as
you type (names exact, then prefix, then contains; phone numbers whatever the spaces and
+86), keeps the term in the address and the CSV link, and says when nothing matches; the
header's box searches the whole app and groups the matches by form. English and Chinese."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.ui.conftest import LiveServer
from tests.ui.test_runtime_helpers import APP, create


@pytest.fixture(scope="module")
def patients(live_server: LiveServer) -> dict[str, str]:
    """Three patients whose names hold "Zhenqiu": exact, prefix, contains (made in the
    opposite order, so creation order cannot pass for ranking)."""
    made = {}
    for name, phone in [
        ("Mo Zhenqiu", "0086-137-2468-0003"),
        ("Zhenqiu Bai", "137 2468 0002"),
        ("Zhenqiu", "+86 137 2468 0001"),
    ]:
        made[name] = create(live_server, "patient", {"name": name, "phone": phone})["id"]
    return made


def _titles(page: Any) -> list[str]:
    return page.locator("tbody th.title-cell").all_inner_texts()


def test_list_search_as_you_type(
    page: Any, live_server: LiveServer, patients: dict[str, str]
) -> None:
    page.goto(f"{live_server.url}/apps/{APP}/forms/patient")
    box = page.get_by_test_id("list-search-input")
    assert box.get_attribute("placeholder") == "Search: Name / Mobile phone"
    box.fill("zhenqiu")
    page.wait_for_function("document.querySelectorAll('[data-testid=record-row]').length === 3")
    assert _titles(page) == ["Zhenqiu", "Zhenqiu Bai", "Mo Zhenqiu"]
    assert page.get_by_test_id("count").inner_text() == "3 records"
    assert parse_qs(urlparse(page.url).query)["q"] == ["zhenqiu"]
    export = page.get_by_test_id("export").get_attribute("href")
    assert parse_qs(urlparse(export).query)["q"] == ["zhenqiu"]
    # a phone number typed any way finds the one patient, and the count is singular
    for typed in ["137 2468 0001", "+86-13724680001", "13724680001"]:
        box.fill(typed)
        page.wait_for_function("document.querySelectorAll('[data-testid=record-row]').length === 1")
        assert _titles(page) == ["Zhenqiu"], typed
        assert page.get_by_test_id("count").inner_text() == "1 record"
    # stored as 0086-…: found by its plain digits
    box.fill("13724680003")
    page.wait_for_function(
        "document.querySelector('tbody th.title-cell')?.innerText === 'Mo Zhenqiu'"
    )
    # nothing matches: the page says so, with the term
    box.fill("no such patient qq")
    page.wait_for_function("document.querySelectorAll('[data-testid=record-row]').length === 0")
    assert page.get_by_test_id("empty").inner_text() == "No records match “no such patient qq”."
    assert page.get_by_test_id("count").inner_text() == "0 records"
    # Escape clears the search: the whole list is back
    box.press("Escape")
    page.wait_for_function("document.querySelectorAll('[data-testid=record-row]').length > 3")
    assert page.get_by_test_id("empty").is_hidden()
    assert "q" not in parse_qs(urlparse(page.url).query)
    # the address carries a search: opened (or reloaded) it is rendered on the server
    page.goto(f"{live_server.url}/apps/{APP}/forms/patient?q=ZHENQIU")
    assert page.get_by_test_id("list-search-input").input_value() == "ZHENQIU"
    assert _titles(page) == ["Zhenqiu", "Zhenqiu Bai", "Mo Zhenqiu"]
    # the CSV follows the search
    with page.expect_download() as download:
        page.get_by_test_id("export").click()
    text = download.value.path().read_text(encoding="utf-8-sig")
    assert len(text.strip().splitlines()) == 4  # the header and three patients


def test_header_search_groups_matches_by_form(
    page: Any, live_server: LiveServer, patients: dict[str, str]
) -> None:
    page.goto(f"{live_server.url}/apps/{APP}")
    box = page.get_by_test_id("app-search-input")
    box.fill("zhenqiu")
    results = page.get_by_test_id("app-search-results")
    results.get_by_test_id("app-search-hit").first.wait_for()
    group = results.locator("[data-testid=app-search-group][data-form=patient]")
    assert group.locator("h2").inner_text().lower() == "patient"
    hits = group.get_by_test_id("app-search-hit")
    assert hits.all_inner_texts() == ["Zhenqiu", "Zhenqiu Bai", "Mo Zhenqiu"]
    # keyboard: ↓ enters the menu, ↓ again the next match, Enter opens it
    box.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/forms/patient/{patients['Zhenqiu Bai']}$"))
    # the box is on every page of the app; Escape closes its menu
    box = page.get_by_test_id("app-search-input")
    box.fill("13724680002")
    page.get_by_test_id("app-search-hit").first.wait_for()
    assert page.get_by_test_id("app-search-hit").all_inner_texts() == ["Zhenqiu Bai"]
    box.press("Escape")
    assert page.get_by_test_id("app-search-results").is_hidden()


def test_search_in_chinese(browser: Any, live_server: LiveServer, patients: dict[str, str]) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        tab = context.new_page()
        from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, sign_in

        sign_in(tab, live_server, ADMIN, ADMIN_PASSWORD)
        tab.goto(f"{live_server.url}/apps/{APP}/forms/patient")
        box = tab.get_by_test_id("list-search-input")
        assert box.get_attribute("placeholder") == "搜索：姓名 / 手机号"
        box.fill("不存在的患者")
        tab.wait_for_function("document.querySelectorAll('[data-testid=record-row]').length === 0")
        assert tab.get_by_test_id("empty").inner_text() == "没有与“不存在的患者”匹配的记录。"
        assert tab.get_by_test_id("count").inner_text() == "0 条记录"
        box.fill("137 2468 0001")
        tab.wait_for_function("document.querySelectorAll('[data-testid=record-row]').length === 1")
        assert tab.get_by_test_id("count").inner_text() == "1 条记录"
        header = tab.get_by_test_id("app-search-input")
        assert header.get_attribute("placeholder") == "搜索诊所客户管理"
        header.fill("zhenqiu")
        group = tab.locator("[data-testid=app-search-group][data-form=patient]")
        group.wait_for()
        assert group.locator("h2").inner_text() == "患者"
        header.fill("没有这个")
        tab.get_by_text("没有找到“没有这个”。").wait_for()
    finally:
        context.close()
