"""Flow benchmarks (issue 13's speed bars), each against a baseline in the same process.

1. **Completing a task among many live instances**: ``POST /api/tasks/{id}/complete``
   (in-process ASGI, a manager's bearer token: the task locked, the instance locked and
   advanced, the next task opened — a looping step, so every completion does the same work)
   with 10,000 live instances in the database, against the same with 100. Two databases of
   each kind side by side, alternating rounds; the figure is the ratio of the medians
   (target <= 1.2).
2. **The inbox among many tasks**: ``GET /api/tasks`` (the default: assigned to me or
   claimable by me, soonest due first, 50 per page, with the counts) for a manager with 50
   open tasks (10 claimed, 40 claimable through the role) among 100,000 tasks, against the
   same among 1,000 (target <= 1.5). The others are open tasks of other roles, of a role of
   the same name in another app and of other people, and history: three in four are
   closed, half of those were offered to the managers (see ``_OTHERS``).
3. **Firing due flow timers**: 10,000 instances wait at a one-hour timer; the worker fires
   them all as of two hours later — each an advance that opens a task (target >= 500 per
   second on PostgreSQL): one ``Worker.fire_timers`` in this process, then (on a fresh
   copy) two ``formloom worker --once`` processes at once, their start-up taken off.

In every case 100 instances (50 in the inbox) are started through the flow service; the
others are copies of them made with plain INSERTs (new ids throughout: instance, record,
tasks, timers, timeline — so they are real instances the service could advance, with the
indexes they would have). The measured operations go through the real code.

Run: ``python -m tests.bench.bench_flows [--quick]`` (part of ``make bench``; ``--quick``:
2,000 live instances, 20,000 tasks, 2,000 timers). Needs PostgreSQL
(``FORMLOOM_BENCH_FLOWS_URL``, default ``formloom_bench_flows`` on 127.0.0.1: databases
``<name>_small``, ``_large``, ``_small_inbox``, ``_large_inbox`` and ``_timers`` are made
afresh and dropped at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from formloom.platform.api import create_app
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import Platform
from formloom.platform.flows.endpoints import _scoped
from formloom.platform.flows.service import FlowService
from formloom.platform.models import Record
from formloom.platform.models.automation import Task, Timer
from formloom.platform.models.flow import FlowEvent, FlowInstance, TaskCandidate
from formloom.platform.records.ids import IdSequence, new_id
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests.bench.bench_records import _token
from tests.bench.databases import fresh_postgres

PG_URL = os.environ.get(
    "FORMLOOM_BENCH_FLOWS_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/formloom_bench_flows",
)
ZONE = ZoneInfo("Asia/Shanghai")
APP = "care"


def _task_node(key: str, **extra: Any) -> dict[str, Any]:
    return {"type": "user_task", "key": key, "title": "{{ record.name }}: " + key,
            "assignee": {"role": "manager"}, **extra}  # fmt: skip


def _flow(key: str, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    return {"key": key, "form": "case", "start": {"roles": ["manager"]}, "single": False,
            "nodes": nodes, "edges": edges}  # fmt: skip


CARE = {
    "format": "formloom.app/v1",
    "key": APP,
    "version": "1.0.0",
    "label": "Care",
    "roles": [{"key": "manager"}, {"key": "nurse"}],
    "forms": [
        {
            "key": "case",
            "label": "Case",
            "fields": [
                {"key": "name", "type": "text", "required": True},
                {"key": "note", "type": "textarea"},
            ],
        }
    ],
    "flows": [
        # a step done again and again: every completion opens the next task
        _flow(
            "loop",
            [
                {"type": "start", "key": "s"},
                _task_node("step", mode="any", outcomes=[{"key": "again"}, {"key": "stop"}]),
                {"type": "end", "key": "e"},
            ],
            [
                {"from": "s", "to": "step"},
                {"from": "step", "to": "step", "outcome": "again"},
                {"from": "step", "to": "e", "outcome": "stop"},
            ],
        ),  # fmt: skip
        _flow(
            "review",
            [{"type": "start", "key": "s"}, _task_node("review"), {"type": "end", "key": "e"}],
            [{"from": "s", "to": "review"}, {"from": "review", "to": "e"}],
        ),
        _flow(
            "wait_review",
            [
                {"type": "start", "key": "s"},
                {"type": "timer", "key": "pause", "wait": {"after": "PT1H"}},
                _task_node("review"),
                {"type": "end", "key": "e"},
            ],
            [
                {"from": "s", "to": "pause"},
                {"from": "pause", "to": "review"},
                {"from": "review", "to": "e"},
            ],
        ),  # fmt: skip
    ],
}
SYSTEM = Principal(username="bench", is_admin=True, via="system")


@dataclass
class Service:
    """A started service on one database and a manager's client for it."""

    label: str
    platform: Platform
    api: httpx.AsyncClient


@asynccontextmanager
async def service(label: str, url: str) -> AsyncIterator[Service]:
    if url.startswith("postgresql"):
        await fresh_postgres(url)
    settings = Settings(
        database_url=url,
        password_hash="fast-test-only",
        timezone="Asia/Shanghai",
        worker_in_serve=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        platform: Platform = app.state.platform
        admin = await _token(platform.db, settings, "bench_admin", is_admin=True)
        boss = await _token(platform.db, settings, "boss", roles={APP: ["manager"]})
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as api:
            imported = await api.post(
                "/api/apps/import", json=CARE, headers={"Authorization": f"Bearer {admin}"}
            )
            assert imported.status_code in (200, 201), imported.text
            api.headers["Authorization"] = f"Bearer {boss}"
            yield Service(label, platform, api)


async def start(platform: Platform, flow: str, count: int) -> list[str]:
    """``count`` records and an instance of ``flow`` on each, through the flow service."""
    now = platform.clock.now()
    records = [new_id() for _ in range(count)]
    async with platform.db.transaction() as session:
        await session.execute(
            insert(Record),
            [{"id": record_id, "app": APP, "form": "case", "form_version": 1,
              "data": {"name": f"Case {number}", "note": "x" * 200}, "version": 1,
              "created_at": now, "created_by": "bench", "updated_at": now,
              "updated_by": "bench"}
             for number, record_id in enumerate(records)],
        )  # fmt: skip
        flows = FlowService(session, platform.catalog, now=now, principal=SYSTEM)
        return [(await flows.start(APP, flow, record_id, by_rule=True)).id for record_id in records]


def _swap(value: Any, swaps: dict[str, str]) -> Any:
    """``value`` with every id of the template replaced by its copy's (in JSON too)."""
    if isinstance(value, str):
        for old, new in swaps.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict | list):
        return json.loads(_swap(json.dumps(value), swaps))
    return value


def _row(obj: Any, model: Any) -> dict[str, Any]:
    return {column.key: getattr(obj, column.key) for column in model.__table__.c}


async def copy_instances(platform: Platform, templates: list[str], copies: int) -> None:
    """``copies`` more instances like ``templates`` (taken in turn), with their records,
    tasks, candidates, timers and timelines, inserted in bulk with new ids throughout."""
    events_ids = IdSequence()
    async with platform.db.transaction(write=False) as session:
        sources = []
        for instance_id in templates:
            instance = await session.get(FlowInstance, instance_id)
            assert instance is not None
            record = await session.get(Record, instance.record_id)
            tasks = (
                await session.scalars(select(Task).where(Task.instance_id == instance_id))
            ).all()
            task_ids = [task.id for task in tasks]
            candidates = (
                await session.scalars(
                    select(TaskCandidate).where(TaskCandidate.task_id.in_(task_ids))
                )
            ).all()
            events = (
                await session.scalars(
                    select(FlowEvent)
                    .where(FlowEvent.instance_id == instance_id)
                    .order_by(FlowEvent.id)
                )
            ).all()
            timers = (
                await session.scalars(select(Timer).where(Timer.record_id == instance.record_id))
            ).all()
            sources.append(
                (
                    _row(instance, FlowInstance),
                    _row(record, Record),
                    [_row(t, Task) for t in tasks],
                    [_row(c, TaskCandidate) for c in candidates],
                    [_row(e, FlowEvent) for e in events],
                    [_row(t, Timer) for t in timers],
                )
            )
    batch: dict[Any, list[dict[str, Any]]] = {
        model: [] for model in (Record, FlowInstance, Task, TaskCandidate, FlowEvent, Timer)
    }

    async def write() -> None:
        async with platform.db.transaction() as session:
            for model, rows in batch.items():
                if rows:
                    await session.execute(insert(model), rows)
                    rows.clear()

    for number in range(copies):
        instance, record, tasks, candidates, events, timers = sources[number % len(sources)]
        swaps = {instance["id"]: new_id(), record["id"]: new_id()}
        swaps.update({task["id"]: new_id() for task in tasks})
        swaps.update({timer["id"]: new_id() for timer in timers})

        def copied(row: dict[str, Any], swaps: dict[str, str] = swaps) -> dict[str, Any]:
            return {name: _swap(value, swaps) for name, value in row.items()}

        batch[Record].append(copied(record))
        batch[FlowInstance].append(copied(instance))
        batch[Task] += [copied(task) for task in tasks]
        batch[TaskCandidate] += [copied(candidate) for candidate in candidates]
        batch[FlowEvent] += [{**copied(event), "id": events_ids.next()} for event in events]
        batch[Timer] += [copied(timer) for timer in timers]
        if len(batch[FlowEvent]) >= 4_000:
            await write()
    await write()
    await analyze(platform)


async def analyze(platform: Platform) -> None:
    async with platform.db.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))


def _median_ratio(samples: dict[str, list[float]], small: str, large: str) -> float:
    return statistics.median(samples[large]) / statistics.median(samples[small])


# -- 1. completing a task -----------------------------------------------------------------


async def _open_tasks(platform: Platform, instances: list[str]) -> list[str]:
    async with platform.db.transaction(write=False) as session:
        found = await session.scalars(
            select(Task.id).where(Task.instance_id.in_(instances), Task.status == "open")
        )
        return list(found.all())


async def bench_complete(
    urls: dict[str, str], live: int, rounds: int, per_round: int
) -> dict[str, Any]:
    """``urls``: label -> database; ``small`` gets 100 live instances, ``large`` ``live``."""
    samples: dict[str, list[float]] = {}
    async with service("small", urls["small"]) as small, service("large", urls["large"]) as large:
        real: dict[str, list[str]] = {}
        for case, total in ((small, 100), (large, live)):
            real[case.label] = await start(case.platform, "loop", 100)
            if total > 100:
                await copy_instances(case.platform, real[case.label], total - 100)
            else:
                await analyze(case.platform)

        async def complete_some(case: Service, count: int) -> float:
            tasks = (await _open_tasks(case.platform, real[case.label]))[:count]
            spent = []
            for task in tasks:
                began = time.perf_counter()
                answer = await case.api.post(
                    f"/api/tasks/{task}/complete", json={"outcome": "again"}
                )
                spent.append(time.perf_counter() - began)
                assert answer.status_code == 200, answer.text
            return statistics.mean(spent) * 1000

        for case in (small, large):
            await complete_some(case, 30)  # warm-up
        for _ in range(rounds):
            for case in (small, large):
                samples.setdefault(case.label, []).append(await complete_some(case, per_round))
        counts = {}
        for case in (small, large):
            async with case.platform.db.transaction(write=False) as session:
                counts[case.label] = await session.scalar(
                    select(func.count()).select_from(FlowInstance).where(
                        FlowInstance.status == "running"
                    )
                )  # fmt: skip
    return {
        "live": counts,
        "small_ms": statistics.median(samples["small"]),
        "large_ms": statistics.median(samples["large"]),
        "ratio": _median_ratio(samples, "small", "large"),
    }


# -- 2. the inbox --------------------------------------------------------------------------


#: Who the other tasks are for, by ``number % 20``: (status, app, candidate, assignee).
_OTHERS: list[tuple[str, str, tuple[str, str], str | None]] = [
    *[("open", APP, ("role", "nurse"), None)] * 4,  # the nurses' inbox
    ("open", "other", ("role", "manager"), None),  # a role of the same name, another app
    ("open", APP, ("user", "nurse1"), "nurse1"),  # someone else's
    *[("done", APP, ("role", "manager"), "manager2")] * 8,  # the managers' history
    *[("done", APP, ("role", "nurse"), None)] * 5,
    ("cancelled", APP, ("role", "manager"), None),
]


def _other_tasks(count: int, now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Tasks that are not the manager's to do: open ones for other roles, another app and
    other people, and history — three in four are closed, half of those were the managers'
    (their candidate rows stay: candidates see the tasks they were offered)."""
    tasks: list[dict[str, Any]] = []
    candidates: list[dict[str, Any]] = []
    for number in range(count):
        status, app, (kind, value), assignee = _OTHERS[number % len(_OTHERS)]
        task_id = new_id()
        tasks.append(
            {"id": task_id, "app": app, "title": f"Task {number}", "description": None,
             "role": value if kind == "role" else None, "assignee": assignee,
             "form": "case", "record_id": new_id(), "rule": None,
             "source_key": f"flow:{new_id()}.1", "due": None, "status": status,
             "created_at": now - timedelta(minutes=count - number),
             "completed_at": None if status == "open" else now,
             "completed_by": assignee if status == "done" else None,
             "instance_id": new_id(), "node": "review",
             "due_at": now + timedelta(hours=number % 72) if number % 3 else None,
             "claim_required": True,
             "step": {"flow": "review", "outcomes": [{"key": "done", "label": None,
                                                      "comment": "optional"}],
                      "edit": [], "required": [], "hide": [], "item": None,
                      "returnable": False}}
        )  # fmt: skip
        candidates.append(
            {
                "task_id": task_id,
                "kind": kind,
                "value": value,
                "app": app,
                "task_open": status == "open",
            }
        )  # as its closing left it
    return tasks, candidates


async def _fill_inbox(case: Service, total: int) -> None:
    platform = case.platform
    instances = await start(platform, "review", 50)
    tasks = await _open_tasks(platform, instances)
    for task in tasks[:10]:
        claimed = await case.api.post(f"/api/tasks/{task}/claim")
        assert claimed.status_code == 200, claimed.text
    others, candidates = _other_tasks(total - 50, platform.clock.now())
    for first in range(0, len(others), 5_000):
        async with platform.db.transaction() as session:
            await session.execute(insert(Task), others[first : first + 5_000])
            await session.execute(insert(TaskCandidate), candidates[first : first + 5_000])
    await analyze(platform)


async def bench_inbox(
    urls: dict[str, str], total: int, rounds: int, per_round: int
) -> dict[str, Any]:
    samples: dict[str, list[float]] = {}
    plans: dict[str, str] = {}
    async with service("small", urls["small"]) as small, service("large", urls["large"]) as large:
        for case, size in ((small, 1_000), (large, total)):
            await _fill_inbox(case, size)

        async def inbox(case: Service) -> float:
            began = time.perf_counter()
            answer = await case.api.get("/api/tasks")
            spent = time.perf_counter() - began
            body = answer.json()
            assert answer.status_code == 200 and len(body["items"]) == 50, answer.text
            assert body["counts"] == {"assigned": 10, "claimable": 40, "overdue": 0}, body
            return spent

        for case in (small, large):
            for _ in range(20):
                await inbox(case)
        for _ in range(rounds):
            for case in (small, large):
                spent = [await inbox(case) for _ in range(per_round)]
                samples.setdefault(case.label, []).append(statistics.median(spent) * 1000)
        if large.platform.db.dialect == "postgresql":
            plans["page"] = await _explain(large.platform)
    return {
        "small_ms": statistics.median(samples["small"]),
        "large_ms": statistics.median(samples["large"]),
        "ratio": _median_ratio(samples, "small", "large"),
        **plans,
    }


async def _explain(platform: Platform) -> str:
    """EXPLAIN ANALYZE of the inbox's page query as the manager sends it."""
    who = Principal(username="boss", roles={APP: frozenset({"manager"})}, via="bearer")
    statement = (
        _scoped(select(Task), who, "mine", "open", "postgresql")
        .where(Task.status == "open")
        .order_by(func.coalesce(Task.due_at, datetime(9999, 12, 31, tzinfo=UTC)), Task.id)
        .limit(51)
    )
    sql = str(
        statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )
    async with platform.db.engine.connect() as conn:
        rows = await conn.execute(text(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}"))
        return "\n".join(row[0] for row in rows)


# -- 3. firing timers -----------------------------------------------------------------------


async def _worker_processes(url: str, count: int, now: datetime) -> list[dict[str, Any]]:
    """``count`` ``formloom worker --once --now`` processes at once; their reports."""
    env = {**os.environ, "FORMLOOM_DATABASE_URL": url, "FORMLOOM_TIMEZONE": "Asia/Shanghai"}
    command = [sys.executable, "-m", "formloom.platform.cli", "worker", "--once",
               "--now", now.isoformat()]  # fmt: skip
    processes = [
        await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(count)
    ]
    outputs = [await process.communicate() for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    return [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]


async def bench_timers(url: str, total: int, processes: int = 0) -> dict[str, Any]:
    """Fire ``total`` due flow timers: in this process (one ``Worker``), or with
    ``processes`` worker processes at once (their start-up, measured by a run with nothing
    due, is taken off)."""
    async with service("timers", url) as case:
        platform = case.platform
        real = await start(platform, "wait_review", 100)
        await copy_instances(platform, real, total - 100)
        later = platform.clock.now() + timedelta(hours=2)
        startup = 0.0
        if processes:
            began = time.perf_counter()
            [idle] = await _worker_processes(url, 1, platform.clock.now())
            startup = time.perf_counter() - began
            assert idle["timers_fired"] == 0, idle
            began = time.perf_counter()
            reports = await _worker_processes(url, processes, later)
            fired = [report["timers_fired"] for report in reports]
        else:
            worker = Worker(platform.db, platform.catalog, platform.settings)
            began, cpu = time.perf_counter(), time.process_time()
            fired = [(await worker.fire_timers(later)).timers_fired]
            cpu = time.process_time() - cpu
        spent = time.perf_counter() - began - startup
        async with platform.db.transaction(write=False) as session:
            opened = await session.scalar(
                select(func.count()).select_from(Task).where(Task.status == "open")
            )
    assert sum(fired) == total and opened == total, (fired, opened)
    return {"timers": total, "fired": fired, "seconds": spent, "per_second": total / spent,
            "startup": startup, "cpu_ms": 0.0 if processes else cpu / total * 1000,
            "load": os.getloadavg()[0]}  # fmt: skip


async def main(quick: bool = False) -> None:
    live = 2_000 if quick else 10_000
    tasks = 20_000 if quick else 100_000
    timers = 2_000 if quick else 10_000
    rounds, per_round = (3, 20) if quick else (7, 40)
    with tempfile.TemporaryDirectory() as folder:
        databases: list[tuple[str, Callable[[str], str]]] = [
            ("SQLite", lambda name: f"sqlite+aiosqlite:///{folder}/{name}.db"),
            ("PostgreSQL", lambda name: f"{PG_URL}_{name}"),
        ]
        for name, url in databases:
            urls = {"small": url("small"), "large": url("large")}
            result = await bench_complete(urls, live, rounds, per_round)
            print(
                f"complete a task, {name}: {result['live']['small']:,} live instances "
                f"{result['small_ms']:.2f} ms, {result['live']['large']:,} "
                f"{result['large_ms']:.2f} ms -> {result['ratio']:.2f}x (target <= 1.2)"
            )
        for name, url in databases:
            urls = {"small": url("small_inbox"), "large": url("large_inbox")}
            result = await bench_inbox(urls, tasks, rounds, per_round)
            print(
                f"GET /api/tasks (50 open of the manager's), {name}: among 1,000 tasks "
                f"{result['small_ms']:.2f} ms, among {tasks:,} {result['large_ms']:.2f} ms "
                f"-> {result['ratio']:.2f}x (target <= 1.5)"
            )
            if "page" in result:
                print("  the page query's plan among", f"{tasks:,}:\n    ", end="")
                print(result["page"].replace("\n", "\n    "))
        for name, url in databases:
            result = await bench_timers(url("timers"), timers)
            print(
                f"fire {result['timers']:,} due flow timers, {name}, one worker in process: "
                f"{result['seconds']:.2f} s, {result['per_second']:.0f} per second"
                + (" (target >= 500)" if name == "PostgreSQL" else "")
                + f"; {result['cpu_ms']:.2f} ms of this process's CPU a timer; load "
                f"average {result['load']:.1f}"
            )
        result = await bench_timers(f"{PG_URL}_timers", timers, processes=2)
        print(
            f"fire {result['timers']:,} due flow timers, PostgreSQL, two worker processes "
            f"(fired {result['fired']}): {result['seconds']:.2f} s after start-up "
            f"({result['startup']:.1f} s), {result['per_second']:.0f} per second; load average "
            f"{result['load']:.1f}"
        )
    for name in ("small", "large", "small_inbox", "large_inbox", "timers"):
        await drop_postgres(f"{PG_URL}_{name}")


async def drop_postgres(url: str) -> None:
    target = make_url(url)
    admin = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        await admin.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
