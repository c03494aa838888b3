"""Bring a database up to the newest revision of the platform's tables (Alembic).

Several processes may start at once on one database (``formloom serve`` and workers): on
PostgreSQL the upgrade holds a transaction-level advisory lock, so one process migrates and
the others wait for it and then find nothing to do (SQLite's write lock does the same).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from formloom.platform.db import Database

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
#: The advisory lock key of schema upgrades (any constant shared by every process).
UPGRADE_LOCK = 0x666F726D6C6F6F6D  # "formloom"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade(db: Database, revision: str = "head") -> None:
    config = alembic_config(db.url)

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with db.engine.begin() as connection:
        await connection.run_sync(run)


async def downgrade(db: Database, revision: str) -> None:
    """Take the database back to ``revision`` (tests of each migration's way back)."""
    config = alembic_config(db.url)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with db.engine.begin() as connection:
        await connection.run_sync(run)
