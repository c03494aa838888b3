"""The import page in a real browser: from the list's Import link, a small spreadsheet is
checked (the columns mapped from their English and Chinese names, a bad row shown with its
reason), a column's field changed by hand, then the valid rows imported skipping the bad
one. English and Chinese."""

from __future__ import annotations

import io
import secrets
from typing import Any

from openpyxl import Workbook

from tests.ui.conftest import ADMIN, ADMIN_PASSWORD, LiveServer, sign_in
from tests.ui.test_runtime_helpers import APP, unique_phone

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def spreadsheet(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["姓名", "Mobile phone", "Gender", "出生日期", "Remark"])
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def count(server: LiveServer, name: str) -> int:
    with server.api() as api:
        answer = api.get(f"/api/records/{APP}/patient", params={"q": name, "count": "true"})
        return int(answer.json()["count"])


def mapped(tab: Any) -> dict[str, str]:
    selects = tab.get_by_test_id("map-column")
    return {
        selects.nth(i).get_attribute("data-column"): selects.nth(i).input_value()
        for i in range(selects.count())
    }


def test_import_page_in_english(page: Any, live_server: LiveServer) -> None:
    tag = secrets.token_hex(3)
    rows = [
        [f"Imp{tag} One", unique_phone(), "Female", "1990-05-17", "likes tea"],
        [f"Imp{tag} Two", unique_phone(), "男", "1990/5/18", ""],
        [f"Imp{tag} Bad", unique_phone(), "Female", "1990-02-30", ""],
    ]
    page.goto(f"{live_server.url}/apps/{APP}/forms/patient")
    page.get_by_test_id("import-link").click()
    page.wait_for_url("**/forms/patient/import")
    assert page.locator("h1").inner_text() == "Import into Patient"
    page.get_by_test_id("import-file").set_input_files(
        {"name": "patients.xlsx", "mimeType": XLSX, "buffer": spreadsheet(rows)}
    )
    page.get_by_test_id("import-check").click()
    page.get_by_test_id("import-result").wait_for()
    assert mapped(page) == {
        "姓名": "name", "Mobile phone": "phone", "Gender": "gender",
        "出生日期": "birth_date", "Remark": "",
    }  # fmt: skip
    assert page.get_by_test_id("import-counts").inner_text() == (
        "Rows: 3. To create: 2, to update: 0, not valid: 1."
    )
    bad = page.get_by_test_id("import-error-row")
    assert bad.count() == 1 and bad.get_attribute("data-row") == "4"
    assert "not a real date" in bad.inner_text()
    # the unguessed column is mapped by hand: the check runs again with that mapping
    page.locator("[data-testid=map-column][data-column=Remark]").select_option("notes")
    page.wait_for_function(
        "document.querySelector('[data-column=Remark]').value === 'notes' && "
        "!document.querySelector('[data-testid=import-result]').hidden"
    )
    # all or nothing refuses; skipping the bad row imports the two others
    page.get_by_test_id("import-run").click()
    page.get_by_test_id("import-error").wait_for()
    assert page.get_by_test_id("import-error").inner_text() == (
        "Nothing was imported (rows not valid: 1)."
    )
    assert count(live_server, f"Imp{tag}") == 0
    page.get_by_test_id("mode-skip").check()
    page.get_by_test_id("import-run").click()
    page.get_by_test_id("import-done").wait_for()
    assert (
        page.get_by_test_id("import-done")
        .inner_text()
        .startswith("Created: 2, updated: 0, skipped: 1.")
    )
    assert count(live_server, f"Imp{tag}") == 2
    with live_server.api() as api:
        found = api.get(f"/api/records/{APP}/patient", params={"q": f"Imp{tag} One"}).json()
    data = found["items"][0]["data"]
    assert (data["gender"], data["birth_date"], data["notes"]) == (
        "female",
        "1990-05-17",
        "likes tea",
    )


def test_import_page_in_chinese(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        tab = context.new_page()
        sign_in(tab, live_server, ADMIN, ADMIN_PASSWORD)
        tag = secrets.token_hex(3)
        tab.goto(f"{live_server.url}/apps/{APP}/forms/patient/import")
        assert tab.locator("h1").inner_text() == "导入到患者"
        tab.get_by_test_id("import-file").set_input_files(
            {
                "name": "患者.xlsx",
                "mimeType": XLSX,
                "buffer": spreadsheet([[f"导入{tag}", unique_phone(), "女", "2026年12月4日", ""]]),
            }
        )
        tab.get_by_test_id("import-check").click()
        tab.get_by_test_id("import-result").wait_for()
        assert tab.get_by_test_id("import-counts").inner_text() == (
            "共 1 行：新建 1 条，更新 0 条，无效 0 行。"
        )
        assert tab.get_by_test_id("import-errors").is_hidden()
        tab.get_by_test_id("import-run").click()
        tab.get_by_test_id("import-done").wait_for()
        assert (
            tab.get_by_test_id("import-done")
            .inner_text()
            .startswith("新建 1 条，更新 0 条，跳过 0 行。")
        )
        assert count(live_server, f"导入{tag}") == 1
    finally:
        context.close()
