"""Reports are read on the reader's branch's clock (docs/time-zones.md): an app whose records
take their zone from their branch buckets hours, weekdays and months for a user of a branch in
Asia/Urumqi on Urumqi's clock, for a user without a branch on the deployment's
(Asia/Shanghai), and a dashboard narrowed to one branch on that branch's. SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import Users

APP = "branch_reports"
BY_HOUR = {
    "form": "appointment",
    "rows": [{"field": "starts_at", "bucket": "hour"}],
    "measures": [{"key": "n", "op": "count"}],
}


def clinic() -> dict[str, Any]:
    return f.app(
        APP,
        f.form("branch", f.field("name", required=True), f.field("timezone"), title_field="name"),
        f.form(
            "appointment",
            f.field("starts_at", "datetime", required=True),
            f.field("branch", "relation", target="branch"),
            title_field="starts_at",
        ),
        zone={"field": "branch.timezone"},
        roles=[{"key": "manager"}],
        permissions=[{"form": "*", "roles": ["manager"], "actions": ["read"]}],
        reports=[{"key": "by_hour", "label": "By hour", **BY_HOUR}],
        dashboards=[
            {
                "key": "board",
                "label": "Board",
                "filters": [
                    {"key": "branch", "type": "select", "label": "Branch",
                     "field": {"appointment": "branch"}}
                ],
                "items": [{"report": "by_hour"}],
            }
        ],
    )  # fmt: skip


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"timezone": "Asia/Shanghai"})


async def create(client: httpx.AsyncClient, form: str, data: dict[str, Any]) -> str:
    answer = await client.post(f"/api/records/{APP}/{form}", json={"data": data})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def hours(result: dict[str, Any]) -> list[str]:
    return [row["labels"][0] for row in result["rows"]]


async def test_hours_are_counted_on_the_readers_branch_clock(
    client: httpx.AsyncClient, users: Users
) -> None:
    installed = await client.post("/api/apps/import", json=clinic())
    assert installed.status_code == 201, installed.text
    kashgar = await create(client, "branch", {"name": "Kashgar", "timezone": "Asia/Urumqi"})
    # 10:00 in Urumqi, 12:00 in Shanghai
    await create(client, "appointment", {"starts_at": "2026-12-05T04:00:00Z", "branch": kashgar})
    manager = await users.create(
        "manager_ks", roles={APP: ["manager"]}, attributes={"branch": kashgar}
    )

    async def ad_hoc(headers: dict[str, str] | None = None) -> list[str]:
        answer = await client.post(f"/api/reports/{APP}", json=BY_HOUR, headers=headers)
        assert answer.status_code == 200, answer.text
        return hours(answer.json()["result"] if "result" in answer.json() else answer.json())

    assert await ad_hoc() == ["12:00"]  # the admin has no branch: the deployment's clock
    assert await ad_hoc(manager.headers) == ["10:00"]
    saved = await client.get(f"/api/reports/{APP}/by_hour", headers=manager.headers)
    assert saved.status_code == 200, saved.text
    assert hours(saved.json()["result"]) == ["10:00"]
    # the admin narrows the dashboard to Kashgar: its clock
    board = await client.get(f"/api/dashboards/{APP}/board", params={"branch": kashgar})
    assert board.status_code == 200, board.text
    (tile,) = board.json()["items"]
    assert hours(tile["result"]) == ["10:00"]
    whole = await client.get(f"/api/dashboards/{APP}/board")
    assert hours(whole.json()["items"][0]["result"]) == ["12:00"]
