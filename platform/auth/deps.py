"""Who is calling: resolving the request's credential to a ``Principal``, and CSRF.

A request carries at most one credential: ``Authorization: Bearer <token>`` (API tokens,
personal tokens) or, without that header, the session cookie of the web UI. No credential
means the anonymous principal. A credential that does not work — malformed, unknown, forged,
expired, revoked, of a disabled user, or sent on the wrong channel — is a 401 that says only
"invalid or expired credentials" (the reason goes to the audit log, not to the caller).

A session-cookie request with an unsafe method must also carry ``X-CSRF-Token``: the HMAC
of the session secret, which a page of this site reads from the CSRF cookie (or got from the
sign-in response) and a cross-site page cannot. Bearer requests need none: a browser never
adds an Authorization header by itself.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from formloom.platform.audit.log import audit_now
from formloom.platform.auth import service, tokens
from formloom.platform.auth.principal import ANONYMOUS, Principal
from formloom.platform.deps import Platform
from formloom.platform.errors import Forbidden, Unauthorized

#: Only for the OpenAPI document (the "Authorize" button of /docs signs in with the password
#: grant on POST /api/auth/token); the header is read below.
_documented_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/auth/token", auto_error=False, scheme_name="bearer"
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_HEADER = "X-CSRF-Token"


def client_address(request: Request, forwarded_hops: int) -> str | None:
    """The client's address: the TCP peer, or — behind ``forwarded_hops`` trusted proxies —
    the address the outermost trusted proxy saw (X-Forwarded-For, counted from the right;
    entries further left are client-supplied and not trusted)."""
    peer = request.client.host if request.client else None
    if forwarded_hops <= 0:
        return peer
    header = ",".join(request.headers.getlist("x-forwarded-for"))
    hops = [part.strip() for part in header.split(",") if part.strip()]
    if not hops:
        return peer
    chosen = hops[-forwarded_hops] if len(hops) >= forwarded_hops else hops[0]
    return chosen[:64]


def is_https(request: Request, forwarded_hops: int) -> bool:
    if request.url.scheme == "https":
        return True
    if forwarded_hops > 0:
        proto = request.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
        return proto == "https"
    return False


async def current_principal(
    request: Request, _documented: Annotated[str | None, Depends(_documented_scheme)] = None
) -> Principal:
    """The caller of this request (see the module docstring). Kept on ``request.state`` so
    that error handlers (an audited 403) know who was refused."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):
        return known
    p: Platform = request.app.state.platform
    address = client_address(request, p.settings.forwarded_hops)
    anonymous = replace(ANONYMOUS, address=address)
    request.state.principal = anonymous
    header = request.headers.get("authorization")
    from_cookie = header is None
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        wire = value.strip() if scheme.lower() == "bearer" else ""
    else:
        wire = request.cookies.get(p.settings.session_cookie, "")
        if not wire:
            return anonymous
    now = p.clock.now()
    credential = tokens.parse(wire)
    try:
        if credential is None:
            raise service.CredentialRefused("malformed")
        principal = await service.resolve(
            p.db,
            credential,
            now=now,
            address=address,
            from_cookie=from_cookie,
            cache=p.credentials,
            cache_seconds=p.settings.credential_cache_seconds,
        )
    except service.CredentialRefused as refused:
        await audit_now(
            p.db,
            replace(
                anonymous,
                username=refused.username or "anonymous",
                user_id=refused.user_id,
            ),
            "auth.denied",
            at=now,
            outcome="denied",
            detail={
                "reason": refused.reason,
                "token": credential.id if credential else None,
                "channel": "cookie" if from_cookie else "header",
                "method": request.method,
                "path": request.url.path,
            },
        )
        raise Unauthorized(service.INVALID_CREDENTIALS) from None
    request.state.principal = principal
    if from_cookie and request.method not in SAFE_METHODS:
        assert credential is not None
        if not tokens.csrf_matches(credential, request.headers.get(CSRF_HEADER)):
            raise Forbidden(
                f"Missing or wrong {CSRF_HEADER} header: a signed-in browser request that "
                "changes something must carry the CSRF token of its session.",
                audit={"action": "auth.denied", "detail": {"reason": "csrf"}},
            )
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def require_signed_in(principal: PrincipalDep) -> Principal:
    if not principal.authenticated:
        raise Unauthorized()
    return principal


async def require_admin(principal: PrincipalDep) -> Principal:
    """A platform admin (401 for anonymous callers, 403 for everyone else). A personal token
    scoped to one app does not carry platform-admin power."""
    if not principal.authenticated:
        raise Unauthorized()
    if not principal.is_admin or principal.app_scope is not None:
        raise Forbidden(
            "Only a platform admin may do this.",
            audit={"action": "auth.denied", "detail": {"reason": "admin_only"}},
        )
    return principal


SignedInDep = Annotated[Principal, Depends(require_signed_in)]
AdminDep = Annotated[Principal, Depends(require_admin)]
