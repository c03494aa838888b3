"""The generic record API: the same endpoints serve every form of every app."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from formloom.engines.forms.localtime import zone_of
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import Platform, PlatformDep
from formloom.platform.errors import BadRequest
from formloom.platform.i18n import request_locale
from formloom.platform.records.app_search import MAX_PER_FORM, PER_FORM, search_app
from formloom.platform.records.related import GROUP_SIZE, MAX_GROUP_SIZE, RelatedReader
from formloom.platform.records.schemas import (
    AppSearchOut,
    HistoryEntry,
    QueryBody,
    RecordOut,
    RecordPage,
    RecordWrite,
    RelatedOut,
)
from formloom.platform.records.service import ListQuery, etag, service_for

router = APIRouter(prefix="/api/records", tags=["records"])


def _parse_filter(raw: str | None) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return json.loads(raw)
    except RecursionError:
        raise BadRequest(
            "`filter` is nested too deeply.",
            errors=[
                {
                    "in": "query",
                    "parameter": "filter",
                    "code": "too_deep",
                    "message": "nested too deeply",
                }
            ],
        ) from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"`filter` is not valid JSON ({exc.msg} at position {exc.pos}).",
            errors=[
                {"in": "query", "parameter": "filter", "code": "invalid_json", "message": exc.msg}
            ],
        ) from None


async def _list(p: Platform, who: Principal, app: str, form: str, query: ListQuery) -> RecordPage:
    async with p.db.transaction(write=False) as session:
        service = service_for(p, session, who)
        page = await service.list(app, form, query)
    return RecordPage.model_validate(
        {"items": page.items, "next_cursor": page.next_cursor, "count": page.count}
    )


@router.get("/{app}", response_model=AppSearchOut)
async def search_app_records(
    app: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    q: Annotated[str, Query(description="The term, as for a list's `q`.")],
    limit: Annotated[int, Query(ge=1, le=MAX_PER_FORM, description="Matches per form.")] = PER_FORM,
    lang: Annotated[str | None, Query(description="Language of titles and labels.")] = None,
) -> dict[str, Any]:
    """Search every form of the app the caller may read (the header's search box): the
    matches grouped by form, in the app's order of forms, best matches first."""
    async with p.db.transaction(write=False) as session:
        return await search_app(
            service_for(p, session, who),
            app,
            q,
            per_form=limit,
            lang=request_locale(request),
            zone=zone_of(p.settings.timezone),
        )


@router.get("/{app}/{form}", response_model=RecordPage)
async def list_records(
    app: str,
    form: str,
    p: PlatformDep,
    who: PrincipalDep,
    filter: Annotated[str | None, Query(description="JsonLogic expression as JSON")] = None,
    sort: Annotated[
        str | None,
        Query(description="e.g. `-created_at,name`; absent: the form's own order, else `id`"),
    ] = None,
    limit: Annotated[int | None, Query(description="Page size")] = None,
    cursor: Annotated[str | None, Query(description="From `next_cursor`")] = None,
    fields: Annotated[str | None, Query(description="Comma-separated field keys")] = None,
    count: Annotated[bool, Query(description="Also count all matches")] = False,
    q: Annotated[
        str | None,
        Query(
            description="Quick search: the form's title and search fields (phone numbers by "
            "their digits); exact matches first, then prefixes, then the rest."
        ),
    ] = None,
) -> RecordPage:
    query = ListQuery(
        filter=_parse_filter(filter),
        sort=sort,
        limit=limit if limit is not None else p.settings.page_size,
        cursor=cursor,
        fields=[f.strip() for f in fields.split(",") if f.strip()] if fields else None,
        count=count,
        q=q,
    )
    return await _list(p, who, app, form, query)


@router.post("/{app}/{form}/query", response_model=RecordPage)
async def query_records(
    app: str, form: str, body: QueryBody, p: PlatformDep, who: PrincipalDep
) -> RecordPage:
    query = ListQuery(
        filter=body.filter,
        sort=body.sort,
        limit=body.limit if body.limit is not None else p.settings.page_size,
        cursor=body.cursor,
        fields=body.fields,
        count=body.count,
        q=body.q,
    )
    return await _list(p, who, app, form, query)


@router.post("/{app}/{form}", status_code=201, response_model=RecordOut)
async def create_record(
    app: str, form: str, body: RecordWrite, p: PlatformDep, who: PrincipalDep
) -> Response:
    async with p.db.transaction() as session:
        service = service_for(p, session, who)
        record = await service.create(app, form, body.data)
    # Built directly: the shape is already RecordOut's, and re-validating it through the
    # response model is the single largest cost on this hot path.
    return JSONResponse(
        service.view(record),
        status_code=201,
        headers={"ETag": etag(record), "Location": f"/api/records/{app}/{form}/{record.id}"},
    )


@router.get("/{app}/{form}/{record_id}", response_model=RecordOut)
async def read_record(
    app: str,
    form: str,
    record_id: str,
    response: Response,
    p: PlatformDep,
    who: PrincipalDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    async with p.db.transaction(write=False) as session:
        service = service_for(p, session, who)
        record = await service.get(app, form, record_id)
    tag = etag(record)
    if if_none_match is not None and tag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return service.view(record)


@router.patch("/{app}/{form}/{record_id}", response_model=RecordOut)
async def update_record(
    app: str,
    form: str,
    record_id: str,
    body: RecordWrite,
    response: Response,
    p: PlatformDep,
    who: PrincipalDep,
    if_match: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    async with p.db.transaction() as session:
        service = service_for(p, session, who)
        record = await service.update(app, form, record_id, body.data, if_match=if_match)
    response.headers["ETag"] = etag(record)
    return service.view(record)


@router.delete("/{app}/{form}/{record_id}", status_code=204)
async def delete_record(
    app: str,
    form: str,
    record_id: str,
    p: PlatformDep,
    who: PrincipalDep,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    async with p.db.transaction() as session:
        await service_for(p, session, who).delete(app, form, record_id, if_match=if_match)
    return Response(status_code=204)


@router.get("/{app}/{form}/{record_id}/history", response_model=list[HistoryEntry])
async def record_history(
    app: str, form: str, record_id: str, p: PlatformDep, who: PrincipalDep
) -> list[dict[str, Any]]:
    async with p.db.transaction(write=False) as session:
        service = service_for(p, session, who)
        entries = await service.history(app, form, record_id)
    return entries


@router.get("/{app}/{form}/{record_id}/related", response_model=RelatedOut)
async def related_records(
    app: str,
    form: str,
    record_id: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_GROUP_SIZE, description="Records per group.")
    ] = GROUP_SIZE,
    lang: Annotated[
        str | None,
        Query(description="Language of titles and labels (else Accept-Language, else en)."),
    ] = None,
) -> dict[str, Any]:
    """The record with the readable records pointing at it (one and two hops), its tasks,
    flow instances and messages, and one timeline of them all (platform/records/related.py)."""
    async with p.db.transaction(write=False) as session:
        reader = RelatedReader(
            service_for(p, session, who),
            locale=request_locale(request),  # reads `lang` first
            zone=p.settings.timezone,
            group_size=limit,
        )
        return await reader.read(app, form, record_id)
