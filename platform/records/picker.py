"""The relation picker's second line: which fields tell two records of the same title apart.

A picker option shows the record's title and, under it, a *summary*: the fields the target
form lists in its ``summary`` (docs/app-format.md), else up to :data:`SUMMARY_SIZE` of its
fields chosen by kind — its phone fields first, then its dates, then its single-choice
selects, each in the form's order ("He Li" over "138 0013 8000 · 1990-01-15"). The picker
asks the list API for these fields alongside the title and matches with the list's quick
search (``q``: exact, then prefix, then contains; records/search.py).

Invariants
    * A field hidden from the caller is never in the summary (nor asked for), so the second
      line cannot show what the record page would not.
    * The title field is not repeated in a summary the form does not list itself.
"""

from __future__ import annotations

from typing import Any

from formloom.engines.forms import FormSpec, SelectField, label_text, title_field

#: How many fields the second line shows at most when the form does not list them.
SUMMARY_SIZE = 2
#: The kinds of field the second line is made of, in the order they are preferred.
SUMMARY_TYPES = ("phone", "date", "select")


def summary_fields(spec: FormSpec, hidden: frozenset[str]) -> list[str]:
    """The keys of the fields ``spec``'s picker options show under their title, for a caller
    who may not see ``hidden``."""
    if spec.summary is not None:
        return [key for key in spec.summary if key not in hidden]
    title = title_field(spec)
    title_key = title.key if title is not None else None
    visible = [f for f in spec.value_fields() if f.key not in hidden and f.key != title_key]
    chosen: list[str] = []
    for kind in SUMMARY_TYPES:
        chosen += [f.key for f in visible if f.field_type == kind]
    return chosen[:SUMMARY_SIZE]


def summary_meta(spec: FormSpec, hidden: frozenset[str], lang: str) -> list[dict[str, Any]]:
    """The summary fields as the picker shows them: ``{"key", "type"}``, and for selects
    ``"options"`` (value → label in ``lang``)."""
    meta: list[dict[str, Any]] = []
    by_key = {f.key: f for f in spec.value_fields()}
    for key in summary_fields(spec, hidden):
        field = by_key[key]
        item: dict[str, Any] = {"key": key, "type": field.field_type}
        if isinstance(field, SelectField):
            item["options"] = {o.value: label_text(o.label, lang) or o.value for o in field.options}
        meta.append(item)
    return meta
