"""Public links: a tokenised URL that lets someone without an account submit one form once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from formloom.platform.models.base import Base, JsonDocument, UtcDateTime


class PublicLink(Base):
    """One link. Only the SHA-256 of its secret is kept: the URL is shown once, at creation.

    ``bind_field``/``bind_record`` pre-bind the submission to a record (a survey to the visit
    it is about): the relation field is set by the link and cannot be chosen by the submitter.

    ``creator_id`` is the user who made the link: a submission is written with that user's
    grant as it is *when the link is used* (roles, attributes, row filters, field rules), so a
    link never lets its holder do more than its creator still may. ``created_by`` keeps the
    creator's username for display. ``fields`` are the fields the link's holder may fill in
    (``None``: every field the creator may write, except the bound one).
    """

    __tablename__ = "public_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    app: Mapped[str] = mapped_column(String(63))
    form: Mapped[str] = mapped_column(String(63))
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    bind_field: Mapped[str | None] = mapped_column(String(63), nullable=True)
    bind_record: Mapped[str | None] = mapped_column(String(32), nullable=True)
    max_submissions: Mapped[int] = mapped_column(Integer)
    submissions: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(150))
    creator_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    fields: Mapped[list[Any] | None] = mapped_column(JsonDocument, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_record_id: Mapped[str | None] = mapped_column(String(32), nullable=True)

    __table_args__ = (Index("ix_public_links_app_form", "app", "form"),)
