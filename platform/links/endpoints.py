"""Public links: staff create and withdraw them; their holders read and submit one form."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from fastapi.responses import JSONResponse

from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.links import service
from formloom.platform.links.service import LinkService
from formloom.platform.records.schemas import RecordWrite

router = APIRouter(prefix="/api", tags=["public links"])


@router.post("/apps/{app}/forms/{form}/links", status_code=201)
async def create_link(
    app: str,
    form: str,
    p: PlatformDep,
    who: PrincipalDep,
    body: Annotated[
        Any,
        Body(
            description='{"label"?, "expires_in_hours"? (default 168), '
            '"bind"?: {"field": relation field, "record": id}, '
            '"fields"?: [the fields the holder may fill in; default: all you may write]}'
        ),
    ] = None,
) -> JSONResponse:
    """Publish the form as a one-submission link. The token is in the answer only.
    Submissions are bounded by the creator's grant as it is when the link is used."""
    now = p.clock.now()
    async with p.db.transaction() as session:
        link, token = await LinkService(session, p.catalog, principal=who, now=now).create(
            app, form, {} if body is None else body
        )
    return JSONResponse(
        {**service.link_out(link, now), "token": token, "url": f"/p/{token}"}, status_code=201
    )


@router.get("/apps/{app}/forms/{form}/links")
async def list_links(
    app: str, form: str, p: PlatformDep, who: PrincipalDep
) -> list[dict[str, Any]]:
    async with p.db.transaction(write=False) as session:
        return await LinkService(session, p.catalog, principal=who, now=p.clock.now()).list(
            app, form
        )


@router.delete("/apps/{app}/forms/{form}/links/{link_id}", status_code=204)
async def revoke_link(
    app: str, form: str, link_id: str, p: PlatformDep, who: PrincipalDep
) -> Response:
    async with p.db.transaction() as session:
        await LinkService(session, p.catalog, principal=who, now=p.clock.now()).revoke(
            app, form, link_id
        )
    return Response(status_code=204)


@router.get("/public/{token}")
async def read_public_form(token: str, p: PlatformDep) -> dict[str, Any]:
    """The form behind a link (no credentials: the token is the credential)."""
    async with p.db.transaction(write=False) as session:
        return await service.public_form(session, p.catalog, token, p.clock.now())


@router.post("/public/{token}", status_code=201)
async def submit_public_form(token: str, body: RecordWrite, p: PlatformDep) -> dict[str, Any]:
    async with p.db.transaction() as session:
        return await service.submit(session, p.catalog, token, body.data, p.clock.now())
