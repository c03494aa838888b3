"""Fixtures shared by the platform tests.

Every storage test runs on SQLite *and* PostgreSQL through the parametrised ``backend``
fixture. PostgreSQL is required: if it cannot be reached the tests fail, they do not skip
(set FORMLOOM_TEST_POSTGRES=skip to run SQLite only on a machine without it).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from formloom.platform.api import create_app
from formloom.platform.apps.service import AppCatalog
from formloom.platform.auth import service as auth
from formloom.platform.auth.principal import Principal
from formloom.platform.clock import Clock, FixedClock
from formloom.platform.db import Database
from formloom.platform.migrate import upgrade
from formloom.platform.openapi import forget_documents
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests.servers import HttpSink, http_sink

# One database per test session, so two sessions (a developer's and CI's, or parallel
# helpers) never drop each other's tables; dropped when the session ends.
# Under pytest-xdist, a database given in FORMLOOM_TEST_POSTGRES_URL gets the worker's
# name appended, so the test processes of one run do not share it either.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_GIVEN_URL = os.environ.get("FORMLOOM_TEST_POSTGRES_URL")
POSTGRES_URL = (
    f"postgresql+asyncpg://postgres@127.0.0.1:5432/formloom_test_{os.getpid()}"
    if _GIVEN_URL is None
    else _GIVEN_URL
    if not _WORKER
    else make_url(_GIVEN_URL)
    .set(database=f"{make_url(_GIVEN_URL).database}_{_WORKER}")
    .render_as_string(hide_password=False)
)
# Children before parents (SQLite deletes row by row with foreign keys on).
TABLES = (
    "record_projections",
    "record_counters",
    "record_unique",
    "record_history",
    "records",
    "app_versions",
    "apps",
    "public_links",
    "files",
    "user_roles",
    "auth_tokens",
    "users",
    "sign_in_failures",
    "rule_runs",
    "outbox",
    "timers",
    "tasks",
    "task_candidates",
    "flow_instances",
    "flow_events",
    "notifications",
    "webhook_subscriptions",
    "form_templates",
    "audit_log",
)
FIXED_NOW = datetime(2026, 11, 23, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
_CURSOR_SECRET = secrets.token_urlsafe(32)


async def _fresh_postgres_database(url: str) -> None:
    """Drop and create the test database, so every run starts from the migrations alone."""
    target = make_url(url)
    admin = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        await admin.dispose()


async def _drop_postgres_database(url: str) -> None:
    target = make_url(url)
    admin = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        await admin.dispose()


# The slowest engine tests (differential and property tests, ~30 s of the ~70 s that
# `make test-fast` would take with them): marked ``slow`` so the inner loop can leave them
# out (-m "not slow"); `make test` runs them.
SLOW = (
    "tests/engines/logic/test_sql.py::test_wall_clock_in_sql_matches_the_evaluator",
    "tests/engines/logic/test_sql_values.py::test_generated_values_match_python_evaluation",
    "tests/engines/forms/test_fastcheck_property.py::",
)


def pytest_collection_modifyitems(session: pytest.Session, config: Any, items: list[Any]) -> None:
    """Browser tests run last: Playwright's sync API runs an event loop of its own in the
    test thread, after which pytest-asyncio's session loop cannot be started there again.
    Under pytest-xdist (`make test`) each process runs its share in this order too: the
    scheduler hands out tests in collection order. The tests named in ``SLOW`` get the
    ``slow`` marker."""
    for item in items:
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
    ui = [item for item in items if "/tests/ui/" in str(item.path).replace("\\", "/")]
    if ui:
        items[:] = [item for item in items if item not in ui] + ui


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if POSTGRES_URL in _prepared and POSTGRES_URL != _GIVEN_URL:
        import asyncio

        asyncio.run(_drop_postgres_database(POSTGRES_URL))


# One statement tells which tables hold rows: most tests write to a handful of them.
_FILLED = text("SELECT " + ", ".join(f"EXISTS (SELECT 1 FROM {table})" for table in TABLES))


async def _clean(db: Database) -> None:
    """Empty the tables a test wrote to and drop the indexes its apps made.

    Only the tables that hold rows are emptied: on PostgreSQL a TRUNCATE costs about the
    same for an empty table as for a full one (~150-250 ms for all 17, ~30-50 ms for the
    four to eight a typical test fills); on SQLite each DELETE is a statement saved."""
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            names = await conn.execute(
                text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix\\_rec\\_%'")
            )
        else:
            names = await conn.execute(
                text("SELECT name FROM sqlite_master WHERE type='index' AND name LIKE 'ix_rec_%'")
            )
        for (name,) in names.all():
            await conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        # typed projections: their tables, triggers (and functions)
        if db.dialect == "postgresql":
            tables = await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'fp\\_%'")
            )
            for (name,) in tables.all():
                await conn.execute(text(f"DROP FUNCTION IF EXISTS {name}_sync() CASCADE"))
                await conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
        else:
            tables = await conn.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name LIKE 'fp\\_%' ESCAPE '\\'"
                )
            )
            for (name,) in tables.all():
                for event in ("insert", "update", "delete"):
                    await conn.execute(text(f"DROP TRIGGER IF EXISTS {name}_{event}"))
                await conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
        flags = (await conn.execute(_FILLED)).one()
        filled = [table for table, full in zip(TABLES, flags, strict=True) if full]
        if not filled:
            return
        if db.dialect == "postgresql":
            # TRUNCATE, not DELETE: audit_log refuses DELETE (append-only trigger)
            await conn.execute(text(f"TRUNCATE {', '.join(filled)} CASCADE"))
        else:
            for table in filled:
                await conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("db") / "formloom.db"
    return f"sqlite+aiosqlite:///{path}"


_prepared: set[str] = set()
# One Database (engine and connection pool) per URL for the fixtures' own work: cleaning,
# making users, the ``db`` fixture. A test then opens one connection for them, not three.
_shared: dict[str, Database] = {}


def _database(url: str) -> Database:
    if url not in _shared:
        _shared[url] = Database(url)
    return _shared[url]


@pytest.fixture(scope="session")
async def _shared_databases() -> AsyncIterator[None]:
    """Closes the shared databases' connections when the session ends."""
    yield
    for database in _shared.values():
        await database.dispose()
    _shared.clear()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, sqlite_url: str, _shared_databases: None
) -> str:
    """A migrated, empty database of each kind. It is emptied before each test, which is
    enough: every test that uses it comes through here first."""
    if request.param == "sqlite":
        url = sqlite_url
    else:
        if os.environ.get("FORMLOOM_TEST_POSTGRES") == "skip":
            pytest.skip("PostgreSQL disabled with FORMLOOM_TEST_POSTGRES=skip")
        url = POSTGRES_URL
        if url not in _prepared:
            try:
                await _fresh_postgres_database(url)
            except (OSError, Exception) as exc:  # noqa: BLE001 - any failure to connect
                pytest.fail(
                    f"PostgreSQL is required for the tests and is not reachable at {url}: "
                    f"{exc!r}. Start it, or set FORMLOOM_TEST_POSTGRES=skip to run SQLite only."
                )
    db = _database(url)
    if url not in _prepared:
        await upgrade(db)
        _prepared.add(url)
    await _clean(db)
    return url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(FIXED_NOW)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        # above the clinic app's export (~200 KB, re-imported by the round-trip test), below
        # the 300 KB bodies the limit tests send
        max_body_bytes=280_000,
        max_page_size=100,
        password_hash="fast-test-only",
        # tests run the worker themselves, with a controlled clock
        worker_in_serve=False,
        # one per session, not one per Settings: equal settings share a service (running_service)
        cursor_secret=SecretStr(_CURSOR_SECRET),
    )


@dataclass(frozen=True)
class TestUser:
    """A user made by the ``users`` fixture, with a working bearer token."""

    __test__ = False  # not a test class

    id: str
    username: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Users:
    """Makes users with roles and attributes, and tokens for them, straight through the
    auth service (no HTTP), on the test's database and clock."""

    __test__ = False

    def __init__(self, settings: Settings, clock: FixedClock) -> None:
        self.settings = settings
        self.clock = clock
        self.db = _database(settings.database_url)

    async def create(
        self,
        username: str,
        *,
        admin: bool = False,
        roles: Mapping[str, Sequence[str]] | None = None,
        attributes: Mapping[str, Any] | None = None,
        password: str = "correct horse battery",
        display_name: str | None = None,
        app: str | None = None,
    ) -> TestUser:
        """A new user and a bearer token (a personal token scoped to ``app`` if given).
        Roles are taken as given: the apps need not be installed yet."""
        now = self.clock.now()
        fixture = Principal(username="test-fixture", via="system", is_admin=True)
        async with self.db.transaction() as session:
            user, _ = await auth.create_user(
                session,
                self.settings,
                who=fixture,
                now=now,
                username=username,
                display_name=display_name,
                password=password,
                is_admin=admin,
                attributes=dict(attributes or {}),
            )
            if roles:
                await auth.set_roles(session, None, user, dict(roles), who=fixture, now=now)
            kind = "personal" if app else "bearer"
            issued = await auth.issue(
                session,
                user,
                kind,
                now=now,
                lifetime=auth.lifetime_of(kind, self.settings),
                app_scope=app,
                name="test" if app else None,
            )
        return TestUser(user.id, user.username, password, issued.wire)

    async def token(
        self,
        username: str,
        *,
        app: str | None = None,
        kind: auth.TokenKind = "bearer",
        lifetime: timedelta | None = None,
    ) -> str:
        """Another token for an existing user."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            user = await auth.get_user(session, username)
            issued = await auth.issue(
                session,
                user,
                kind,
                now=now,
                lifetime=lifetime or auth.lifetime_of(kind, self.settings),
                app_scope=app,
            )
        return issued.wire


@pytest.fixture
def users(settings: Settings, clock: FixedClock) -> Users:
    return Users(settings, clock)


@pytest.fixture
async def admin(users: Users) -> TestUser:
    """The platform admin the ``client`` fixture signs its requests as."""
    return await users.create("admin", admin=True, display_name="Test Admin")


class _ClockOf:
    """The clock a pooled service reads: whichever its current user handed in."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def now(self) -> datetime:
        return self.clock.now()


# Built services no test is running, by settings. A FastAPI app works out each route's
# dependencies the first time a request passes it (~2-3 ms a route), which made building
# one per test the largest part of a typical platform test. The lifespan still runs per
# use: the database, the catalog of apps and the credential cache are new each time.
_idle: dict[tuple[tuple[str, str], ...], list[tuple[FastAPI, _ClockOf]]] = {}


def _settings_key(settings: Settings, upgrade_database: bool) -> tuple[tuple[str, str], ...]:
    values = [
        (name, value.get_secret_value() if isinstance(value, SecretStr) else repr(value))
        for name, value in settings
    ]
    return (*values, ("upgrade_database", repr(upgrade_database)))


@asynccontextmanager
async def running_service(
    settings: Settings,
    clock: Clock,
    base_url: str = "http://formloom.test",
    *,
    token: str | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """A started service (lifespan run) and an HTTP client talking to it in-process; with
    ``token`` every request carries it as a bearer token.

    The app object comes from a pool keyed by the settings (two services running at once
    get two apps, like two processes); on a database this session has migrated already,
    start-up does not check the migrations again (~10-50 ms a service)."""
    upgrade_database = settings.database_url not in _prepared
    idle = _idle.setdefault(_settings_key(settings, upgrade_database), [])
    if idle:
        app, reads = idle.pop()
        reads.clock = clock
        # its OpenAPI document cache is keyed by (app, revision, grant), and the previous
        # test's 'demo' revision 1 is not this one's
        forget_documents(app)
    else:
        reads = _ClockOf(clock)
        app = create_app(settings, clock=reads, upgrade_database=upgrade_database)
    try:
        async with app.router.lifespan_context(app):
            # this very object, as a new service would hold: tests may change a setting
            app.state.platform.settings = settings
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {token}"} if token else None
            async with httpx.AsyncClient(
                transport=transport, base_url=base_url, headers=headers
            ) as c:
                yield c
    finally:
        idle.append((app, reads))


@pytest.fixture
async def client(
    settings: Settings, clock: FixedClock, admin: TestUser
) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as the platform admin (bearer token); a request may override the
    ``Authorization`` header to act as someone else (``headers=user.headers``)."""
    async with running_service(settings, clock, token=admin.token) as c:
        yield c


@pytest.fixture
async def anon_client(settings: Settings, clock: FixedClock) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials."""
    async with running_service(settings, clock) as c:
        yield c


@pytest.fixture
def db(database_url: str) -> Database:
    return _database(database_url)


@asynccontextmanager
async def running_worker(settings: Settings, **changes: Any) -> AsyncIterator[Worker]:
    """The background worker on the test's database, on the clinic's clock (Asia/Shanghai)
    unless ``changes`` say otherwise (other settings too: the text gateway's URL, the
    outbox's backoff); the tests run it themselves (``run_once``) at the moments they
    choose."""
    db = Database(settings.database_url)
    try:
        yield Worker(
            db, AppCatalog(), settings.model_copy(update={"timezone": "Asia/Shanghai", **changes})
        )
    finally:
        await db.dispose()


@pytest.fixture
def gateway() -> Iterator[HttpSink]:
    """A real local HTTP server standing for the text-message gateway (or a webhook's
    receiver), recording what it receives."""
    with http_sink() as sink:
        yield sink


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker]:
    """The worker on the clinic's clock; a test that needs other settings defines its own
    with :func:`running_worker`."""
    async with running_worker(settings) as running:
        yield running
