"""Formloom beside Directus 11.3.5 on the same records, the same client, runs interleaved
(issue 21).

Not part of ``make bench`` nor of the test suite: it needs a Directus installed from the
network and two servers already running. Both servers are driven over HTTP by this one
client: 8 concurrent clients (``--clients``; ``httpx`` async, keep-alive), each kind of
request in turn, Formloom and Directus alternating which goes first in each round. Every
figure is a median (p50) of the requests' latencies in ms, pooled over the rounds, except
creates, which are a throughput. Each server has its own PostgreSQL database on the same machine;
their sizes and the servers' resident memory are read after the runs.

The same form on both: ``name`` (text, required), ``city`` (text, indexed), ``amount``
(a decimal with two places, indexed), ``when`` (a date), ``done`` (a flag), ``kind`` (one
of three choices) and ``note`` (long text). Both are loaded through their own bulk APIs,
so each writes what a single create would (Formloom: the record, its history row and its
audit row, the typed projection by trigger; Directus: the row, an activity row and a
revision).

Setting up Directus for it (outside the repository; nothing of it is committed)::

    mkdir -p /tmp/directus && cd /tmp/directus && npm init -y && npm install directus@11.3.5
    # npm 11 runs no install scripts it was not told to: the native parts Directus needs
    npm install-scripts approve argon2 isolated-vm sharp && npm rebuild argon2 isolated-vm sharp
    createdb -h 127.0.0.1 -U postgres bench_directus
    export DB_CLIENT=pg DB_HOST=127.0.0.1 DB_PORT=5432 DB_DATABASE=bench_directus \\
           DB_USER=postgres KEY=bench-key SECRET=bench-secret-of-some-length \\
           ADMIN_EMAIL=admin@example.com ADMIN_PASSWORD=bench-password \\
           PORT=8055 HOST=127.0.0.1 CACHE_ENABLED=false RATE_LIMITER_ENABLED=false \\
           TELEMETRY=false LOG_LEVEL=warn
    npx directus bootstrap
    node node_modules/directus/cli.js start &      # one process; its pid is --directus-pid

and Formloom on its own database::

    createdb -h 127.0.0.1 -U postgres bench_formloom
    export FORMLOOM_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench_formloom
    printf 'bench-password\\n' | .venv/bin/formloom user create admin --admin --password-stdin
    FORMLOOM_WORKER_IN_SERVE=false .venv/bin/formloom serve --port 8601 --log-level warning &

Then, from the repository::

    .venv/bin/python -m tests.bench.compare_directus load      # the form and 100,000 records
    .venv/bin/python -m tests.bench.compare_directus run --formloom-pid P --directus-pid Q

``load`` imports the Formloom app (``indexed: true`` on city and amount) and creates the
Directus collection with the same fields through its REST API (indexes on city and
amount), then the same records into both (``--only`` one of them); ``run`` measures and
prints a table (``--json`` writes the figures too). ``check`` sends the same invalid
records to both and prints what each answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

APP_KEY, FORM_KEY, COLLECTION = "bench", "item", "bench_item"
KINDS = ["red", "green", "blue"]
CLIENTS = 8  # concurrent clients, unless --clients says otherwise
SPAN = 20_000  # an amount range: a fifth of the amounts (0 .. 99,999.99)

APP = {
    "format": "formloom.app/v1",
    "key": APP_KEY,
    "version": "1.0.0",
    "label": "Bench",
    "forms": [
        {
            "key": FORM_KEY,
            "label": "Item",
            "title_field": "name",
            "fields": [
                {"key": "name", "type": "text", "required": True},
                {"key": "city", "type": "text", "indexed": True},
                {"key": "amount", "type": "number", "indexed": True},
                {"key": "when", "type": "date"},
                {"key": "done", "type": "boolean"},
                {
                    "key": "kind",
                    "type": "select",
                    "options": [{"value": kind, "label": kind} for kind in KINDS],
                },
                {"key": "note", "type": "textarea"},
            ],
        }
    ],
}


def _directus_field(name: str, kind: str, **schema: Any) -> dict[str, Any]:
    return {"field": name, "type": kind, "meta": {}, "schema": schema}


DIRECTUS_COLLECTION = {
    "collection": COLLECTION,
    "meta": {"icon": "box"},
    "schema": {},
    "fields": [
        # what the data studio makes by default: an auto-incremented integer key
        {
            "field": "id",
            "type": "integer",
            "meta": {"hidden": True, "readonly": True, "interface": "input"},
            "schema": {"is_primary_key": True, "has_auto_increment": True},
        },
        # "required" as the data studio sets it (on the field's meta, the column nullable)
        {"field": "name", "type": "string", "meta": {"required": True}, "schema": {}},
        _directus_field("city", "string", is_indexed=True),
        _directus_field(
            "amount", "decimal", numeric_precision=12, numeric_scale=2, is_indexed=True
        ),
        _directus_field("when", "date"),
        _directus_field("done", "boolean"),
        {
            "field": "kind",
            "type": "string",
            "meta": {
                "interface": "select-dropdown",
                "options": {"choices": [{"text": kind, "value": kind} for kind in KINDS]},
            },
            "schema": {},
        },
        _directus_field("note", "text"),
    ],
}


def record(i: int) -> dict[str, Any]:
    """The i-th record, the same on both servers."""
    return {
        "name": f"Item {i}",
        "city": f"city_{i % 100}",
        "amount": ((i * 7919) % 10_000_000) / 100,
        "when": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "done": i % 2 == 0,
        "kind": KINDS[i % 3],
        "note": f"a note of some length for record {i}",
    }


# --- the two servers behind one interface -------------------------------------------------


@dataclass
class Server:
    """One server under test: how to sign in, and each question as one request."""

    name: str
    client: httpx.AsyncClient
    database: str
    pid: int | None = None

    async def sign_in(self) -> None:
        raise NotImplementedError

    async def install(self) -> None:
        raise NotImplementedError

    async def load(self, start: int, stop: int) -> None:
        raise NotImplementedError

    async def create(self, i: int) -> None:
        raise NotImplementedError

    async def first_page(self, n: int) -> int:
        raise NotImplementedError

    async def city_page(self, n: int) -> int:
        raise NotImplementedError

    async def range_page(self, n: int) -> list[str]:
        raise NotImplementedError

    async def range_count(self, n: int) -> int:
        raise NotImplementedError

    async def by_city(self, n: int) -> int:
        raise NotImplementedError

    async def post_raw(self, data: dict[str, Any]) -> httpx.Response:
        raise NotImplementedError


def _ok(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:500]}")
    return response


def _low(n: int) -> int:
    return 20_000 + (n % 5) * 10_000  # 20,000 .. 60,000, each range SPAN wide


@dataclass
class Formloom(Server):
    user: str = "admin"
    password: str = "bench-password"

    async def sign_in(self) -> None:
        answer = _ok(
            await self.client.post(
                "/api/auth/token", json={"username": self.user, "password": self.password}
            )
        )
        self.client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    async def install(self) -> None:
        _ok(await self.client.post("/api/apps/import", json=APP))

    async def load(self, start: int, stop: int) -> None:
        items = [{"op": "create", "data": record(i)} for i in range(start, stop)]
        url = f"/api/records/{APP_KEY}/{FORM_KEY}/bulk"
        _ok(await self.client.post(url, json={"items": items}, timeout=600))

    async def create(self, i: int) -> None:
        _ok(await self.client.post(f"/api/records/{APP_KEY}/{FORM_KEY}", json={"data": record(i)}))

    async def _list(self, **params: Any) -> Any:
        url = f"/api/records/{APP_KEY}/{FORM_KEY}"
        return _ok(await self.client.get(url, params=params)).json()

    async def first_page(self, n: int) -> int:
        return len((await self._list(limit=50, sort="id"))["items"])

    async def city_page(self, n: int) -> int:
        where = {"==": [{"var": "city"}, f"city_{n % 100}"]}
        return len((await self._list(filter=json.dumps(where), limit=50, sort="id"))["items"])

    def _between(self, n: int) -> str:
        # JsonLogic's between, which excludes empty values (docs/benchmarks.md)
        return json.dumps({"<=": [_low(n), {"var": "amount"}, _low(n) + SPAN]})

    async def range_page(self, n: int) -> list[str]:
        answer = await self._list(filter=self._between(n), sort="-amount", limit=50)
        return [item["data"]["name"] for item in answer["items"]]

    async def range_count(self, n: int) -> int:
        answer = await self._list(filter=self._between(n), count="true", limit=1)
        return int(answer["count"])

    async def by_city(self, n: int) -> int:
        spec = {
            "form": FORM_KEY,
            "rows": [{"field": "city"}],
            "measures": [
                {"key": "n", "op": "count"},
                {"key": "s", "op": "sum", "field": "amount"},
            ],
        }
        answer = _ok(await self.client.post(f"/api/reports/{APP_KEY}", json=spec)).json()
        return len(json.dumps(answer))

    async def post_raw(self, data: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"/api/records/{APP_KEY}/{FORM_KEY}", json={"data": data})


@dataclass
class Directus(Server):
    email: str = "admin@example.com"
    password: str = "bench-password"
    batch: int = 1_000

    async def sign_in(self) -> None:
        answer = _ok(
            await self.client.post(
                "/auth/login", json={"email": self.email, "password": self.password}
            )
        )
        # the session's token lives 15 minutes by default: the runs sign in again per round
        self.client.headers["Authorization"] = f"Bearer {answer.json()['data']['access_token']}"

    async def install(self) -> None:
        if (await self.client.get(f"/collections/{COLLECTION}")).status_code != 200:
            _ok(await self.client.post("/collections", json=DIRECTUS_COLLECTION))

    async def load(self, start: int, stop: int) -> None:
        for first in range(start, stop, self.batch):
            rows = [record(i) for i in range(first, min(first + self.batch, stop))]
            _ok(await self.client.post(f"/items/{COLLECTION}", json=rows, timeout=600))

    async def create(self, i: int) -> None:
        _ok(await self.client.post(f"/items/{COLLECTION}", json=record(i)))

    async def _items(self, **params: Any) -> Any:
        return _ok(await self.client.get(f"/items/{COLLECTION}", params=params)).json()["data"]

    async def first_page(self, n: int) -> int:
        return len(await self._items(limit=50, sort="id"))

    async def city_page(self, n: int) -> int:
        where = {"city": {"_eq": f"city_{n % 100}"}}
        return len(await self._items(filter=json.dumps(where), limit=50, sort="id"))

    def _between(self, n: int) -> str:
        return json.dumps({"amount": {"_between": [_low(n), _low(n) + SPAN]}})

    async def range_page(self, n: int) -> list[str]:
        rows = await self._items(filter=self._between(n), sort="-amount", limit=50)
        return [row["name"] for row in rows]

    async def range_count(self, n: int) -> int:
        rows = await self._items(**{"filter": self._between(n), "aggregate[count]": "*"})
        return int(rows[0]["count"])

    async def by_city(self, n: int) -> int:
        params = {
            "aggregate[count]": "*",
            "aggregate[sum]": "amount",
            "groupBy[]": "city",
            "limit": "-1",
        }
        return len(await self._items(**params))

    async def post_raw(self, data: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"/items/{COLLECTION}", json=data)


# --- measuring ----------------------------------------------------------------------------

QUESTIONS = [
    ("first page of 50 by id", "first_page"),
    ("indexed `city == x`, page of 50", "city_page"),
    ("`amount` between two values, sorted by amount desc", "range_page"),
    ("count of that filter", "range_count"),
    ("count + sum(amount) grouped by city", "by_city"),
]


@dataclass
class Figures:
    creates: list[float] = field(default_factory=list)  # per second, one per round
    latencies: dict[str, list[float]] = field(default_factory=dict)  # ms, pooled


async def _concurrently(
    count: int, one: Callable[[int], Awaitable[Any]], clients: int
) -> list[float]:
    """``count`` calls of ``one(n)`` by ``clients`` concurrent workers; each call's ms."""
    numbers: Iterator[int] = iter(range(count))
    times: list[float] = []

    async def worker() -> None:
        for n in numbers:
            began = time.perf_counter()
            await one(n)
            times.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(worker() for _ in range(clients)))
    return times


async def _round(servers: list[Server], figures: dict[str, Figures], start: int, args: Any) -> None:
    """Creates, then each question, on every server in turn; the creates are the same
    records on each (numbers ``start`` on)."""
    for server in servers:
        if isinstance(server, Directus):
            await server.sign_in()
    for server in servers:

        async def create(n: int, server: Server = server) -> None:
            await server.create(start + n)

        began = time.perf_counter()
        await _concurrently(args.creates, create, args.clients)
        figures[server.name].creates.append(args.creates / (time.perf_counter() - began))
    for label, method in QUESTIONS:
        for server in servers:
            times = await _concurrently(args.requests, getattr(server, method), args.clients)
            figures[server.name].latencies.setdefault(label, []).extend(times)


async def _same_answers(formloom: Server, directus: Server) -> None:
    """The two servers hold the same records: the questions' answers agree."""
    for method in ("first_page", "city_page", "range_page", "range_count"):
        for n in range(3):
            ours, theirs = await getattr(formloom, method)(n), await getattr(directus, method)(n)
            if ours != theirs:
                raise RuntimeError(f"{method}({n}): Formloom {ours}, Directus {theirs}")


async def _sizes(dsn: str) -> tuple[int, list[tuple[str, int]]]:
    conn = await asyncpg.connect(dsn)
    try:
        total = await conn.fetchval("SELECT pg_database_size(current_database())")
        rows = await conn.fetch(
            "SELECT relname, pg_total_relation_size(c.oid) AS size FROM pg_class c "
            "JOIN pg_namespace s ON s.oid = c.relnamespace "
            "WHERE s.nspname = 'public' AND c.relkind = 'r' ORDER BY size DESC LIMIT 6"
        )
        return int(total), [(row["relname"], int(row["size"])) for row in rows]
    finally:
        await conn.close()


async def _vacuum(dsn: str) -> None:
    """The planner's statistics and visibility map, as a table some time after its load."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def _rss_kib(pid: int | None) -> int | None:
    """Resident memory of a process and its descendants."""
    if pid is None:
        return None
    lines = subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid=,rss="], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    table = [tuple(int(x) for x in line.split()) for line in lines if line.strip()]
    family, total, grew = {pid}, 0, True
    while grew:
        grew = False
        for child, parent, _ in table:
            if parent in family and child not in family:
                family.add(child)
                grew = True
    for member, _, rss in table:
        if member in family:
            total += rss
    return total


def _servers(args: Any) -> tuple[Formloom, Directus]:
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    timeout = httpx.Timeout(120)
    formloom = Formloom(
        "Formloom",
        httpx.AsyncClient(base_url=args.formloom, limits=limits, timeout=timeout),
        args.formloom_db,
        args.formloom_pid,
        password=os.environ.get("FORMLOOM_BENCH_PASSWORD", "bench-password"),
    )
    directus = Directus(
        "Directus",
        httpx.AsyncClient(base_url=args.directus, limits=limits, timeout=timeout),
        args.directus_db,
        args.directus_pid,
        password=os.environ.get("DIRECTUS_BENCH_PASSWORD", "bench-password"),
    )
    return formloom, directus


async def load(args: Any) -> None:
    formloom, directus = _servers(args)
    for server, batch in ((formloom, 10_000), (directus, 10_000)):
        if args.only and server.name.lower() != args.only:
            continue
        await server.sign_in()
        await server.install()
        began = time.perf_counter()
        for first in range(0, args.records, batch):
            if isinstance(server, Directus):
                await server.sign_in()
            await server.load(first, min(first + batch, args.records))
        spent = time.perf_counter() - began
        print(f"{server.name}: {args.records:,} records in {spent:.1f} s")
        await _vacuum(server.database)
        await server.client.aclose()


def _p50(values: list[float]) -> float:
    return statistics.median(values)


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


async def run(args: Any) -> dict[str, Any]:
    formloom, directus = _servers(args)
    servers: list[Server] = [formloom, directus]
    for server in servers:
        await server.sign_in()
    await _same_answers(formloom, directus)
    load_before = os.getloadavg()
    # warm-up: every question a few times on each, not counted
    for server in servers:
        for _, method in QUESTIONS:
            await _concurrently(args.clients, getattr(server, method), args.clients)
    figures = {server.name: Figures() for server in servers}
    for number in range(args.rounds):
        order = servers if number % 2 == 0 else servers[::-1]
        # created records' numbers: past the loaded ones, the same on both servers
        await _round(order, figures, args.records + 1_000_000 + number * args.creates, args)
        print(f"round {number + 1} of {args.rounds} done", flush=True)
    load_after = os.getloadavg()
    result: dict[str, Any] = {
        "records": args.records,
        "clients": args.clients,
        "rounds": args.rounds,
        "requests_per_question_per_round": args.requests,
        "creates_per_round": args.creates,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "servers": {},
    }
    for server in servers:
        total, tables = await _sizes(server.database)
        mine = figures[server.name]
        result["servers"][server.name] = {
            "creates_per_s": _p50(mine.creates),
            "creates_per_s_rounds": mine.creates,
            "p50_ms": {label: _p50(times) for label, times in mine.latencies.items()},
            "database_bytes": total,
            "tables_bytes": tables,
            "rss_kib": _rss_kib(server.pid),
        }
        await server.client.aclose()
    _print(result)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return result


def _print(result: dict[str, Any]) -> None:
    ours, theirs = result["servers"]["Formloom"], result["servers"]["Directus"]
    mib = 1024 * 1024
    print(
        f"\n{result['records']:,} records, {result['clients']} clients, p50 ms, "
        f"{result['rounds']} rounds; load average "
        f"{' '.join(f'{x:.2f}' for x in result['load_average_before'])} before, "
        f"{' '.join(f'{x:.2f}' for x in result['load_average_after'])} after\n"
    )
    print("| work | Formloom | Directus | Formloom / Directus |")
    print("| --- | ---: | ---: | ---: |")
    a, b = ours["creates_per_s"], theirs["creates_per_s"]
    print(f"| single creates (throughput) | {a:.0f}/s | {b:.0f}/s | {a / b:.2f}× the rate |")
    for label, _ in QUESTIONS:
        a, b = ours["p50_ms"][label], theirs["p50_ms"][label]
        print(f"| {label} | {_ms(a)} | {_ms(b)} | {a / b:.2f} |")
    a, b = ours["database_bytes"], theirs["database_bytes"]
    print(f"| database size | {a / mib:.0f} MiB | {b / mib:.0f} MiB | {a / b:.2f} |")
    if ours["rss_kib"] and theirs["rss_kib"]:
        a, b = ours["rss_kib"], theirs["rss_kib"]
        print(
            f"| server RSS after the runs | {a / 1024:.0f} MiB | {b / 1024:.0f} MiB | {a / b:.2f} |"
        )
    for name, figures in result["servers"].items():
        tables = ", ".join(f"{table} {size / mib:.1f}" for table, size in figures["tables_bytes"])
        print(f"\n{name} tables (MiB, with indexes and TOAST): {tables}")
        rounds = ", ".join(f"{rate:.0f}" for rate in figures["creates_per_s_rounds"])
        print(f"{name} creates/s per round: {rounds}")


INVALID: list[tuple[str, dict[str, Any]]] = [
    ("no name (required)", {k: v for k, v in record(1).items() if k != "name"}),
    ("kind outside its choices", {**record(2), "kind": "purple"}),
    ('amount "abc"', {**record(3), "amount": "abc"}),
]


async def check(args: Any) -> None:
    """The same invalid records sent to both; what each answered (anything written is
    deleted again, so the two keep the same records)."""
    formloom, directus = _servers(args)
    for server in (formloom, directus):
        await server.sign_in()
        for label, data in INVALID:
            answer = await server.post_raw(data)
            print(f"{server.name}, {label}: {answer.status_code} {answer.text[:300]}")
            if answer.status_code < 300:
                created = answer.json().get("data", answer.json())
                if isinstance(server, Directus):
                    _ok(await server.client.delete(f"/items/{COLLECTION}/{created['id']}"))
                else:
                    url = f"/api/records/{APP_KEY}/{FORM_KEY}/{created['id']}"
                    _ok(await server.client.delete(url))
        await server.client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["load", "run", "check"])
    parser.add_argument("--formloom", default="http://127.0.0.1:8601")
    parser.add_argument("--directus", default="http://127.0.0.1:8055")
    parser.add_argument(
        "--formloom-db", default="postgresql://postgres@127.0.0.1:5432/bench_formloom"
    )
    parser.add_argument(
        "--directus-db", default="postgresql://postgres@127.0.0.1:5432/bench_directus"
    )
    parser.add_argument("--formloom-pid", type=int)
    parser.add_argument("--directus-pid", type=int)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=CLIENTS, help="concurrent clients")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=80, help="per question and round")
    parser.add_argument("--creates", type=int, default=400, help="per server and round")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--only", choices=["formloom", "directus"], help="load: only this one")
    args = parser.parse_args()
    command = {"load": load, "run": run, "check": check}[args.command]
    asyncio.run(command(args))


if __name__ == "__main__":
    main()
