"""All SQL of form templates: the ``form_templates`` rows designers saved."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.platform.models.form_template import FormTemplate


async def saved(session: AsyncSession) -> Sequence[FormTemplate]:
    """Every saved template, oldest first."""
    query = select(FormTemplate).order_by(FormTemplate.created_at, FormTemplate.id)
    return (await session.execute(query)).scalars().all()


async def one(session: AsyncSession, template_id: str) -> FormTemplate | None:
    return await session.get(FormTemplate, template_id)


def add(session: AsyncSession, row: FormTemplate) -> None:
    session.add(row)


async def delete(session: AsyncSession, row: FormTemplate) -> None:
    await session.delete(row)
