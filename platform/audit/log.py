"""Writing to the audit log — the one way the rest of the platform records what happened.

``audit`` adds a row to the caller's session and does not commit: the row commits with the
write it describes, or not at all. ``audit_now`` is for events that must be recorded even
though the request fails (a failed sign-in, a refused request): it writes in its own short
unit of work.

Actions are dotted names, grouped by their first part so that a prefix filters a family
(``record.``): ``auth.*`` (sign-in, tokens, refusals), ``user.*``, ``record.*``, ``app.*``,
``public_link.*``. The full list is in docs/security.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from formloom.platform.auth.principal import Principal
from formloom.platform.db import Database
from formloom.platform.models.audit import AuditEntry

Outcome = Literal["ok", "denied", "failed"]

#: Longest actor / action text kept (the columns' sizes).
_ACTOR_MAX = 150
_ACTION_MAX = 64


def entry(
    principal: Principal,
    action: str,
    *,
    at: datetime,
    outcome: Outcome = "ok",
    app: str | None = None,
    form: str | None = None,
    record_id: str | None = None,
    version: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """The row for one event (not yet added to any session)."""
    return AuditEntry(
        at=at,
        actor=principal.username[:_ACTOR_MAX],
        user_id=principal.user_id,
        via=principal.via,
        address=(principal.address or None) and principal.address[:64],
        action=action[:_ACTION_MAX],
        outcome=outcome,
        app=app[:63] if app else app,
        form=form[:63] if form else form,
        record_id=record_id[:32] if record_id else record_id,
        version=version,
        detail=detail,
    )


def audit(session: AsyncSession, principal: Principal, action: str, **fields: Any) -> None:
    """Record an event in ``session``'s unit of work; it commits with it. ``fields`` are
    :func:`entry`'s keywords (``at`` is required)."""
    session.add(entry(principal, action, **fields))


async def audit_now(db: Database, principal: Principal, action: str, **fields: Any) -> None:
    """Record an event in its own unit of work, committed at once (whatever happens to the
    request that caused it). ``fields`` as for :func:`audit`."""
    async with db.transaction() as session:
        audit(session, principal, action, **fields)
