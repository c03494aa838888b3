"""All SQL about apps and their versions."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.platform.models import App, AppVersion, Record


async def get_app(session: AsyncSession, key: str, *, lock: bool = False) -> App | None:
    query = select(App).where(App.key == key)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def current_version_number(session: AsyncSession, key: str) -> int | None:
    result = await session.execute(select(App.current_version).where(App.key == key))
    return result.scalar_one_or_none()


async def get_version(session: AsyncSession, key: str, version: int) -> AppVersion | None:
    return await session.get(AppVersion, (key, version))


async def revisions(session: AsyncSession) -> tuple[tuple[str, int], ...]:
    """(key, current revision) of every installed app, without their definitions."""
    rows = await session.execute(select(App.key, App.current_version).order_by(App.key))
    return tuple((key, version) for key, version in rows.all())


async def versions(session: AsyncSession, key: str) -> list[AppVersion]:
    query = select(AppVersion).where(AppVersion.app == key).order_by(AppVersion.version)
    return list((await session.execute(query)).scalars())


async def list_apps(session: AsyncSession) -> list[tuple[App, AppVersion]]:
    query = (
        select(App, AppVersion)
        .join(AppVersion, (AppVersion.app == App.key) & (AppVersion.version == App.current_version))
        .order_by(App.key)
    )
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def record_counts(session: AsyncSession, app: str) -> dict[str, int]:
    query = (
        select(Record.form, func.count())
        .where(Record.app == app, Record.deleted_at.is_(None))
        .group_by(Record.form)
    )
    return {form: count for form, count in (await session.execute(query)).all()}


async def existing_index_names(session: AsyncSession, prefix: str) -> set[str]:
    dialect = session.bind.dialect.name
    if dialect == "postgresql":
        query = text("SELECT indexname FROM pg_indexes WHERE tablename = 'records'")
    else:
        query = text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'")
    rows = await session.execute(query)
    return {row[0] for row in rows if row[0].startswith(prefix)}
