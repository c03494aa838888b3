"""The file store: uploads for file/image fields and who may download them, on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests import factories as f
from tests.conftest import Users

APP = "clinic"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def clinic() -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "case",
            f.field("title", required=True),
            f.field("ward", "select", options=[{"value": "a"}, {"value": "b"}]),
            f.field("scan", "image", max_size=1000),
            f.field("papers", "file", multiple=True, accept=["application/pdf", "text/*"]),
            f.field("secret_scan", "image"),
            f.field("locked_file", "file", read_only=True),
            f.field("lines", "table", fields=[f.field("doc", "file"), f.field("note")]),
        ),
        roles=[{"key": "nurse"}, {"key": "clerk"}],
        permissions=[
            {
                "form": "case",
                "roles": ["nurse"],
                "actions": ["create", "read", "update"],
                "row_filter": {"==": [{"var": "ward"}, {"var": "$user.ward"}]},
                "hidden_fields": ["secret_scan"],
            },
            {"form": "case", "roles": ["clerk"], "actions": ["read"]},
        ],
    )


@pytest.fixture
async def installed(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/apps/import", json=clinic())
    assert answer.status_code == 201, answer.text


def upload(
    client: httpx.AsyncClient,
    field: str,
    content: bytes = PNG,
    name: str = "scan.png",
    content_type: str = "image/png",
    **kwargs: Any,
) -> Any:
    return client.post(
        f"/api/files/{APP}/case/{field}",
        files={"file": (name, content, content_type)},
        **kwargs,
    )


async def test_an_upload_answers_the_reference_a_record_stores(
    client: httpx.AsyncClient, installed: None
) -> None:
    answer = await upload(client, "scan", name="../../etc/Scan 1.PNG", content_type="IMAGE/PNG")
    assert answer.status_code == 201, answer.text
    ref = answer.json()
    assert set(ref) == {"id", "name", "content_type", "size"}
    assert ref["name"] == "Scan 1.PNG" and ref["content_type"] == "image/png"
    assert ref["size"] == len(PNG) and len(ref["id"]) == 32
    # before any record refers to it, the uploader can fetch it (the form's preview)
    got = await client.get(f"/api/files/{ref['id']}")
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "inline" in got.headers["content-disposition"]
    # the record stores it and reads it back
    created = await client.post(
        f"/api/records/{APP}/case", json={"data": {"title": "A", "ward": "a", "scan": ref}}
    )
    assert created.status_code == 201, created.text
    assert created.json()["data"]["scan"] == ref
    record = created.json()["id"]
    got = await client.get(f"/api/files/{ref['id']}", params={"record": record})
    assert got.status_code == 200 and got.content == PNG
    # once referenced, the uploader too goes through the record
    assert (await client.get(f"/api/files/{ref['id']}")).status_code == 404


async def test_files_in_table_cells_and_lists(client: httpx.AsyncClient, installed: None) -> None:
    pdf = await upload(client, "papers", b"%PDF-1.4 x", "a.pdf", "application/pdf")
    txt = await upload(client, "papers", "病历 ✓".encode(), "病历.txt", "text/plain; charset=utf-8")
    cell = await upload(client, "lines.doc", b"cell", "c.bin", "application/octet-stream")
    for answer in (pdf, txt, cell):
        assert answer.status_code == 201, answer.text
    data = {
        "title": "B",
        "ward": "a",
        "papers": [pdf.json(), txt.json()],
        "lines": [{"doc": cell.json(), "note": "x"}],
    }
    created = await client.post(f"/api/records/{APP}/case", json={"data": data})
    assert created.status_code == 201, created.text
    record = created.json()["id"]
    got = await client.get(f"/api/files/{txt.json()['id']}", params={"record": record})
    assert got.status_code == 200 and got.content == "病历 ✓".encode()
    # anything but images and PDFs is a download, never rendered by the browser
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''%E7%97%85%E5%8E%86.txt" in got.headers["content-disposition"]
    assert "sandbox" in got.headers["content-security-policy"]
    got = await client.get(f"/api/files/{cell.json()['id']}", params={"record": record})
    assert got.status_code == 200 and got.content == b"cell"


async def test_bad_uploads_are_refused_with_a_path_and_a_message(
    client: httpx.AsyncClient, installed: None
) -> None:
    wrong_type = await upload(client, "papers", b"x", "x.png", "image/png")
    assert wrong_type.status_code == 422
    error = wrong_type.json()["errors"][0]
    assert error["code"] == "file_type" and error["path"] == "/file"
    assert "application/pdf" in error["message"]
    too_big = await upload(client, "scan", b"x" * 1001)
    assert too_big.status_code == 422
    assert too_big.json()["errors"][0]["code"] == "file_size"
    assert "1000 bytes" in too_big.json()["errors"][0]["message"]
    not_a_file_field = await upload(client, "title")
    assert not_a_file_field.status_code == 404
    unknown_form = await client.post(
        f"/api/files/{APP}/nope/scan", files={"file": ("a.png", PNG, "image/png")}
    )
    assert unknown_form.status_code == 404
    read_only = await upload(client, "locked_file", b"x", "a.txt", "text/plain")
    assert read_only.status_code == 422 and read_only.json()["errors"][0]["code"] == "read_only"
    no_part = await client.post(f"/api/files/{APP}/case/scan", data={"other": "x"})
    assert no_part.status_code == 422
    assert no_part.json()["errors"][0]["path"] == "/file"
    for bad in ("nope", "0" * 32, "../x"):
        assert (await client.get(f"/api/files/{bad}")).status_code == 404


async def test_a_record_cannot_claim_an_upload_of_another_type(
    client: httpx.AsyncClient, installed: None
) -> None:
    """The record write validates the reference like any value (accept, max_size)."""
    ref = (await upload(client, "scan")).json()
    forged = {**ref, "content_type": "application/pdf"}
    answer = await client.post(
        f"/api/records/{APP}/case", json={"data": {"title": "C", "scan": forged}}
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["path"].startswith("/data/scan")
    assert answer.json()["errors"][0]["code"] == "file_type"


async def test_downloads_follow_the_record_grants(
    client: httpx.AsyncClient, users: Users, installed: None
) -> None:
    nurse_a = await users.create("nurse_a", roles={APP: ["nurse"]}, attributes={"ward": "a"})
    nurse_b = await users.create("nurse_b", roles={APP: ["nurse"]}, attributes={"ward": "b"})
    clerk = await users.create("clerk", roles={APP: ["clerk"]})
    stranger = await users.create("stranger", roles={"other": ["x"]})
    ref = (await upload(client, "scan", headers=nurse_a.headers)).json()
    # only the uploader sees an unreferenced upload
    assert (await client.get(f"/api/files/{ref['id']}", headers=nurse_b.headers)).status_code == 404
    created = await client.post(
        f"/api/records/{APP}/case",
        json={"data": {"title": "D", "ward": "a", "scan": ref}},
        headers=nurse_a.headers,
    )
    assert created.status_code == 201, created.text
    record = created.json()["id"]
    url, params = f"/api/files/{ref['id']}", {"record": record}
    assert (await client.get(url, params=params, headers=nurse_a.headers)).status_code == 200
    assert (await client.get(url, params=params, headers=clerk.headers)).status_code == 200
    # outside the nurse's row filter, and without a role: the same 404 as no file at all
    assert (await client.get(url, params=params, headers=nurse_b.headers)).status_code == 404
    assert (await client.get(url, params=params, headers=stranger.headers)).status_code in (
        403,
        404,
    )
    # naming a record that does not refer to the file gives nothing
    other = await client.post(
        f"/api/records/{APP}/case", json={"data": {"title": "E", "ward": "a"}}
    )
    assert (await client.get(url, params={"record": other.json()["id"]})).status_code == 404
    # a field hidden from the caller: neither uploadable nor downloadable through it
    hidden = await upload(client, "secret_scan", headers=nurse_a.headers)
    assert hidden.status_code == 404
    secret = (await upload(client, "secret_scan")).json()
    changed = await client.patch(
        f"/api/records/{APP}/case/{record}", json={"data": {"secret_scan": secret}}
    )
    assert changed.status_code == 200, changed.text
    got = await client.get(
        f"/api/files/{secret['id']}", params={"record": record}, headers=nurse_a.headers
    )
    assert got.status_code == 404
    got = await client.get(f"/api/files/{secret['id']}", params={"record": record})
    assert got.status_code == 200
    # a clerk may read but not write: no uploads
    assert (await upload(client, "scan", headers=clerk.headers)).status_code == 403
    # without credentials
    anonymous = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with anonymous:
        assert (await anonymous.get(url, params=params)).status_code == 401
        assert (
            await anonymous.post(
                f"/api/files/{APP}/case/scan", files={"file": ("a.png", PNG, "image/png")}
            )
        ).status_code == 401


async def test_uploads_are_audited(client: httpx.AsyncClient, installed: None) -> None:
    ref = (await upload(client, "scan")).json()
    entries = (await client.get("/api/audit", params={"action": "file."})).json()
    items = entries["items"] if isinstance(entries, dict) else entries
    assert any(e["detail"]["file"] == ref["id"] for e in items)


async def test_a_record_may_only_refer_to_files_its_writer_uploaded_for_that_field(
    client: httpx.AsyncClient, users: Users, installed: None
) -> None:
    nurse = await users.create("nurse_files", roles={APP: ["nurse"]}, attributes={"ward": "a"})
    other = await users.create("nurse_other", roles={APP: ["nurse"]}, attributes={"ward": "a"})
    mine = (await upload(client, "scan", headers=nurse.headers)).json()
    url = f"/api/records/{APP}/case"
    # someone else copying the id into their own record is refused at the field
    taken = await client.post(url, json={"data": {"title": "x", "ward": "a", "scan": mine}},
                              headers=other.headers)  # fmt: skip
    assert taken.status_code == 422
    assert taken.json()["errors"][0]["path"] == "/data/scan"
    # as is a reference for another field, or one that misstates the stored file
    wrong_field = await client.post(
        url, json={"data": {"title": "x", "ward": "a", "secret_scan": mine}}
    )
    assert wrong_field.status_code == 422
    lied = dict(mine, content_type="image/gif")
    assert (await client.post(url, json={"data": {"title": "x", "ward": "a", "scan": lied}},
                              headers=nurse.headers)).status_code == 422  # fmt: skip
    made = await client.post(url, json={"data": {"title": "x", "ward": "a", "scan": mine}},
                             headers=nurse.headers)  # fmt: skip
    assert made.status_code == 201, made.text
    # a later change that keeps the file needs no new check (another nurse may edit)
    record = made.json()
    kept = await client.patch(f"{url}/{record['id']}", json={"data": {"title": "y"}},
                              headers=other.headers)  # fmt: skip
    assert kept.status_code == 200, kept.text
    # table cells are checked too
    doc = (await upload(client, "lines.doc", b"%PDF-1", "a.pdf", "application/pdf")).json()
    bad = await client.post(url, json={"data": {"title": "t", "lines": [{"doc": mine}]}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == "/data/lines/0/doc"
    good = await client.post(url, json={"data": {"title": "t", "lines": [{"doc": doc}]}})
    assert good.status_code == 201, good.text
