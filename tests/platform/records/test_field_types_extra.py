"""Rating, signature and rich text fields through the records API, on SQLite and PostgreSQL:
stored and read back, rich text sanitised on create and on update, ratings filtered, sorted
and reported as integers, rich text found by the list search, a signature stored through the
file upload path and read through the record, and the CSV export's cells."""

from __future__ import annotations

import csv
import io
import struct
import zlib
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from tests import factories as f

APP = "survey"
BASE = f"/api/records/{APP}/answer"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def png(width: int = 4, height: int = 2) -> bytes:
    """A real PNG (black pixels), as a drawing pad would send."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(b"\x00" + b"\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def survey() -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "answer",
            f.field("name", required=True),
            f.field("score", "rating", max=7),
            f.field("signed", "signature"),
            f.field("notes", "richtext", max_length=40),
            search=["name", "notes"],
        ),
    )


@pytest.fixture
async def installed(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/apps/import", json=survey())
    assert answer.status_code == 201, answer.text


async def create(client: httpx.AsyncClient, **data: Any) -> httpx.Response:
    return await client.post(BASE, json={"data": data})


async def test_rich_text_is_sanitised_on_every_write(
    client: httpx.AsyncClient, installed: None
) -> None:
    made = await create(
        client,
        name="A",
        notes='<p onclick="x()">Hi <b style="color:red">you</b><script>alert(1)</script></p>'
        '<a href="javascript:alert(1)">bad</a> <img src=x onerror=alert(1)>',
    )
    assert made.status_code == 201, made.text
    stored = made.json()["data"]["notes"]
    assert stored == '<p>Hi <b>you</b></p><a rel="noopener noreferrer">bad</a>'
    url = f"{BASE}/{made.json()['id']}"
    assert (await client.get(url)).json()["data"]["notes"] == stored
    patched = await client.patch(
        url, json={"data": {"notes": "<ul><li>one<script>x</script></li><li>two</li></ul>"}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["notes"] == "<ul><li>one</li><li>two</li></ul>"
    # too long counts the words, with the field's path
    refused = await create(client, name="B", notes="<b>" + "x" * 41 + "</b>")
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert (error["path"], error["code"]) == ("/data/notes", "max_length")


async def test_ratings_are_integers_everywhere(client: httpx.AsyncClient, installed: None) -> None:
    for name, score in (("a", 2), ("b", 7), ("c", 5), ("d", 5), ("e", None)):
        data: dict[str, Any] = {"name": name}
        if score is not None:
            data["score"] = score
        assert (await create(client, **data)).status_code == 201
    refused = await create(client, name="x", score=8)
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert (error["path"], error["code"]) == ("/data/score", "max")
    assert error["message"] == "Score must be from 1 to 7 stars"
    found = await client.get(
        BASE, params={"filter": '{">=": [{"var": "score"}, 5]}', "sort": "-score,name"}
    )
    assert found.status_code == 200, found.text
    assert [item["data"]["name"] for item in found.json()["items"]] == ["b", "c", "d"]
    report = await client.post(
        f"/api/reports/{APP}",
        json={
            "form": "answer",
            "rows": [{"field": "score"}],
            "measures": [
                {"key": "n", "op": "count"},
                {"key": "avg", "op": "avg", "field": "score"},
            ],
        },
    )
    assert report.status_code == 200, report.text
    result = report.json()["result"]
    counts = {
        tuple(header["keys"]): row[0]["values"]["n"]
        for header, row in zip(result["rows"], result["cells"], strict=True)
    }
    assert counts[(5,)] == 2 and counts[(7,)] == 1 and counts[(2,)] == 1
    assert result["grand_total"]["values"]["avg"] == pytest.approx(19 / 4)


async def test_rich_text_is_searched_as_text(client: httpx.AsyncClient, installed: None) -> None:
    assert (await create(client, name="one", notes="<p>pain in the <b>knee</b></p>")).is_success
    assert (await create(client, name="two", notes="<p>headache</p>")).is_success
    found = (await client.get(BASE, params={"q": "knee"})).json()["items"]
    assert [item["data"]["name"] for item in found] == ["one"]


async def test_a_signature_is_a_png_upload_read_through_the_record(
    client: httpx.AsyncClient, installed: None
) -> None:
    jpeg = await client.post(
        f"/api/files/{APP}/answer/signed",
        files={"file": ("signature.jpg", b"\xff\xd8\xff" + b"\x00" * 20, "image/jpeg")},
    )
    assert jpeg.status_code in (400, 415, 422), jpeg.text
    uploaded = await client.post(
        f"/api/files/{APP}/answer/signed",
        files={"file": ("signature.png", PNG, "image/png")},
    )
    assert uploaded.status_code == 201, uploaded.text
    ref = uploaded.json()
    made = await create(client, name="signer", signed=ref)
    assert made.status_code == 201, made.text
    record = made.json()
    assert record["data"]["signed"] == ref
    got = await client.get(f"/api/files/{ref['id']}", params={"record": record["id"]})
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"
    # once the record holds it, it is read through the record only
    assert (await client.get(f"/api/files/{ref['id']}")).status_code == 404
    # a reference to a file that is not an upload of this field is refused
    forged = await create(client, name="forged", signed={**ref, "id": "0" * 32})
    assert forged.status_code == 422, forged.text


async def test_csv_shows_the_number_the_words_and_the_file_name(
    client: httpx.AsyncClient, installed: None
) -> None:
    uploaded = await client.post(
        f"/api/files/{APP}/answer/signed", files={"file": ("sig.png", PNG, "image/png")}
    )
    made = await create(
        client,
        name="csv",
        score=6,
        signed=uploaded.json(),
        notes="<p>Hi &amp; <b>bye</b></p><ul><li>one</li><li>two</li></ul>",
    )
    assert made.status_code == 201, made.text
    answer = await client.get(f"/api/exports/{APP}/answer", params={"fields": "score,signed,notes"})
    assert answer.status_code == 200, answer.text
    rows = list(csv.reader(io.StringIO(answer.text.lstrip("\ufeff"))))
    row = next(r for r in rows[1:] if r[0] == made.json()["id"])
    assert row[1:] == ["6", "sig.png", "Hi & bye\none\ntwo"]


async def test_the_pdf_shows_the_signature(client: httpx.AsyncClient, installed: None) -> None:
    uploaded = await client.post(
        f"/api/files/{APP}/answer/signed", files={"file": ("sig.png", png(), "image/png")}
    )
    assert uploaded.status_code == 201, uploaded.text
    made = await create(client, name="pdf", signed=uploaded.json(), score=3)
    record = made.json()["id"]
    answer = await client.get(f"/api/records/{APP}/answer/{record}/pdf")
    assert answer.status_code == 200, answer.text
    page = PdfReader(io.BytesIO(answer.content)).pages[0]
    assert len(page.images) == 1  # the signature, embedded (the PDF fetches nothing)
    assert "3 of 7 stars" in page.extract_text()
