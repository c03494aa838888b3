"""Sign-in, sign-out, tokens (``/api/auth``) and user accounts (``/api/users``, admins only)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.platform.audit.log import audit
from formloom.platform.auth import passwords, repository, service, tokens
from formloom.platform.auth.deps import (
    AdminDep,
    SignedInDep,
    client_address,
    current_principal,
    is_https,
)
from formloom.platform.auth.principal import Principal
from formloom.platform.auth.schemas import (
    MeOut,
    MePatch,
    PasswordChange,
    PasswordIn,
    PersonalTokenIn,
    PersonalTokenOut,
    SessionOut,
    SignIn,
    TokenInfo,
    TokenOut,
    UserCreate,
    UserCreated,
    UserOut,
    UserPatch,
)
from formloom.platform.deps import Platform, PlatformDep
from formloom.platform.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unprocessable,
    shown,
)
from formloom.platform.i18n import LANG_COOKIE
from formloom.platform.models.auth import User

router = APIRouter(prefix="/api/auth", tags=["auth"])
users_router = APIRouter(prefix="/api/users", tags=["users"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_SIGN_IN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": SignIn.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["password"]},
                        "username": {"type": "string"},
                        "password": {"type": "string"},
                    },
                }
            },
        },
    }
}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _sign_in_body(request: Request) -> SignIn:
    """JSON ``{username, password}``, or an OAuth2 password grant form (RFC 6749 4.3)."""
    raw = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The request body is not UTF-8 text.") from None
    if kind == "application/x-www-form-urlencoded":
        fields = {key: values[-1] for key, values in parse_qs(text, keep_blank_values=True).items()}
        grant = fields.pop("grant_type", "password")
        if grant != "password":
            raise BadRequest("Only grant_type=password is supported.")
        for extra in ("scope", "client_id", "client_secret"):
            fields.pop(extra, None)
        document: Any = fields
    else:
        try:
            document = json.loads(text)
        except ValueError:
            raise BadRequest("The request body is not valid JSON.") from None
    try:
        return SignIn.model_validate(document)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None


async def _signed_in_user(
    request: Request, p: Platform, kind: service.TokenKind, body: SignIn
) -> Any:
    address = client_address(request, p.settings.forwarded_hops)
    now = p.clock.now()
    user = await service.sign_in(
        p.db, p.settings, username=body.username, password=body.password, address=address, now=now
    )
    async with p.db.transaction() as session:
        issued = await service.complete_sign_in(
            session, p.settings, user, kind=kind, password=body.password, address=address, now=now
        )
        roles = (await repository.roles_of(session, [user.id]))[user.id]
        out = service.user_out(user, roles)
    return issued, out, now


@router.post("/token", response_model=TokenOut, openapi_extra=_SIGN_IN_BODY)
async def create_token(request: Request, p: PlatformDep) -> JSONResponse:
    """Sign in with username and password and get a bearer token for the API (JSON body, or
    the OAuth2 password grant form)."""
    body = await _sign_in_body(request)
    issued, _user, now = await _signed_in_user(request, p, "bearer", body)
    expires = issued.token.expires_at
    answer = TokenOut(
        access_token=issued.wire,
        expires_at=_iso(expires),
        expires_in=int((expires - now).total_seconds()),
    )
    return JSONResponse(answer.model_dump(), headers=NO_STORE)


def _cookie_secure(request: Request, p: Platform) -> bool:
    return p.settings.secure_cookies or is_https(request, p.settings.forwarded_hops)


def _set_session_cookies(
    response: Response, request: Request, p: Platform, wire: str, csrf: str, max_age: int
) -> None:
    secure = _cookie_secure(request, p)
    # SameSite=Lax, not Strict: following a link to Formloom from a mail or a chat must
    # arrive signed in; unsafe methods are guarded by the CSRF token anyway.
    response.set_cookie(
        p.settings.session_cookie,
        wire,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    response.set_cookie(
        p.settings.csrf_cookie,
        csrf,
        max_age=max_age,
        path="/",
        httponly=False,
        samesite="lax",
        secure=secure,
    )


def _clear_session_cookies(response: Response, request: Request, p: Platform) -> None:
    secure = _cookie_secure(request, p)
    for name, httponly in ((p.settings.session_cookie, True), (p.settings.csrf_cookie, False)):
        response.delete_cookie(name, path="/", httponly=httponly, samesite="lax", secure=secure)


@router.post("/session", response_model=SessionOut)
async def create_session(request: Request, p: PlatformDep, body: SignIn) -> JSONResponse:
    """Sign in for the web UI: a session cookie (HttpOnly) and a CSRF token, which the page
    sends back as ``X-CSRF-Token`` on every request that changes something."""
    issued, user, now = await _signed_in_user(request, p, "session", body)
    csrf = tokens.csrf_token(issued.credential)
    expires = issued.token.expires_at
    response = JSONResponse(
        {"csrf_token": csrf, "expires_at": _iso(expires), "user": user}, headers=NO_STORE
    )
    _set_session_cookies(
        response, request, p, issued.wire, csrf, int((expires - now).total_seconds())
    )
    if user.get("locale"):
        _set_lang_cookie(response, request, p, user["locale"])
    return response


def _set_lang_cookie(response: Response, request: Request, p: Platform, locale: str | None) -> None:
    """The page language (not a secret: readable by scripts, kept for a year)."""
    secure = _cookie_secure(request, p)
    if locale is None:
        response.delete_cookie(LANG_COOKIE, path="/", samesite="lax", secure=secure)
        return
    response.set_cookie(
        LANG_COOKIE, locale, max_age=365 * 86400, path="/", samesite="lax", secure=secure
    )


async def _sign_out(request: Request, p: Platform) -> Response:
    response = Response(status_code=204)
    try:
        who = await current_principal(request)
    except Unauthorized:
        who = None  # a stale cookie: nothing to revoke, the cookies still go
    if who is not None and who.token_id is not None:
        now = p.clock.now()
        async with p.db.transaction() as session:
            row = await repository.token(session, who.token_id)
            if row is not None:
                await service.revoke(session, row, who, now)
                audit(session, who, "auth.sign_out", at=now, detail={"token": row.id})
        p.credentials.clear()
    _clear_session_cookies(response, request, p)
    return response


@router.delete("/session", status_code=204)
async def delete_session(request: Request, p: PlatformDep) -> Response:
    """Sign out: the session (or the bearer token of the request) is revoked and the cookies
    cleared."""
    return await _sign_out(request, p)


@router.post("/logout", status_code=204)
async def logout(request: Request, p: PlatformDep) -> Response:
    """Revoke the credential of this request (bearer token or session)."""
    return await _sign_out(request, p)


async def _load_user(session: AsyncSession, who: Principal) -> User:
    user = await session.get(User, who.user_id) if who.user_id else None
    if user is None:
        raise Unauthorized(service.INVALID_CREDENTIALS)
    return user


@router.get("/me", response_model=MeOut)
async def me(p: PlatformDep, who: SignedInDep) -> dict[str, Any]:
    """Who the credential of this request belongs to, with roles and attributes."""
    async with p.db.transaction(write=False) as session:
        user = await _load_user(session, who)
        roles = (await repository.roles_of(session, [user.id]))[user.id]
    return {**service.user_out(user, roles), "via": who.via, "app_scope": who.app_scope}


@router.patch("/me", response_model=MeOut)
async def update_me(
    body: MePatch, request: Request, p: PlatformDep, who: SignedInDep
) -> JSONResponse:
    """Change one's own display name or web UI language (``locale``: "en", "zh-CN", or
    null to follow the browser). The language also goes into the ``formloom_lang`` cookie,
    so the next page is in it."""
    given = body.model_dump(exclude_unset=True)
    if "display_name" in given and given["display_name"] is None:
        raise Unprocessable(
            "`display_name` cannot be null.",
            errors=[{"path": "/display_name", "code": "null", "message": "Give a name."}],
        )
    async with p.db.transaction() as session:
        user = await _load_user(session, who)
        if "display_name" in given:
            await service.update_user(
                session, user, {"display_name": given["display_name"]}, who=who, now=p.clock.now()
            )
        relocated = "locale" in given and given["locale"] != user.locale
        if relocated:
            user.locale = given["locale"]
            user.updated_at = p.clock.now()
        roles = (await repository.roles_of(session, [user.id]))[user.id]
        out = {**service.user_out(user, roles), "via": who.via, "app_scope": who.app_scope}
    if relocated:
        # every credential of the user carries the language (request_locale): forget them
        # once it is saved, so this process's next page is in the new one
        p.credentials.clear()
    response = JSONResponse(out)
    if "locale" in given:
        _set_lang_cookie(response, request, p, given["locale"])
    return response


@router.post("/password", status_code=204)
async def change_own_password(body: PasswordChange, p: PlatformDep, who: SignedInDep) -> Response:
    """Change one's own password (the current one is required). Other sessions and bearer
    tokens end; this request's credential stays."""
    now = p.clock.now()
    async with p.db.transaction() as session:
        user = await _load_user(session, who)
        ok, _ = await asyncio.to_thread(  # argon2: off the event loop (see auth.service)
            passwords.verify_password,
            p.settings.password_hash,
            user.password_hash,
            body.current_password,
        )
        if not ok:
            raise Unprocessable(
                "The current password is not correct.",
                errors=[
                    {
                        "path": "/current_password",
                        "code": "wrong_password",
                        "message": "Not the current password.",
                    }
                ],
            )
        await service.set_password(
            session,
            p.settings,
            user,
            body.new_password,
            who=who,
            now=now,
            keep_token=who.token_id,
        )
    p.credentials.clear()
    return Response(status_code=204)


# -- personal API tokens -----------------------------------------------------------------


@router.post("/tokens", status_code=201, response_model=PersonalTokenOut)
async def create_personal_token(
    body: PersonalTokenIn, p: PlatformDep, who: SignedInDep
) -> JSONResponse:
    """A personal API token (for scripts), optionally usable for one app only. The token is in
    this answer only."""
    if who.app_scope is not None and body.app != who.app_scope:
        raise Forbidden(
            f"A token scoped to app '{who.app_scope}' can only make tokens for that app.",
            audit={"action": "auth.denied", "detail": {"reason": "app_scope"}},
        )
    days = body.days if body.days is not None else p.settings.personal_token_days
    if days > p.settings.personal_token_max_days:
        raise Unprocessable(
            f"A personal token lives at most {p.settings.personal_token_max_days} days.",
            errors=[
                {
                    "path": "/days",
                    "code": "too_long",
                    "message": f"At most {p.settings.personal_token_max_days}.",
                }
            ],
        )
    now = p.clock.now()
    async with p.db.transaction() as session:
        if body.app is not None:
            try:
                await p.catalog.get(session, body.app)
            except NotFound:
                raise Unprocessable(
                    f"No app '{shown(body.app)}' is installed.",
                    errors=[{"path": "/app", "code": "unknown_app", "message": "No such app."}],
                ) from None
        user = await _load_user(session, who)
        issued = await service.issue(
            session,
            user,
            "personal",
            now=now,
            lifetime=timedelta(days=days),
            name=body.name,
            app_scope=body.app,
        )
        audit(
            session,
            who,
            "auth.token_created",
            at=now,
            app=body.app,
            detail={"token": issued.token.id, "kind": "personal", "name": body.name, "days": days},
        )
    out = {**service.token_out(issued.token, current=who.token_id), "token": issued.wire}
    return JSONResponse(out, status_code=201, headers=NO_STORE)


@router.get("/tokens", response_model=list[TokenInfo])
async def list_tokens(p: PlatformDep, who: SignedInDep) -> list[dict[str, Any]]:
    """The caller's tokens and sessions that still work (never their secrets)."""
    if who.user_id is None:
        return []
    async with p.db.transaction(write=False) as session:
        rows = await repository.tokens_of(session, who.user_id, p.clock.now())
    return [service.token_out(row, current=who.token_id) for row in rows]


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: str, p: PlatformDep, who: SignedInDep) -> Response:
    """Revoke one of one's own tokens (a platform admin: anyone's)."""
    now = p.clock.now()
    async with p.db.transaction() as session:
        row = await repository.token(session, token_id) if len(token_id) <= 32 else None
        admin = who.is_admin and who.app_scope is None
        if row is None or (row.user_id != who.user_id and not admin):
            raise NotFound(f"No token '{shown(token_id)}'.")
        await service.revoke(session, row, who, now)
    p.credentials.clear()
    return Response(status_code=204)


# -- users (platform admins) -------------------------------------------------------------


async def _user_out(session: Any, user: User) -> dict[str, Any]:
    roles = (await repository.roles_of(session, [user.id]))[user.id]
    return service.user_out(user, roles)


@users_router.get("", response_model=list[UserOut])
async def list_users(p: PlatformDep, _who: AdminDep) -> list[dict[str, Any]]:
    async with p.db.transaction(write=False) as session:
        rows = await repository.users(session)
        roles = await repository.roles_of(session, [u.id for u in rows])
    return [service.user_out(user, roles[user.id]) for user in rows]


@users_router.post("", status_code=201, response_model=UserCreated)
async def create_user(body: UserCreate, p: PlatformDep, who: AdminDep) -> JSONResponse:
    """A new user. Without a password a random one is generated and returned, once. With
    ``"service": true``, a service account for an integration: no password, never signs in;
    give it roles, then a token (``POST /api/users/{username}/tokens``)."""
    now = p.clock.now()
    async with p.db.transaction() as session:
        user, generated = await service.create_user(
            session,
            p.settings,
            who=who,
            now=now,
            username=body.username,
            display_name=body.display_name,
            password=body.password,
            is_admin=body.is_admin,
            attributes=body.attributes,
            is_service=body.service,
        )
        out = await _user_out(session, user)
    if generated is not None:
        out["password"] = generated
    return JSONResponse(
        out,
        status_code=201,
        headers={"Location": f"/api/users/{user.username}", **NO_STORE},
    )


@users_router.post("/{username}/tokens", status_code=201, response_model=PersonalTokenOut)
async def create_service_token(
    username: str, body: PersonalTokenIn, p: PlatformDep, who: AdminDep
) -> JSONResponse:
    """A token for a **service account** (an integration), made by an admin: it acts with
    the account's own roles and is audited as the account, not as the admin. Only service
    accounts get tokens this way (409 for a person: people make their own). Shown once."""
    days = body.days if body.days is not None else p.settings.personal_token_days
    if days > p.settings.personal_token_max_days:
        most = p.settings.personal_token_max_days
        raise Unprocessable(
            f"A token lives at most {most} days.",
            errors=[{"path": "/days", "code": "too_long", "message": f"At most {most}."}],
        )
    now = p.clock.now()
    async with p.db.transaction() as session:
        user = await service.get_user(session, username)
        if not user.is_service:
            raise Conflict(
                f"'{user.username}' is not a service account: people make their own tokens "
                "(POST /api/auth/tokens)."
            )
        if body.app is not None:
            try:
                await p.catalog.get(session, body.app)
            except NotFound:
                raise Unprocessable(
                    f"No app '{shown(body.app)}' is installed.",
                    errors=[{"path": "/app", "code": "unknown_app", "message": "No such app."}],
                ) from None
        issued = await service.issue(
            session, user, "personal", now=now, lifetime=timedelta(days=days), name=body.name,
            app_scope=body.app,
        )  # fmt: skip
        audit(
            session,
            who,
            "auth.token_created",
            at=now,
            app=body.app,
            detail={"token": issued.token.id, "kind": "personal", "name": body.name,
                    "days": days, "username": user.username},
        )  # fmt: skip
    out = {**service.token_out(issued.token), "token": issued.wire}
    return JSONResponse(out, status_code=201, headers=NO_STORE)


@users_router.get("/{username}", response_model=UserOut)
async def read_user(username: str, p: PlatformDep, _who: AdminDep) -> dict[str, Any]:
    async with p.db.transaction(write=False) as session:
        return await _user_out(session, await service.get_user(session, username))


@users_router.patch("/{username}", response_model=UserOut)
async def update_user(
    username: str, body: UserPatch, p: PlatformDep, who: AdminDep
) -> dict[str, Any]:
    """Change display name, admin flag, attributes (replaced as a whole) or disable / enable
    the account (disabling ends all its sessions and tokens)."""
    given = body.model_dump(exclude_unset=True)
    for key in ("is_admin", "disabled", "attributes"):
        if key in given and given[key] is None:
            raise Unprocessable(
                f"`{key}` cannot be null.",
                errors=[{"path": f"/{key}", "code": "null", "message": "Give a value."}],
            )
    async with p.db.transaction() as session:
        user = await service.get_user(session, username)
        await service.update_user(session, user, given, who=who, now=p.clock.now())
        out = await _user_out(session, user)
    p.credentials.clear()
    return out


@users_router.put("/{username}/roles", response_model=UserOut)
async def set_roles(
    username: str, roles: dict[str, list[str]], p: PlatformDep, who: AdminDep
) -> dict[str, Any]:
    """Replace the user's roles: ``{app: [role, ...]}`` for every app (an app left out or
    given ``[]`` loses its roles). Each app must be installed and declare each role."""
    async with p.db.transaction() as session:
        user = await service.get_user(session, username)
        await service.set_roles(session, p.catalog, user, roles, who=who, now=p.clock.now())
        out = await _user_out(session, user)
    p.credentials.clear()
    return out


@users_router.post("/{username}/password", status_code=204)
async def set_password(username: str, body: PasswordIn, p: PlatformDep, who: AdminDep) -> Response:
    """Set a user's password; their sessions and bearer tokens end."""
    async with p.db.transaction() as session:
        user = await service.get_user(session, username)
        await service.set_password(
            session, p.settings, user, body.password, who=who, now=p.clock.now()
        )
    p.credentials.clear()
    return Response(status_code=204)
