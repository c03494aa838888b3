"""Audit rows of app changes: the change itself, and a separate row when it changes who may
do what (roles or permission grants) — for the endpoints and the CLI alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.apps import AppSpec
from formloom.platform.apps.service import AppCatalog, ImportResult
from formloom.platform.audit.log import audit
from formloom.platform.auth.principal import Principal
from formloom.platform.errors import NotFound


def grants_of(spec: AppSpec) -> dict[str, Any]:
    return {
        "roles": sorted(role.key for role in spec.roles),
        "permissions": [grant.model_dump(exclude_defaults=True) for grant in spec.permissions],
    }


async def grants_before(
    session: AsyncSession, catalog: AppCatalog, app: str | None
) -> dict[str, Any] | None:
    """The roles and grants of the installed app (None when it is not installed), read
    before a change so that a permission change can be told apart afterwards."""
    if app is None:
        return None
    try:
        installed = await catalog.get(session, app)
    except NotFound:
        return None
    return grants_of(installed.spec)


async def audit_change(
    session: AsyncSession,
    catalog: AppCatalog,
    who: Principal,
    action: str,
    result: ImportResult,
    now: datetime,
    before: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """``action`` (app.import, app.rollback, app.form_saved, app.rule_saved...) in the
    change's own unit of work, with ``extra`` in its detail, plus ``app.permissions_changed``
    with the new grants when they differ."""
    detail: dict[str, Any] = {"status": result.status, "forms": result.forms, **(extra or {})}
    if result.plan is not None:
        plan = result.plan.to_dict()
        detail["changes"] = {key: plan[key] for key in ("summary", "blocked") if key in plan}
    audit(session, who, action, at=now, app=result.app, version=result.version, detail=detail)
    installed = await catalog.get(session, result.app)
    after = grants_of(installed.spec)
    if after == (before or {"roles": [], "permissions": []}):
        return
    old_roles = set(before["roles"]) if before else set()
    audit(
        session,
        who,
        "app.permissions_changed",
        at=now,
        app=result.app,
        version=result.version,
        detail={
            "roles_added": sorted(set(after["roles"]) - old_roles),
            "roles_removed": sorted(old_roles - set(after["roles"])),
            "grants_before": len(before["permissions"]) if before else 0,
            "grants_after": len(after["permissions"]),
            "permissions": after["permissions"],
        },
    )
