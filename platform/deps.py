"""Request-scoped things every endpoint needs: the database, the catalog, the clock, the actor."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from formloom.platform.apps.service import AppCatalog
from formloom.platform.auth.cache import CredentialCache
from formloom.platform.clock import Clock
from formloom.platform.db import Database
from formloom.platform.settings import Settings


@dataclass
class Platform:
    settings: Settings
    db: Database
    catalog: AppCatalog
    clock: Clock
    #: Resolved credentials, for a few seconds (formloom.platform.auth.cache).
    credentials: CredentialCache = field(default_factory=CredentialCache)


async def platform(request: Request) -> Platform:
    state: Platform = request.app.state.platform
    return state


async def actor(request: Request) -> str:
    """The username of the caller (see ``formloom.platform.auth.deps.current_principal``).

    Dependencies here are ``async``: a plain ``def`` costs a thread-pool hop per request."""
    from formloom.platform.auth.deps import current_principal

    return (await current_principal(request)).username
