"""Helpers of the auth tests: reading the audit log straight from the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from formloom.platform.db import Database
from formloom.platform.models import AuditEntry


async def audit_rows(url: str, action: str | None = None) -> list[dict[str, Any]]:
    """Audit entries (oldest first), optionally of one action or action prefix (``auth.``)."""
    db = Database(url)
    try:
        async with db.transaction(write=False) as session:
            query = select(AuditEntry).order_by(AuditEntry.id)
            if action is not None:
                query = query.where(
                    AuditEntry.action.startswith(action)
                    if action.endswith(".")
                    else AuditEntry.action == action
                )
            rows = (await session.execute(query)).scalars().all()
        names = [column.name for column in AuditEntry.__table__.columns]
        return [{name: getattr(row, name) for name in names} for row in rows]
    finally:
        await db.dispose()
