"""A flow's task title and description read times on the clinic's clock (as the rules'
task texts do), on SQLite and PostgreSQL."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select

from formloom.platform.apps import service as apps
from formloom.platform.apps.service import AppCatalog
from formloom.platform.auth.principal import Principal
from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.flows.service import FlowService
from formloom.platform.models.automation import Task
from formloom.platform.records.service import RecordService
from tests import factories as f

ADMIN = Principal(username="admin", is_admin=True, via="system")
FLOW = {
    "key": "call", "form": "case", "start": {"roles": ["nurse"]},
    "nodes": [{"type": "start", "key": "s"},
              {"type": "user_task", "key": "ring", "assignee": {"role": "nurse"},
               "title": "Call about the {{ record.seen_at }} visit",
               "description": "Seen {{ record.seen_at | datetime('%H:%M') }}"},
              {"type": "end", "key": "e"}],
    "edges": [{"from": "s", "to": "ring"}, {"from": "ring", "to": "e"}],
}  # fmt: skip


async def test_a_flow_task_reads_the_clinics_time(db: Database, clock: FixedClock) -> None:
    catalog = AppCatalog()
    document = f.app("texts", f.form("case", f.field("seen_at", "datetime")),
                     roles=[{"key": "nurse"}], flows=[FLOW])  # fmt: skip
    now = clock.now().astimezone(ZoneInfo("Asia/Shanghai"))
    async with db.transaction() as session:
        await apps.import_app(session, catalog, document, actor="admin", now=now)
        record = await RecordService(session, catalog, now=now, principal=ADMIN).create(
            "texts", "case", {"seen_at": "2026-11-23T01:00:00Z"}
        )
        await FlowService(session, catalog, now=now, principal=ADMIN).start(
            "texts", "call", record.id
        )
    async with db.transaction(write=False) as session:
        [(title, description)] = (await session.execute(select(Task.title, Task.description))).all()
    assert title == "Call about the 2026-11-23 09:00 visit"  # 01:00 UTC in Shanghai
    assert description == "Seen 09:00"
