"""Record history as reverse deltas (issue 21), on SQLite and PostgreSQL.

The differential test drives random sequences of writes through every path that changes a
record — single and bulk creates, updates that set and remove fields, bulk updates, deletes,
and form migrations (renames, ``set`` expressions: set-based SQL on PostgreSQL, batches
otherwise) — and keeps a reference copy of what the old scheme stored: a full snapshot of
the record's data at every version, read from the records table after each step. Every
version rebuilt from the deltas, by the history API and from the stored rows of deleted
records, must be that snapshot.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from formloom.platform.db import Database
from formloom.platform.models import Record, RecordHistory
from formloom.platform.records.history import changed_keys, delta, same, undo, versions
from tests import factories as f

APP = "hist"
BASE = f"/api/records/{APP}/item"


def definition(step: int, *, memo: str = "note", migrations: Any = None) -> dict[str, Any]:
    """The app at one of its versions: ``memo`` is the current key of the free-text field."""
    document = f.app(
        APP,
        f.form(
            "item",
            f.field("name", required=True),
            f.field("n", "integer"),
            f.field("x", "number"),
            f.field("flag", "boolean"),
            f.field("tags", "multiselect", options=[{"value": v} for v in "abc"]),
            f.field(memo, "textarea"),
        ),
        version=f"1.0.{step}",
    )
    if migrations:
        document["migrations"] = migrations
    return document


def value_of(rng: random.Random, key: str) -> Any:
    if key == "n":
        return rng.choice([0, 1, 2, -5, 1000])
    if key == "x":
        return rng.choice([0, 1, 1.5, 2.0, -0.25, 1e-7])
    if key == "flag":
        return rng.choice([True, False])
    if key == "tags":
        return rng.sample(["a", "b", "c"], rng.randint(0, 3))
    if key == "name":
        return rng.choice(["Ann", "Bob", "Cy", "Dee", "Ann"])
    return rng.choice(["", "x", "long text ü", "x"])


def random_data(rng: random.Random, memo: str, *, create: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"name": value_of(rng, "name")} if create else {}
    for key in ("n", "x", "flag", "tags", memo, *([] if create else ["name"])):
        roll = rng.random()
        if roll < 0.45:
            data[key] = value_of(rng, key)
        elif roll < 0.6 and not create and key != "name":
            data[key] = None  # removes the field
    return data


class Reference:
    """What the old scheme stored: every version's full data, per record."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.snapshots: dict[str, list[dict[str, Any]]] = {}
        self.versions: dict[str, int] = {}

    async def observe(self) -> None:
        async with self.db.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(Record.id, Record.data, Record.version).where(Record.app == APP)
                )
            ).all()
        for record_id, data, version in rows:
            seen = self.versions.get(record_id, 0)
            assert version in (seen, seen + 1), "one step writes a record at most once"
            if version == seen + 1:
                self.snapshots.setdefault(record_id, []).append(data)
                self.versions[record_id] = version


async def live_ids(api: httpx.AsyncClient) -> list[str]:
    response = await api.get(BASE, params={"limit": 100})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    return [item["id"] for item in items]


@pytest.mark.parametrize("seed", [1, 2])
async def test_every_version_rebuilt_is_the_snapshot_the_old_scheme_stored(
    client: httpx.AsyncClient, db: Database, seed: int
) -> None:
    rng = random.Random(seed)
    reference = Reference(db)
    response = await client.post("/api/apps/import", json=definition(0))
    assert response.status_code == 201, response.text
    memo, step = "note", 0
    kinds: set[str] = set()
    for _ in range(60):
        live = await live_ids(client)
        roll = rng.random()
        if roll < 0.2 or len(live) < 3:
            data = random_data(rng, memo, create=True)
            created = await client.post(BASE, json={"data": data})
            assert created.status_code == 201, created.text
            kinds.add("create")
        elif roll < 0.3:
            items = [
                {"op": "create", "data": random_data(rng, memo, create=True)}
                for _ in range(rng.randint(1, 3))
            ]
            made = await client.post(f"{BASE}/bulk", json={"items": items})
            assert made.status_code == 200, made.text
            kinds.add("bulk create")
        elif roll < 0.65:
            target = rng.choice(live)
            patched = await client.patch(
                f"{BASE}/{target}", json={"data": random_data(rng, memo, create=False)}
            )
            assert patched.status_code == 200, patched.text
            kinds.add("update")
        elif roll < 0.75:
            items = [
                {"op": "update", "id": target, "data": random_data(rng, memo, create=False)}
                for target in rng.sample(live, min(len(live), 2))
            ]
            updated = await client.post(f"{BASE}/bulk", json={"items": items})
            assert updated.status_code == 200, updated.text
            kinds.add("bulk update")
        elif roll < 0.85:
            deleted = await client.delete(f"{BASE}/{rng.choice(live)}")
            assert deleted.status_code == 204, deleted.text
            kinds.add("delete")
        else:
            step += 1
            new_memo = "memo" if memo == "note" else "note"
            migration: dict[str, Any] = {"form": "item", "rename": {memo: new_memo}}
            if rng.random() < 0.5:  # a computed value too: set-based SQL or the batches
                migration["set"] = {"n": {"if": [{"var": "flag"}, {"+": [{"var": "n"}, 1]}, 7]}}
            changed = await client.post(
                "/api/apps/import",
                json=definition(step, memo=new_memo, migrations=[migration]),
            )
            assert changed.status_code == 200, changed.text
            kinds.add("migrate" + (" with set" if "set" in migration else ""))
            memo = new_memo
        await reference.observe()
    assert kinds == {"create", "bulk create", "update", "bulk update", "delete", "migrate",
                     "migrate with set"}  # fmt: skip

    live = set(await live_ids(client))
    async with db.engine.connect() as connection:
        currents: dict[str, dict[str, Any]] = {
            record_id: data
            for record_id, data in await connection.execute(
                select(Record.id, Record.data).where(Record.app == APP)
            )
        }
        stored = (
            await connection.execute(
                select(RecordHistory).order_by(RecordHistory.record_id, RecordHistory.version)
            )
        ).all()
    rows: dict[str, list[Any]] = {}
    for row in stored:
        rows.setdefault(row.record_id, []).append(row)
    # every write wrote its row: a record at version v has exactly the rows 1..v
    for record_id, version in reference.versions.items():
        assert [row.version for row in rows[record_id]] == list(range(1, version + 1))
    for record_id, snapshots in reference.snapshots.items():
        # strictly (1, 1.0 and true differ), as the old scheme stored them
        assert same(versions(currents[record_id], rows[record_id]), snapshots)
        if record_id not in live:
            continue
        entries = (await client.get(f"{BASE}/{record_id}/history")).json()
        assert same([entry["data"] for entry in entries], snapshots)
        assert [entry["version"] for entry in entries] == list(range(1, len(snapshots) + 1))
        assert entries[0]["changed"] == sorted(snapshots[0])
        for entry, previous, data in zip(entries[1:], snapshots, snapshots[1:], strict=False):
            if entry["operation"] == "delete":
                continue
            # the keys the old scheme listed: every key whose value changed
            assert set(entry["changed"]) >= {
                key
                for key in previous.keys() | data.keys()
                if key not in previous or key not in data or previous[key] != data[key]
            }


async def test_a_record_never_updated_costs_a_history_row_without_a_body(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert (await client.post("/api/apps/import", json=definition(0))).status_code == 201
    one = (await client.post(BASE, json={"data": {"name": "Ann", "n": 1}})).json()
    bulk = await client.post(
        f"{BASE}/bulk", json={"items": [{"op": "create", "data": {"name": "Bob", "x": 2.5}}]}
    )
    two = bulk.json()["results"][0]["id"]
    async with db.engine.connect() as connection:
        stored = (
            await connection.execute(
                select(
                    RecordHistory.record_id,
                    RecordHistory.before,
                    RecordHistory.added,
                    RecordHistory.changed,
                )
            )
        ).all()
    assert sorted(stored) == sorted([(one["id"], None, None, None), (two, None, None, None)])
    entries = (await client.get(f"{BASE}/{two}/history")).json()
    assert [(e["changed"], e["data"]) for e in entries] == [
        (["name", "x"], {"name": "Bob", "x": 2.5})
    ]


async def test_an_update_stores_the_old_values_and_the_added_keys_only(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert (await client.post("/api/apps/import", json=definition(0))).status_code == 201
    made = (await client.post(BASE, json={"data": {"name": "Ann", "n": 1, "note": "x"}})).json()
    url = f"{BASE}/{made['id']}"
    patch = {"n": 2, "note": None, "flag": True}
    assert (await client.patch(url, json={"data": patch})).status_code == 200
    assert (await client.delete(f"{BASE}/{made['id']}")).status_code == 204
    async with db.engine.connect() as connection:
        stored = (
            await connection.execute(
                select(
                    RecordHistory.version,
                    RecordHistory.operation,
                    RecordHistory.before,
                    RecordHistory.added,
                    RecordHistory.changed,
                ).order_by(RecordHistory.version)
            )
        ).all()
    assert [tuple(row) for row in stored] == [
        (1, "create", None, None, None),
        (2, "update", {"n": 1, "note": "x"}, ["flag"], ["flag", "n", "note"]),
        (3, "delete", None, None, []),
    ]


def test_the_delta_is_strict_about_json_kinds() -> None:
    old = {"a": 1, "b": True, "c": [1, {"d": 1}], "e": "same", "f": 1.0}
    new = {"a": 1.0, "b": 1, "c": [1, {"d": 1.0}], "e": "same", "g": None}
    before, added = delta(old, new)
    assert before == {"a": 1, "b": True, "c": [1, {"d": 1}], "f": 1.0}
    assert added == ["g"]
    back = undo(new, before, added)
    assert same(back, old) and list(back) != [] and back == old
    assert delta(old, dict(old)) == (None, None)
    assert changed_keys(None, {"b": 1, "a": 2}) == ["a", "b"]
