"""All SQL of the people directory: an app's members (users holding a role in it) and their
departments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.platform.models import User, UserRole


def _members(app: str) -> list[ColumnElement[bool]]:
    """People (not service accounts), not disabled, holding a role in ``app``."""
    holds = select(UserRole.user_id).where(UserRole.app == app)
    return [
        User.id.in_(holds),
        User.disabled_at.is_(None),
        User.is_service == false(),
    ]


async def members(session: AsyncSession, app: str, term: str, limit: int) -> Sequence[User]:
    """Members whose display name or username contains ``term`` (any case), those starting
    with it first, then by display name."""
    conditions = _members(app)
    order: list[Any] = []
    if term:
        lowered = term.lower()
        escaped = lowered.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        name = func.lower(User.display_name)
        conditions.append(
            or_(
                name.like(f"%{escaped}%", escape="\\"),
                User.username.like(f"%{escaped}%", escape="\\"),
            )
        )
        starts = or_(
            name.like(f"{escaped}%", escape="\\"), User.username.like(f"{escaped}%", escape="\\")
        )
        order.append(starts.desc())
    statement = (
        select(User)
        .where(*conditions)
        .order_by(*order, User.display_name, User.username)
        .limit(limit)
    )
    return (await session.scalars(statement)).all()


async def members_by_id(session: AsyncSession, app: str, ids: Sequence[str]) -> Sequence[User]:
    """The members among ``ids`` (anyone else is left out)."""
    if not ids:
        return []
    statement = select(User).where(User.id.in_(list(ids)), *_members(app))
    return (await session.scalars(statement)).all()


async def users_by_id(session: AsyncSession, ids: Sequence[str]) -> Sequence[User]:
    """The users among ``ids``, members or not (a record keeps a person who left the app)."""
    if not ids:
        return []
    return (await session.scalars(select(User).where(User.id.in_(list(ids))))).all()


async def departments(session: AsyncSession, app: str) -> list[str]:
    """The distinct, non-empty ``department`` attributes of the app's members, sorted."""
    rows = await session.scalars(select(User.attributes).where(*_members(app)))
    found = {
        str(value).strip()
        for attributes in rows
        if isinstance(attributes, dict)
        for value in [attributes.get("department")]
        if isinstance(value, str) and value.strip()
    }
    return sorted(found)
