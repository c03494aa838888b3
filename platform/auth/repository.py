"""All SQL of sign-in, tokens and users."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from formloom.platform.models.auth import AuthToken, SignInFailure, User, UserRole


async def credential_rows(
    session: AsyncSession | AsyncConnection, token_id: str
) -> Sequence[Row[Any]]:
    """The token, its user and every role of the user, in one query (one row per role, or
    one row with null app/role when the user has none). This runs on every request."""
    query = (
        select(
            AuthToken.secret_hash,
            AuthToken.kind,
            AuthToken.app_scope,
            AuthToken.expires_at,
            AuthToken.revoked_at,
            AuthToken.last_used_at,
            User.id,
            User.username,
            User.is_admin,
            User.attributes,
            User.disabled_at,
            User.locale,
            UserRole.app,
            UserRole.role,
        )
        .join(User, User.id == AuthToken.user_id)
        .outerjoin(UserRole, UserRole.user_id == User.id)
        .where(AuthToken.id == token_id)
    )
    return (await session.execute(query)).all()


async def touch_token(session: AsyncSession, token_id: str, now: datetime) -> None:
    await session.execute(
        update(AuthToken).where(AuthToken.id == token_id).values(last_used_at=now)
    )


async def user_by_username(session: AsyncSession, username: str) -> User | None:
    found = await session.execute(select(User).where(User.username == username))
    return found.scalar_one_or_none()


async def users(session: AsyncSession) -> Sequence[User]:
    return (await session.execute(select(User).order_by(User.username))).scalars().all()


async def roles_of(
    session: AsyncSession, user_ids: Iterable[str]
) -> dict[str, dict[str, list[str]]]:
    """user id -> app -> sorted roles."""
    ids = list(user_ids)
    out: dict[str, dict[str, list[str]]] = {user_id: {} for user_id in ids}
    if not ids:
        return out
    rows = await session.execute(
        select(UserRole.user_id, UserRole.app, UserRole.role)
        .where(UserRole.user_id.in_(ids))
        .order_by(UserRole.app, UserRole.role)
    )
    for user_id, app, role in rows:
        out[user_id].setdefault(app, []).append(role)
    return out


async def replace_roles(
    session: AsyncSession, user_id: str, roles: Mapping[str, Iterable[str]]
) -> None:
    await session.execute(delete(UserRole).where(UserRole.user_id == user_id))
    for app, names in roles.items():
        for role in sorted(set(names)):
            session.add(UserRole(user_id=user_id, app=app, role=role))
    await session.flush()


async def active_admins(session: AsyncSession) -> int:
    found = await session.execute(
        select(func.count())
        .select_from(User)
        .where(User.is_admin.is_(True), User.disabled_at.is_(None))
    )
    return int(found.scalar_one())


async def revoke_tokens(
    session: AsyncSession,
    user_id: str,
    now: datetime,
    kinds: Iterable[str] | None = None,
    keep: str | None = None,
) -> None:
    conditions = [AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None)]
    if keep is not None:
        conditions.append(AuthToken.id != keep)
    if kinds is not None:
        conditions.append(AuthToken.kind.in_(list(kinds)))
    await session.execute(update(AuthToken).where(and_(*conditions)).values(revoked_at=now))


async def tokens_of(session: AsyncSession, user_id: str, now: datetime) -> Sequence[AuthToken]:
    """The user's tokens that still work, newest first."""
    found = await session.execute(
        select(AuthToken)
        .where(
            AuthToken.user_id == user_id,
            AuthToken.revoked_at.is_(None),
            AuthToken.expires_at > now,
        )
        .order_by(AuthToken.created_at.desc(), AuthToken.id.desc())
    )
    return found.scalars().all()


async def token(session: AsyncSession, token_id: str) -> AuthToken | None:
    return await session.get(AuthToken, token_id)


# -- failed sign-ins ---------------------------------------------------------------------


async def retry_after(
    session: AsyncSession,
    column: Any,
    value: str,
    since: datetime,
    limit: int,
    window_seconds: float,
    now: datetime,
) -> int | None:
    """Seconds until fewer than ``limit`` failures for ``value`` remain in the window, or None
    when there are fewer already."""
    count = (
        await session.execute(
            select(func.count())
            .select_from(SignInFailure)
            .where(column == value, SignInFailure.at > since)
        )
    ).scalar_one()
    if count < limit:
        return None
    # The failure whose leaving the window brings the count below the limit.
    oldest = (
        await session.execute(
            select(SignInFailure.at)
            .where(column == value, SignInFailure.at > since)
            .order_by(SignInFailure.at, SignInFailure.id)
            .offset(count - limit)
            .limit(1)
        )
    ).scalar_one()
    remaining = (oldest - now).total_seconds() + window_seconds
    return max(1, int(remaining + 0.999))


async def record_failure(
    session: AsyncSession, username: str, address: str, now: datetime, since: datetime
) -> None:
    """Count a failure, and forget those that have left the window (anyone's)."""
    await session.execute(delete(SignInFailure).where(SignInFailure.at <= since))
    session.add(SignInFailure(username=username, address=address, at=now))


async def forget_failures(session: AsyncSession, username: str) -> None:
    await session.execute(delete(SignInFailure).where(SignInFailure.username == username))
