"""The web UI's languages: which one a request gets, and the message catalogs.

English is the source language: templates and scripts write English text and look it up
in ``ui/i18n/<locale>/*.json`` (one object per file, English message -> translation; the
files of a locale are merged, so each part of the UI keeps its own file). A message with no
translation shows in English. App labels are translated by the app definition itself
(``{"en": ..., "zh-CN": ...}`` labels), not here.

A request's language is, in order: ``?lang=`` (a link that forces one), the language the
signed-in user saved (read with their credential on every request, so every device follows a
change at its next page), the ``formloom_lang`` cookie (set when a user picks a language and
at sign-in from their saved choice; what the anonymous and users without a saved choice
get), the browser's ``Accept-Language``, English.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from starlette.requests import Request

LOCALES = ("en", "zh-CN")
DEFAULT_LOCALE = "en"
LANG_COOKIE = "formloom_lang"
CATALOGS = Path(__file__).resolve().parents[1] / "ui" / "i18n"


def supported(value: str | None) -> str | None:
    """The supported locale ``value`` names (case-insensitive, ``zh``/``zh-Hans`` -> zh-CN)."""
    if not value:
        return None
    tag = value.strip().lower().replace("_", "-")
    if tag == "en" or tag.startswith("en-"):
        return "en"
    if tag in ("zh", "zh-cn", "zh-hans", "zh-sg") or tag.startswith("zh-hans"):
        return "zh-CN"
    return None


def from_accept_language(header: str) -> str | None:
    """The best supported language of an ``Accept-Language`` header (by q-value)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        locale = supported(tag)
        if locale is not None and quality > 0:
            ranked.append((-quality, position, locale))
    return min(ranked)[2] if ranked else None


def request_locale(request: Request) -> str:
    return (
        supported(request.query_params.get("lang"))
        or saved_locale(request)
        or supported(request.cookies.get(LANG_COOKIE))
        or from_accept_language(request.headers.get("accept-language", ""))
        or DEFAULT_LOCALE
    )


def saved_locale(request: Request) -> str | None:
    """The language the signed-in caller saved on their user, as resolved with their
    credential for this request (``Principal.locale``; the credential cache keeps it a few
    seconds, platform/auth/cache.py) — so a choice made on one device reaches the others at
    their next page, not at their next sign-in. ``None`` before the caller is known, for
    the anonymous, and for a user who saved none."""
    principal = getattr(request.state, "principal", None)
    return supported(getattr(principal, "locale", None))


@lru_cache(maxsize=len(LOCALES))
def catalog(locale: str) -> Mapping[str, str]:
    """English message -> translation, merged from every file of the locale's folder."""
    messages: dict[str, str] = {}
    folder = CATALOGS / locale
    if locale != DEFAULT_LOCALE and folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            messages.update(json.loads(path.read_text(encoding="utf-8")))
    return messages


class Translator:
    """``t("Save")`` -> the message in the locale; ``t("{n} records", n=3)`` formats after
    translating. ``t(en, zh)`` (both given inline) is accepted for one-off messages."""

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self.messages = catalog(locale)

    def __call__(self, message: str, inline_zh: str | None = None, /, **values: object) -> str:
        if self.locale == "zh-CN" and inline_zh is not None:
            text = inline_zh
        else:
            text = self.messages.get(message, message)
        return text.format(**values) if values else text
