"""The people directory of an app: who a user field may name, which departments a
department field may hold (``people.service`` says who may ask)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.people import service
from formloom.platform.people.schemas import DepartmentsOut, PeopleOut, PersonOut

router = APIRouter(prefix="/api/apps", tags=["people"])

#: Most ids one look-up by ``ids`` may name.
MAX_IDS = 200


@router.get("/{app}/people", response_model=PeopleOut)
async def list_people(
    app: str,
    p: PlatformDep,
    who: PrincipalDep,
    q: Annotated[
        str, Query(max_length=100, description="Part of a display name or username.")
    ] = "",
    ids: Annotated[
        str | None,
        Query(max_length=8000, description="Comma-separated user ids to name (instead of q)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_RESULTS)] = 20,
) -> PeopleOut:
    """The app's members (people holding a role in it) matching ``q`` by display name or
    username, those starting with it first; or, with ``ids``, those of the given ids. For
    signed-in members of the app only; never for a public link."""
    service.require_directory(who, app)
    async with p.db.transaction(write=False) as session:
        await p.catalog.get(session, app)
        if ids is not None:
            wanted = [part for part in (i.strip() for i in ids.split(",")) if part][:MAX_IDS]
            found = await service.find(session, app, wanted)
        else:
            found = await service.search(session, app, q, limit)
    return PeopleOut(
        items=[PersonOut(id=x.id, display_name=x.display_name, username=x.username) for x in found]
    )


@router.get("/{app}/departments", response_model=DepartmentsOut)
async def list_departments(app: str, p: PlatformDep, who: PrincipalDep) -> DepartmentsOut:
    """The app's departments: the distinct ``department`` attributes of its members."""
    service.require_directory(who, app)
    async with p.db.transaction(write=False) as session:
        await p.catalog.get(session, app)
        return DepartmentsOut(items=await service.departments(session, app))
