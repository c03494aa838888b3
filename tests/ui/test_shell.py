"""The page shell in a real browser: sign-in, the home page, the language switch."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import ADMIN, LiveServer


def test_sign_in_shows_the_clinic_app(page: Any, live_server: LiveServer) -> None:
    assert page.get_by_test_id("who").inner_text() == ADMIN
    assert page.locator("text=Clinic CRM").first.is_visible()


def test_language_switch_is_saved_on_the_user(page: Any, live_server: LiveServer) -> None:
    page.get_by_test_id("language").select_option("zh-CN")
    page.wait_for_load_state("load")
    page.wait_for_function("document.documentElement.lang === 'zh-CN'")
    assert page.get_by_role("button", name="退出").is_visible()
    with live_server.api() as api:
        assert api.get("/api/auth/me").json()["locale"] == "zh-CN"
        assert api.patch("/api/auth/me", json={"locale": "fr"}).status_code == 422
        # back to no saved choice (the browser's language) for the tests after this one in
        # this process: a saved "en" would turn their zh-CN browsers' pages English
        assert api.patch("/api/auth/me", json={"locale": None}).status_code == 200
        assert api.get("/api/auth/me").json()["locale"] is None


def test_wrong_password_is_said_on_the_page(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(locale="zh-CN")
    tab = context.new_page()
    tab.goto(f"{live_server.url}/signin")
    assert tab.evaluate("document.documentElement.lang") == "zh-CN"
    tab.fill("input[name=username]", ADMIN)
    tab.fill("input[name=password]", "not-the-password")
    tab.click("button[type=submit]")
    alert = tab.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text().strip()
    assert "/signin" in tab.url
    context.close()
