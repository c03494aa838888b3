"""Printing in a real browser: the record page's Print opens the A4 printout (the clinic's
name, the sections, labels in Chinese for a Chinese reader; no application header, and its
own Print button gone on paper), its PDF button downloads a PDF, and the list's Export XLSX
and Print links follow the columns picked on the page."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, LiveServer, sign_in
from tests.ui.test_runtime_helpers import APP, create, unique_phone


def test_a_record_prints_in_chinese_and_downloads_as_pdf(
    browser: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    name = f"打印测试{secrets.token_hex(2)}"
    record = create(
        live_server, "patient", {"name": name, "phone": unique_phone(), "gender": "female"}
    )
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(tab, live_server, ADMIN, ADMIN_PASSWORD)
    tab.goto(f"{live_server.url}/apps/{APP}/forms/patient/{record['id']}?lang=zh-CN")
    with context.expect_page() as opened:
        tab.get_by_test_id("print").click()
    printout = opened.value
    printout.wait_for_load_state()
    assert printout.url.endswith(f"/{record['id']}/print")
    assert printout.get_by_test_id("print-title").inner_text() == name
    assert "诊所" in printout.get_by_test_id("print-clinic").inner_text()
    body = printout.locator("body").inner_text()
    assert "姓名" in body and "女" in body and "female" not in body
    assert printout.locator("header.top").count() == 0  # no application header
    assert printout.get_by_test_id("print-now").is_visible()
    printout.emulate_media(media="print")
    assert not printout.get_by_test_id("print-now").is_visible()
    printout.screenshot(path=str(tmp_path / "printout.png"), full_page=True)

    with tab.expect_download() as downloading:
        tab.get_by_test_id("pdf").click()
    saved = tmp_path / "record.pdf"
    downloading.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")
    context.close()
    assert not errors, errors


def test_the_list_xlsx_and_print_links_follow_the_chosen_columns(
    page: Any, live_server: LiveServer
) -> None:
    page.goto(f"{live_server.url}/apps/{APP}/forms/patient")
    xlsx, printing = page.get_by_test_id("export-xlsx"), page.get_by_test_id("print-list")
    assert xlsx.is_visible() and printing.is_visible()
    picker = page.get_by_test_id("columns")
    picker.locator("summary").click()
    box = picker.locator("input[type=checkbox]:not(:checked)").first
    key = box.get_attribute("value")
    box.check()

    def query(link: Any) -> dict[str, list[str]]:
        return parse_qs(urlparse(link.get_attribute("href")).query)

    page.wait_for_function(
        "key => document.querySelector('[data-testid=export-xlsx]').href.includes(key)", arg=key
    )
    assert query(xlsx)["format"] == ["xlsx"]
    csv_fields = query(page.get_by_test_id("export"))["fields"]
    assert query(xlsx)["fields"] == csv_fields == query(printing)["fields"]
    assert key in csv_fields[0].split(",")
    with page.context.expect_page() as opened:
        printing.click()
    printout = opened.value
    printout.wait_for_load_state()
    assert printout.get_by_test_id("print-rows").locator("tbody tr").count() >= 1
