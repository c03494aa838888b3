"""Migrations with `set` expressions: set-based SQL on PostgreSQL, batches otherwise — and the
same result either way.

Each test installs the same app twice (``one`` and ``two``) with the same records, applies
the same change to both, and forces ``two`` through the batches (the form engine, record by
record). Stored data, versions, form versions, history rows and refusals must be the same; on
PostgreSQL ``one`` must have taken the set-based path where the change allows it.
"""

from __future__ import annotations

import copy
import logging
import random
from typing import Any

import httpx
import pytest

from formloom.platform.apps import changes
from tests import factories as f

RECORDS: list[dict[str, Any]] = [
    {"name": "Ann", "mobile": "+1 555 0101", "age": 30, "level": "gold", "vip": True,
     "score": 2.5},
    {"name": "Bob", "age": 140, "level": "silver", "note": "x", "score": 1.0},
    {"name": "Cy"},
    {"name": "Dee", "age": 0, "vip": False, "score": 0.1, "level": "bronze"},
    {"name": "Eve", "age": 121, "mobile": "+1 555 0102", "score": -7},
    {"name": "Flo", "score": 123456.789, "vip": True, "note": "long note"},
]  # fmt: skip


def app(key: str, *extra: dict[str, Any]) -> dict[str, Any]:
    return f.app(
        key,
        f.form(
            "customer",
            f.field("name", required=True),
            f.field("mobile", "phone"),
            f.field("age", "integer", min=0, max=150),
            f.field(
                "level", "select", options=[{"value": v} for v in ("gold", "silver", "bronze")]
            ),
            f.field("vip", "boolean"),
            f.field("score", "number"),
            f.field("note"),
            *extra,
        ),
    )


def field_of(document: dict[str, Any], key: str) -> dict[str, Any]:
    found: dict[str, Any] = next(x for x in document["forms"][0]["fields"] if x["key"] == key)
    return found


def rename_and_set(key: str) -> dict[str, Any]:
    """The benchmark's change: a rename, a clamp by `set`, a new required field computed by
    `set`, and a new field computed from numbers."""
    document = app(key, f.field("segment", required=True), f.field("label"))
    field_of(document, "mobile")["key"] = "phone"
    field_of(document, "age")["max"] = 120
    field_of(document, "label")["required"] = True
    document["migrations"] = [
        {
            "form": "customer",
            "rename": {"mobile": "phone"},
            "set": {
                "segment": {"if": [{"var": "vip"}, "vip", {"cat": ["level-", {"var": "level"}]}]},
                "age": {"if": [{">": [{"var": "age"}, 120]}, 120, {"var": "age"}]},
                "label": {
                    "cat": [
                        {"var": "name"},
                        " #",
                        {"+": [{"var": "age"}, 1]},
                        " ",
                        {"*": [{"var": "score"}, 3]},
                        " ",
                        {"var": "phone"},
                    ]
                },
            },
        }
    ]
    return document


class Pair:
    """Two copies of an app and its records; ``two`` always migrates in batches."""

    def __init__(self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
        self.client = client
        self.caplog = caplog

    async def install(self, *extra: dict[str, Any], records: list[dict[str, Any]]) -> None:
        for key in ("one", "two"):
            response = await self.client.post("/api/apps/import", json=app(key, *extra))
            assert response.status_code == 201, response.text
            for data in records:
                created = await self.client.post(
                    f"/api/records/{key}/customer", json={"data": data}
                )
                assert created.status_code == 201, created.text

    async def apply(
        self, make: Any, monkeypatch: pytest.MonkeyPatch
    ) -> tuple[httpx.Response, httpx.Response, list[str]]:
        """Apply ``make(key)`` to both apps; the responses and ``one``'s strategies."""
        self.caplog.clear()
        with self.caplog.at_level(logging.INFO, logger="formloom.apps.changes"):
            first = await self.client.post("/api/apps/import", json=make("one"))
        strategies = [r.strategy for r in self.caplog.records if hasattr(r, "strategy")]
        with monkeypatch.context() as patched:

            async def batches_only(*args: Any, **kwargs: Any) -> None:
                return None

            patched.setattr(changes, "migrate_in_sql", batches_only)
            second = await self.client.post("/api/apps/import", json=make("two"))
        return first, second, strategies

    async def state(self, key: str) -> dict[str, Any]:
        """Records by name: data, version, form version and their history after creation."""
        items = (
            await self.client.get(f"/api/records/{key}/customer", params={"limit": 100})
        ).json()["items"]
        out = {}
        for record in items:
            history = (
                await self.client.get(f"/api/records/{key}/customer/{record['id']}/history")
            ).json()
            out[record["data"]["name"]] = {
                "data": record["data"],
                "version": record["version"],
                "form_version": record["form_version"],
                "history": [
                    (h["version"], h["operation"], h["changed"], h["data"])
                    for h in history
                    if h["operation"] != "create"
                ],
            }
        return out

    async def assert_same(self) -> dict[str, Any]:
        one, two = await self.state("one"), await self.state("two")
        assert one == two
        return one


@pytest.fixture
def pair(client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> Pair:
    return Pair(client, caplog)


def expected_strategy(database_url: str, set_based: bool) -> str:
    if database_url.startswith("postgresql") and set_based:
        return "set-based SQL"
    return "batches"


async def test_rename_and_set_is_set_based_with_the_batches_result(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    await pair.install(records=RECORDS)
    first, second, strategies = await pair.apply(rename_and_set, monkeypatch)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert strategies == [expected_strategy(database_url, True)]
    state = await pair.assert_same()
    assert state["Ann"]["data"] == {
        "name": "Ann",
        "phone": "+1 555 0101",
        "age": 30,
        "level": "gold",
        "vip": True,
        "score": 2.5,
        "segment": "vip",
        "label": "Ann #31 7.5 +1 555 0101",
    }
    assert state["Bob"]["data"]["age"] == 120 and state["Bob"]["data"]["score"] == 1.0
    assert state["Cy"]["data"]["label"] == "Cy #1 0 "
    assert state["Flo"]["data"]["label"] == "Flo #1 370370.367 "
    assert state["Ann"]["history"] == [
        (2, "migrate", ["label", "mobile", "phone", "segment"], state["Ann"]["data"])
    ]
    assert state["Bob"]["history"][0][2] == ["age", "label", "segment"]
    assert {r["form_version"] for r in state.values()} == {2}


async def test_records_left_as_they_are_get_no_new_version(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    await pair.install(records=RECORDS)

    def clamp(key: str) -> dict[str, Any]:
        document = app(key)
        field_of(document, "age")["max"] = 130
        document["migrations"] = [
            {"form": "customer", "set": {"age": {"min": [{"var": "age"}, 130]}}}
        ]
        return document

    first, second, strategies = await pair.apply(clamp, monkeypatch)
    assert first.status_code == second.status_code == 200
    assert strategies == [expected_strategy(database_url, True)]
    state = await pair.assert_same()
    # min() gives 0 for a record without an age: a new value, as in Python
    assert {name: r["version"] for name, r in state.items()} == {
        "Ann": 1, "Bob": 2, "Cy": 2, "Dee": 1, "Eve": 1, "Flo": 2,
    }  # fmt: skip
    assert state["Cy"]["data"]["age"] == 0


async def test_an_expression_outside_the_sql_subset_runs_in_batches(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    await pair.install(records=RECORDS)

    def with_map(key: str) -> dict[str, Any]:
        document = app(key, f.field("initials", required=True))
        document["migrations"] = [
            {
                "form": "customer",
                "set": {"initials": {"substr": [{"var": "name"}, 0, {"+": [1, {"var": "age"}]}]}},
            }
        ]
        return document

    first, second, strategies = await pair.apply(with_map, monkeypatch)
    assert first.status_code == second.status_code == 200
    assert strategies == ["batches"]
    state = await pair.assert_same()
    assert state["Ann"]["data"]["initials"] == "Ann"


async def test_values_sql_cannot_vouch_for_run_in_batches(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    await pair.install(records=[*RECORDS, {"name": "Big", "score": 2.0**60}])

    def doubled(key: str) -> dict[str, Any]:
        document = app(key, f.field("twice", "number"))
        document["migrations"] = [
            {"form": "customer", "set": {"twice": {"*": [{"var": "score"}, 2]}}}
        ]
        field_of(document, "twice")["required"] = True
        return document

    first, second, strategies = await pair.apply(doubled, monkeypatch)
    assert first.status_code == second.status_code == 200
    assert strategies == ["batches"]  # 2**61 is past 2**53: the evaluator decides
    state = await pair.assert_same()
    assert state["Big"]["data"]["twice"] == pytest.approx(2.0**61)
    assert state["Dee"]["data"]["twice"] == 0.2


INVALID: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # case: (changed field attributes, `set` expressions)
    "above_max": ({"age": {"max": 145}}, {"age": {"+": [{"var": "age"}, 30]}}),
    "required_missing": (
        {"level": {"required": True}},
        {"level": {"if": [{"var": "vip"}, "gold", None]}},
    ),
    "not_an_option": (
        {"level": {"required": True}},
        {"level": {"cat": ["x", {"var": "level"}]}},
    ),
    "too_long": (
        {"note": {"required": True, "max_length": 6}},
        {"note": {"cat": [{"var": "name"}, "-note"]}},
    ),
    "empty_required": ({"note": {"required": True}}, {"note": {"substr": [{"var": "note"}, 9]}}),
    "wrong_type": ({"age": {"max": 145}}, {"age": {"cat": [{"var": "age"}]}}),
}


@pytest.mark.parametrize("case", list(INVALID))
async def test_invalid_results_are_refused_and_nothing_changes(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    await pair.install(records=RECORDS)
    attributes, sets = INVALID[case]

    def invalid(key: str) -> dict[str, Any]:
        document = app(key)
        for name, changed in attributes.items():
            field_of(document, name).update(changed)
        document["migrations"] = [{"form": "customer", "set": sets}]
        return document

    before = await pair.state("one")
    first, second, _ = await pair.apply(invalid, monkeypatch)
    assert first.status_code == second.status_code == 422, (first.text, second.text)
    body_one, body_two = first.json(), second.json()
    assert body_one["invalid_records"] == body_two["invalid_records"] > 0
    assert [e["errors"] for e in body_one["examples"]] == [
        e["errors"] for e in body_two["examples"]
    ]
    assert await pair.state("one") == before
    assert (await pair.client.get("/api/apps/one")).json()["revision"] == 1


async def test_a_set_on_a_unique_field_rebuilds_its_claims(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    await pair.install(records=RECORDS)

    def coded(unique_values: bool) -> Any:
        def make(key: str) -> dict[str, Any]:
            document = app(key, f.field("code", unique=True))
            field_of(document, "code")["required"] = True
            value = {"var": "name"} if unique_values else {"cat": ["C-", {"var": "vip"}]}
            document["migrations"] = [{"form": "customer", "set": {"code": value}}]
            return document

        return make

    first, second, _ = await pair.apply(coded(False), monkeypatch)  # values clash
    assert first.status_code == second.status_code == 409
    assert [e["field"] for e in first.json()["examples"]] == [
        e["field"] for e in second.json()["examples"]
    ]
    first, second, strategies = await pair.apply(coded(True), monkeypatch)
    assert first.status_code == second.status_code == 200
    assert strategies == [expected_strategy(database_url, True)]
    await pair.assert_same()
    clash = await pair.client.post(
        "/api/records/one/customer", json={"data": {"name": "Zed", "code": "Ann"}}
    )
    assert clash.status_code == 422 and clash.json()["errors"][0]["code"] == "unique"


async def test_a_formula_reading_a_set_field_runs_in_batches(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    plus_one = {"+": [{"var": "age"}, 1]}
    computed = f.field("next_age", "computed", result_type="integer", formula=plus_one)
    await pair.install(computed, records=RECORDS)

    def clamp(key: str) -> dict[str, Any]:
        document = app(key, copy.deepcopy(computed))
        field_of(document, "age")["max"] = 120
        document["migrations"] = [
            {"form": "customer", "set": {"age": {"min": [{"var": "age"}, 120]}}}
        ]
        return document

    first, second, strategies = await pair.apply(clamp, monkeypatch)
    assert first.status_code == second.status_code == 200
    assert strategies == ["batches"]
    state = await pair.assert_same()
    assert state["Bob"]["data"]["next_age"] == 121


async def test_an_sql_error_rolls_back_to_the_batches(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    await pair.install(records=[*RECORDS, {"name": "Tiny", "score": 1e-200}])

    def tiny(key: str) -> dict[str, Any]:
        document = app(key, f.field("scaled", "number"))
        field_of(document, "scaled")["required"] = True
        # 1e-200 * 1e-300 underflows: PostgreSQL raises, Python gives 0
        scaled = {"*": [{"var": "score"}, 1e-300]}
        document["migrations"] = [{"form": "customer", "set": {"scaled": scaled}}]
        return document

    first, second, strategies = await pair.apply(tiny, monkeypatch)
    assert first.status_code == second.status_code == 200, first.text
    assert strategies == ["batches"]
    state = await pair.assert_same()
    assert state["Tiny"]["data"]["scaled"] == 0


@pytest.mark.parametrize("with_set", [True, False])
async def test_a_form_with_a_formula_reading_the_clock_runs_in_batches(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, with_set: bool
) -> None:
    # The batches recompute every formula at `now`; a set-based statement would not.
    days = {"days_between": [{"var": "since"}, {"today": []}]}
    extra = [f.field("since", "date"), f.field("days", "computed", result_type="integer",
                                               formula=days)]  # fmt: skip
    await pair.install(*extra, records=[*RECORDS, {"name": "Old", "since": "2020-01-01"}])

    def change(key: str) -> dict[str, Any]:
        document = app(key, *copy.deepcopy(extra))
        field_of(document, "mobile")["key"] = "phone"
        migration: dict[str, Any] = {"form": "customer", "rename": {"mobile": "phone"}}
        if with_set:
            field_of(document, "age")["max"] = 120
            migration["set"] = {"age": {"min": [{"var": "age"}, 120]}}
        document["migrations"] = [migration]
        return document

    first, second, strategies = await pair.apply(change, monkeypatch)
    assert first.status_code == second.status_code == 200
    assert strategies == ["batches"]
    await pair.assert_same()


def random_records(count: int) -> list[dict[str, Any]]:
    rng = random.Random(20261123)
    pools: dict[str, list[Any]] = {
        "mobile": ["+1 555 0101", "+86 139 0000 0000"],
        "age": [0, 1, 17, 64, 119, 120, 121, 150],
        "level": ["gold", "silver", "bronze"],
        "vip": [True, False],
        "score": [0, 0.1, 0.2, 2.5, 1.0, -7, 123456.789, 1 / 3, 1e-7, 99.99],
        "note": ["a", "long note here", "ü"],
    }
    records = []
    for i in range(count):
        data: dict[str, Any] = {"name": f"R{i:02d}"}
        for key, pool in pools.items():
            if rng.random() < 0.7:
                data[key] = rng.choice(pool)
        records.append(data)
    return records


async def test_generated_records_migrate_the_same_either_way(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    await pair.install(records=random_records(40))

    def change(key: str) -> dict[str, Any]:
        document = app(key, f.field("segment", required=True), f.field("weighted", "number"))
        field_of(document, "mobile")["key"] = "phone"
        field_of(document, "age")["max"] = 120
        field_of(document, "weighted")["required"] = True
        document["migrations"] = [
            {
                "form": "customer",
                "rename": {"mobile": "phone"},
                "set": {
                    "age": {"min": [{"var": "age"}, 120]},
                    "segment": {
                        "if": [
                            {"var": "vip"},
                            {"cat": ["vip ", {"var": "phone"}]},
                            {"<": [{"var": "age"}, 18]},
                            "minor",
                            {"cat": [{"var": "level"}, "/", {"%": [{"var": "age"}, 7]}]},
                        ]
                    },
                    "weighted": {"+": [{"*": [{"var": "score"}, 3]}, {"/": [{"var": "age"}, 4]}]},
                },
            }
        ]
        return document

    first, second, strategies = await pair.apply(change, monkeypatch)
    assert first.status_code == second.status_code == 200, first.text
    assert strategies == [expected_strategy(database_url, True)]
    await pair.assert_same()


async def test_a_set_on_a_renamed_field_is_applied_either_way(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    # One description of the migration for both paths: a rename whose new key also has a
    # `set` is not a pure move of values (the renames-only statement once ignored the set).
    await pair.install(records=RECORDS)

    def renamed_and_set(key: str) -> dict[str, Any]:
        document = app(key)
        field_of(document, "note")["key"] = "memo"
        document["migrations"] = [
            {
                "form": "customer",
                "rename": {"note": "memo"},
                "set": {"memo": {"cat": [{"var": "note"}, "!"]}},
            }
        ]
        return document

    first, second, strategies = await pair.apply(renamed_and_set, monkeypatch)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert strategies == [expected_strategy(database_url, True)]
    state = await pair.assert_same()
    assert state["Bob"]["data"]["memo"] == "x!"
    assert state["Cy"]["data"]["memo"] == "!"


async def test_renames_alone_move_values_the_same_either_way(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    await pair.install(records=RECORDS)

    def renamed(key: str) -> dict[str, Any]:
        document = app(key)
        field_of(document, "mobile")["key"] = "phone"
        field_of(document, "note")["key"] = "memo"
        document["migrations"] = [
            {"form": "customer", "rename": {"mobile": "phone", "note": "memo"}}
        ]
        return document

    first, second, strategies = await pair.apply(renamed, monkeypatch)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    on_postgresql = database_url.startswith("postgresql")
    assert strategies == ["renames in SQL" if on_postgresql else "batches"]
    state = await pair.assert_same()
    assert state["Ann"]["history"][0][2] == ["mobile", "phone"]
    assert state["Cy"]["version"] == 1
