"""Who is calling: the resolved identity every service call is made on behalf of.

Authentication (bearer tokens, session cookies) produces a ``Principal``; authorisation
(roles, row filters, field rules from each app's ``permissions``) is decided from it in the
service layer. A principal is immutable and carries everything a decision needs, so no
policy check goes back to the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Via = Literal["anonymous", "bearer", "personal", "session", "system", "public_link"]


@dataclass(frozen=True)
class Principal:
    username: str
    user_id: str | None = None
    is_admin: bool = False
    # app key -> the roles the user holds in that app
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # user attributes readable in row filters as `$user.<name>` (e.g. department)
    attributes: Mapping[str, Any] = field(default_factory=dict)
    # a personal token scoped to one app may be used for that app only
    app_scope: str | None = None
    via: Via = "anonymous"
    address: str | None = None
    # the credential the request came with (auth_tokens.id), so it can be revoked (sign-out)
    token_id: str | None = None
    # the web UI language the user saved ("en", "zh-CN"; None: the browser's), read with the
    # credential on every request, so a choice made on one device reaches the others at
    # their next page (platform/i18n.py request_locale)
    locale: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.via != "anonymous"

    def roles_in(self, app: str) -> frozenset[str]:
        if self.app_scope is not None and self.app_scope != app:
            return frozenset()
        return self.roles.get(app, frozenset())

    def may_use_app(self, app: str) -> bool:
        return self.app_scope is None or self.app_scope == app

    def holds(self, app: str) -> bool:
        """Whether the caller may use ``app`` and administers it or holds a role in it."""
        return self.may_use_app(app) and (self.is_admin or bool(self.roles_in(app)))

    def context(self, app: str) -> dict[str, Any]:
        """What `$user` means in a JsonLogic row filter for ``app``."""
        return {
            **self.attributes,
            "id": self.user_id,
            "username": self.username,
            "roles": sorted(self.roles_in(app)),
            "is_admin": self.is_admin,
        }


ANONYMOUS = Principal(username="anonymous")
SYSTEM = Principal(username="system", is_admin=True, via="system")
