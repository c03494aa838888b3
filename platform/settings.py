"""Settings read from the environment (prefix ``FORMLOOM_``) or a ``.env`` file.

The embedded default is a SQLite file in the working folder, so ``formloom serve`` works
with no set-up; production points ``FORMLOOM_DATABASE_URL`` at PostgreSQL
(``postgresql+asyncpg://user@host/db``).
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FORMLOOM_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./formloom.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    max_body_bytes: int = Field(default=1_048_576, description="Largest accepted request body.")
    max_file_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1,
        description="Largest uploaded file (its upload request may be this plus 64 KiB of "
        "multipart framing, whatever FORMLOOM_MAX_BODY_BYTES says).",
    )
    page_size: int = Field(default=50, description="Records per page when no limit is given.")
    max_page_size: int = Field(default=500, description="Largest accepted `limit`.")
    cursor_secret: SecretStr = Field(
        # Random per process when not set: cursors then work only in the process that made
        # them, until it restarts. A key stored in the database would spare the setting but
        # needs a table and a migration of its own; every deployment of several processes
        # shares its settings anyway (the database URL), so it shares this one too.
        default_factory=lambda: SecretStr(secrets.token_urlsafe(32)),
        min_length=16,
        description="Key that signs list cursors (`next_cursor`), so a changed or forged "
        "cursor is refused. Unset: a random key per process. Processes behind one load "
        "balancer must share it (at least 16 characters; 32+ random ones recommended).",
    )
    timezone: str = Field(default="UTC", description="The clinic's time zone, for `today`.")
    sql_echo: bool = False
    report_max_cells: int = Field(
        default=10_000, description="Largest pivot (cells) a report may produce; larger is 422."
    )

    # --- sign-in, tokens, sessions (docs/security.md) ---
    password_hash: Literal["argon2id", "fast-test-only"] = Field(
        default="argon2id",
        description="Password hash cost profile: argon2id with argon2-cffi's defaults, or a "
        "cheap argon2id profile for test suites only.",
    )
    min_password_length: int = Field(default=10, description="Shortest accepted password.")
    bearer_token_hours: float = Field(
        default=12, description="Lifetime of tokens from POST /api/auth/token."
    )
    session_hours: float = Field(default=12, description="Lifetime of a web UI session.")
    personal_token_days: int = Field(
        default=90, description="Lifetime of a personal API token when none is asked for."
    )
    personal_token_max_days: int = Field(
        default=730, description="Longest lifetime a personal API token may be given."
    )
    session_cookie: str = Field(default="formloom_session", description="Session cookie name.")
    csrf_cookie: str = Field(
        default="formloom_csrf", description="Cookie holding the CSRF token (readable by JS)."
    )
    secure_cookies: bool = Field(
        default=False,
        description="Always mark cookies Secure (behind a TLS-terminating proxy). Otherwise "
        "they are Secure when the request came over https.",
    )
    sign_in_window_minutes: float = Field(
        default=15, description="Window in which failed sign-ins are counted."
    )
    max_failures_per_user: int = Field(
        default=5, description="Failed sign-ins for one username within the window before 429."
    )
    max_failures_per_address: int = Field(
        default=20, description="Failed sign-ins from one address within the window before 429."
    )
    credential_cache_seconds: float = Field(
        default=5,
        ge=0,
        description="How long a process remembers a resolved token or session. A token "
        "revoked, a user disabled or roles changed by another process take effect here within "
        "this time (changes through this process: at once). 0: look up on every request.",
    )
    forwarded_hops: int = Field(
        default=0,
        description="Number of trusted reverse proxies in front of the service. 0: the client "
        "address is the TCP peer and X-Forwarded-For is ignored.",
    )

    # --- rules: cascades, the worker, delivery (docs/rules.md) ---
    rule_cascade_depth: int = Field(
        default=8, ge=1, le=64, description="How deeply rules may trigger each other."
    )
    worker_in_serve: bool = Field(
        default=True,
        description="`formloom serve` also fires due timers and delivers the outbox (turn off "
        "when separate `formloom worker` processes do it).",
    )
    worker_tick_seconds: float = Field(
        default=5, gt=0, description="How often the worker looks for due timers and messages."
    )
    outbox_max_attempts: int = Field(
        default=8, ge=1, description="Delivery attempts before a message is dead-lettered."
    )
    outbox_backoff_seconds: float = Field(
        default=30,
        gt=0,
        description="Wait before the first retry; doubled after each failed attempt.",
    )
    outbox_backoff_max_seconds: float = Field(
        default=3600, gt=0, description="Longest wait between two attempts."
    )
    outbox_lease_seconds: float = Field(
        default=120,
        gt=0,
        description="A claimed message another worker may take over after this long (its "
        "worker died).",
    )
    timer_max_attempts: int = Field(
        default=5, ge=1, description="Attempts to fire a timer before it is dead-lettered."
    )
    webhook_timeout_seconds: float = Field(
        default=10, gt=0, description="Timeout of one webhook or gateway request."
    )
    smtp_host: str | None = Field(default=None, description="SMTP server for e-mail.")
    smtp_port: int = Field(default=25, description="SMTP port.")
    smtp_starttls: bool = Field(default=False, description="Upgrade SMTP with STARTTLS.")
    smtp_username: str | None = Field(default=None, description="SMTP user, if it needs one.")
    smtp_password: str | None = Field(default=None, description="SMTP password.")
    smtp_from: str = Field(default="formloom@localhost", description="Sender of e-mails.")
    public_base_url: str | None = Field(
        default=None,
        description="Where patients reach this service (https://clinic.example.com): the "
        "start of the public links' URLs that rules put in messages. Unset: a rule-made link's "
        "URL is the relative /p/<token>, with a warning in the rule log.",
    )
    sms_gateway_url: str | None = Field(
        default=None,
        description="HTTP gateway for text messages (SMS, WeChat): each message is POSTed "
        'as JSON {"to", "text", "subject", "idempotency_key"}.',
    )
    sms_gateway_token: str | None = Field(
        default=None, description="Sent as `Authorization: Bearer <token>` to the gateway."
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
