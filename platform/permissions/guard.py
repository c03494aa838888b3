"""App-level checks shared by every service and endpoint: may this caller use the app at all,
and is it a platform admin for it. Form-, row- and field-level checks are in the record
service (:class:`formloom.platform.records.service.RecordService`)."""

from __future__ import annotations

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
