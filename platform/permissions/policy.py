"""Who may do what to which records of a form, for the caller of a request.

The grants are data in the app definition (:class:`formloom.engines.apps.PermissionSpec`)
and the app engine combines them for a set of roles
(:func:`formloom.engines.apps.permissions.form_access`, which documents how grants add up).
``resolve`` adds what only the platform knows: who the caller is. A platform admin using the
app may do anything; anyone else gets what their roles in the app grant, with ``$user`` in
row filters meaning their attributes (``Principal.context``).
"""

from __future__ import annotations

from collections.abc import Iterable

from formloom.engines.apps.permissions import (
    FULL_ACCESS,
    NO_ACCESS,
    FormAccess,
    PermissionSpec,
    form_access,
)
from formloom.platform.auth.principal import Principal


def resolve(
    permissions: Iterable[PermissionSpec], principal: Principal, app: str, form: str
) -> FormAccess:
    if principal.is_admin and principal.may_use_app(app):
        return FULL_ACCESS
    roles = principal.roles_in(app)
    if not roles:
        return NO_ACCESS
    return form_access(permissions, form, roles=roles, user=principal.context(app))
