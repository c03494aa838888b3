"""Install, list, read and export apps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response
from fastapi.responses import JSONResponse

from formloom.engines.apps import AppSpec
from formloom.platform.apps import auditing, service
from formloom.platform.audit.log import audit_now
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import Platform, PlatformDep
from formloom.platform.errors import BadRequest, Problem
from formloom.platform.permissions import guard
from formloom.platform.permissions.expressions import form_view
from formloom.platform.permissions.policy import resolve
from formloom.platform.records import projections
from formloom.platform.records.service import RecordService

router = APIRouter(prefix="/api", tags=["apps"])


async def _member(p: Platform, session: Any, who: Principal, app: str) -> service.InstalledApp:
    """An app the caller holds a role in (or administers)."""
    guard.require_app(who, app)
    installed = await p.catalog.get(session, app)
    guard.require_member(who, app)
    return installed


def _app_key(document: Any) -> str | None:
    key = document.get("key") if isinstance(document, dict) else None
    return key if isinstance(key, str) else None


def _result(result: service.ImportResult) -> dict[str, Any]:
    body: dict[str, Any] = {
        "app": result.app,
        "revision": result.version,
        "status": result.status,
        "forms": result.forms,
    }
    if result.plan is not None and result.status != "unchanged":
        body["plan"] = result.plan.to_dict()
    return body


DryRun = Annotated[bool, Query(description="Report the plan; change nothing")]
AllowDestructive = Annotated[
    bool, Query(description="Confirm changes that drop data (removed fields or forms)")
]


@router.post("/apps/import")
async def import_app(
    p: PlatformDep,
    who: PrincipalDep,
    response: Response,
    document: Annotated[Any, Body(description="A formloom.app/v1 definition")],
    dry_run: DryRun = False,
    allow_destructive: AllowDestructive = False,
) -> dict[str, Any]:
    guard.require_admin(who, _app_key(document), "import apps")
    async with (
        _audited(p, who, "app.import", _app_key(document), dry_run),
        p.db.transaction(write=not dry_run) as session,
    ):
        before = await auditing.grants_before(session, p.catalog, _app_key(document))
        result = await service.import_app(
            session,
            p.catalog,
            document,
            actor=who.username,
            now=p.clock.now(),
            allow_destructive=allow_destructive,
            dry_run=dry_run,
        )
        if not dry_run and result.status != "unchanged":
            await auditing.audit_change(
                session, p.catalog, who, "app.import", result, p.clock.now(), before
            )
    if dry_run:
        assert result.plan is not None
        return {"dry_run": True, **result.plan.to_dict()}
    projections.start_filling(p.db, result.projections_to_fill, now=p.clock.now())
    response.status_code = 201 if result.status == "created" else 200
    return _result(result)


@asynccontextmanager
async def _audited(
    p: Platform, who: Principal, action: str, app: str | None, dry_run: bool
) -> AsyncIterator[None]:
    """A refused app change (invalid definition, blocked plan, stale revision) is audited
    too, in its own unit of work (the change's own rolled back)."""
    try:
        yield
    except Problem as problem:
        if not dry_run:
            await audit_now(
                p.db,
                who,
                action,
                at=p.clock.now(),
                outcome="failed",
                app=app,
                detail={
                    "status": problem.status,
                    "reason": problem.detail[:300],
                    "problems": len(problem.errors),
                },
            )
        raise


@router.get("/apps/{app}/versions")
async def list_versions(app: str, p: PlatformDep, who: PrincipalDep) -> list[dict[str, Any]]:
    guard.require_admin(who, app, "read an app's versions")
    async with p.db.transaction(write=False) as session:
        return await service.list_versions(session, app)


@router.get("/apps/{app}/versions/{revision}")
async def read_version(app: str, revision: int, p: PlatformDep, who: PrincipalDep) -> Response:
    guard.require_admin(who, app, "read an app's versions")
    async with p.db.transaction(write=False) as session:
        text = await service.export_app(session, app, revision)
    return Response(text.encode(), media_type="application/json")


@router.post("/apps/{app}/rollback")
async def rollback(
    app: str,
    p: PlatformDep,
    who: PrincipalDep,
    to: Annotated[int, Query(description="The revision whose definition becomes current")],
    dry_run: DryRun = False,
    allow_destructive: AllowDestructive = False,
) -> dict[str, Any]:
    guard.require_admin(who, app, "roll an app back")
    async with (
        _audited(p, who, "app.rollback", app, dry_run),
        p.db.transaction(write=not dry_run) as session,
    ):
        before = await auditing.grants_before(session, p.catalog, app)
        result = await service.rollback(
            session,
            p.catalog,
            app,
            to,
            actor=who.username,
            now=p.clock.now(),
            allow_destructive=allow_destructive,
            dry_run=dry_run,
        )
        if not dry_run and result.status != "unchanged":
            await auditing.audit_change(
                session, p.catalog, who, "app.rollback", result, p.clock.now(), before
            )
    if dry_run:
        assert result.plan is not None
        return {"dry_run": True, **result.plan.to_dict()}
    return _result(result)


@router.put("/apps/{app}/forms/{form}")
async def save_form(
    app: str,
    form: str,
    p: PlatformDep,
    who: PrincipalDep,
    body: Annotated[
        Any,
        Body(description="The form definition, or {form, migration: {rename, set}}"),
    ],
    dry_run: DryRun = False,
    allow_destructive: AllowDestructive = False,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    guard.require_designer(who, app, "change forms")
    migration = None
    definition = body
    if isinstance(body, dict) and "form" in body and "fields" not in body:
        definition, migration = body.get("form"), body.get("migration")
    if isinstance(definition, dict) and definition.get("key", form) != form:
        raise BadRequest(
            f"The form's key ({definition.get('key')!r}) differs from the URL ({form!r}).",
            errors=[{"path": "/key", "code": "mismatch", "message": "must match the URL"}],
        )
    if isinstance(definition, dict):
        definition = {"key": form, **definition}
    async with (
        _audited(p, who, "app.form_saved", app, dry_run),
        p.db.transaction(write=not dry_run) as session,
    ):
        design = (await p.catalog.get(session, app)).spec.design
        guard.require_design(who, app, design, "change forms")
        before = await auditing.grants_before(session, p.catalog, app)
        result = await service.save_form(
            session,
            p.catalog,
            app,
            definition,
            migration=migration,
            if_match=if_match,
            actor=who.username,
            now=p.clock.now(),
            allow_destructive=allow_destructive,
            dry_run=dry_run,
        )
        if not dry_run and result.status != "unchanged":
            await auditing.audit_change(
                session, p.catalog, who, "app.form_saved", result, p.clock.now(), before
            )
    if dry_run:
        assert result.plan is not None
        return JSONResponse({"dry_run": True, **result.plan.to_dict()})
    return JSONResponse(_result(result), headers={"ETag": f'"{result.version}"'})


@router.get("/apps")
async def list_apps(p: PlatformDep, who: PrincipalDep) -> list[dict[str, Any]]:
    """The apps the caller may use: all of them for a platform admin, else those in which
    they hold a role."""
    guard.require_app(who, None)
    async with p.db.transaction(write=False) as session:
        apps = await service.describe_apps(session)
    return [app for app in apps if who.holds(app["key"])]


@router.get("/apps/{app}")
async def read_app(app: str, p: PlatformDep, who: PrincipalDep) -> dict[str, Any]:
    """The app's outline, with what the caller may do on each form (``access``: actions,
    hidden and read-only fields) — the UI offers only what is allowed. Record counts are
    the caller's: within their row filters, absent for forms they may not read."""
    async with p.db.transaction(write=False) as session:
        installed = await _member(p, session, who, app)
        outline = await service.describe_app(session, p.catalog, app)
        records = RecordService(session, p.catalog, principal=who, now=p.clock.now())
        for form in outline["forms"]:
            access = resolve(installed.spec.permissions, who, app, form["key"])
            form["access"] = {
                "actions": sorted(access.actions),
                "hidden_fields": sorted(access.hidden),
                "read_only_fields": sorted(access.read_only - access.hidden),
            }
            if access.unrestricted:
                continue
            if access.allows("read"):
                form["records"] = await records.count(app, form["key"])
            else:
                form.pop("records", None)
    return outline


@router.get("/apps/{app}/export")
async def export_app(app: str, p: PlatformDep, who: PrincipalDep) -> Response:
    guard.require_admin(who, app, "export apps")
    async with p.db.transaction(write=False) as session:
        text = await service.export_app(session, app)
    return Response(
        text.encode(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{app}.json"'},
    )


def _hidden(installed: service.InstalledApp, who: Principal, form: str) -> frozenset[str]:
    """The fields of ``form`` hidden from the caller: absent from the definitions and
    schemas they read, as from their records and their OpenAPI document."""
    return resolve(installed.spec.permissions, who, installed.key, form).hidden


@router.get("/apps/{app}/forms/{form}")
async def read_form(app: str, form: str, p: PlatformDep, who: PrincipalDep) -> Response:
    async with p.db.transaction(write=False) as session:
        installed = await _member(p, session, who, app)
    installed.form(form)
    document = next(f for f in installed.document["forms"] if f.get("key") == form)
    hidden = _hidden(installed, who, form)
    if hidden:
        document = {
            **document,
            "fields": [f for f in document.get("fields", []) if f.get("key") not in hidden],
        }
        if document.get("title_field") in hidden:
            document.pop("title_field")
    return JSONResponse(
        {
            "app": app,
            "revision": installed.version,
            "form_version": installed.form_version(form),
            "form": document,
        },
        headers={"ETag": f'"{installed.version}"'},
    )


@router.get("/apps/{app}/forms/{form}/schema")
async def form_schema(app: str, form: str, p: PlatformDep, who: PrincipalDep) -> dict[str, Any]:
    from formloom.engines.forms import compile_schema

    async with p.db.transaction(write=False) as session:
        installed = await _member(p, session, who, app)
    return compile_schema(form_view(installed.form(form), _hidden(installed, who, form)))


@router.get("/schema/app")
async def app_format_schema() -> dict[str, Any]:
    return AppSpec.model_json_schema()
