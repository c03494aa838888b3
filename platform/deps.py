"""Request-scoped things every endpoint needs: the database, the catalog, the clock, the actor."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from formloom.platform.apps.service import AppCatalog
from formloom.platform.clock import Clock
from formloom.platform.db import Database
from formloom.platform.settings import Settings


@dataclass
class Platform:
    settings: Settings
    db: Database
    catalog: AppCatalog
    clock: Clock


async def platform(request: Request) -> Platform:
    state: Platform = request.app.state.platform
    return state


async def actor(request: Request) -> str:
    """Who is acting. Until sign-in lands (the security issue) every caller is anonymous.

    Dependencies here are ``async``: a plain ``def`` costs a thread-pool hop per request."""
    return "anonymous"
