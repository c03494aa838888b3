"""Loading the related records rules read (``record.patient.name``; docs/rules.md,
"Related records").

The engine says which relations a rule goes through and which fields it reads there
(:func:`formloom.engines.rules.related.reads`); this module works that out once per rule
of an installed rule set (cached beside its :class:`RuleIndex`, dropped with it), and
before a rule runs loads exactly that: per hop level, **one query per target form**, live
records of the same app only, their data cut down to the fields read. What it returns is
``Event.related`` (hop path -> entry, ``None`` for an empty or dangling relation).

A rule run reads as the rule: every field. A dry run reads as its caller
(:class:`Sight`): a related record outside the caller's read grant is not loaded, and
fields hidden from the caller are left out, so the answer never shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.apps import AppSpec
from formloom.engines.forms import FormSpec
from formloom.engines.rules import RuleIndex, RuleSpec
from formloom.engines.rules.related import Hop, merge_hops, reads
from formloom.platform.models import Record

__all__ = ["Sight", "hops_for", "load_related"]


@dataclass(frozen=True)
class Sight:
    """What one caller may see of a form's records: whether they may read them at all,
    the rows they may read (a SQL condition, ``None``: all) and the fields hidden from them."""

    readable: bool = True
    where: ColumnElement[bool] | None = None
    hidden: frozenset[str] = frozenset()


#: Per installed rule set: rule key -> its hops, and (form, event) -> the hops of its rules.
_HOPS: WeakKeyDictionary[RuleIndex, dict[Any, tuple[Hop, ...]]] = WeakKeyDictionary()


def _forms(spec: AppSpec) -> dict[str, FormSpec]:
    return {form.key: form for form in spec.forms}


def hops_for(
    index: RuleIndex, spec: AppSpec, rules: Sequence[RuleSpec], key: Any = None
) -> tuple[Hop, ...]:
    """The hops ``rules`` (rules of ``index``) read, worked out once per rule and, with a
    ``key`` naming the group (a write's: ``("write", form, event)``; callers keep their keys
    apart by their shape), once per group."""
    cache = _HOPS.get(index)
    if cache is None:
        cache = _HOPS[index] = {}
    if key is not None and ("group", key) in cache:
        return cache[("group", key)]
    forms: dict[str, FormSpec] | None = None
    groups = []
    for rule in rules:
        found = cache.get(("rule", rule.key))
        if found is None:
            forms = forms if forms is not None else _forms(spec)
            found = cache[("rule", rule.key)] = reads(rule, forms)
        groups.append(found)
    merged = merge_hops(groups)
    if key is not None:
        cache[("group", key)] = merged
    return merged


async def load_related(
    session: AsyncSession,
    app: str,
    spec: AppSpec,
    hops: Iterable[Hop],
    record: Mapping[str, Any],
    sight: Callable[[str], Sight] | None = None,
) -> dict[str, Any]:
    """The entries of ``hops`` for ``record`` (the triggering record's data), hop path ->
    ``{"id", "form", "data", "user"?}`` or ``None``; ``sight`` limits them to what a
    caller may see (none: everything, as a rule run reads)."""
    ordered = sorted(hops, key=lambda hop: (hop.depth, hop.path))
    if not ordered:
        return {}
    forms = _forms(spec)
    if sight is not None:
        sight = _once(sight)
    related: dict[str, Any] = {}
    for depth in sorted({hop.depth for hop in ordered}):
        level = [hop for hop in ordered if hop.depth == depth]
        wanted: dict[str, set[str]] = {}
        for hop in level:
            target = _target(hop, record, related)
            if target is not None:
                wanted.setdefault(hop.form, set()).add(target)
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for form, ids in sorted(wanted.items()):
            seen = sight(form) if sight is not None else None
            if seen is not None and not seen.readable:
                continue
            statement = select(Record.id, Record.data).where(
                Record.app == app,
                Record.form == form,
                Record.id.in_(sorted(ids)),
                Record.deleted_at.is_(None),
            )
            if seen is not None and seen.where is not None:
                statement = statement.where(seen.where)
            for record_id, data in (await session.execute(statement)).all():
                found[(form, record_id)] = data or {}
        for hop in level:
            target = _target(hop, record, related)
            data = found.get((hop.form, target)) if target is not None else None
            related[hop.path] = (
                None
                if data is None or target is None
                else _entry(hop, target, data, forms.get(hop.form), sight)
            )
    return related


def _once(sight: Callable[[str], Sight]) -> Callable[[str], Sight]:
    """``sight`` asked once per form (a row filter is compiled each time it is asked)."""
    known: dict[str, Sight] = {}

    def ask(form: str) -> Sight:
        if form not in known:
            known[form] = sight(form)
        return known[form]

    return ask


def _target(hop: Hop, record: Mapping[str, Any], related: Mapping[str, Any]) -> str | None:
    """The id the hop's relation field holds (in the record or the parent hop's entry)."""
    if hop.parent == "record":
        parent: Any = record
    else:
        entry = related.get(hop.parent)
        parent = entry.get("data") if isinstance(entry, Mapping) else None
    value = parent.get(hop.field) if isinstance(parent, Mapping) else None
    return value if isinstance(value, str) and value else None


def _entry(
    hop: Hop,
    record_id: str,
    data: Mapping[str, Any],
    form: FormSpec | None,
    sight: Callable[[str], Sight] | None,
) -> dict[str, Any]:
    hidden = sight(hop.form).hidden if sight is not None else frozenset()
    values = {name: data.get(name) for name in sorted(hop.fields - {"id"} - hidden)}
    entry: dict[str, Any] = {"id": record_id, "form": hop.form, "data": {"id": record_id, **values}}
    user_field = form.user_field if form is not None else None
    if user_field is not None and user_field not in hidden:
        entry["user"] = data.get(user_field)
    return entry
