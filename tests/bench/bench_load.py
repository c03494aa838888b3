"""A load check of a real ``formloom serve`` process, on SQLite and on PostgreSQL.

1. Mixed load: 8 clients, each sending its next request as soon as the last one is answered,
   for 30 s (``--quick``: 10 s): 70 % filtered lists (``GET /api/records/bench/item`` with
   ``city == "city_N"`` on an ``indexed`` field, 20 per page), 30 % creates, over a form
   that starts with 10,000 records. Printed per database: requests/s, p50 and p99 of each
   kind, and the figures that matter as ratios: p99 / p50 (the tail) and SQLite's p99 over
   PostgreSQL's.
2. Stall probe: four clients send hostile requests back to back (an 870 KB list query whose
   ``in`` holds 100,000 strings; then, a second time, creates with 50,000 empty table rows)
   while a fifth asks ``GET /api/health`` every 20 ms. The health check must stay under
   100 ms (its latency idle is printed as the baseline).

Everything runs on loopback (127.0.0.1) and is bounded in time: the server is a child
process on a free port, stopped at the end. Run:
``python -m tests.bench.bench_load [--quick] [--seconds N] [--database sqlite]`` (or
``make bench``). Needs PostgreSQL (FORMLOOM_BENCH_LOAD_POSTGRES_URL, default database
formloom_bench_load on 127.0.0.1; it is dropped and created).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from formloom.platform.db import Database
from formloom.platform.models import Record
from tests.bench.databases import fresh_postgres

POSTGRES_URL = os.environ.get(
    "FORMLOOM_BENCH_LOAD_POSTGRES_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/formloom_bench_load",
)
DATABASES = ("sqlite", "postgresql")
CLIENTS = 8
LIST_SHARE = 0.7
RECORDS = 10_000
CITIES = 100
HEALTH_EVERY = 0.02
HEALTH_TARGET_MS = 100.0
ADMIN, PASSWORD = "bench_admin", "bench load password"

APP = {
    "format": "formloom.app/v1",
    "key": "bench",
    "version": "1.0.0",
    "label": "Bench",
    "forms": [
        {
            "key": "item",
            "label": "Item",
            "title_field": "name",
            "fields": [
                {"key": "name", "type": "text", "required": True, "max_length": 100},
                {"key": "city", "type": "text", "indexed": True},
                {"key": "qty", "type": "integer", "min": 0},
                {"key": "price", "type": "number", "min": 0},
                {"key": "when", "type": "date"},
                {
                    "key": "kind",
                    "type": "select",
                    "options": [{"value": "a"}, {"value": "b"}, {"value": "c"}],
                },
                {
                    "key": "lines",
                    "type": "table",
                    "fields": [
                        {"key": "item", "type": "text", "required": True},
                        {"key": "quantity", "type": "integer", "min": 1},
                    ],
                },
            ],
        }
    ],
}

#: The hostile requests of issue 19: a list query with an `in` of 100,000 strings, a create
#: with 50,000 empty table rows.
HOSTILE_QUERY = json.dumps(
    {"filter": {"in": [{"var": "name"}, [str(i) for i in range(100_000)]]}, "limit": 10}
).encode()
HOSTILE_CREATE = json.dumps({"data": {"name": "x", "lines": [{} for _ in range(50_000)]}}).encode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _fresh_postgres() -> None:
    await fresh_postgres(POSTGRES_URL)


async def _fill(url: str, count: int) -> None:
    """``count`` records of bench/item written straight into the table (faster than the API)."""
    db = Database(url)
    now = datetime.now(UTC)
    rows = [
        {
            "id": f"bench{i:027x}",
            "app": "bench",
            "form": "item",
            "form_version": 1,
            "data": {
                "name": f"Item {i}",
                "city": f"city_{i % CITIES}",
                "qty": i % 50,
                "kind": "abc"[i % 3],
            },
            "version": 1,
            "created_at": now,
            "created_by": "bench",
            "updated_at": now,
            "updated_by": "bench",
        }
        for i in range(count)
    ]
    async with db.engine.begin() as conn:
        await conn.execute(Record.__table__.insert(), rows)
        await conn.execute(text("ANALYZE"))
    await db.dispose()


@dataclass
class Server:
    url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path


@asynccontextmanager
async def serving(database_url: str, folder: Path) -> AsyncIterator[Server]:
    """``formloom serve`` on a free loopback port, with a platform admin signed in."""
    env = {
        **os.environ,
        "FORMLOOM_DATABASE_URL": database_url,
        "FORMLOOM_PASSWORD_HASH": "fast-test-only",
    }
    cli = [sys.executable, "-m", "formloom.platform.cli"]
    made = subprocess.run(
        [*cli, "user", "create", ADMIN, "--admin", "--password-stdin"],
        env=env,
        input=PASSWORD,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    port = _free_port()
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env,
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if (await client.get("/api/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the server did not start in 60 s"
                await asyncio.sleep(0.2)
            answer = await client.post(
                "/api/auth/token", json={"username": ADMIN, "password": PASSWORD}
            )
            answer.raise_for_status()
            token = answer.json()["access_token"]
        yield Server(url, token, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Load:
    lists: list[float] = field(default_factory=list)
    creates: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def mixed_load(server: Server, seconds: float, seed: int = 19) -> Load:
    """``CLIENTS`` clients, 70 % filtered lists and 30 % creates, for ``seconds``."""
    load = Load()
    headers = {"Authorization": f"Bearer {server.token}"}
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, limits=limits, timeout=60
    ) as client:
        end = time.perf_counter() + seconds

        async def one_client(number: int) -> None:
            chance = random.Random(seed + number)
            sent = 0
            while time.perf_counter() < end:
                sent += 1
                city = f"city_{chance.randrange(CITIES)}"
                began = time.perf_counter()
                if chance.random() < LIST_SHARE:
                    response = await client.get(
                        "/api/records/bench/item",
                        params={"filter": json.dumps({"==": [{"var": "city"}, city]}), "limit": 20},
                    )
                    samples = load.lists
                else:
                    response = await client.post(
                        "/api/records/bench/item",
                        json={
                            "data": {
                                "name": f"Load {number}-{sent}",
                                "city": city,
                                "qty": sent % 50,
                                "price": 12.5,
                                "when": "2026-11-23",
                                "kind": "b",
                                "lines": [{"item": "gauze", "quantity": 2}],
                            }
                        },
                    )
                    samples = load.creates
                samples.append(time.perf_counter() - began)
                if response.status_code not in (200, 201):
                    load.failures.append(f"{response.status_code} {response.text[:200]}")

        await asyncio.gather(*(one_client(n) for n in range(CLIENTS)))
    return load


async def stall_probe(server: Server, body: bytes, url: str, seconds: float) -> dict[str, Any]:
    """Health latency while four clients send ``body`` to ``url`` back to back."""
    headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
    answers: dict[int | str, int] = {}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10) as prober,
        httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120) as hostile,
    ):
        idle = []
        for _ in range(25):
            began = time.perf_counter()
            (await prober.get("/api/health")).raise_for_status()
            idle.append(time.perf_counter() - began)
            await asyncio.sleep(HEALTH_EVERY)
        end = time.perf_counter() + seconds

        async def attacker() -> None:
            while time.perf_counter() < end:
                try:
                    answer: int | str = (await hostile.post(url, content=body)).status_code
                except httpx.HTTPError as exc:
                    answer = type(exc).__name__
                answers[answer] = answers.get(answer, 0) + 1

        attackers = [asyncio.create_task(attacker()) for _ in range(4)]
        await asyncio.sleep(0.5)  # let the four requests reach the server first
        busy = []
        while time.perf_counter() < end:
            began = time.perf_counter()
            # A check that times out counts at the time it took: the timeout.
            with contextlib.suppress(httpx.TimeoutException):
                (await prober.get("/api/health")).raise_for_status()
            busy.append(time.perf_counter() - began)
            await asyncio.sleep(HEALTH_EVERY)
        await asyncio.gather(*attackers)
    return {
        "hostile_answers": answers,
        "health_idle_p50_ms": round(_percentile(idle, 0.5) * 1000, 1),
        "health_p50_ms": round(_percentile(busy, 0.5) * 1000, 1),
        "health_p99_ms": round(_percentile(busy, 0.99) * 1000, 1),
        "health_max_ms": round(max(busy) * 1000, 1),
        "health_checks": len(busy),
        "under_target": max(busy) * 1000 < HEALTH_TARGET_MS,
    }


def _summary(load: Load, seconds: float) -> dict[str, Any]:
    every = load.lists + load.creates
    return {
        "requests_per_s": round(len(every) / seconds, 1),
        "lists": len(load.lists),
        "creates": len(load.creates),
        "failures": len(load.failures),
        "p50_ms": round(_percentile(every, 0.5) * 1000, 1),
        "p99_ms": round(_percentile(every, 0.99) * 1000, 1),
        "list_p50_ms": round(_percentile(load.lists, 0.5) * 1000, 1),
        "list_p99_ms": round(_percentile(load.lists, 0.99) * 1000, 1),
        "create_p50_ms": round(_percentile(load.creates, 0.5) * 1000, 1),
        "create_p99_ms": round(_percentile(load.creates, 0.99) * 1000, 1),
        "p99_over_p50": round(_percentile(every, 0.99) / _percentile(every, 0.5), 1),
    }


async def run_database(name: str, url: str, seconds: float, probe_seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"formloom-load-{name}-") as scratch:
        folder = Path(scratch)
        if name == "sqlite":
            url = f"sqlite+aiosqlite:///{folder / 'load.db'}"
        else:
            await _fresh_postgres()
        async with serving(url, folder) as server:
            async with httpx.AsyncClient(
                base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}
            ) as api:
                (await api.post("/api/apps/import", json=APP, timeout=60)).raise_for_status()
            await _fill(url, RECORDS)
            await mixed_load(server, min(3.0, seconds))  # warm-up
            load = await mixed_load(server, seconds)
            result = _summary(load, seconds)
            if load.failures:
                result["first_failure"] = load.failures[0]
            print(f"  {name}: mixed load, {CLIENTS} clients, {seconds:.0f} s:", json.dumps(result))
            query = await stall_probe(
                server, HOSTILE_QUERY, "/api/records/bench/item/query", probe_seconds
            )
            print(f"  {name}: health while 4 hostile list queries run:", json.dumps(query))
            create = await stall_probe(
                server, HOSTILE_CREATE, "/api/records/bench/item", probe_seconds
            )
            print(f"  {name}: health while 4 hostile creates run:", json.dumps(create))
            result["stall_query"] = query
            result["stall_create"] = create
        return result


async def main(
    quick: bool, seconds: float | None = None, databases: tuple[str, ...] = DATABASES
) -> dict[str, Any]:
    seconds = seconds if seconds is not None else (10.0 if quick else 30.0)
    probe_seconds = 5.0 if quick else 10.0
    results = {
        name: await run_database(name, POSTGRES_URL, seconds, probe_seconds) for name in databases
    }
    if len(results) == len(DATABASES):
        sqlite, postgres = results["sqlite"], results["postgresql"]
        print(
            f"  p99: SQLite {sqlite['p99_ms']} ms, PostgreSQL {postgres['p99_ms']} ms "
            f"(ratio {sqlite['p99_ms'] / postgres['p99_ms']:.2f}); p99/p50: SQLite "
            f"{sqlite['p99_over_p50']}, PostgreSQL {postgres['p99_over_p50']}"
        )
    worst = max(
        results[name][probe]["health_max_ms"]
        for name in results
        for probe in ("stall_query", "stall_create")
    )
    verdict = "under" if worst < HEALTH_TARGET_MS else "OVER"
    print(
        f"  stall probe: slowest health check {worst} ms "
        f"({verdict} the {HEALTH_TARGET_MS:.0f} ms target)"
    )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=None, help="length of the mixed load")
    parser.add_argument("--database", choices=DATABASES, help="only this database")
    args = parser.parse_args()
    asyncio.run(main(args.quick, args.seconds, (args.database,) if args.database else DATABASES))
