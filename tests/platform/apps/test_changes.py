"""Changing an installed app whose forms have records: every change class, on both databases.

safe (applied as is), needs migration (refused unless a `migrations` entry says how, or no
record is touched), destructive (refused unless `allow_destructive`), and a definition that
would leave any record invalid (refused with the count and examples; nothing changes).
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from tests import factories as f

BASE = "/api/records/shop/customer"


def shop(*extra: dict[str, Any], **form_attrs: Any) -> dict[str, Any]:
    return f.app(
        "shop",
        f.form(
            "customer",
            f.field("name", required=True),
            f.field("mobile", "phone"),
            f.field("age", "integer", min=0, max=150),
            f.field("level", "select", options=[{"value": "gold"}, {"value": "silver"}]),
            f.field("note"),
            *extra,
            **form_attrs,
        ),
        f.form("order", f.field("title", required=True)),
    )


def fields_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = document["forms"][0]["fields"]
    return fields


def field_of(document: dict[str, Any], key: str) -> dict[str, Any]:
    return next(x for x in fields_of(document) if x["key"] == key)


@pytest.fixture
async def api(client: httpx.AsyncClient) -> httpx.AsyncClient:
    assert (await client.post("/api/apps/import", json=shop())).status_code == 201
    for data in (
        {"name": "Ann", "mobile": "+1 555 0101", "age": 30, "level": "gold"},
        {"name": "Bob", "age": 120, "level": "silver", "note": "x"},
        {"name": "Cy"},
    ):
        assert (await client.post(BASE, json={"data": data})).status_code == 201
    return client


async def records(api: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    items = (await api.get(BASE, params={"limit": 100})).json()["items"]
    return {r["data"]["name"]: r for r in items}


async def plan(api: httpx.AsyncClient, document: dict[str, Any], **params: str) -> Any:
    response = await api.post(
        "/api/apps/import", params={"dry_run": "true", **params}, json=document
    )
    assert response.status_code == 200, response.text
    return response.json()


def change(plan_body: dict[str, Any], key: str, form: str = "customer") -> dict[str, Any]:
    form_plan = next(p for p in plan_body["forms"] if p["form"] == form)
    found: dict[str, Any] = next(c for c in form_plan["fields"] if c["field"] == key)
    return found


async def test_safe_changes_apply_without_touching_records(api: httpx.AsyncClient) -> None:
    before = await records(api)
    document = shop(f.field("city"))  # new optional field
    field_of(document, "name")["label"] = {"en": "Full name"}  # relabel
    field_of(document, "level")["options"].append({"value": "bronze"})  # new option
    field_of(document, "age")["max"] = 200  # widened
    body = await plan(api, document)
    assert body["can_apply"] and body["summary"]["needs_migration"] == 0
    assert {c["field"]: c["class"] for c in next(iter(body["forms"]))["fields"]} == {
        "city": "safe",
        "name": "safe",
        "level": "safe",
        "age": "safe",
    }
    result = await api.post("/api/apps/import", json=document)
    assert result.status_code == 200 and result.json()["revision"] == 2
    after = await records(api)
    assert {k: (v["version"], v["form_version"]) for k, v in after.items()} == {
        k: (v["version"], v["form_version"]) for k, v in before.items()
    }
    versions = (await api.get("/api/apps/shop/versions")).json()
    assert versions[-1]["form_versions"] == {"customer": 2, "order": 1}


async def test_rename_moves_values_and_keeps_history(api: httpx.AsyncClient) -> None:
    document = shop()
    field_of(document, "mobile")["key"] = "phone"
    document["migrations"] = [{"form": "customer", "rename": {"mobile": "phone"}}]
    body = await plan(api, document)
    renamed = change(body, "phone")
    assert (renamed["change"], renamed["class"], renamed["records"], renamed["covered_by"]) == (
        "renamed",
        "needs_migration",
        1,
        "rename",
    )
    assert body["can_apply"]
    response = await api.post("/api/apps/import", json=document)
    assert response.status_code == 200, response.text
    ann = (await records(api))["Ann"]
    assert ann["data"]["phone"] == "+1 555 0101" and "mobile" not in ann["data"]
    assert ann["version"] == 2 and ann["form_version"] == 2
    history = (await api.get(f"{BASE}/{ann['id']}/history")).json()
    assert [(h["operation"], h["changed"]) for h in history] == [
        ("create", history[0]["changed"]),
        ("migrate", ["mobile", "phone"]),
    ]
    assert history[0]["data"]["mobile"] == "+1 555 0101"
    bob = (await records(api))["Bob"]
    assert bob["version"] == 1  # nothing to move: untouched


async def test_rename_without_a_migration_is_a_destructive_remove(
    api: httpx.AsyncClient,
) -> None:
    document = shop()
    field_of(document, "mobile")["key"] = "phone"
    body = await plan(api, document)
    assert change(body, "mobile")["class"] == "destructive"
    assert change(body, "phone")["class"] == "safe"
    refused = await api.post("/api/apps/import", json=document)
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["code"] == "destructive"
    assert (await api.get("/api/apps/shop")).json()["revision"] == 1


async def test_type_change_needs_a_set_expression(api: httpx.AsyncClient) -> None:
    document = shop()
    field_of(document, "note").update(type="integer")
    body = await plan(api, document)
    note = change(body, "note")
    assert (note["class"], note["records"]) == ("needs_migration", 1)
    assert not body["can_apply"] and body["blocked"][0]["field"] == "note"
    assert (await api.post("/api/apps/import", json=document)).status_code == 409

    document["migrations"] = [{"form": "customer", "set": {"note": {"cat": ["1", "2"]}}}]
    invalid = await api.post("/api/apps/import", json=document)
    assert invalid.status_code == 422  # "12" is text, not an integer
    problem = invalid.json()
    assert problem["invalid_records"] == 3  # `set` computes the value for every record
    assert problem["examples"][0]["errors"][0]["field"] == "note"
    assert (await api.get("/api/apps/shop")).json()["revision"] == 1
    assert (await records(api))["Bob"]["data"]["note"] == "x"

    keep_empty = {"if": [{"var": "note"}, {"+": [40, 2]}, None]}
    document["migrations"] = [{"form": "customer", "set": {"note": keep_empty}}]
    assert (await api.post("/api/apps/import", json=document)).status_code == 200
    notes = {k: v["data"].get("note") for k, v in (await records(api)).items()}
    assert notes == {"Ann": None, "Bob": 42, "Cy": None}


async def test_new_required_field(api: httpx.AsyncClient) -> None:
    document = shop(f.field("city", required=True))
    body = await plan(api, document)
    city = change(body, "city")
    assert (city["class"], city["records"]) == ("needs_migration", 3)
    assert (await api.post("/api/apps/import", json=document)).status_code == 409
    document["migrations"] = [
        {"form": "customer", "set": {"city": {"if": [{"var": "mobile"}, "Phone city", "Pune"]}}}
    ]
    assert (await api.post("/api/apps/import", json=document)).status_code == 200
    cities = {k: v["data"]["city"] for k, v in (await records(api)).items()}
    assert cities == {"Ann": "Phone city", "Bob": "Pune", "Cy": "Pune"}


async def test_new_required_field_with_a_default_fills_it_in(api: httpx.AsyncClient) -> None:
    document = shop(f.field("city", required=True, default="Pune"))
    body = await plan(api, document)
    assert change(body, "city")["class"] == "safe" and body["can_apply"]
    assert (await api.post("/api/apps/import", json=document)).status_code == 200
    assert {v["data"]["city"] for v in (await records(api)).values()} == {"Pune"}


async def test_narrowed_validation_counts_exactly_the_records_it_breaks(
    api: httpx.AsyncClient,
) -> None:
    document = shop()
    field_of(document, "age")["max"] = 100
    body = await plan(api, document)
    age = change(body, "age")
    assert (age["class"], age["records"]) == ("needs_migration", 1)  # only Bob (120)
    assert (await api.post("/api/apps/import", json=document)).status_code == 409

    field_of(document, "age")["max"] = 125  # nobody above: safe, applies
    body = await plan(api, document)
    assert change(body, "age")["class"] == "safe" and body["can_apply"]
    assert (await api.post("/api/apps/import", json=document)).status_code == 200


async def test_removed_option_in_use(api: httpx.AsyncClient) -> None:
    document = shop()
    field_of(document, "level")["options"] = [{"value": "gold"}]
    level = change(await plan(api, document), "level")
    assert (level["class"], level["records"]) == ("needs_migration", 1)
    document["migrations"] = [
        {
            "form": "customer",
            "set": {
                "level": {"if": [{"==": [{"var": "level"}, "silver"]}, "gold", {"var": "level"}]}
            },
        }
    ]
    assert (await api.post("/api/apps/import", json=document)).status_code == 200
    assert (await records(api))["Bob"]["data"]["level"] == "gold"


async def test_inexact_narrowing_is_checked_record_by_record(api: httpx.AsyncClient) -> None:
    document = shop()
    field_of(document, "name")["pattern"] = "^[A-Z][a-z]+$"  # "Cy" matches, all do
    body = await plan(api, document)
    name = change(body, "name")
    assert name["class"] == "needs_migration" and "records_note" in name
    assert body["can_apply"]
    assert (await api.post("/api/apps/import", json=document)).status_code == 200

    field_of(document, "name")["pattern"] = "^[A-Z][a-z]{2,}$"  # "Cy" is too short now
    refused = await api.post("/api/apps/import", json=document)
    assert refused.status_code == 422
    assert refused.json()["invalid_records"] == 1
    assert (await api.get("/api/apps/shop")).json()["revision"] == 2


async def test_destructive_changes_need_allow_destructive(api: httpx.AsyncClient) -> None:
    document = shop()
    document["forms"][0]["fields"] = [x for x in fields_of(document) if x["key"] != "note"]
    document["forms"] = document["forms"][:1]  # and the order form goes
    order = await api.post("/api/records/shop/order", json={"data": {"title": "T"}})
    body = await plan(api, document)
    assert change(body, "note")["class"] == "destructive"
    assert next(p for p in body["forms"] if p["form"] == "order")["class"] == "destructive"
    refused = await api.post("/api/apps/import", json=document)
    assert refused.status_code == 409
    assert {e["code"] for e in refused.json()["errors"]} == {"destructive"}

    applied = await api.post(
        "/api/apps/import", params={"allow_destructive": "true"}, json=document
    )
    assert applied.status_code == 200, applied.text
    bob = (await records(api))["Bob"]
    assert "note" not in bob["data"]
    history = (await api.get(f"{BASE}/{bob['id']}/history")).json()
    assert history[0]["data"]["note"] == "x"  # the removed value stays in history
    assert (await api.get(f"/api/records/shop/order/{order.json()['id']}")).status_code == 404


async def test_computed_formula_change_recomputes_stored_values(api: httpx.AsyncClient) -> None:
    document = shop(
        f.field("double", "computed", result_type="integer", formula={"*": [{"var": "age"}, 2]})
    )
    assert (await api.post("/api/apps/import", json=document)).status_code == 200
    assert (await records(api))["Ann"]["data"]["double"] == 60
    field_of(document, "double")["formula"] = {"*": [{"var": "age"}, 3]}
    assert (await api.post("/api/apps/import", json=document)).status_code == 200
    assert (await records(api))["Ann"]["data"]["double"] == 90


async def test_making_a_field_unique(api: httpx.AsyncClient) -> None:
    await api.post(BASE, json={"data": {"name": "Dee", "note": "x"}})
    document = shop()
    field_of(document, "note")["unique"] = True
    refused = await api.post("/api/apps/import", json=document)
    assert refused.status_code == 409
    assert refused.json()["examples"][0]["field"] == "note"
    assert (await api.get("/api/apps/shop")).json()["revision"] == 1

    field_of(document, "note")["unique"] = False
    field_of(document, "mobile")["unique"] = True
    assert (await api.post("/api/apps/import", json=document)).status_code == 200
    clash = await api.post(BASE, json={"data": {"name": "Eve", "mobile": "+1 555 0101"}})
    assert clash.status_code == 422 and clash.json()["errors"][0]["code"] == "unique"


async def test_old_records_stay_readable_and_keep_their_form_version(
    api: httpx.AsyncClient,
) -> None:
    ann = (await records(api))["Ann"]
    document = shop(f.field("city"))
    field_of(document, "name")["label"] = "Customer name"
    await api.post("/api/apps/import", json=document)
    read = await api.get(f"{BASE}/{ann['id']}")
    assert read.status_code == 200 and read.json()["form_version"] == 1
    created = (await api.post(BASE, json={"data": {"name": "New"}})).json()
    assert created["form_version"] == 2
    order = (await api.post("/api/records/shop/order", json={"data": {"title": "T"}})).json()
    assert order["form_version"] == 1  # the order form did not change


async def test_versions_and_rollback(api: httpx.AsyncClient) -> None:
    original = (await api.get("/api/apps/shop/export")).content
    document = shop()
    field_of(document, "mobile")["key"] = "phone"
    document["migrations"] = [{"form": "customer", "rename": {"mobile": "phone"}}]
    await api.post("/api/apps/import", json=document)
    versions = (await api.get("/api/apps/shop/versions")).json()
    assert [(v["revision"], v["current"]) for v in versions] == [(1, False), (2, True)]
    assert (await api.get("/api/apps/shop/versions/1")).content == original
    assert (await api.get("/api/apps/shop/versions/9")).status_code == 404

    preview = await api.post("/api/apps/shop/rollback", params={"to": 1, "dry_run": "true"})
    assert preview.status_code == 200
    assert change(preview.json(), "mobile")["covered_by"] == "rename"
    rolled = await api.post("/api/apps/shop/rollback", params={"to": 1})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["revision"] == 3
    ann = (await records(api))["Ann"]
    assert ann["data"]["mobile"] == "+1 555 0101" and "phone" not in ann["data"]
    assert (await api.post("/api/apps/shop/rollback", params={"to": 7})).status_code == 404


async def test_the_designer_save_goes_through_the_same_path(api: httpx.AsyncClient) -> None:
    form = await api.get("/api/apps/shop/forms/customer")
    etag = form.headers["etag"]
    definition = copy.deepcopy(form.json()["form"])
    definition["fields"].append(f.field("city"))
    saved = await api.put(
        "/api/apps/shop/forms/customer", json=definition, headers={"If-Match": etag}
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["revision"] == 2 and saved.headers["etag"] == '"2"'
    stale = await api.put(
        "/api/apps/shop/forms/customer", json=definition, headers={"If-Match": etag}
    )
    assert stale.status_code == 412

    renamed = copy.deepcopy(definition)
    next(x for x in renamed["fields"] if x["key"] == "mobile")["key"] = "phone"
    preview = await api.put(
        "/api/apps/shop/forms/customer",
        params={"dry_run": "true"},
        json={"form": renamed, "migration": {"rename": {"mobile": "phone"}}},
    )
    assert preview.status_code == 200 and preview.json()["can_apply"]
    assert (await api.get("/api/apps/shop")).json()["revision"] == 2
    saved = await api.put(
        "/api/apps/shop/forms/customer",
        json={"form": renamed, "migration": {"rename": {"mobile": "phone"}}},
    )
    assert saved.status_code == 200
    assert (await records(api))["Ann"]["data"]["phone"] == "+1 555 0101"

    mismatch = await api.put("/api/apps/shop/forms/customer", json={**renamed, "key": "other"})
    assert mismatch.status_code == 400
    broken = await api.put(
        "/api/apps/shop/forms/customer", json={**renamed, "fields": [{"key": "x", "type": "nope"}]}
    )
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["path"].startswith("/forms/0/fields/0")


async def test_a_renamed_unique_field_stays_unique(client: httpx.AsyncClient) -> None:
    document = shop()
    field_of(document, "mobile")["unique"] = True
    await client.post("/api/apps/import", json=document)
    await client.post(BASE, json={"data": {"name": "Ann", "mobile": "+1 555 0101"}})
    field_of(document, "mobile")["key"] = "phone"
    document["migrations"] = [{"form": "customer", "rename": {"mobile": "phone"}}]
    assert (await client.post("/api/apps/import", json=document)).status_code == 200
    clash = await client.post(BASE, json={"data": {"name": "Bob", "phone": "+1 555 0101"}})
    assert clash.status_code == 422 and clash.json()["errors"][0]["code"] == "unique"
    fine = await client.post(BASE, json={"data": {"name": "Bob", "phone": "+1 555 0102"}})
    assert fine.status_code == 201


async def test_the_designer_adds_a_new_form_with_its_first_save(api: httpx.AsyncClient) -> None:
    etag = (await api.get("/api/apps/shop")).headers.get("etag") or '"1"'
    form = f.form("supplier", f.field("name", required=True), f.field("email", "email"))
    preview = await api.put("/api/apps/shop/forms/supplier", params={"dry_run": "true"}, json=form)
    assert preview.status_code == 200, preview.text
    assert [(x["form"], x["change"]) for x in preview.json()["forms"]] == [("supplier", "added")]
    assert (await api.get("/api/apps/shop/forms/supplier")).status_code == 404
    saved = await api.put("/api/apps/shop/forms/supplier", json=form, headers={"If-Match": etag})
    assert saved.status_code == 200, saved.text
    assert (await api.get("/api/apps/shop/forms/supplier")).json()["form"]["key"] == "supplier"
    made = await api.post("/api/records/shop/supplier", json={"data": {"name": "Acme"}})
    assert made.status_code == 201
    # the other forms are untouched
    assert (await api.get("/api/apps/shop/forms/customer")).json()["form_version"] == 1
