"""What every endpoint needs: the database, the catalog, the clock (``PlatformDep``).

The caller is ``formloom.platform.auth.deps.PrincipalDep``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

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
    """The process's platform (``async``: a plain ``def`` dependency costs a thread-pool
    hop per request)."""
    state: Platform = request.app.state.platform
    return state


PlatformDep = Annotated[Platform, Depends(platform)]
