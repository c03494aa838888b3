"""Install, list, read and export apps."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Response
from fastapi.responses import JSONResponse

from formloom.platform.apps import service
from formloom.platform.apps.definition import AppSpec
from formloom.platform.deps import Platform, actor, platform
from formloom.platform.errors import BadRequest

router = APIRouter(prefix="/api", tags=["apps"])

PlatformDep = Annotated[Platform, Depends(platform)]
ActorDep = Annotated[str, Depends(actor)]


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
    who: ActorDep,
    response: Response,
    document: Annotated[Any, Body(description="A formloom.app/v1 definition")],
    dry_run: DryRun = False,
    allow_destructive: AllowDestructive = False,
) -> dict[str, Any]:
    async with p.db.transaction(write=not dry_run) as session:
        result = await service.import_app(
            session,
            p.catalog,
            document,
            actor=who,
            now=p.clock.now(),
            allow_destructive=allow_destructive,
            dry_run=dry_run,
        )
    if dry_run:
        assert result.plan is not None
        return {"dry_run": True, **result.plan.to_dict()}
    response.status_code = 201 if result.status == "created" else 200
    return _result(result)


@router.get("/apps/{app}/versions")
async def list_versions(app: str, p: PlatformDep) -> list[dict[str, Any]]:
    async with p.db.transaction(write=False) as session:
        return await service.list_versions(session, app)


@router.get("/apps/{app}/versions/{revision}")
async def read_version(app: str, revision: int, p: PlatformDep) -> Response:
    async with p.db.transaction(write=False) as session:
        text = await service.export_app(session, app, revision)
    return Response(text.encode(), media_type="application/json")


@router.post("/apps/{app}/rollback")
async def rollback(
    app: str,
    p: PlatformDep,
    who: ActorDep,
    to: Annotated[int, Query(description="The revision whose definition becomes current")],
    dry_run: DryRun = False,
    allow_destructive: AllowDestructive = False,
) -> dict[str, Any]:
    async with p.db.transaction(write=not dry_run) as session:
        result = await service.rollback(
            session,
            p.catalog,
            app,
            to,
            actor=who,
            now=p.clock.now(),
            allow_destructive=allow_destructive,
            dry_run=dry_run,
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
    who: ActorDep,
    body: Annotated[
        Any,
        Body(description="The form definition, or {form, migration: {rename, set}}"),
    ],
    dry_run: DryRun = False,
    allow_destructive: AllowDestructive = False,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
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
    async with p.db.transaction(write=not dry_run) as session:
        result = await service.save_form(
            session,
            p.catalog,
            app,
            definition,
            migration=migration,
            if_match=if_match,
            actor=who,
            now=p.clock.now(),
            allow_destructive=allow_destructive,
            dry_run=dry_run,
        )
    if dry_run:
        assert result.plan is not None
        return JSONResponse({"dry_run": True, **result.plan.to_dict()})
    return JSONResponse(_result(result), headers={"ETag": f'"{result.version}"'})


@router.get("/apps")
async def list_apps(p: PlatformDep) -> list[dict[str, Any]]:
    async with p.db.transaction(write=False) as session:
        return await service.describe_apps(session)


@router.get("/apps/{app}")
async def read_app(app: str, p: PlatformDep) -> dict[str, Any]:
    async with p.db.transaction(write=False) as session:
        return await service.describe_app(session, p.catalog, app)


@router.get("/apps/{app}/export")
async def export_app(app: str, p: PlatformDep) -> Response:
    async with p.db.transaction(write=False) as session:
        text = await service.export_app(session, app)
    return Response(
        text.encode(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{app}.json"'},
    )


@router.get("/apps/{app}/forms/{form}")
async def read_form(app: str, form: str, p: PlatformDep) -> Response:
    async with p.db.transaction(write=False) as session:
        installed = await p.catalog.get(session, app)
    installed.form(form)
    document = next(f for f in installed.document["forms"] if f.get("key") == form)
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
async def form_schema(app: str, form: str, p: PlatformDep) -> dict[str, Any]:
    from formloom.engines.forms import compile_schema

    async with p.db.transaction(write=False) as session:
        installed = await p.catalog.get(session, app)
    return compile_schema(installed.form(form))


@router.get("/schema/app")
async def app_format_schema() -> dict[str, Any]:
    return AppSpec.model_json_schema()
