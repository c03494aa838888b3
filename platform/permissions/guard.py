"""App-level checks shared by every service and endpoint: may this caller use the app at all,
and is it a platform admin for it. Form-, row- and field-level checks are in the record
service (:class:`formloom.platform.records.service.RecordService`).

Designers: an app may grant ``design`` to some of its roles (``AppSpec.design``); their users
may save that app's forms and rules through the same plan-and-apply path as an admin, and
nothing else an admin may (import, rollback, export, users)."""

from __future__ import annotations

from collections.abc import Iterable

from formloom.platform.auth.principal import Principal
from formloom.platform.errors import Forbidden, Unauthorized


def require_app(principal: Principal, app: str | None) -> None:
    """Before anything about the app is looked up: anonymous callers and tokens scoped to
    another app learn nothing, not even whether the app exists."""
    if not principal.authenticated:
        raise Unauthorized()
    if app is not None and not principal.may_use_app(app):
        raise Forbidden(
            f"This token may only be used for app '{principal.app_scope}'.",
            audit={"action": "auth.denied", "app": app, "detail": {"reason": "app_scope"}},
        )


def require_admin(principal: Principal, app: str | None, doing: str) -> None:
    """Changing apps, reading whole definitions and testing rules are for platform admins
    (or an admin's token scoped to that app)."""
    if not principal.authenticated:
        raise Unauthorized()
    if not principal.is_admin or (app is not None and not principal.may_use_app(app)):
        raise Forbidden(
            f"Only a platform admin may {doing}.",
            audit={"action": "auth.denied", "app": app, "detail": {"reason": "admin_only"}},
        )


def require_member(principal: Principal, app: str) -> None:
    """A role in the app (or platform admin). Call after the app is known to exist."""
    if not principal.holds(app):
        raise Forbidden(
            f"You hold no role in app '{app}'.",
            audit={"action": "auth.denied", "app": app, "detail": {"reason": "no_role"}},
        )


def may_design(principal: Principal, app: str, design: Iterable[str]) -> bool:
    """A platform admin (or an admin's token scoped to the app), or a user holding one of
    the app's ``design`` roles: may change the app's forms and rules."""
    if not principal.authenticated or not principal.may_use_app(app):
        return False
    return principal.is_admin or bool(principal.roles_in(app) & set(design))


def require_designer(principal: Principal, app: str, doing: str) -> None:
    """Before the app is looked up: only an admin or someone holding a role in the app can
    be one of its designers (the others learn nothing about the app)."""
    require_app(principal, app)
    if not principal.is_admin and not principal.roles_in(app):
        raise _not_designer(app, doing)


def require_design(principal: Principal, app: str, design: Iterable[str], doing: str) -> None:
    """Once the app is known: the caller is an admin or holds one of its ``design`` roles."""
    require_designer(principal, app, doing)
    if not may_design(principal, app, design):
        raise _not_designer(app, doing)


def _not_designer(app: str, doing: str) -> Forbidden:
    return Forbidden(
        f"Only a platform admin or a designer of app '{app}' may {doing}.",
        audit={"action": "auth.denied", "app": app, "detail": {"reason": "not_designer"}},
    )
