"""Users, their roles per app, their credentials (tokens) and failed sign-ins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from formloom.platform.models.base import Base, JsonDocument, UtcDateTime


class User(Base):
    """A person or a system account. ``username`` is stored normalised (lower case) and
    matches ``USERNAME_PATTERN`` (formloom.platform.auth.passwords), so it is safe to echo in
    headers, logs and the audit log. ``attributes`` are readable in row filters as
    ``$user.<name>``."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean)
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    # the web UI's language for this user ("en", "zh-CN"); None: from the browser
    locale: Mapped[str | None] = mapped_column(String(16), nullable=True, default=None)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    #: A service account (an integration, not a person): no password, never signs in;
    #: holds its own roles and tokens, and its reads and writes are audited as itself.
    is_service: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class UserRole(Base):
    """One role a user holds in one app (roles are declared by each app's definition)."""

    __tablename__ = "user_roles"

    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    app: Mapped[str] = mapped_column(String(63), primary_key=True)
    role: Mapped[str] = mapped_column(String(63), primary_key=True)


class AuthToken(Base):
    """A credential: a bearer token, a personal API token or a web session.

    The wire form is ``flt_<id>_<secret>``; only the SHA-256 of the 256-bit random secret is
    kept (a fast hash is right for a random secret; argon2 is for passwords)."""

    __tablename__ = "auth_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # bearer | personal | session
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    app_scope: Mapped[str | None] = mapped_column(String(63), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (Index("ix_auth_tokens_user_id", "user_id"),)


class SignInFailure(Base):
    """A failed sign-in, counted per username and per address to throttle guessing. Rows live
    in the database so that every process counts the same failures."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(150))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_sign_in_failures_username_at", "username", "at"),
        Index("ix_sign_in_failures_address_at", "address", "at"),
        Index("ix_sign_in_failures_at", "at"),
    )
