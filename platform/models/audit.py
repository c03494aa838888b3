"""The audit log: who did what, when, from where, and with what outcome. Append-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from formloom.platform.models.base import Base, UtcDateTime
from formloom.platform.models.record import NullableJson

#: BIGINT identity on PostgreSQL; INTEGER PRIMARY KEY (the rowid) on SQLite.
AuditId = BigInteger().with_variant(Integer(), "sqlite")


class AuditEntry(Base):
    """One audited event. Rows are only ever inserted: no endpoint updates or deletes them,
    and on PostgreSQL a trigger refuses UPDATE and DELETE (see migration 0002)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(AuditId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(150))
    user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    via: Mapped[str] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # ok | denied | failed
    app: Mapped[str | None] = mapped_column(String(63), nullable=True)
    form: Mapped[str | None] = mapped_column(String(63), nullable=True)
    record_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # no detail is SQL NULL, not a JSON null (most rows have none: record writes name the
    # record and its version, never its data)
    detail: Mapped[dict[str, Any] | None] = mapped_column(NullableJson, nullable=True)

    __table_args__ = (
        # append-ordered: block ranges suffice on PostgreSQL (BRIN, migration 0014)
        Index("ix_audit_log_at", "at", postgresql_using="brin"),
        Index("ix_audit_log_actor_id", "actor", "id"),
        Index("ix_audit_log_action_id", "action", "id"),
        Index("ix_audit_log_app_form_id", "app", "form", "id"),
        # only ever asked for one id: a hash on PostgreSQL (migration 0014)
        Index("ix_audit_log_record_id", "record_id", postgresql_using="hash"),
    )
