"""The caller of a request, as the services see it.

``caller`` resolves the request's credentials (bearer token or session cookie) to a
``Principal`` and keeps it on the request, so that error handlers (an audited 403) know who
was refused. Endpoints pass it to the services, which decide what it may do.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from formloom.platform.auth.deps import current_principal
from formloom.platform.auth.principal import Principal


async def caller(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> Principal:
    request.state.principal = principal
    return principal


CallerDep = Annotated[Principal, Depends(caller)]
