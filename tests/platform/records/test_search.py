"""Quick search (`q`) on the record list and across an app, on SQLite and PostgreSQL.

Search is a filter like any other: the caller's row rules apply, and a field hidden from the
caller is never searched, so its values cannot be found by guessing (attacked below). Phone
numbers match by their digits, whatever the spaces, dashes and +86 / 0086; matches come
exact, then prefix, then contains.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from formloom.platform.db import Database
from formloom.platform.records.search import parse_term, phone_digits
from tests import factories as f
from tests.conftest import Users

APP = "desk"
BASE = f"/api/records/{APP}/patient"
SAME_BRANCH = {"==": [{"var": "branch"}, {"var": "$user.branch"}]}


def definition(**form_attrs: Any) -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "patient",
            f.field("name", required=True),
            f.field("phone", "phone", indexed=True),
            f.field("email", "email", indexed=True),
            f.field("note"),  # not indexed: not searched by default
            f.field("secret_name"),  # hidden from the clerk, searched for everyone else
            f.field("branch", required=True),
            title_field="name",
            **form_attrs,
        ),
        f.form("visit", f.field("reason", required=True), title_field="reason"),
        roles=[{"key": "clerk"}],
        permissions=[
            {
                "form": "patient",
                "roles": ["clerk"],
                "actions": ["read"],
                "row_filter": SAME_BRANCH,
                "hidden_fields": ["secret_name"],
            },
            {"form": "visit", "roles": ["clerk"], "actions": ["read"]},
        ],
    )


PATIENTS = [
    ("Li", "+86 139 0000 1111", "li@example.com", "a", "Hidden Alias"),
    ("He Li", "139-0000-2222", "heli@example.com", "a", "other"),
    ("He Li", "0086 138 0000 3333", None, "b", "other"),  # the other branch's namesake
    ("Lin Bo", "021 5555 0001", None, "a", "other"),
    ("Colin", None, "colin@example.com", "a", "other"),
]


@pytest.fixture
async def desk(client: httpx.AsyncClient) -> dict[str, str]:
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    ids: dict[str, str] = {}
    for name, phone, email, branch, secret in PATIENTS:
        data = {"name": name, "branch": branch, "secret_name": secret, "note": "li note"}
        if phone:
            data["phone"] = phone
        if email:
            data["email"] = email
        response = await client.post(BASE, json={"data": data})
        assert response.status_code == 201, response.text
        ids[f"{name}/{branch}"] = response.json()["id"]
    visit = await client.post(f"/api/records/{APP}/visit", json={"data": {"reason": "Li's cough"}})
    assert visit.status_code == 201
    return ids


def _names(page: dict[str, Any]) -> list[str]:
    return [item["data"]["name"] for item in page["items"]]


async def test_ranks_exact_then_prefix_then_contains(
    client: httpx.AsyncClient, desk: dict[str, str]
) -> None:
    page = (await client.get(BASE, params={"q": "  LI ", "count": "true"})).json()
    # exact "Li" first, then "Lin Bo" (starts with), then the rest, by id; a term of two
    # letters matches the start of a word only ("Colin" is not found)
    assert _names(page) == ["Li", "Lin Bo", "He Li", "He Li"]
    assert page["count"] == 4
    # three letters and more: anywhere in the value
    assert _names((await client.get(BASE, params={"q": "lin"})).json()) == ["Lin Bo", "Colin"]
    # the note field is not a search field: "note" finds nothing
    assert (await client.get(BASE, params={"q": "li note"})).json()["items"] == []
    # the same through the JSON body, and paged with a cursor in rank order
    first = (await client.post(f"{BASE}/query", json={"q": "li", "limit": 2})).json()
    assert _names(first) == ["Li", "Lin Bo"]
    rest = (
        await client.post(f"{BASE}/query", json={"q": "li", "cursor": first["next_cursor"]})
    ).json()
    assert _names(rest) == ["He Li", "He Li"]
    # a cursor is bound to its term
    other = await client.get(BASE, params={"q": "he", "cursor": first["next_cursor"]})
    assert other.status_code == 400
    # a filter and a sort combine with it
    filtered = await client.get(
        BASE,
        params={"q": "li", "filter": '{"==": [{"var": "branch"}, "b"]}', "sort": "-name"},
    )
    assert [i["data"]["phone"] for i in filtered.json()["items"]] == ["0086 138 0000 3333"]


async def test_phone_numbers_ignore_separators_and_country_prefix(
    client: httpx.AsyncClient, desk: dict[str, str]
) -> None:
    for q in ["13900001111", "139 0000 1111", "+86-139-0000-1111", "0086 13900001111"]:
        page = (await client.get(BASE, params={"q": q})).json()
        assert _names(page) == ["Li"], q
    # a part of a number, and the number stored with 0086 found without it
    assert _names((await client.get(BASE, params={"q": "0000 3333"})).json()) == ["He Li"]
    assert _names((await client.get(BASE, params={"q": "138"})).json()) == ["He Li"]
    # digits are not matched against names, nor letters against phone numbers
    assert (await client.get(BASE, params={"q": "13"})).json()["items"] == []


async def test_e_mail_and_like_wildcards(client: httpx.AsyncClient, desk: dict[str, str]) -> None:
    assert _names((await client.get(BASE, params={"q": "LIN@EXAMPLE"})).json()) == ["Colin"]
    # % and _ are letters to search for, not wildcards
    for q in ["%", "_", "l_"]:
        assert (await client.get(BASE, params={"q": q})).json()["items"] == [], q


async def test_row_rules_apply_and_hidden_fields_are_never_searched(
    client: httpx.AsyncClient, users: Users, desk: dict[str, str]
) -> None:
    clerk = await users.create("cleo", roles={APP: ["clerk"]}, attributes={"branch": "a"})
    # the admin (no hidden fields) finds the alias when it is a search field...
    document = definition(search=["name", "phone", "secret_name"])
    assert (await client.post("/api/apps/import", json=document)).status_code == 200
    found = (await client.get(BASE, params={"q": "hidden alias"})).json()
    assert _names(found) == ["Li"]
    # ...the clerk cannot: not by the whole value, a prefix, a part, nor counted
    for q in ["Hidden Alias", "hidden", "alias", "idden al"]:
        page = await client.get(BASE, params={"q": q, "count": "true"}, headers=clerk.headers)
        assert page.status_code == 200
        assert page.json()["items"] == [] and page.json()["count"] == 0, q
        across = await client.get(f"/api/records/{APP}", params={"q": q}, headers=clerk.headers)
        assert across.json()["groups"] == [], q
    # row rules: the other branch's namesake is not found by the clerk
    page = (await client.get(BASE, params={"q": "he li"}, headers=clerk.headers)).json()
    assert [item["id"] for item in page["items"]] == [desk["He Li/a"]]
    assert "secret_name" not in page["items"][0]["data"]


async def test_app_search_groups_by_form(
    client: httpx.AsyncClient, users: Users, desk: dict[str, str]
) -> None:
    answer = (await client.get(f"/api/records/{APP}", params={"q": "li", "limit": 2})).json()
    assert [group["form"] for group in answer["groups"]] == ["patient", "visit"]
    patients, visits = answer["groups"]
    assert [item["title"] for item in patients["items"]] == ["Li", "Lin Bo"]
    assert patients["more"] is True
    assert patients["items"][0]["href"] == f"/apps/{APP}/forms/patient/{desk['Li/a']}"
    assert patients["list_href"] == f"/apps/{APP}/forms/patient?q=li"
    assert [item["title"] for item in visits["items"]] == ["Li's cough"]
    assert visits["more"] is False
    # a form the caller may not read is not searched
    document = definition()
    document["permissions"] = document["permissions"][:1]
    assert (await client.post("/api/apps/import", json=document)).status_code == 200
    clerk = await users.create("cleo", roles={APP: ["clerk"]}, attributes={"branch": "b"})
    answer = (
        await client.get(f"/api/records/{APP}", params={"q": "li"}, headers=clerk.headers)
    ).json()
    assert [group["form"] for group in answer["groups"]] == ["patient"]
    assert [item["id"] for item in answer["groups"][0]["items"]] == [desk["He Li/b"]]


async def test_bad_terms_and_definitions_are_refused(
    client: httpx.AsyncClient, desk: dict[str, str]
) -> None:
    long = await client.get(BASE, params={"q": "x" * 101})
    assert long.status_code == 400
    assert long.json()["errors"][0]["parameter"] == "q"
    assert (await client.get(BASE, params={"q": "   "})).json()["items"] != []  # blank: no search
    bad = await client.post("/api/apps/import", json=definition(search=["name", "branchx"]))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "/forms/0/search/1"


async def test_postgresql_serves_search_from_an_expression_index(
    client: httpx.AsyncClient, desk: dict[str, str], db: Database, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        # SQLite: no search index (docs/benchmarks.md gives its speed); nothing to check here
        assert (await client.get(BASE, params={"q": "li"})).status_code == 200
        return
    async with db.transaction(write=False) as session:
        rows = await session.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE tablename = 'records' AND indexname LIKE 'ix_rec_desk__search_%'"
            )
        )
        found = {name: ddl for name, ddl in rows.all()}
    # name, phone and email of the patient, the visit's reason; trigram indexes
    assert len(found) == 4, found
    assert all("gin_trgm_ops" in ddl for ddl in found.values()), found


def test_terms_are_normalised() -> None:
    assert phone_digits("+86 139-0000-1111") == "13900001111"
    assert phone_digits("(021) 5555.0001") == "02155550001"
    assert phone_digits("8613") == "8613"  # 86 without + or 00 is not the country
    assert phone_digits(" 0086 138 0000 3333") == "13800003333"
    term = parse_term("  He   LI ")
    assert term is not None and term.text == "he li" and term.phone is None
    assert parse_term("") is None
    phone = parse_term("+86 139")
    assert phone is not None and phone.phone == "139"
