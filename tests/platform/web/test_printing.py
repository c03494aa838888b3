"""Printing (issue 16) on SQLite and PostgreSQL: a record's print page and its PDF show the
form's sections with labels in the reader's language, option labels and times on the clinic's
clock, never a field hidden from the reader (HTML and PDF), refuse a caller who may not read
the record as the record API does, and are audited; a list prints with its filter and
columns for those who may export it."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
from pypdf import PdfReader

from tests import factories as f
from tests.conftest import Users

APP = "ward"
SECRET = "G12345678"


def definition() -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "patient",
            f.field("name", label={"en": "Full name", "zh-CN": "姓名"}, required=True),
            f.field(
                "gender",
                "select",
                label={"en": "Gender", "zh-CN": "性别"},
                options=[
                    {"value": "f", "label": {"en": "Female", "zh-CN": "女"}},
                    {"value": "m", "label": {"en": "Male", "zh-CN": "男"}},
                ],
            ),
            f.field("section_id", "section", label={"en": "Identity", "zh-CN": "身份"}),
            f.field("id_number", label={"en": "ID number", "zh-CN": "身份证号"}),
            f.field("seen_at", "datetime", label={"en": "Seen at", "zh-CN": "就诊时间"}),
            f.field("department", label={"en": "Department", "zh-CN": "科室"}),
            title_field="name",
        ),
        label={"en": "Riverside Clinic", "zh-CN": "河畔诊所"},
        roles=[{"key": "nurse"}, {"key": "manager"}],
        permissions=[
            {
                "form": "patient",
                "roles": ["nurse"],
                "actions": ["read"],
                "row_filter": {"==": [{"var": "department"}, {"var": "$user.department"}]},
                "hidden_fields": ["id_number"],
            },
            {"form": "patient", "roles": ["manager"], "actions": ["read", "export"]},
        ],
    )


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages)


def pdf_fonts(content: bytes) -> set[str]:
    found = set()
    for page in PdfReader(io.BytesIO(content)).pages:
        fonts: Any = page["/Resources"]["/Font"]
        found |= {str(font.get_object()["/BaseFont"]) for font in fonts.values()}
    return found


async def make(client: httpx.AsyncClient, **data: Any) -> str:
    made = await client.post(f"/api/records/{APP}/patient", json={"data": data})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_a_record_prints_and_becomes_a_pdf_with_only_what_the_reader_may_see(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    record = await make(
        client, name="王小明", gender="m", id_number=SECRET, seen_at="2026-12-04T02:00:00Z",
        department="dental",
    )  # fmt: skip
    other = await make(client, name="Li Hua", department="surgery")
    page = f"/apps/{APP}/forms/patient/{record}/print"

    printed = await client.get(page, params={"lang": "zh-CN"})
    assert printed.status_code == 200, printed.text
    html = printed.text
    assert "河畔诊所" in html and "王小明" in html and "身份" in html and "身份证号" in html
    assert SECRET in html and ">男<" in html  # the option's label, not its key
    assert 'data-testid="record-title"' not in html and "sign out" not in html.lower()
    assert "@page" in html  # the print stylesheet is inline

    pdf = await client.get(f"/api/records/{APP}/patient/{record}/pdf", params={"lang": "zh-CN"})
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    text = pdf_text(pdf.content)
    assert "王小明" in text and "身份证号" in text and "河畔诊所" in text and SECRET in text
    # the Chinese is drawn in a CJK font (fonts-wqy-microhei or Noto CJK), not as empty boxes
    assert any(name in font for font in pdf_fonts(pdf.content) for name in ("WenQuanYi", "CJK"))

    # the nurse reads her department's patients without their id numbers: so do her prints
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "dental"})
    html = (await client.get(page, headers=nurse.headers)).text
    assert "王小明" in html and "Full name" in html and "Male" in html
    assert SECRET not in html and "ID number" not in html
    pdf = await client.get(f"/api/records/{APP}/patient/{record}/pdf", headers=nurse.headers)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    text = pdf_text(pdf.content)
    assert "王小明" in text and SECRET not in text and "ID number" not in text

    # a record outside her row filter is refused as the record API refuses it
    api = await client.get(f"/api/records/{APP}/patient/{other}", headers=nurse.headers)
    urls = (f"/apps/{APP}/forms/patient/{other}/print", f"/api/records/{APP}/patient/{other}/pdf")
    for url in urls:
        refused = await client.get(url, headers=nurse.headers)
        assert refused.status_code == api.status_code and refused.status_code in (403, 404)
        assert "Li Hua" not in refused.text
    stranger = await users.create("sam", roles={})
    refused = await client.get(f"/api/records/{APP}/patient/{record}/pdf", headers=stranger.headers)
    assert refused.status_code in (403, 404) and b"%PDF" not in refused.content

    audit = await client.get("/api/audit", params={"action": "record.print", "app": APP})
    rows = audit.json()["items"]
    formats = sorted((row["actor"], row["detail"]["format"]) for row in rows)
    assert formats == [("admin", "html"), ("admin", "pdf"), ("nina", "html"), ("nina", "pdf")]
    assert all(row["record_id"] == record for row in rows)


async def test_a_list_prints_with_its_filter_and_columns_for_who_may_export(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    await make(client, name="王小明", gender="m", id_number=SECRET, department="dental")
    await make(client, name="Li Hua", gender="f", department="surgery")
    url = f"/apps/{APP}/forms/patient/print"
    dental = json.dumps({"==": [{"var": "department"}, "dental"]})
    manager = await users.create("mia", roles={APP: ["manager"]})

    printed = await client.get(
        url, params={"filter": dental, "fields": "gender,id_number", "lang": "zh-CN"},
        headers=manager.headers,
    )  # fmt: skip
    assert printed.status_code == 200, printed.text
    html = printed.text
    assert "王小明" in html and "Li Hua" not in html
    assert '<th scope="col">性别</th>' in html and ">男<" in html and SECRET in html
    assert "科室" not in html  # only the columns asked for (after the title)

    everything = (await client.get(url, headers=manager.headers)).text
    assert "王小明" in everything and "Li Hua" in everything

    # a nurse reads the list on screen but may not take it away, printed or exported
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "dental"})
    refused = await client.get(url, headers=nurse.headers)
    assert refused.status_code == 403 and "王小明" not in refused.text
    # naming a hidden column is the list API's 400
    manager_hidden = await client.get(
        f"/api/records/{APP}/patient", params={"fields": "nope"}, headers=manager.headers
    )
    bad = await client.get(url, params={"fields": "nope"}, headers=manager.headers)
    assert bad.status_code == manager_hidden.status_code == 400

    audit = await client.get("/api/audit", params={"action": "record.export", "app": APP})
    formats = [row["detail"]["format"] for row in audit.json()["items"] if row["outcome"] == "ok"]
    assert formats == ["print", "print"]


async def test_the_pages_offer_print_pdf_and_xlsx_to_who_may_use_them(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    record = await make(client, name="王小明", department="dental")
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "dental"})
    manager = await users.create("mia", roles={APP: ["manager"]})
    page = (await client.get(f"/apps/{APP}/forms/patient/{record}", headers=nurse.headers)).text
    assert f'href="/apps/{APP}/forms/patient/{record}/print"' in page
    assert f'href="/api/records/{APP}/patient/{record}/pdf"' in page
    zh = await client.get(f"/apps/{APP}/forms/patient/{record}", params={"lang": "zh-CN"})
    assert ">打印</a>" in zh.text
    # the list's XLSX and Print sit beside its CSV, for those who may export only
    listed = await client.get(
        f"/apps/{APP}/forms/patient", params={"q": "王"}, headers=manager.headers
    )
    assert 'data-testid="export"' in listed.text
    assert f'href="/api/exports/{APP}/patient?q=%E7%8E%8B&amp;format=xlsx"' in listed.text
    assert f'href="/apps/{APP}/forms/patient/print?q=%E7%8E%8B"' in listed.text
    xlsx = await client.get(
        f"/api/exports/{APP}/patient", params={"q": "王", "format": "xlsx"}, headers=manager.headers
    )
    assert xlsx.status_code == 200 and xlsx.content.startswith(b"PK")
    listed = await client.get(f"/apps/{APP}/forms/patient", headers=nurse.headers)
    assert "王小明" in listed.text
    for testid in ("export", "export-xlsx", "print-list"):
        assert f'data-testid="{testid}"' not in listed.text
