"""``POST /api/records/{app}/{form}/bulk``: many writes of one form in one call
(platform/records/bulk.py; the contract is in docs/import.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import Problem, audit_refusal
from formloom.platform.records.bulk import (
    MAX_BODY_BYTES,
    MAX_ITEMS,
    BulkOut,
    BulkRequest,
    BulkWriter,
    refused,
    report,
    too_many,
)
from formloom.platform.records.service import service_for

router = APIRouter(prefix="/api/records", tags=["records"])


@router.post(
    "/{app}/{form}/bulk",
    response_model=BulkOut,
    responses={422: {"description": "An item is not valid (atomic): every one is listed."}},
)
async def bulk_write(
    app: str,
    form: str,
    body: BulkRequest,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    atomic: Annotated[
        bool,
        Query(description="All or nothing (default); false: write what can be, a result each."),
    ] = True,
) -> BulkOut:
    """Up to 10,000 creates, updates, upserts and deletes of one form, each checked and
    audited as its single write is, rules included."""
    if len(body.items) > MAX_ITEMS:
        raise too_many(len(body.items))
    refusals: list[dict[str, Any]] = []
    try:
        async with p.db.transaction() as session:
            writer = BulkWriter(service_for(p, session, who), app, form, atomic=atomic)
            outcomes = await writer.run(body.items)
            refusals = writer.refusals
            if atomic and any(o.status >= 400 for o in outcomes):
                raise refused(outcomes)
    except Problem:
        for event in refusals:
            await audit_refusal(request, event)
        raise
    for event in refusals:
        await audit_refusal(request, event)
    return report(outcomes, atomic=atomic)


#: Bodies these endpoints take beyond the default limit (platform/limits.py patterns).
LARGER_BODIES = {"/api/records/*/bulk": MAX_BODY_BYTES, "/api/records/*/import": MAX_BODY_BYTES}
