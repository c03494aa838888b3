"""The runtime on a phone (issue 17, item 11), in a real browser at 390 × 844: a list's rows
are cards (title, two summary fields, the status beside the title), nothing scrolls
sideways, a phone number stays on one line, ten and more patients fit on the first screen,
the top bar is one line with a menu button for the rest; the form and the task inbox fit
too. At 1280 px the list is the table it always was. English and Chinese."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, LiveServer, sign_in
from tests.ui.test_runtime_helpers import APP

PHONE = {"width": 390, "height": 844}

#: One line of the top bar: every visible item's vertical middle within a few pixels.
ONE_LINE = """() => {
  const bar = document.querySelector("header.top");
  const menu = bar.querySelector(".top-menu");
  const inline = getComputedStyle(menu).display === "contents";
  const items = [...bar.children, ...(inline ? menu.children : [])].filter((item) =>
    item !== menu && item.getClientRects().length && item.offsetWidth > 0
    && getComputedStyle(item).position !== "absolute");
  const boxes = items.map((item) => item.getBoundingClientRect());
  const middles = boxes.map((box) => box.top + box.height / 2);
  return {count: items.length, spread: Math.max(...middles) - Math.min(...middles),
          height: bar.getBoundingClientRect().height,
          tallest: Math.max(...boxes.map((box) => box.height))};
}"""
NO_SIDEWAYS = "document.scrollingElement.scrollWidth <= innerWidth"


@pytest.fixture
def phone(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """``phone(locale)``: a signed-in tab on a 390 × 844 screen."""
    contexts: list[Any] = []
    errors: list[str] = []

    def open_tab(locale: str = "en-US", viewport: dict[str, int] = PHONE) -> Any:
        context = browser.new_context(locale=locale, viewport=viewport, has_touch=True)
        context.set_default_timeout(15_000)
        contexts.append(context)
        tab = context.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(tab, live_server, ADMIN, ADMIN_PASSWORD)
        return tab

    yield open_tab
    for context in contexts:
        context.close()
    assert not errors, errors


def _top_bar_is_one_line(tab: Any) -> None:
    line = tab.evaluate(ONE_LINE)
    assert line["count"] >= 3, line  # the brand or crumbs, the task badge, the menu button
    assert line["spread"] <= 4, line
    assert line["height"] < line["tallest"] * 1.8, line


def test_the_patient_list_is_cards_on_a_phone(phone: Any, live_server: LiveServer) -> None:
    tab = phone()
    tab.goto(f"{live_server.url}/apps/{APP}/forms/patient")
    assert tab.evaluate(NO_SIDEWAYS)
    _top_bar_is_one_line(tab)
    cards = tab.get_by_test_id("record-row")
    first = cards.first
    assert first.evaluate("row => getComputedStyle(row).display") == "flex"
    assert tab.locator("table.records thead").is_hidden()
    # the card: the title, then the patient's phone and birth date (the form's summary)
    title = first.locator("th.title-cell")
    phone_cell = first.locator("td[data-card='1']")
    birth = first.locator("td[data-card='2']")
    assert phone_cell.get_attribute("data-col") == "phone"
    assert birth.get_attribute("data-col") == "birth_date"
    assert title.inner_text() and phone_cell.inner_text().startswith("+86")
    assert birth.inner_text()[:2] in ("19", "20")
    for cell in (title, phone_cell, birth):
        assert cell.is_visible()
    title_box, phone_box = title.bounding_box(), phone_cell.bounding_box()
    assert phone_box["y"] >= title_box["y"] + title_box["height"] - 1  # under the title
    # every other cell of the row is left out of the card
    assert first.locator("td[data-col=gender]").is_hidden()
    assert first.locator("td[data-col=email]").is_hidden()
    # a phone number on one line
    lines = phone_cell.evaluate(
        "cell => cell.getBoundingClientRect().height"
        " / parseFloat(getComputedStyle(cell).lineHeight)"
    )
    assert lines < 1.5, lines
    # ten and more patients on the first screen, each card whole
    shown = tab.evaluate(
        "[...document.querySelectorAll('[data-testid=record-row]')]"
        ".filter((row) => row.getBoundingClientRect().bottom <= innerHeight).length"
    )
    assert shown >= 10, shown
    # a tap anywhere on the card (here on the phone number) opens the record
    href = title.locator("a").get_attribute("href")
    tab.touchscreen.tap(phone_box["x"] + 10, phone_box["y"] + phone_box["height"] / 2)
    tab.wait_for_url(f"{live_server.url}{href}")
    assert tab.evaluate(NO_SIDEWAYS)
    _top_bar_is_one_line(tab)


def test_a_search_on_a_phone_answers_in_cards(phone: Any, live_server: LiveServer) -> None:
    tab = phone()
    tab.goto(f"{live_server.url}/apps/{APP}/forms/patient")
    before = tab.get_by_test_id("record-row").count()
    tab.get_by_test_id("list-search-input").fill("139")
    tab.wait_for_function(
        "document.querySelectorAll('[data-testid=record-row]').length < "
        f"{before} || location.search.includes('q=')"
    )
    assert (
        tab.get_by_test_id("record-row").first.evaluate("r => getComputedStyle(r).display")
        == "flex"
    )
    assert tab.get_by_test_id("record-row").first.locator("td[data-card='1']").is_visible()
    assert tab.evaluate(NO_SIDEWAYS)
    # the column picker has nothing to pick on a card
    assert tab.get_by_test_id("columns").is_hidden()
    # the filter bar opens under the search box, and its button (not covered) closes it
    tab.get_by_test_id("filter-toggle").click()
    assert tab.get_by_test_id("filter-bar").is_visible()
    assert tab.evaluate(NO_SIDEWAYS)
    tab.get_by_test_id("filter-toggle").click()
    assert tab.get_by_test_id("filter-bar").is_hidden()


def test_a_card_shows_the_status_beside_the_title(phone: Any, live_server: LiveServer) -> None:
    tab = phone("zh-CN")
    tab.goto(f"{live_server.url}/apps/{APP}/forms/complaint")
    assert tab.evaluate(NO_SIDEWAYS)
    _top_bar_is_one_line(tab)
    card = tab.get_by_test_id("record-row").first
    title, status = card.locator("th.title-cell"), card.locator("td[data-card=status]")
    assert status.get_attribute("data-col") == "status"
    assert status.inner_text() in ("新登记", "处理中", "审核中", "已结案"), status.inner_text()
    title_box, status_box = title.bounding_box(), status.bounding_box()
    assert abs(title_box["y"] - status_box["y"]) < 8  # on the title's line
    assert status_box["x"] > title_box["x"] + title_box["width"] - 1  # to its right
    assert card.locator("td[data-card='1']").get_attribute("data-col") == "phone"


def test_the_menu_button_holds_search_language_and_sign_out(
    phone: Any, live_server: LiveServer
) -> None:
    tab = phone("zh-CN")
    tab.goto(f"{live_server.url}/apps/{APP}/forms/patient")
    menu = tab.get_by_test_id("top-menu")
    button = tab.get_by_test_id("top-menu-button")
    assert menu.is_hidden() and tab.get_by_test_id("language").is_hidden()
    assert button.get_attribute("aria-expanded") == "false"
    assert button.inner_text() == "菜单"  # its name, read out by a screen reader
    button.click()
    assert button.get_attribute("aria-expanded") == "true"
    assert tab.get_by_test_id("language").is_visible()
    assert tab.get_by_test_id("app-search-input").is_visible()
    assert tab.get_by_role("button", name="退出").is_visible()
    assert tab.evaluate("document.activeElement.dataset.testid") == "app-search-input"
    tab.keyboard.press("Escape")
    assert menu.is_hidden()
    assert tab.evaluate("document.activeElement.dataset.testid") == "top-menu-button"
    # a tap outside closes it too
    button.click()
    tab.mouse.click(4, 600)  # the page's margin, beside the cards
    assert menu.is_hidden()
    assert tab.url.endswith("/forms/patient")
    _top_bar_is_one_line(tab)


def test_the_form_and_the_inbox_fit_a_phone(phone: Any, live_server: LiveServer) -> None:
    tab = phone()
    tab.goto(f"{live_server.url}/apps/{APP}/forms/patient/new")
    tab.locator("input[name=name]").wait_for()
    assert tab.evaluate(NO_SIDEWAYS)
    _top_bar_is_one_line(tab)
    # the form is as it was: one column of full-width fields
    name_box = tab.locator("input[name=name]").bounding_box()
    assert name_box["width"] > 300
    tab.goto(f"{live_server.url}/tasks")
    assert tab.evaluate(NO_SIDEWAYS)
    _top_bar_is_one_line(tab)
    tabs = tab.locator(".inbox-tabs a")
    boxes = [tabs.nth(i).bounding_box() for i in range(tabs.count())]
    bottoms = {round(box["y"] + box["height"]) for box in boxes}
    assert len(bottoms) == 1, boxes  # the tabs side by side, on the same line


def test_the_desktop_list_is_still_a_table(phone: Any, live_server: LiveServer) -> None:
    tab = phone("en-US", {"width": 1280, "height": 900})
    tab.goto(f"{live_server.url}/apps/{APP}/forms/patient")
    table = tab.get_by_test_id("records")
    assert table.evaluate("t => getComputedStyle(t).display") == "table"
    assert tab.locator("table.records thead").is_visible()
    row = tab.get_by_test_id("record-row").first
    assert row.evaluate("r => getComputedStyle(r).display") == "table-row"
    assert row.locator("td[data-col=gender]").is_visible()  # every default column
    assert tab.get_by_test_id("columns").is_visible()
    # the top bar shows everything in one line, with no menu button
    assert tab.get_by_test_id("top-menu-button").is_hidden()
    for item in ("language", "app-search-input", "who", "inbox-badge"):
        assert tab.get_by_test_id(item).is_visible(), item
    _top_bar_is_one_line(tab)
    # the inbox badge sits between the language and the signed-in name, as before
    xs = [tab.get_by_test_id(i).bounding_box()["x"] for i in ("language", "inbox-badge", "who")]
    assert xs == sorted(xs)
