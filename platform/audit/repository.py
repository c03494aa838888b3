"""Reading the audit log: filters and keyset pages, newest first (by id)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.platform.models.audit import AuditEntry


@dataclass(frozen=True)
class AuditFilter:
    """``action`` ending in ``.`` or ``*`` is a prefix (``record.`` = every record event)."""

    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    app: str | None = None
    form: str | None = None
    record_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.actor is not None:
            query = query.where(AuditEntry.actor == self.actor)
        if self.action:
            if self.action.endswith((".", "*")):
                prefix = self.action.rstrip("*")
                query = query.where(AuditEntry.action.startswith(prefix, autoescape=True))
            else:
                query = query.where(AuditEntry.action == self.action)
        if self.outcome is not None:
            query = query.where(AuditEntry.outcome == self.outcome)
        if self.app is not None:
            query = query.where(AuditEntry.app == self.app)
        if self.form is not None:
            query = query.where(AuditEntry.form == self.form)
        if self.record_id is not None:
            query = query.where(AuditEntry.record_id == self.record_id)
        if self.since is not None:
            query = query.where(AuditEntry.at >= self.since)
        if self.until is not None:
            query = query.where(AuditEntry.at < self.until)
        return query


def entry_out(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "actor": row.actor,
        "user_id": row.user_id,
        "via": row.via,
        "address": row.address,
        "action": row.action,
        "outcome": row.outcome,
        "app": row.app,
        "form": row.form,
        "record_id": row.record_id,
        "version": row.version,
        "detail": row.detail,
    }


async def page(
    session: AsyncSession, where: AuditFilter, *, limit: int, before: int | None = None
) -> tuple[list[AuditEntry], int | None]:
    """Up to ``limit`` entries older than id ``before``, newest first, and the cursor of the
    next page (None on the last one)."""
    query = where.apply(select(AuditEntry))
    if before is not None:
        query = query.where(AuditEntry.id < before)
    query = query.order_by(AuditEntry.id.desc()).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1].id
    return rows, None


async def scan(
    session: AsyncSession, where: AuditFilter, *, batch: int = 1000
) -> AsyncIterator[AuditEntry]:
    """Every matching entry, oldest first, in batches (for exports of any size)."""
    after = 0
    while True:
        query = (
            where.apply(select(AuditEntry))
            .where(AuditEntry.id > after)
            .order_by(AuditEntry.id)
            .limit(batch)
        )
        rows = list((await session.execute(query)).scalars())
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        after = rows[-1].id
        session.expunge_all()
