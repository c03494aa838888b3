"""The relation picker's answers, on SQLite and PostgreSQL: matches ranked exact, then prefix,
then contains, as the picker asks for them (``q`` with its ``sort`` and ``fields``); the
second line made of the target's phone, date and select fields, never one hidden from the
caller (records/picker.py), as the form page hands it to the picker."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests import factories as f
from tests.conftest import Users

APP = "front"
BASE = f"/api/records/{APP}/patient"

GENDER = {
    "options": [
        {"value": "f", "label": {"en": "Female", "zh-CN": "女"}},
        {"value": "m", "label": {"en": "Male", "zh-CN": "男"}},
    ]
}


def definition(**patient_attrs: Any) -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "patient",
            f.field("id_number"),  # text: never on the second line
            f.field("name", required=True),
            f.field("gender", "select", **GENDER),
            f.field("birth_date", "date"),
            f.field("phone", "phone"),
            f.field("tags", "multiselect", **GENDER),
            title_field="name",
            **patient_attrs,
        ),
        f.form(
            "visit",
            f.field("reason", required=True),
            f.field("patient", "relation", target="patient"),
            title_field="reason",
        ),
        roles=[{"key": "clerk"}],
        permissions=[
            {
                "form": "patient",
                "roles": ["clerk"],
                "actions": ["read"],
                "hidden_fields": ["phone"],
            },
            {"form": "visit", "roles": ["clerk"], "actions": ["read", "create"]},
        ],
    )


PATIENTS = [
    ("He Li", "f", "1990-01-15", "139 0000 2222"),
    ("Lin Bo", "m", "1985-06-01", "021 5555 0001"),
    ("Li", "m", "1979-03-09", "139 0000 1111"),
    ("He Li", "m", "2001-11-30", "138 0000 3333"),  # the namesake
    ("Colin", "m", "1995-02-02", None),
]


@pytest.fixture
async def front(client: httpx.AsyncClient) -> list[str]:
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    ids: list[str] = []
    for name, gender, born, phone in PATIENTS:
        data = {"name": name, "gender": gender, "birth_date": born}
        if phone:
            data["phone"] = phone
        answer = await client.post(BASE, json={"data": data})
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


def _picker_info(html: str) -> dict[str, Any]:
    """What the visit form page tells its patient picker about the patient form."""
    found = re.search(r'<script type="application/json" id="form-data">(.*?)</script>', html, re.S)
    assert found, "the form page carries its data"
    info: dict[str, Any] = json.loads(found.group(1))["app"]["forms"]["patient"]
    return info


async def test_matches_come_exact_then_prefix_then_contains_with_their_second_line(
    client: httpx.AsyncClient, front: list[str]
) -> None:
    # the picker's own request: newest first among equals, the title and the summary only
    params = {"q": "li", "sort": "-id", "limit": "20", "fields": "name,phone,birth_date"}
    page = (await client.get(BASE, params=params)).json()
    names = [item["data"]["name"] for item in page["items"]]
    # exact "Li" above "Lin Bo" (starts with) above the two "He Li" (a word starts with),
    # the namesakes newest first; "Colin" does not start a word with "li"
    assert names == ["Li", "Lin Bo", "He Li", "He Li"]
    he_li = page["items"][2:]
    assert [item["id"] for item in he_li] == [front[3], front[0]]
    # the namesakes come with what tells them apart, and nothing else
    assert [item["data"] for item in he_li] == [
        {"name": "He Li", "phone": "138 0000 3333", "birth_date": "2001-11-30"},
        {"name": "He Li", "phone": "139 0000 2222", "birth_date": "1990-01-15"},
    ]
    # the exact match leads whatever the case and spaces typed
    page = (await client.get(BASE, params={**params, "q": "  LI "})).json()
    assert page["items"][0]["id"] == front[2]


async def test_the_second_line_is_phone_then_date_then_select_never_a_hidden_field(
    client: httpx.AsyncClient, users: Users, front: list[str]
) -> None:
    admin = _picker_info((await client.get(f"/apps/{APP}/forms/visit/new")).text)
    assert admin["title_field"] == "name"
    # the phone first, then the date; the title and the text field are never on it
    assert admin["summary"] == [
        {"key": "phone", "type": "phone"},
        {"key": "birth_date", "type": "date"},
    ]
    clerk = await users.create("cleo", roles={APP: ["clerk"]})
    page = await client.get(
        f"/apps/{APP}/forms/visit/new",
        headers={**clerk.headers, "Accept-Language": "zh-CN"},
    )
    assert page.status_code == 200
    theirs = _picker_info(page.text)
    # the clerk may not see the phone: the date and the gender (its labels in their language)
    assert theirs["summary"] == [
        {"key": "birth_date", "type": "date"},
        {"key": "gender", "type": "select", "options": {"f": "女", "m": "男"}},
    ]
    assert "139 0000" not in page.text
    # and what the picker then asks for answers without the phone
    answer = await client.get(
        BASE,
        params={"q": "he li", "fields": "name,birth_date,gender"},
        headers=clerk.headers,
    )
    assert answer.status_code == 200
    assert [item["data"] for item in answer.json()["items"]] == [
        {"name": "He Li", "birth_date": "1990-01-15", "gender": "f"},
        {"name": "He Li", "birth_date": "2001-11-30", "gender": "m"},
    ]


async def test_a_form_lists_its_own_second_line_and_bad_lists_are_refused(
    client: httpx.AsyncClient, users: Users, front: list[str]
) -> None:
    listed = definition(summary=["id_number", "phone", "gender"])
    assert (await client.post("/api/apps/import", json=listed)).status_code == 200
    admin = _picker_info((await client.get(f"/apps/{APP}/forms/visit/new")).text)
    assert [item["key"] for item in admin["summary"]] == ["id_number", "phone", "gender"]
    # a field listed but hidden from the caller is still left out
    clerk = await users.create("cleo", roles={APP: ["clerk"]})
    page = await client.get(f"/apps/{APP}/forms/visit/new", headers=clerk.headers)
    assert [item["key"] for item in _picker_info(page.text)["summary"]] == ["id_number", "gender"]
    # only single values the line can show, at most three, each refused at its place
    for summary, path in [
        (["phone", "tags"], "/forms/0/summary/1"),
        (["nope"], "/forms/0/summary/0"),
        (["name", "phone", "gender", "birth_date"], "/forms/0/summary"),
    ]:
        bad = await client.post("/api/apps/import", json=definition(summary=summary))
        assert bad.status_code == 422, summary
        assert bad.json()["errors"][0]["path"] == path, bad.json()
