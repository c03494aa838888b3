"""Message templates: Jinja2 in its sandbox, one text per locale.

The engine checks template *syntax* at import (:func:`template_problems`) and the plan
carries the template text and the context it will be rendered with; the outbox worker
renders at delivery time (:func:`render_template`), so a template that fails at run time is
retried or dead-lettered with the message intact instead of failing the record write.
The sandbox refuses attribute access to internals (``__class__`` and friends), so a
template written in the designer cannot reach Python objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["locale_texts", "render_template", "template_problems"]

_ENVIRONMENT = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)


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
    text: str | Mapping[str, str], context: Mapping[str, Any], locale: str = "en"
) -> str:
    """Render the template for ``locale`` (falling back to ``en``, then to the first one).

    Raises jinja2's errors (``UndefinedError``, ``SecurityError``, ...) for the caller to
    record; nothing is sent or read here.
    """
    if isinstance(text, str):
        chosen = text
    else:
        chosen = text.get(locale) or text.get("en") or next(iter(text.values()), "")
    return _ENVIRONMENT.from_string(chosen).render(**context)
