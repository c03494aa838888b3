"""The people directory of an app, for member pickers (``user`` fields) and department
pickers (``department`` fields), and the checks of the values those fields store.

Invariants:

* The directory lists an app's **members**: people (not service accounts), not disabled,
  holding a role in the app. Only a signed-in member of the app (or a platform admin) may
  read it; a public (texted) link's caller never may, so a public form cannot enumerate
  staff. The directory gives each person's id, display name and username, and nothing
  else (no attributes, no roles).
* An app's departments are data, not code: the distinct ``department`` attributes of its
  members — the same attribute row filters read as ``$user.department``, so a record's
  department compares equal to its staff's.
* A written ``user`` value must name a member of the app, a ``department`` value one of its
  departments; values a write does not change are not checked again (a person who left
  keeps their records). Pages and exports show people by display name: :func:`names`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.forms import FieldError, FormSpec, label_text
from formloom.engines.forms.fields import BaseField, DepartmentField, UserField
from formloom.platform.auth.principal import Principal
from formloom.platform.errors import Forbidden
from formloom.platform.i18n import Translator
from formloom.platform.models import User
from formloom.platform.people import repository
from formloom.platform.permissions import guard

#: Most people one directory search answers with.
MAX_RESULTS = 50


@dataclass(frozen=True)
class Person:
    id: str
    display_name: str
    username: str

    @classmethod
    def of(cls, user: User) -> Person:
        return cls(user.id, user.display_name or user.username, user.username)


def require_directory(principal: Principal, app: str) -> None:
    """Who may read an app's directory: a signed-in member of the app (or an admin); never
    the caller of a public link."""
    guard.require_app(principal, app)
    if principal.via == "public_link":
        raise Forbidden(
            "A public form cannot list people.",
            audit={"action": "auth.denied", "app": app, "detail": {"reason": "public_link"}},
        )
    guard.require_member(principal, app)


async def search(session: AsyncSession, app: str, term: str, limit: int) -> list[Person]:
    users = await repository.members(session, app, term.strip(), min(limit, MAX_RESULTS))
    return [Person.of(user) for user in users]


async def find(session: AsyncSession, app: str, ids: Sequence[str]) -> list[Person]:
    return [Person.of(user) for user in await repository.members_by_id(session, app, ids)]


async def departments(session: AsyncSession, app: str) -> list[str]:
    return await repository.departments(session, app)


def user_fields(fields: Iterable[BaseField]) -> list[UserField]:
    return [field for field in fields if isinstance(field, UserField)]


def user_ids(spec: FormSpec, rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every user id the rows' user fields hold."""
    found: set[str] = set()
    fields = user_fields(spec.fields)
    for data in rows:
        for field in fields:
            value = data.get(field.key)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    found.add(item)
    return found


async def names(
    session: AsyncSession, spec: FormSpec, rows: Iterable[Mapping[str, Any]]
) -> dict[str, str]:
    """User id -> display name of every person the rows' user fields name (one query; a
    person who has since left the app is still named)."""
    ids = user_ids(spec, rows)
    if not ids:
        return {}
    users = await repository.users_by_id(session, sorted(ids))
    return {user.id: user.display_name or user.username for user in users}


async def check_values(
    session: AsyncSession,
    app: str,
    spec: FormSpec,
    data: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    locale: str = "en",
) -> list[FieldError]:
    """Problems of the people and departments a write gives its record (only the values it
    changes are looked up), in ``locale`` (the language of the app's rule rejections)."""
    t = Translator(locale)
    errors: list[FieldError] = []
    old = old or {}
    wanted: dict[str, list[str]] = {}
    for field in user_fields(spec.fields):
        value = data.get(field.key)
        before = old.get(field.key)
        kept = set(before) if isinstance(before, list) else {before}
        items = value if isinstance(value, list) else [value]
        new = [item for item in items if isinstance(item, str) and item not in kept]
        if new:
            wanted[field.key] = new
    if wanted:
        every = sorted({item for items in wanted.values() for item in items})
        known = {person.id for person in await find(session, app, every)}
        for key, items in wanted.items():
            member = spec.field(key)
            assert member is not None
            for item in items:
                if item not in known:
                    value = data.get(key)
                    index = value.index(item) if isinstance(value, list) else None
                    path = f"/data/{key}" + (f"/{index}" if index is not None else "")
                    errors.append(
                        FieldError(
                            key,
                            path,
                            "user",
                            t(
                                "{field}: no member of this app has the id '{id}'",
                                "{field}：本应用没有 id 为“{id}”的成员",
                                field=label_text(member.label, locale) or member.title,
                                id=item[:40],
                            ),
                        )
                    )
    checked: list[DepartmentField] = [
        field
        for field in spec.fields
        if isinstance(field, DepartmentField)
        and isinstance(data.get(field.key), str)
        and data.get(field.key) != old.get(field.key)
    ]
    if checked:
        known_departments = set(await departments(session, app))
        for department in checked:
            value = data[department.key]
            if value not in known_departments:
                errors.append(
                    FieldError(
                        department.key,
                        f"/data/{department.key}",
                        "department",
                        t(
                            "{field}: '{name}' is not a department of this app",
                            "{field}：“{name}”不是本应用的部门",
                            field=label_text(department.label, locale) or department.title,
                            name=value[:80],
                        ),
                    )
                )
    return errors


def current_defaults(
    app: str, spec: FormSpec, payload: Mapping[str, Any], principal: Principal
) -> dict[str, Any]:
    """The values ``default_current`` fields take on create when the client sent none (or an
    empty one): the signed-in person, or their department (nothing for the platform itself
    or a public link, where nobody is signed in)."""
    if principal.user_id is None or principal.via in ("system", "public_link"):
        return {}
    if not principal.roles_in(app):
        return {}  # an admin who is no member of the app is no value of its user fields
    filled: dict[str, Any] = {}
    for field in spec.fields:
        if payload.get(field.key) not in (None, "", []):
            continue  # a value given (an empty one is none: a form sends its empty fields)
        if not getattr(field, "default_current", False):
            continue
        if isinstance(field, UserField):
            filled[field.key] = [principal.user_id] if field.multiple else principal.user_id
        elif isinstance(field, DepartmentField):
            department = principal.attributes.get("department")
            if isinstance(department, str) and department.strip():
                filled[field.key] = department.strip()
    return filled


async def display_names(session: AsyncSession, ids: Sequence[str]) -> dict[str, str]:
    """User id -> display name of the given ids (those that name a user)."""
    users = await repository.users_by_id(session, ids)
    return {user.id: user.display_name or user.username for user in users}
