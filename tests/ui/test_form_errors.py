"""Field errors clear as the value becomes valid (issue 17, item 5), in a real browser.

The server refuses a patient (no name, a phone and an e-mail that are not ones); each error
stands at its field until that field's value changes, then goes as soon as the value is
right, or says in the reader's language what is still wrong; fields not touched keep their
errors. English and Chinese."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, LiveServer, sign_in
from tests.ui.test_runtime_helpers import APP, unique_phone


def _error(page: Any, key: str) -> Any:
    return page.locator(f"[data-field={key}] .fl-error")


def _invalid(page: Any, key: str) -> bool:
    return page.locator(f"input[name={key}]").get_attribute("aria-invalid") == "true"


def _refused(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/apps/{APP}/forms/patient/new")
    page.fill("input[name=phone]", "call me")
    page.fill("input[name=email]", "li@")
    page.get_by_test_id("submit").click()
    for key in ("name", "phone", "email"):
        _error(page, key).wait_for(state="visible")
        assert _invalid(page, key), key


def test_errors_clear_as_values_become_valid(page: Any, live_server: LiveServer) -> None:
    _refused(page, live_server)
    # one letter of a name is a name: its error goes at once, the others stay
    page.locator("input[name=name]").press_sequentially("L")
    _error(page, "name").wait_for(state="hidden")
    assert not _invalid(page, "name")
    assert _error(page, "phone").is_visible() and _error(page, "email").is_visible()
    # a phone number still too short: still wrong, and the message says why
    page.fill("input[name=phone]", "12")
    assert _error(page, "phone").inner_text() == "Mobile phone is not a valid phone number"
    assert _invalid(page, "phone")
    # a real number: the error goes
    page.fill("input[name=phone]", unique_phone())
    _error(page, "phone").wait_for(state="hidden")
    assert not _invalid(page, "phone")
    # the e-mail, fixed key by key
    email = page.locator("input[name=email]")
    email.press_sequentially("example")
    assert _error(page, "email").inner_text() == "Email is not a valid e-mail address"
    email.press_sequentially(".com")
    _error(page, "email").wait_for(state="hidden")
    # and the save goes through
    page.get_by_test_id("submit").click()
    page.wait_for_url(lambda url: "/new" not in url)


def test_errors_clear_in_chinese(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        tab = context.new_page()
        sign_in(tab, live_server, ADMIN, ADMIN_PASSWORD)
        _refused(tab, live_server)
        tab.fill("input[name=phone]", "12")
        assert _error(tab, "phone").inner_text() == "手机号不是有效的电话号码"
        tab.fill("input[name=name]", "李")
        _error(tab, "name").wait_for(state="hidden")
        tab.fill("input[name=name]", "")
        # emptied again after it was right: no error until the next save says so
        assert _error(tab, "name").is_hidden()
        tab.get_by_test_id("submit").click()
        _error(tab, "name").wait_for(state="visible")
        assert _invalid(tab, "name")
    finally:
        context.close()
