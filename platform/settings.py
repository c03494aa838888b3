"""Settings read from the environment (prefix ``FORMLOOM_``) or a ``.env`` file.

The embedded default is a SQLite file in the working folder, so ``formloom serve`` works
with no set-up; production points ``FORMLOOM_DATABASE_URL`` at PostgreSQL
(``postgresql+asyncpg://user@host/db``).
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FORMLOOM_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./formloom.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    max_body_bytes: int = Field(default=1_048_576, description="Largest accepted request body.")
    page_size: int = Field(default=50, description="Records per page when no limit is given.")
    max_page_size: int = Field(default=500, description="Largest accepted `limit`.")
    timezone: str = Field(default="UTC", description="The clinic's time zone, for `today`.")
    sql_echo: bool = False


@lru_cache
def get_settings() -> Settings:
    return Settings()
