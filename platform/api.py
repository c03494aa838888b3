"""The FastAPI application: one service for every app's forms and records."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from formloom.platform import errors, openapi
from formloom.platform.apps.access_api import router as app_access_router
from formloom.platform.apps.endpoints import router as apps_router
from formloom.platform.apps.parts_api import router as app_parts_router
from formloom.platform.apps.rules_api import router as app_rules_router
from formloom.platform.apps.service import AppCatalog, reconcile_projections
from formloom.platform.audit.endpoints import router as audit_router
from formloom.platform.auth.endpoints import router as auth_router
from formloom.platform.auth.endpoints import users_router
from formloom.platform.clock import Clock, SystemClock
from formloom.platform.db import Database
from formloom.platform.deps import Platform
from formloom.platform.fhir.endpoints import router as fhir_router
from formloom.platform.files.endpoints import router as files_router
from formloom.platform.flows.endpoints import router as flows_router
from formloom.platform.form_templates.endpoints import router as form_templates_router
from formloom.platform.limits import BodyLimit
from formloom.platform.links import tokens as link_tokens
from formloom.platform.links.endpoints import router as links_router
from formloom.platform.migrate import upgrade
from formloom.platform.people.endpoints import router as people_router
from formloom.platform.records import bulk_api, projections
from formloom.platform.records.endpoints import router as records_router
from formloom.platform.reports.endpoints import router as reports_router
from formloom.platform.rules import scheduler as scheduling
from formloom.platform.rules.endpoints import automation_router
from formloom.platform.rules.endpoints import router as rules_router
from formloom.platform.settings import Settings, get_settings
from formloom.platform.web import importing as importing_page
from formloom.platform.web.access_designer import router as access_designer_router
from formloom.platform.web.dashboard_designer import router as dashboard_designer_router
from formloom.platform.web.designer import router as designer_router
from formloom.platform.web.export import router as export_router
from formloom.platform.web.flow_designer import router as flow_designer_router
from formloom.platform.web.pages import UI
from formloom.platform.web.pages import router as pages_router
from formloom.platform.web.printing import pdf_router as print_pdf_router
from formloom.platform.web.printing import router as printing_router
from formloom.platform.web.public import router as public_router
from formloom.platform.web.report_designer import router as report_designer_router
from formloom.platform.web.rule_designer import router as rule_designer_router
from formloom.platform.web.runtime import router as runtime_router
from formloom.platform.web.tasks import router as tasks_router
from formloom.platform.webhooks.endpoints import router as webhooks_router

VERSION = "0.1.0"


async def _unfinished_projections(db: Database) -> list[str]:
    async with db.transaction(write=False) as session:
        return await projections.unfinished(session)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    upgrade_database: bool = True,
    on_startup: Any = None,
    freeze_startup_objects: bool = False,
) -> FastAPI:
    """Build the service. ``upgrade_database`` brings the schema to the newest revision at
    start-up (the embedded default needs no separate step); ``on_startup`` is an optional
    coroutine function given the ``Platform`` once the database is ready (the demo uses it to
    install the bundled apps). ``freeze_startup_objects`` (``formloom serve``): once started,
    what start-up built is moved out of the garbage collector's sight (``gc.freeze``), so a
    full collection during a request walks only what requests made. In the report
    benchmark's process (~250,000 objects after start-up) a full collection took ~150 ms,
    more than a 5,000-cell report itself (~130 ms), and ~2 ms frozen. Not for a process that
    builds many services (tests): what it froze is never freed."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url, echo=settings.sql_echo)
        link_tokens.configure(settings.public_base_url)
        state = Platform(
            settings=settings,
            db=db,
            catalog=AppCatalog(),
            clock=clock or SystemClock(settings.timezone),
        )
        app.state.platform = state
        try:
            if upgrade_database:
                await upgrade(db)
            if on_startup is not None:
                await on_startup(state)
            # typed projections a stopped process left half-built, and those this release
            # projects differently
            now = state.clock.now()
            rebuilt = await reconcile_projections(db, now=now)
            unfinished = [*await _unfinished_projections(db), *rebuilt]
            projections.start_filling(db, list(dict.fromkeys(unfinished)), now=now)
            scheduler = scheduling.start(state) if settings.worker_in_serve else None
            if freeze_startup_objects:
                gc.collect()
                gc.freeze()
            try:
                yield
            finally:
                # what runs in the background ends before the database closes under it
                if scheduler is not None:
                    await scheduler.stop()
                await projections.stop_filling()
        finally:
            await db.dispose()

    app = FastAPI(
        title="Formloom",
        version=VERSION,
        description="Forms, rules, flows and reports defined as data.",
        lifespan=lifespan,
        # /docs is served by formloom.platform.openapi from local files; no ReDoc (CDN only)
        redoc_url=None,
    )
    errors.install(app)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        larger={"/api/files/": settings.max_file_bytes + 65_536, **bulk_api.LARGER_BODIES},
    )
    app.include_router(auth_router)
    app.include_router(users_router)
    app.include_router(audit_router)
    app.include_router(apps_router)
    app.include_router(form_templates_router)
    app.include_router(fhir_router)
    app.include_router(app_rules_router)
    app.include_router(app_parts_router)
    app.include_router(app_access_router)
    app.include_router(people_router)
    app.include_router(bulk_api.router)
    app.include_router(records_router)
    app.include_router(links_router)
    app.include_router(reports_router)
    app.include_router(rules_router)
    app.include_router(automation_router)
    app.include_router(webhooks_router)
    app.include_router(flows_router)
    app.include_router(files_router)
    app.include_router(export_router)
    app.include_router(print_pdf_router)
    app.include_router(pages_router)
    app.include_router(rule_designer_router)  # before /designer/{app}/{form}
    app.include_router(report_designer_router)  # before /designer/{app}/{form}
    app.include_router(dashboard_designer_router)  # before /designer/{app}/{form}
    app.include_router(flow_designer_router)  # before /designer/{app}/{form}
    app.include_router(access_designer_router)  # before /designer/{app}/{form}, after rules/{rule}…
    app.include_router(designer_router)
    app.include_router(tasks_router)
    app.include_router(importing_page.router)  # before /apps/{app}/forms/{form}/{id}
    app.include_router(printing_router)  # before /apps/{app}/forms/{form}/{id}
    app.include_router(runtime_router)
    app.include_router(public_router)
    app.mount("/static", StaticFiles(directory=str(UI / "static")), name="static")
    openapi.install(app)

    @app.get("/api/health", tags=["service"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": VERSION}

    return app
