"""A patient answers a survey through its public link on a phone: no account, 390 x 844,
switches to Chinese, is stopped by the form's validation, submits, is thanked, and a second
visit finds the link used."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import LiveServer
from tests.ui.test_runtime_helpers import APP, first_id


def test_a_patient_answers_the_survey_once_on_a_phone(
    browser: Any, live_server: LiveServer
) -> None:
    visit = first_id(live_server, "visit")
    with live_server.api() as api:
        made = api.post(
            f"/api/apps/{APP}/forms/survey/links",
            json={"bind": {"field": "visit", "record": visit},
                  "fields": ["nps", "satisfaction", "comment"]},
        )  # fmt: skip
        assert made.status_code == 201, made.text
    url = live_server.url + made.json()["url"]
    context = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844})
    context.set_default_timeout(15_000)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        form = page.get_by_test_id("public-form")
        form.locator("input[name=nps]").wait_for()
        assert page.get_by_test_id("submit").inner_text() == "Submit"
        # the patient's language: the switch (the app's locales), no account needed
        page.get_by_test_id("language-links").get_by_text("简体中文").click()
        page.wait_for_url(lambda at: "lang=zh-CN" in at)
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        assert page.get_by_test_id("submit").inner_text() == "提交"
        assert "总体满意度" in form.inner_text()
        # only the link's fields: the visit is set by the link and not shown
        assert form.locator("[data-field=visit]").count() == 0
        assert form.locator("[data-field]").count() == 3
        # a phone's width: nothing wider than the screen
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # the generated form's validation (required, 1-5), shown at the field
        page.fill("input[name=nps]", "9")
        page.fill("input[name=satisfaction]", "7")
        page.get_by_test_id("submit").click()
        error = form.locator("[data-field=satisfaction] .fl-error")
        error.wait_for(state="visible")
        assert page.get_by_test_id("thank-you").is_hidden()
        page.fill("input[name=satisfaction]", "5")
        page.fill("textarea[name=comment]", "护士很耐心")
        page.get_by_test_id("submit").click()
        thanks = page.get_by_test_id("thank-you")
        thanks.wait_for(state="visible")
        assert "谢谢" in thanks.inner_text()
        assert form.is_hidden()
        # the second visit: the link is used
        second = page.goto(url)
        assert second is not None and second.status == 410
        problem = page.get_by_test_id("link-problem")
        assert "此链接已失效" in problem.inner_text()
    finally:
        context.close()
    assert not errors, f"uncaught script errors on the page: {errors}"
    with live_server.api() as api:
        found = api.get(f"/api/records/{APP}/survey", params={"limit": 100})
        assert found.status_code == 200, found.text
        answers = [  # the answer, bound to the visit by the link
            r["data"] for r in found.json()["items"] if r["data"].get("comment") == "护士很耐心"
        ]
        [answer] = answers
        given = {k: answer.get(k) for k in ("visit", "nps", "satisfaction", "comment")}
        assert given == {"visit": visit, "nps": 9, "satisfaction": 5, "comment": "护士很耐心"}
        # the rest is copied from the visit by the clinic's rules, not given by the patient
        assert set(answer) - set(given) <= {"department", "doctor", "branch"}
