"""No silent loss (issue 17, item 3): a change that hides fields holding values is named in a
notice before saving; editing a record, Save keeps the values (the default) or clears them
when the person chooses so; creating one, the notice says hidden values are not saved. The
stored record is read back through the API. English and Chinese."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, LiveServer, sign_in

APP = "hidden_values"
DEFINITION = {
    "format": "formloom.app/v1",
    "key": APP,
    "version": "1.0.0",
    "label": "Hidden values",
    "locales": ["en", "zh-CN"],
    "forms": [
        {
            "key": "complaint",
            "label": "Complaint",
            "fields": [
                {
                    "key": "category",
                    "type": "select",
                    "label": {"en": "Category", "zh-CN": "类别"},
                    "options": [
                        {"value": "billing", "label": {"en": "Billing", "zh-CN": "收费"}},
                        {"value": "waiting", "label": {"en": "Waiting time", "zh-CN": "等候时间"}},
                    ],
                },
                {
                    "key": "invoice_number",
                    "type": "text",
                    "label": {"en": "Invoice number", "zh-CN": "发票号"},
                    "visible_if": {"==": [{"var": "category"}, "billing"]},
                },
                {
                    "key": "amount",
                    "type": "number",
                    "label": {"en": "Amount", "zh-CN": "金额"},
                    "visible_if": {"==": [{"var": "category"}, "billing"]},
                },
                {
                    "key": "description",
                    "type": "textarea",
                    "label": {"en": "What happened", "zh-CN": "投诉内容"},
                },
            ],
        }
    ],
}


@pytest.fixture(scope="module")
def app(live_server: LiveServer) -> Iterator[str]:
    with live_server.api() as api:
        answer = api.post("/api/apps/import", json=DEFINITION)
        assert answer.status_code in (200, 201), answer.text
    yield APP


def _record(live_server: LiveServer, record_id: str) -> dict[str, Any]:
    with live_server.api() as api:
        answer = api.get(f"/api/records/{APP}/complaint/{record_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["data"])


def _new_billing_complaint(page: Any, live_server: LiveServer) -> str:
    """Create a Billing complaint with an invoice number through the form; its id."""
    page.goto(f"{live_server.url}/apps/{APP}/forms/complaint/new")
    page.check("input[name=category][value=billing]")
    page.fill("input[name=invoice_number]", "INV-2026-0042")
    page.fill("textarea[name=description]", "Charged twice")
    page.get_by_test_id("submit").click()
    page.wait_for_url(lambda url: "/new" not in url)
    return str(page.url.rsplit("/", 1)[1])


def _run(page: Any, live_server: LiveServer, words: dict[str, str]) -> None:
    notice = page.get_by_test_id("hidden-values")
    # edit: Billing -> Waiting time hides the filled invoice number; Save keeps it
    record_id = _new_billing_complaint(page, live_server)
    page.goto(f"{live_server.url}/apps/{APP}/forms/complaint/{record_id}/edit")
    assert notice.is_hidden()
    page.check("input[name=category][value=waiting]")
    notice.wait_for(state="visible")
    # named, the empty (hidden) amount is not
    assert notice.inner_text().startswith(words["lead"])
    assert words["invoice"] in notice.inner_text()
    assert words["amount"] not in notice.inner_text()
    assert page.get_by_test_id("hidden-values-keep").is_checked()
    # back to Billing: nothing is hidden, the notice goes; away again: it is back
    page.check("input[name=category][value=billing]")
    notice.wait_for(state="hidden")
    page.check("input[name=category][value=waiting]")
    notice.wait_for(state="visible")
    page.get_by_test_id("submit").click()
    page.wait_for_url(lambda url: not url.endswith("/edit"))
    assert _record(live_server, record_id) == {
        "category": "waiting",
        "invoice_number": "INV-2026-0042",
        "description": "Charged twice",
    }
    # opened again: the field is hidden from the start, so no notice; Billing shows it back
    page.goto(f"{live_server.url}/apps/{APP}/forms/complaint/{record_id}/edit")
    assert page.locator("[data-field=invoice_number]").is_hidden()
    assert notice.is_hidden()
    page.check("input[name=category][value=billing]")
    assert page.input_value("input[name=invoice_number]") == "INV-2026-0042"

    # the same change, choosing Clear: the stored value goes
    page.check("input[name=category][value=waiting]")
    # (it was hidden at the start, shown, then hidden again by this change: named)
    notice.wait_for(state="visible")
    page.get_by_test_id("hidden-values-clear").check()
    page.get_by_test_id("submit").click()
    page.wait_for_url(lambda url: not url.endswith("/edit"))
    assert _record(live_server, record_id) == {
        "category": "waiting",
        "description": "Charged twice",
    }

    # create: nothing is stored yet, and the notice says the hidden values are not saved
    page.goto(f"{live_server.url}/apps/{APP}/forms/complaint/new")
    page.check("input[name=category][value=billing]")
    page.fill("input[name=invoice_number]", "INV-7")
    page.fill("input[name=amount]", "12.5")
    page.check("input[name=category][value=waiting]")
    notice.wait_for(state="visible")
    assert words["invoice"] in notice.inner_text() and words["amount"] in notice.inner_text()
    assert words["not_saved"] in notice.inner_text()
    assert page.get_by_test_id("hidden-values-keep").count() == 0
    page.get_by_test_id("submit").click()
    page.wait_for_url(lambda url: "/new" not in url)
    assert _record(live_server, page.url.rsplit("/", 1)[1]) == {"category": "waiting"}


def test_hidden_values_are_named_and_kept_or_cleared(
    page: Any, live_server: LiveServer, app: str
) -> None:
    _run(
        page,
        live_server,
        {
            "lead": "Your change hides fields that hold values",
            "invoice": "Invoice number",
            "amount": "Amount",
            "not_saved": "They are not saved while hidden.",
        },
    )


def test_hidden_values_in_chinese(browser: Any, live_server: LiveServer, app: str) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    errors: list[str] = []
    try:
        tab = context.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(tab, live_server, ADMIN, ADMIN_PASSWORD)
        _run(
            tab,
            live_server,
            {
                "lead": "您的修改隐藏了已填写内容的字段",
                "invoice": "发票号",
                "amount": "金额",
                "not_saved": "字段隐藏期间这些值不会保存。",
            },
        )
    finally:
        context.close()
    assert not errors, errors
