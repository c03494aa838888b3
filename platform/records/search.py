"""Quick search: one box that finds records by their title, names, e-mails and phone numbers.

A form's *search fields* are the ones its definition lists in ``search``, or else its title
field (its ``title_field``, else its first text field) and every ``indexed`` text, e-mail and
phone field. A search term matches a record when one of the caller's **visible** search
fields holds it: text case-insensitively anywhere in the value (a term of one or two
characters: at the start of the value or of a word in it), phone numbers by their digits
only — spaces, dashes, brackets, dots and a leading ``+86`` / ``0086`` do not count, on
either side. Matches come exact first, then those that
start with the term, then the rest (``rank``), then in the list's own order.

Invariants
    * A field hidden from the caller is never searched (it is not even in the SQL), and the
      caller's row rules apply as to any list: search is a filter like the others.
    * Each search field is matched through one SQL expression (``search_expression``), the
      same text in the query and in the expression index that serves it, so the planner can
      use the index. On PostgreSQL each field gets a partial trigram (GIN, ``pg_trgm``) index
      on that expression when the extension is there or can be created, which serves
      "contains" as well as "starts with"; otherwise a ``text_pattern_ops`` btree that serves
      exact and prefix matches. SQLite has no such index: a search reads the form's rows
      (about 0.2 s per 100,000 records, docs/benchmarks.md).
    * Constants are written into the expression's SQL text (keys are validated identifiers),
      never bound, because an expression index matches only an identical expression.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, case, false, literal, literal_column, or_, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.apps import AppSpec
from formloom.engines.forms import FormSpec
from formloom.engines.forms.record import title_field
from formloom.engines.forms.spec import SEARCHABLE_TYPES, field_types
from formloom.platform.errors import BadRequest

#: Longest search term accepted (characters).
MAX_TERM = 100
#: Fewest digits a term needs to be looked for in phone numbers.
MIN_PHONE_DIGITS = 3
#: Shorter terms match the start of a value or of a word in it, not anywhere: a trigram
#: index cannot serve "contains" for them, so they would read every row of the form.
MIN_CONTAINS = 3
#: China's country prefixes, dropped from the start of phone numbers on both sides.
COUNTRY_PREFIXES = ("+86", "0086")

SearchKind = Literal["text", "phone"]
_PHONE_SEPARATORS = " -+()."
_PHONE_TERM = re.compile(r"^[\d \-+().]+$")


@dataclass(frozen=True)
class Term:
    """A search term as it is compared: ``text`` lower-cased with its spaces collapsed;
    ``phone`` its digits without a country prefix (None when it is not a phone number)."""

    raw: str
    text: str
    phone: str | None


def search_fields(spec: FormSpec) -> list[tuple[str, SearchKind]]:
    """The form's search fields, each with how it is compared."""
    types = field_types(spec)
    if spec.search is not None:
        keys = list(spec.search)
    else:
        title = title_field(spec)
        keys = [title.key] if title is not None else []
        for field in spec.value_fields():
            if getattr(field, "indexed", False) and types.get(field.key) in (
                "text",
                "email",
                "phone",
            ):
                keys.append(field.key)
    out: list[tuple[str, SearchKind]] = []
    for key in dict.fromkeys(keys):
        kind = types.get(key)
        if kind in SEARCHABLE_TYPES:
            out.append((key, "phone" if kind == "phone" else "text"))
    return out


def phone_digits(value: str) -> str:
    """A phone number as search compares it (the same as the SQL of ``search_expression``):
    without a leading ``+86`` or ``0086``, then without separators."""
    digits = value.strip()
    for prefix in COUNTRY_PREFIXES:
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
            break
    for separator in _PHONE_SEPARATORS:
        digits = digits.replace(separator, "")
    return digits


def parse_term(raw: str) -> Term | None:
    """The term of ``q`` (None for a blank one); a 400 naming ``q`` when it is too long."""
    if len(raw) > MAX_TERM:
        raise BadRequest(
            f"`q` is too long: at most {MAX_TERM} characters.",
            errors=[
                {
                    "in": "query",
                    "parameter": "q",
                    "code": "too_long",
                    "message": f"at most {MAX_TERM} characters",
                }
            ],
        )
    words = " ".join(raw.split()).lower()
    if not words:
        return None
    phone = None
    if _PHONE_TERM.match(raw.strip()):
        digits = phone_digits(raw)
        if len(digits) >= MIN_PHONE_DIGITS and digits.isdigit():
            phone = digits
    return Term(raw=raw, text=words, phone=phone)


def _value_sql(dialect: str, key: str) -> str:
    if dialect == "postgresql":
        return f"(data ->> '{key}')"
    return f"json_extract(data, '$.{key}')"


def search_expression(dialect: str, key: str, kind: SearchKind) -> str:
    """The SQL text a search compares for field ``key`` (the index is on this very text)."""
    value = _value_sql(dialect, key)
    if kind == "text":
        return f"lower({value})"
    # the prefix comes off the stored text first, so the value is read at most three times
    # and the separators are removed once (five times cheaper on SQLite than the other way)
    digits = (
        f"(CASE WHEN {value} LIKE '+86%' THEN substr({value}, 4) "
        f"WHEN {value} LIKE '0086%' THEN substr({value}, 5) ELSE {value} END)"
    )
    for separator in _PHONE_SEPARATORS:
        digits = f"replace({digits}, '{separator}', '')"
    return digits


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class Search:
    """A term compiled for one form and caller: ``condition`` to AND into a list's WHERE,
    ``rank`` (0 exact, 1 starts with, 2 contains) to order by first."""

    condition: ColumnElement[bool]
    rank: ColumnElement[int]


def compile_search(spec: FormSpec, dialect: str, hidden: frozenset[str], term: Term) -> Search:
    """The condition and rank of ``term`` over the search fields ``hidden`` leaves visible."""
    exact: list[ColumnElement[bool]] = []
    prefix: list[ColumnElement[bool]] = []
    contains: list[ColumnElement[bool]] = []
    for key, kind in search_fields(spec):
        if key in hidden:
            continue
        wanted = term.text if kind == "text" else term.phone
        if wanted is None:
            continue
        expression: ColumnElement[str] = literal_column(search_expression(dialect, key, kind))
        escaped = _like_escape(wanted)
        exact.append(expression == literal(wanted))
        prefix.append(expression.like(literal(escaped + "%"), escape="\\"))
        if len(wanted) < MIN_CONTAINS:
            contains.append(prefix[-1])
            contains.append(expression.like(literal("% " + escaped + "%"), escape="\\"))
        else:
            contains.append(expression.like(literal("%" + escaped + "%"), escape="\\"))
    if not contains:
        return Search(condition=false(), rank=literal(2))
    rank = case((or_(*exact), 0), (or_(*prefix), 1), else_=2)
    return Search(condition=or_(*contains), rank=rank)


# -- indexes ---------------------------------------------------------------------------------


def _index_name(prefix: str, app: str, form: str, key: str, method: str) -> str:
    tag = hashlib.sha1(f"{form}/{key}".encode()).hexdigest()[:12]
    return f"{prefix}{app}__search_{method}{tag}"[:63]


async def trigrams_available(session: AsyncSession) -> bool:
    """Whether ``pg_trgm`` is installed, installing it when the database lets us."""
    found = await session.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
    if found.first() is not None:
        return True
    try:
        async with session.begin_nested():
            await session.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except DBAPIError:
        return False
    return True


async def index_statements(session: AsyncSession, spec: AppSpec, prefix: str) -> dict[str, str]:
    """Index name -> DDL of the search indexes the app's forms want (PostgreSQL only)."""
    if session.get_bind().dialect.name != "postgresql":
        return {}
    wanted = [(form, search_fields(form)) for form in spec.forms]
    if not any(fields for _form, fields in wanted):
        return {}
    trigram = await trigrams_available(session)
    method, opclass = ("gin", "gin_trgm_ops") if trigram else ("btree", "text_pattern_ops")
    out: dict[str, str] = {}
    for form, fields in wanted:
        for key, kind in fields:
            name = _index_name(prefix, spec.key, form.key, key, "t" if trigram else "b")
            expression = search_expression("postgresql", key, kind)
            out[name] = (
                f"CREATE INDEX IF NOT EXISTS {name} ON records USING {method} "
                f"(({expression}) {opclass}) "
                f"WHERE app = '{spec.key}' AND form = '{form.key}' AND deleted_at IS NULL"
            )
    return out


def describe(spec: FormSpec) -> dict[str, Any]:
    """What the list page tells about its search box: the fields it looks in."""
    return {"fields": [key for key, _kind in search_fields(spec)]}
