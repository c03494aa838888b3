"""Reading the audit log (platform admins). There is no way to change or delete an entry."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from formloom.platform.audit.repository import AuditFilter, entry_out, page
from formloom.platform.auth.deps import AdminDep
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import BadRequest

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("")
async def read_audit_log(
    p: PlatformDep,
    _who: AdminDep,
    actor: str | None = None,
    action: Annotated[
        str | None, Query(description="An action, or a prefix ending in `.` (`record.`).")
    ] = None,
    outcome: Literal["ok", "denied", "failed"] | None = None,
    app: str | None = None,
    form: str | None = None,
    record_id: str | None = None,
    since: Annotated[AwareDatetime | None, Query(description="From this instant on.")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Before this instant.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> dict[str, Any]:
    """Audit entries, newest first, a page at a time."""
    before = None
    if cursor:
        if not cursor.isdigit() or len(cursor) > 19:
            raise BadRequest("`cursor` is not one this endpoint gave out.")
        before = int(cursor)
    where = AuditFilter(
        actor=actor,
        action=action,
        outcome=outcome,
        app=app,
        form=form,
        record_id=record_id,
        since=since,
        until=until,
    )
    async with p.db.transaction(write=False) as session:
        rows, next_id = await page(session, where, limit=limit, before=before)
    return {
        "items": [entry_out(row) for row in rows],
        "next_cursor": str(next_id) if next_id is not None else None,
    }
