"""Install, list, read and export apps."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response

from formloom.platform.apps import service
from formloom.platform.apps.definition import AppSpec
from formloom.platform.deps import Platform, actor, platform

router = APIRouter(prefix="/api", tags=["apps"])

PlatformDep = Annotated[Platform, Depends(platform)]
ActorDep = Annotated[str, Depends(actor)]


@router.post("/apps/import")
async def import_app(
    p: PlatformDep,
    who: ActorDep,
    response: Response,
    document: Annotated[Any, Body(description="A formloom.app/v1 definition")],
    dry_run: Annotated[bool, Query(description="Validate and report only")] = False,
) -> dict[str, Any]:
    if dry_run:
        spec = service.validate_document(document)
        async with p.db.transaction(write=False) as session:
            plan = await service.plan_import(session, spec, document)
        return {"dry_run": True, **plan}
    async with p.db.transaction() as session:
        result = await service.import_app(
            session, p.catalog, document, actor=who, now=p.clock.now()
        )
    response.status_code = 201 if result.status == "created" else 200
    return {
        "app": result.app,
        "revision": result.version,
        "status": result.status,
        "forms": result.forms,
    }


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
async def read_form(app: str, form: str, p: PlatformDep) -> dict[str, Any]:
    async with p.db.transaction(write=False) as session:
        installed = await p.catalog.get(session, app)
    installed.form(form)
    document = next(f for f in installed.document["forms"] if f.get("key") == form)
    return {"app": app, "revision": installed.version, "form": document}


@router.get("/apps/{app}/forms/{form}/schema")
async def form_schema(app: str, form: str, p: PlatformDep) -> dict[str, Any]:
    from formloom.engines.forms import compile_schema

    async with p.db.transaction(write=False) as session:
        installed = await p.catalog.get(session, app)
    return compile_schema(installed.form(form))


@router.get("/schema/app")
async def app_format_schema() -> dict[str, Any]:
    return AppSpec.model_json_schema()
