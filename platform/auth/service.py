"""Sign-in, credentials and user accounts: the use cases behind the auth and users endpoints,
the CLI and the test fixtures.

Functions take the session of the caller's unit of work and only flush; the exceptions are
``sign_in`` and ``check_throttle``, which must record a failure even though the request then
fails, and so open their own short units of work on the ``Database``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.platform.apps.service import AppCatalog
from formloom.platform.audit.log import audit, audit_now
from formloom.platform.auth import passwords, repository, tokens
from formloom.platform.auth.cache import CredentialCache, Resolved
from formloom.platform.auth.principal import ANONYMOUS, Principal, Via
from formloom.platform.db import Database
from formloom.platform.errors import (
    Conflict,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    shown,
)
from formloom.platform.models.auth import AuthToken, SignInFailure, User
from formloom.platform.records.ids import new_id
from formloom.platform.settings import Settings

TokenKind = Literal["bearer", "personal", "session"]
#: What a refused credential or sign-in says — never which part was wrong.
INVALID_CREDENTIALS = "invalid or expired credentials"
INVALID_SIGN_IN = "invalid username or password"
#: ``last_used_at`` is written at most this often per token (a write per request is costly).
TOUCH_EVERY = timedelta(minutes=1)

ATTRIBUTE_KEY = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: `$user` names the platform fills in itself (Principal.context); not user attributes.
RESERVED_ATTRIBUTES = frozenset({"id", "username", "roles", "is_admin"})
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_TEXT = 500


class CredentialRefused(Exception):
    """A credential that does not work. ``reason`` is for the audit log only."""

    def __init__(
        self, reason: str, *, username: str | None = None, user_id: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.username = username
        self.user_id = user_id


@dataclass(frozen=True)
class Issued:
    """A new credential: ``wire`` is shown once and never stored."""

    token: AuthToken
    credential: tokens.Credential

    @property
    def wire(self) -> str:
        return self.credential.wire


# -- identity ----------------------------------------------------------------------------


def principal_for(
    user: User,
    roles: Mapping[str, Sequence[str]],
    *,
    via: Via,
    address: str | None = None,
    token_id: str | None = None,
    app_scope: str | None = None,
) -> Principal:
    return Principal(
        username=user.username,
        user_id=user.id,
        is_admin=user.is_admin,
        roles={app: frozenset(names) for app, names in roles.items()},
        attributes=dict(user.attributes or {}),
        app_scope=app_scope,
        via=via,
        address=address,
        token_id=token_id,
        locale=user.locale,
    )


_AUTOCOMMIT: dict[int, Any] = {}


async def _credential_rows(db: Database, token_id: str) -> Sequence[Any]:
    """One statement per request. On PostgreSQL it runs outside a transaction (autocommit: no
    BEGIN/COMMIT round trips, a single SELECT); SQLite's read transaction costs no round trip."""
    if db.dialect != "postgresql":
        async with db.transaction(write=False) as session:
            return await repository.credential_rows(session, token_id)
    engine = _AUTOCOMMIT.get(id(db.engine))
    if engine is None:
        engine = _AUTOCOMMIT[id(db.engine)] = db.engine.execution_options(
            isolation_level="AUTOCOMMIT"
        )
    async with engine.connect() as connection:
        return await repository.credential_rows(connection, token_id)


async def resolve(
    db: Database,
    credential: tokens.Credential,
    *,
    now: datetime,
    address: str | None,
    from_cookie: bool,
    cache: CredentialCache | None = None,
    cache_seconds: float = 0,
) -> Principal:
    """The principal a well-formed credential stands for, or ``CredentialRefused``."""
    entry = cache.get(credential.id) if cache is not None else None
    if entry is None:
        entry = await _look_up(db, credential, now, cache_seconds)
        if cache is not None and cache_seconds > 0:
            cache.put(credential.id, entry)
    elif not tokens.matches(credential, entry.secret_hash):
        raise CredentialRefused("forged_token")
    who = {"username": entry.principal.username, "user_id": entry.principal.user_id}
    if entry.expires_at <= now:
        raise CredentialRefused("expired", **who)
    # A session travels only in its cookie (which carries the CSRF duty); API tokens only in
    # the Authorization header.
    if from_cookie != (entry.kind == "session"):
        raise CredentialRefused("wrong_channel", **who)
    return replace(entry.principal, address=address)


async def _look_up(
    db: Database, credential: tokens.Credential, now: datetime, cache_seconds: float
) -> Resolved:
    rows = await _credential_rows(db, credential.id)
    if not rows:
        raise CredentialRefused("unknown_token")
    first = rows[0]
    if not tokens.matches(credential, first.secret_hash):
        raise CredentialRefused("forged_token")
    who = {"username": first.username, "user_id": first.id}
    if first.revoked_at is not None:
        raise CredentialRefused("revoked", **who)
    if first.disabled_at is not None:
        raise CredentialRefused("user_disabled", **who)
    roles: dict[str, set[str]] = {}
    for row in rows:
        if row.app is not None:
            roles.setdefault(row.app, set()).add(row.role)
    if first.expires_at > now and (
        first.last_used_at is None or now - first.last_used_at >= TOUCH_EVERY
    ):
        async with db.transaction() as session:
            await repository.touch_token(session, credential.id, now)
    principal = Principal(
        username=first.username,
        user_id=first.id,
        is_admin=first.is_admin,
        roles={app: frozenset(names) for app, names in roles.items()},
        attributes=dict(first.attributes or {}),
        app_scope=first.app_scope,
        via=first.kind,
        token_id=credential.id,
        locale=first.locale,
    )
    return Resolved(
        secret_hash=first.secret_hash,
        kind=first.kind,
        expires_at=first.expires_at,
        principal=principal,
        until=CredentialCache.deadline(cache_seconds),
    )


# -- credentials -------------------------------------------------------------------------


async def issue(
    session: AsyncSession,
    user: User,
    kind: TokenKind,
    *,
    now: datetime,
    lifetime: timedelta,
    name: str | None = None,
    app_scope: str | None = None,
) -> Issued:
    credential = tokens.generate()
    row = AuthToken(
        id=credential.id,
        secret_hash=credential.secret_hash,
        user_id=user.id,
        kind=kind,
        name=name,
        app_scope=app_scope,
        created_at=now,
        expires_at=now + lifetime,
        revoked_at=None,
        last_used_at=None,
    )
    session.add(row)
    await session.flush()
    return Issued(row, credential)


def lifetime_of(kind: TokenKind, settings: Settings, days: int | None = None) -> timedelta:
    if kind == "session":
        return timedelta(hours=settings.session_hours)
    if kind == "bearer":
        return timedelta(hours=settings.bearer_token_hours)
    return timedelta(days=days if days is not None else settings.personal_token_days)


def token_out(row: AuthToken, *, current: str | None = None) -> dict[str, Any]:
    """A token as its owner may see it: never the secret nor its hash."""
    return {
        "id": row.id,
        "kind": row.kind,
        "name": row.name,
        "app": row.app_scope,
        "created_at": _iso(row.created_at),
        "expires_at": _iso(row.expires_at),
        "last_used_at": _iso(row.last_used_at),
        "current": row.id == current,
    }


async def revoke(session: AsyncSession, row: AuthToken, who: Principal, now: datetime) -> None:
    if row.revoked_at is None:
        row.revoked_at = now
        audit(
            session,
            who,
            "auth.token_revoked",
            at=now,
            app=row.app_scope,
            detail={"token": row.id, "kind": row.kind, "owner": row.user_id},
        )
        await session.flush()


# -- sign-in -----------------------------------------------------------------------------


def _window(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.sign_in_window_minutes)


async def check_throttle(
    db: Database, settings: Settings, username: str, address: str, now: datetime
) -> None:
    """429 while too many sign-ins failed recently for this username or from this address
    (even if this attempt has the right password); the refusal is audited."""
    window = _window(settings)
    since = now - window
    async with db.transaction(write=False) as session:
        waits = [
            await repository.retry_after(
                session,
                SignInFailure.username,
                username,
                since,
                settings.max_failures_per_user,
                window.total_seconds(),
                now,
            ),
            await repository.retry_after(
                session,
                SignInFailure.address,
                address,
                since,
                settings.max_failures_per_address,
                window.total_seconds(),
                now,
            ),
        ]
    if waits[0] is None and waits[1] is None:
        return
    retry = max(w for w in waits if w is not None)
    await audit_now(
        db,
        Principal(username=username, address=address or None),
        "auth.sign_in_throttled",
        at=now,
        outcome="denied",
        detail={
            "per_user": waits[0] is not None,
            "per_address": waits[1] is not None,
            "retry_after": retry,
        },
    )
    raise TooManyRequests("Too many failed sign-ins; try again later.", retry_after=retry)


def _attempted(raw: object) -> str:
    """The username an attempt names, as recorded (normalised when it is one)."""
    name = passwords.normalise_username(raw)
    if name is not None:
        return name
    return shown(str(raw).lower() if isinstance(raw, str) else "", 100) or "(none)"


async def sign_in(
    db: Database,
    settings: Settings,
    *,
    username: object,
    password: object,
    address: str | None,
    now: datetime,
) -> User:
    """The user the username and password belong to, or 401 (the same for an unknown user, a
    wrong password and a disabled account, in about the same time) / 429 when throttled.
    Failures are counted and audited in their own unit of work."""
    name = passwords.normalise_username(username)
    attempted = _attempted(username)
    where = address or ""
    await check_throttle(db, settings, attempted, where, now)
    user = None
    if name is not None:
        async with db.transaction(write=False) as session:
            user = await repository.user_by_username(session, name)
    secret = password if isinstance(password, str) else ""
    if len(secret) > passwords.MAX_PASSWORD_LENGTH:
        secret = ""
    # argon2 costs ~50-400 ms of CPU (cffi releases the GIL): off the event loop, so a burst
    # of sign-ins does not stall every other request (issue 19, item 5).
    ok, _rehash = await asyncio.to_thread(
        passwords.verify_password,
        settings.password_hash,
        user.password_hash if user else None,
        secret,
    )
    reason = None
    if user is None:
        reason = "unknown_user"
    elif not ok:
        reason = "wrong_password"
    elif user.disabled_at is not None:
        reason = "user_disabled"
    if reason is None:
        assert user is not None
        return user
    async with db.transaction() as session:
        await repository.record_failure(session, attempted, where, now, now - _window(settings))
        audit(
            session,
            Principal(
                username=attempted if user else "anonymous",
                user_id=user.id if user else None,
                address=address,
            ),
            "auth.sign_in_failed",
            at=now,
            outcome="failed",
            detail={"username": attempted, "reason": reason},
        )
    raise Unauthorized(INVALID_SIGN_IN)


async def complete_sign_in(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    kind: TokenKind,
    password: str,
    address: str | None,
    now: datetime,
) -> Issued:
    """After ``sign_in``: upgrade an outdated hash, forget the username's failures, issue the
    token and audit the sign-in — in the caller's unit of work."""
    user = await session.merge(user)
    if user.password_hash and passwords.hasher(settings.password_hash).check_needs_rehash(
        user.password_hash
    ):
        user.password_hash = passwords.hash_password(settings.password_hash, password)
    await repository.forget_failures(session, user.username)
    issued = await issue(session, user, kind, now=now, lifetime=lifetime_of(kind, settings))
    audit(
        session,
        Principal(username=user.username, user_id=user.id, via=kind, address=address),
        "auth.sign_in",
        at=now,
        detail={"token": issued.token.id, "kind": kind},
    )
    return issued


# -- users -------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def user_out(user: User, roles: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "is_admin": user.is_admin,
        "is_service": bool(user.is_service),
        "attributes": dict(user.attributes or {}),
        "locale": user.locale,
        "roles": {app: list(names) for app, names in sorted(roles.items())},
        "disabled": user.disabled_at is not None,
        "disabled_at": _iso(user.disabled_at),
        "created_at": _iso(user.created_at),
        "updated_at": _iso(user.updated_at),
    }


def check_username(raw: object, path: str = "/username") -> str:
    name = passwords.normalise_username(raw)
    if name is None:
        raise Unprocessable(
            "The username is not valid.",
            errors=[
                {
                    "path": path,
                    "code": "invalid_username",
                    "message": "A username is 1 to 64 characters: lower-case letters, digits "
                    "and . _ @ -, starting with a letter or digit.",
                }
            ],
        )
    return name


def check_password(raw: object, settings: Settings, path: str = "/password") -> str:
    problem = passwords.password_problem(raw, settings.min_password_length)
    if problem is not None:
        raise Unprocessable(
            problem, errors=[{"path": path, "code": "invalid_password", "message": problem}]
        )
    assert isinstance(raw, str)
    return raw


def check_attributes(raw: object, path: str = "/attributes") -> dict[str, Any]:
    """User attributes: a flat object of JSON scalars or lists of scalars, keys as in
    ``$user.<key>``."""
    if not isinstance(raw, dict):
        raise Unprocessable(
            "`attributes` must be an object.",
            errors=[{"path": path, "code": "type", "message": "Expected an object."}],
        )
    errors = []
    if len(raw) > MAX_ATTRIBUTES:
        errors.append({"path": path, "code": "too_many", "message": f"At most {MAX_ATTRIBUTES}."})
    for key, value in raw.items():
        where = f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"
        if not ATTRIBUTE_KEY.fullmatch(key) or key in RESERVED_ATTRIBUTES:
            errors.append(
                {
                    "path": where,
                    "code": "invalid_attribute",
                    "message": f"'{shown(key)}' cannot name an attribute: lower-case letters, "
                    "digits and _, not one of " + ", ".join(sorted(RESERVED_ATTRIBUTES)) + ".",
                }
            )
            continue
        items = value if isinstance(value, list) else [value]
        if not all(_scalar(item) for item in items) or len(items) > MAX_ATTRIBUTES:
            errors.append(
                {
                    "path": where,
                    "code": "invalid_attribute",
                    "message": "An attribute is a string, number, boolean or null, or a "
                    f"list of them (strings of at most {MAX_ATTRIBUTE_TEXT} characters).",
                }
            )
    if errors:
        raise Unprocessable("The user attributes are not valid.", errors=errors)
    return dict(raw)


def _scalar(value: object) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_ATTRIBUTE_TEXT
    return value is None or isinstance(value, bool | int | float)


async def get_user(session: AsyncSession, username: str) -> User:
    name = passwords.normalise_username(username)
    user = await repository.user_by_username(session, name) if name else None
    if user is None:
        raise NotFound(f"No user '{shown(username)}'.")
    return user


async def create_user(
    session: AsyncSession,
    settings: Settings,
    *,
    who: Principal,
    now: datetime,
    username: object,
    display_name: str | None = None,
    password: str | None = None,
    is_admin: bool = False,
    attributes: object = None,
    is_service: bool = False,
) -> tuple[User, str | None]:
    """A new user, and the generated password when none was given (shown once). A service
    account (``is_service``) has no password and is no admin: it never signs in; its
    tokens are made by an admin (:func:`issue`), and it acts and is audited as itself."""
    name = check_username(username)
    attrs = check_attributes(attributes if attributes is not None else {})
    generated = None
    if is_service:
        if password is not None:
            raise _not_for_service("/password", "A service account has no password.")
        if is_admin:
            raise _not_for_service("/is_admin", "A service account cannot be an admin.")
    elif password is None:
        generated = password = passwords.generate_password()
    if password is not None:
        check_password(password, settings)
    if await repository.user_by_username(session, name) is not None:
        raise Conflict(f"A user '{name}' already exists.")
    user = User(
        id=new_id(),
        username=name,
        display_name=(display_name or name)[:200],
        password_hash=(
            passwords.hash_password(settings.password_hash, password) if password else None
        ),
        is_admin=is_admin,
        is_service=is_service,
        attributes=attrs,
        disabled_at=None,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"A user '{name}' already exists.") from None
    audit(
        session,
        who,
        "user.created",
        at=now,
        detail={
            "username": name, "is_admin": is_admin, "attributes": attrs,
            **({"service": True} if is_service else {}),
        },
    )  # fmt: skip
    return user, generated


def _not_for_service(path: str, message: str) -> Unprocessable:
    return Unprocessable(
        message, errors=[{"path": path, "code": "service_account", "message": message}]
    )


async def update_user(
    session: AsyncSession,
    user: User,
    changes: Mapping[str, Any],
    *,
    who: Principal,
    now: datetime,
) -> User:
    """Apply ``changes`` (display_name, is_admin, attributes, disabled). Disabling revokes
    every token of the user; the last active admin can be neither disabled nor demoted."""
    before: dict[str, Any] = {
        "display_name": user.display_name,
        "is_admin": user.is_admin,
        "attributes": dict(user.attributes or {}),
        "disabled": user.disabled_at is not None,
    }
    after = dict(before)
    for key, value in changes.items():
        if key == "attributes":
            value = check_attributes(value)
        after[key] = value
    after["display_name"] = (after["display_name"] or user.username)[:200]
    if user.is_service and after["is_admin"]:
        raise _not_for_service("/is_admin", "A service account cannot be an admin.")
    changed = sorted(key for key in after if after[key] != before[key])
    if not changed:
        return user
    losing_admin = before["is_admin"] and not before["disabled"]
    demoted = not after["is_admin"] or after["disabled"]
    if losing_admin and demoted and await repository.active_admins(session) <= 1:
        raise Conflict(
            f"'{user.username}' is the last active platform admin; make someone else an "
            "admin first."
        )
    user.display_name = after["display_name"]
    user.is_admin = after["is_admin"]
    user.attributes = after["attributes"]
    user.updated_at = now
    if after["disabled"] != before["disabled"]:
        user.disabled_at = now if after["disabled"] else None
        if after["disabled"]:
            await repository.revoke_tokens(session, user.id, now)
        audit(
            session,
            who,
            "user.disabled" if after["disabled"] else "user.enabled",
            at=now,
            detail={"username": user.username},
        )
    rest = [key for key in changed if key != "disabled"]
    if rest:
        audit(
            session,
            who,
            "user.updated",
            at=now,
            detail={
                "username": user.username,
                "changed": rest,
                "before": {key: before[key] for key in rest},
                "after": {key: after[key] for key in rest},
            },
        )
    await session.flush()
    return user


async def set_password(
    session: AsyncSession,
    settings: Settings,
    user: User,
    password: object,
    *,
    who: Principal,
    now: datetime,
    keep_token: str | None = None,
) -> None:
    """Set a new password. Signed-in sessions and bearer tokens of the user end (personal API
    tokens stay: they are managed one by one), except ``keep_token``."""
    if user.is_service:
        raise _not_for_service("/password", "A service account has no password.")
    secret = check_password(password, settings)
    user.password_hash = passwords.hash_password(settings.password_hash, secret)
    user.updated_at = now
    await repository.revoke_tokens(
        session, user.id, now, kinds=("session", "bearer"), keep=keep_token
    )
    audit(session, who, "user.password_set", at=now, detail={"username": user.username})
    await session.flush()


async def check_roles(
    session: AsyncSession, catalog: AppCatalog, roles: object, path: str = ""
) -> dict[str, list[str]]:
    """``{app: [role, ...]}`` naming installed apps and the roles their definitions declare,
    or 422 with a pointer at each unknown one."""
    if not isinstance(roles, dict) or not all(
        isinstance(names, list) and all(isinstance(n, str) for n in names)
        for names in roles.values()
    ):
        raise Unprocessable(
            "Roles are given as an object of app key to a list of role keys.",
            errors=[{"path": path or "/", "code": "type", "message": "Expected {app: [role]}."}],
        )
    errors: list[dict[str, Any]] = []
    out: dict[str, list[str]] = {}
    for app, names in roles.items():
        where = f"{path}/{str(app).replace('~', '~0').replace('/', '~1')}"
        try:
            installed = await catalog.get(session, app)
        except NotFound:
            errors.append(
                {
                    "path": where,
                    "code": "unknown_app",
                    "message": f"No app '{shown(app)}' is installed.",
                }
            )
            continue
        declared = {role.key for role in installed.spec.roles}
        for index, name in enumerate(names):
            if name not in declared:
                known = ", ".join(sorted(declared)) or "none"
                errors.append(
                    {
                        "path": f"{where}/{index}",
                        "code": "unknown_role",
                        "message": f"App '{app}' declares no role '{shown(name)}' "
                        f"(its roles: {known}).",
                    }
                )
        out[app] = sorted(set(names))
    if errors:
        raise Unprocessable("Unknown apps or roles.", errors=errors)
    return {app: names for app, names in out.items() if names}


async def set_roles(
    session: AsyncSession,
    catalog: AppCatalog | None,
    user: User,
    roles: object,
    *,
    who: Principal,
    now: datetime,
) -> dict[str, list[str]]:
    """Replace the user's roles (in every app) with ``roles``. With a ``catalog`` the apps and
    roles are checked against the installed definitions; without one (test fixtures) they are
    taken as given."""
    if catalog is not None:
        wanted = await check_roles(session, catalog, roles)
    else:
        assert isinstance(roles, Mapping)
        wanted = {app: sorted(set(names)) for app, names in roles.items() if names}
    before = (await repository.roles_of(session, [user.id]))[user.id]
    if before == wanted:
        return wanted
    await repository.replace_roles(session, user.id, wanted)
    user.updated_at = now
    apps = sorted(set(before) | set(wanted))
    audit(
        session,
        who,
        "user.roles_changed",
        at=now,
        app=apps[0] if len(apps) == 1 else None,
        detail={"username": user.username, "before": before, "after": wanted},
    )
    await session.flush()
    return wanted


def system_principal(name: str) -> Principal:
    """The actor of a change made outside any request (CLI, demo loader)."""
    return replace(ANONYMOUS, username=name, is_admin=True, via="system")
