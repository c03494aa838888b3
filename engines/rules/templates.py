"""Message templates: Jinja2 in its sandbox, one text per locale.

The engine checks template *syntax* at import (:func:`template_problems`) and the plan
carries the template text and the context it will be rendered with; the outbox worker
renders at delivery time (:func:`render_template`), so a template that fails at run time is
retried or dead-lettered with the message intact instead of failing the record write.
The sandbox refuses attribute access to internals (``__class__`` and friends), so a
template written in the designer cannot reach Python objects.

Texts people read (messages, task titles) are rendered with the clinic's zone: datetimes in
the context read as its wall clock, and the ``datetime`` / ``date`` / ``time`` filters
format in the text's locale (:mod:`.display`). Texts for machines (webhooks) are rendered
without a zone and keep the stored UTC form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from datetime import tzinfo
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, Undefined, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from formloom.engines.forms.localtime import zone_of
from formloom.engines.rules.display import (
    format_date,
    format_datetime_as,
    format_time,
    localise,
)
from formloom.engines.rules.related import RelatedValue, related_value_id, related_view

__all__ = [
    "locale_texts",
    "render_template",
    "render_value",
    "template_problems",
    "sole_expression",
]

_ENVIRONMENT = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)

#: The locale and zone of the text being rendered, and whether times name the zone, for
#: the filters (rendering is synchronous, so this is the render in progress; outside one:
#: English, no zone).
_RENDERING: ContextVar[tuple[str, tzinfo | None, bool]] = ContextVar(
    "formloom_rendering", default=("en", None, False)
)


def _time_filter(
    format_as: Callable[[Any, str | None, str, tzinfo | None, bool], Any],
) -> Callable[..., Any]:
    def apply(value: Any, pattern: str | None = None) -> Any:
        locale, zone, named = _RENDERING.get()
        return format_as(value, pattern, locale, zone, named)

    return apply


_ENVIRONMENT.filters["datetime"] = _time_filter(format_datetime_as)
_ENVIRONMENT.filters["date"] = _time_filter(format_date)
_ENVIRONMENT.filters["time"] = _time_filter(format_time)


def locale_texts(text: str | Mapping[str, str]) -> Iterator[tuple[str | None, str]]:
    """``(locale or None, template)`` for a plain template or a locale -> template map."""
    if isinstance(text, str):
        yield None, text
    else:
        yield from text.items()


def template_problems(text: str) -> str | None:
    """Why ``text`` is not a valid Jinja2 template, or ``None`` when it parses."""
    try:
        _ENVIRONMENT.parse(text)
    except TemplateSyntaxError as error:
        return f"line {error.lineno}: {error.message}"
    return None


def render_template(
    text: str | Mapping[str, str],
    context: Mapping[str, Any],
    locale: str = "en",
    zone: str | tzinfo | None = None,
    *,
    named: bool = False,
) -> str:
    """Render the template for ``locale`` (falling back to ``en``, then to the first one).

    ``zone`` (the clinic's, for a text a person reads): every stored UTC instant in the
    context reads as that zone's wall clock (``2026-12-03 17:00``), and the time filters
    format in it. Without one, values are rendered as stored. ``named`` (the record's zone
    is not the deployment's): instants and times name the zone (``2026-12-05 10:00
    (Asia/Urumqi)``, :mod:`.display`).

    Raises jinja2's errors (``UndefinedError``, ``SecurityError``, ...) for the caller to
    record; nothing is sent or read here.
    """
    if isinstance(text, str):
        chosen = text
    else:
        chosen = text.get(locale) or text.get("en") or next(iter(text.values()), "")
    template = _compiled(chosen)
    clinic = zone_of(zone) if zone is not None else None
    token = _RENDERING.set((locale, clinic, named and clinic is not None))
    try:
        if clinic is None:
            return template.render(**context)
        return template.render(**localise(context, clinic, named))
    finally:
        _RENDERING.reset(token)


@lru_cache(maxsize=1024)
def _compiled(text: str) -> Template:
    """A template compiled once per process: compiling is most of the cost of rendering
    one (a flow's task titles, the outbox's messages), and templates are few."""
    return _ENVIRONMENT.from_string(text)


#: ``{{ expression }}`` and nothing else: no text around it, no second ``{{`` or ``}}``.
_SOLE = re.compile(r"\{\{((?:(?!\{\{|\}\}|\{%|%\}|\{#).)*)\}\}", re.DOTALL)


def sole_expression(text: str) -> str | None:
    """The expression of a template that is exactly one ``{{ … }}``, else ``None``."""
    found = _SOLE.fullmatch(text)
    return found.group(1).strip() if found and found.group(1).strip() else None


def render_value(text: str, context: Mapping[str, Any]) -> Any:
    """A typed value: a template that is exactly one expression gives the expression's
    value as it is (a number stays a number); any other text renders as a string. A value
    that is not JSON (a date, an object) is given as its text. Raises as
    :func:`render_template` does (an undefined name included)."""
    expression = sole_expression(text)
    if expression is None:
        return render_template(text, context)
    compiled = _ENVIRONMENT.compile_expression(expression, undefined_to_none=False)
    value = compiled(**related_view(context))
    if isinstance(value, Undefined):
        raise UndefinedError(f"{expression!r} is undefined")
    return _json_value(value)


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, RelatedValue):
        return _json_value(related_value_id(value))
    if isinstance(value, Mapping):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return str(value)


class _RuleTemplate(Template):
    """A rule's template: ``record.<relation>.<field>`` reads the related records the
    context holds (:func:`~.related.related_view`); other contexts render as given."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        return super().render(related_view(dict(*args, **kwargs)))


_ENVIRONMENT.template_class = _RuleTemplate
